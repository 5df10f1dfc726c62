"""A conversation's transcript (messages, thinking, per-turn convergence) from its log.

The StateBuilder summarises a run; a reader of one conversation wants the words. A
``TranscriptReader`` follows one conversation log like the StateBuilder does: each
``refresh`` reads only the bytes appended since the previous one, so a page or an event
stream that polls a running conversation costs what was written since, not the whole log.
Turn numbers are shown from 1 (logs number them from 0).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pidgin_events import (
    BadLine,
    ConversationEndEvent,
    ConversationStartEvent,
    LogReader,
    MessageCompleteEvent,
    ThinkingCompleteEvent,
    TurnCompleteEvent,
    TurnStartEvent,
)

__all__ = ["ChatMessage", "Transcript", "TranscriptReader", "TurnInfo"]


@dataclass(slots=True)
class ChatMessage:
    """One message as the transcript shows it."""

    index: int
    """Position in the transcript, from 0: what an event stream resumes after."""
    turn: int
    """1-based turn the message belongs to (0 before the first turn)."""
    agent_id: str
    role: str
    content: str
    timestamp: datetime | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    duration_ms: int
    line: int
    """Line of the log the message was read from."""
    thinking: str | None = None
    thinking_tokens: int | None = None


@dataclass(slots=True)
class TurnInfo:
    """One turn: its convergence score once it completed."""

    number: int
    completed: bool = False
    convergence: float | None = None


@dataclass(slots=True)
class Transcript:
    """Everything a conversation page shows, as read so far."""

    conversation_id: str
    log_path: Path
    agent_names: dict[str, str] = field(default_factory=dict)
    agent_models: dict[str, str] = field(default_factory=dict)
    initial_prompt: str | None = None
    max_turns: int | None = None
    messages: list[ChatMessage] = field(default_factory=list)
    turns: dict[int, TurnInfo] = field(default_factory=dict)
    ended: bool = False
    end_status: str | None = None
    end_reason: str | None = None
    error: str | None = None
    bad_lines: int = 0
    version: int = 0
    """Bumped by every refresh that changed anything: streams wait for it to move."""

    def name_of(self, agent_id: str) -> str:
        """The display name of an agent, else its model, else its id."""
        return self.agent_names.get(agent_id) or self.agent_models.get(agent_id) or agent_id

    def convergence(self) -> list[float | None]:
        """Convergence of each completed turn, in turn order."""
        return [t.convergence for _, t in sorted(self.turns.items()) if t.completed]

    def turns_completed(self) -> int:
        return sum(1 for t in self.turns.values() if t.completed)


class TranscriptReader:
    """Follows one conversation log; thread-safe (one lock per log)."""

    def __init__(self, conversation_id: str, log_path: Path) -> None:
        self.transcript = Transcript(conversation_id=conversation_id, log_path=log_path)
        self._reader = LogReader(log_path)
        self._lock = threading.Lock()
        self._turn = 0
        self._size = -1
        self._pending: dict[tuple[int, str], ThinkingCompleteEvent] = {}
        """Thinking read before its message, by (turn, agent)."""

    @property
    def lock(self) -> threading.Lock:
        """Held while refreshing; hold it to read the transcript consistently."""
        return self._lock

    def refresh(self) -> Transcript:
        """Read what was appended since the last refresh; cheap when nothing was."""
        with self._lock:
            try:
                size = os.stat(self._reader.path).st_size
            except OSError:
                return self.transcript
            if size == self._size:
                return self.transcript
            self._size = size
            changed = False
            for item in self._reader.events():
                changed = True
                if isinstance(item, BadLine):
                    self.transcript.bad_lines += 1
                else:
                    self._apply(item, self._reader.line - 1)
            if changed:
                self.transcript.version += 1
            return self.transcript

    def _apply(self, event: object, line: int) -> None:
        t = self.transcript
        if isinstance(event, ConversationStartEvent):
            self._start(event)
        elif isinstance(event, TurnStartEvent):
            self._turn = event.turn_number + 1
            t.turns.setdefault(self._turn, TurnInfo(self._turn))
        elif isinstance(event, MessageCompleteEvent):
            number = event.turn_number + 1 if event.turn_number is not None else self._turn
            message = event.message
            chat = ChatMessage(
                index=len(t.messages),
                turn=number,
                agent_id=event.agent_id,
                role=message.role,
                content=message.content,
                timestamp=message.timestamp or event.timestamp,
                prompt_tokens=event.prompt_tokens,
                completion_tokens=event.completion_tokens,
                total_tokens=event.total_tokens,
                duration_ms=event.duration_ms,
                line=line,
            )
            thinking = self._pending.pop((number, event.agent_id), None)
            if thinking is not None:
                chat.thinking = thinking.thinking_content
                chat.thinking_tokens = thinking.thinking_tokens
            t.messages.append(chat)
        elif isinstance(event, ThinkingCompleteEvent):
            self._thinking(event)
        elif isinstance(event, TurnCompleteEvent):
            number = event.turn_number + 1
            info = t.turns.setdefault(number, TurnInfo(number))
            info.completed = True
            info.convergence = event.convergence_score
        elif isinstance(event, ConversationEndEvent):
            t.ended = True
            t.end_status = event.status
            t.end_reason = event.reason
            t.error = event.error

    def _start(self, event: ConversationStartEvent) -> None:
        t = self.transcript
        t.initial_prompt = event.initial_prompt
        t.max_turns = event.max_turns
        for agent_id, given_name, given_model, info in (
            ("agent_a", event.agent_a_display_name, event.agent_a_model, event.agent_a),
            ("agent_b", event.agent_b_display_name, event.agent_b_model, event.agent_b),
        ):
            details = info or {}
            display = given_name or _text(details.get("display_name"))
            model = given_model or _text(details.get("model"))
            if display:
                t.agent_names[agent_id] = display
            if model:
                t.agent_models[agent_id] = model

    def _thinking(self, event: ThinkingCompleteEvent) -> None:
        """Attach thinking to the agent's message of that turn (it may come first)."""
        number = event.turn_number + 1
        for message in reversed(self.transcript.messages):
            if message.turn < number:
                break
            if message.turn == number and message.agent_id == event.agent_id:
                message.thinking = event.thinking_content
                message.thinking_tokens = event.thinking_tokens
                return
        self._pending[(number, event.agent_id)] = event


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
