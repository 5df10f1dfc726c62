"""A conversation's transcript (messages, thinking, prompts, per-turn convergence) from its log.

The StateBuilder summarises a run; a reader of one conversation wants the words. A
``TranscriptReader`` follows one conversation log like the StateBuilder does: each
``refresh`` reads only the bytes appended since the previous one, so a page, an event
stream or ``pidgin run``'s chat view that polls a running conversation costs what was
written since, not the whole log. ``pidgin serve`` and ``pidgin transcript`` share it.
Turn numbers are shown from 1 (logs number them from 0). The prompts a model was given
(``SystemPromptEvent``, and injections mid-conversation: ``PromptInjectionEvent``) are
kept apart from what the agents said, with the log line that orders them among messages.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from pidgin_events import EventDecodeError, LogReader, decode_event, parse_timestamp

__all__ = ["ChatMessage", "PromptInfo", "Transcript", "TranscriptReader", "TurnInfo"]


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
    cost_usd: float | None = None
    """At the catalogue's prices, as the runner recorded it; None for models without prices."""
    discarded: bool = False
    """Its turn was discarded (a half-done turn before a resume): not part of the conversation."""


@dataclass(slots=True)
class PromptInfo:
    """A prompt a model was given: its system prompt, or one injected at a turn."""

    kind: str
    """``system`` or ``injection``."""
    agent_id: str | None
    """The agent it was given to (None: both)."""
    turn: int
    """1-based turn it was given before (0: at the start)."""
    content: str
    line: int
    role: str | None = None
    """For an injection: the role it was sent as (``system``, ``user``), when recorded."""


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A line of the log that the transcript could not show as it was written."""

    line: int
    reason: str
    repaired: bool = False
    """Shown with U+FFFD in place of its bytes that are not UTF-8; otherwise left out."""

    def describe(self, log_path: Path) -> str:
        shown = "shown with U+FFFD for those bytes" if self.repaired else "left out"
        return f"line {self.line} of {log_path.name}: {self.reason}; {shown}"


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
    chosen_names: dict[str, str] = field(default_factory=dict)
    """Names the agents chose for themselves (``--choose-names``): shown before any other."""
    agent_models: dict[str, str] = field(default_factory=dict)
    initial_prompt: str | None = None
    max_turns: int | None = None
    messages: list[ChatMessage] = field(default_factory=list)
    prompts: list[PromptInfo] = field(default_factory=list)
    turns: dict[int, TurnInfo] = field(default_factory=dict)
    ended: bool = False
    end_status: str | None = None
    end_reason: str | None = None
    error: str | None = None
    problems: list[LineProblem] = field(default_factory=list)
    version: int = 0
    """Bumped by every refresh that changed anything: streams wait for it to move."""

    def name_of(self, agent_id: str) -> str:
        """The name the agent chose, else its display name, else its model, else its id."""
        return (
            self.chosen_names.get(agent_id)
            or self.agent_names.get(agent_id)
            or self.agent_models.get(agent_id)
            or agent_id
        )

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
        self._pending: dict[tuple[int, str], tuple[str, int | None]] = {}
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
            for number, raw in self._reader.lines():
                changed = True
                if any(name in raw for name in _SHOWN):
                    self._read_line(number, raw)
            if changed:
                self.transcript.version += 1
            return self.transcript

    def _read_line(self, number: int, raw: bytes) -> None:
        """Apply one line that may be an event the transcript shows; note it if unreadable.

        A line whose only fault is bytes that are not UTF-8 (one stray byte in a message)
        is shown with U+FFFD in their place rather than dropped whole, and noted.
        """
        repaired = False
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data, repaired = _with_replacement(raw), True
        try:
            if isinstance(data, dict):
                self._apply(data, number)
                if repaired:
                    self._note(number, raw, repaired=True)
                return
        except (TypeError, ValueError):
            pass
        self._note(number, raw, repaired=False)

    def _note(self, number: int, raw: bytes, *, repaired: bool) -> None:
        try:
            decode_event(raw)
            reason = "its fields are not those of its event type"
        except EventDecodeError as exc:
            reason = str(exc)
        self.transcript.problems.append(LineProblem(number, reason, repaired))

    def _apply(self, event: dict[str, Any], line: int) -> None:
        t = self.transcript
        kind = event.get("event_type")
        if kind == "ConversationStartEvent":
            self._start(event)
        elif kind == "TurnStartEvent":
            self._turn = _int(event["turn_number"]) + 1
            t.turns.setdefault(self._turn, TurnInfo(self._turn))
        elif kind == "MessageCompleteEvent":
            given = event.get("turn_number")
            number = _int(given) + 1 if given is not None else self._turn
            message = event["message"]
            if not isinstance(message, dict):
                raise TypeError("message is not an object")
            agent_id = _str(event.get("agent_id") or message.get("agent_id"))
            stamp = message.get("timestamp") or event.get("timestamp")
            chat = ChatMessage(
                index=len(t.messages),
                turn=number,
                agent_id=agent_id,
                role=_str(message.get("role") or "assistant"),
                content=_str(message.get("content")),
                timestamp=parse_timestamp(stamp) if isinstance(stamp, str) else None,
                prompt_tokens=_int(event.get("prompt_tokens") or 0),
                completion_tokens=_int(event.get("completion_tokens") or 0),
                total_tokens=_int(event.get("total_tokens") or 0),
                duration_ms=_int(event.get("duration_ms") or 0),
                line=line,
            )
            cost = event.get("cost_usd")
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                chat.cost_usd = float(cost)
            thinking = self._pending.pop((number, agent_id), None)
            if thinking is not None:
                chat.thinking, chat.thinking_tokens = thinking
            t.messages.append(chat)
        elif kind == "SystemPromptEvent":
            self._prompt("system", event, line)
        elif kind == "PromptInjectionEvent":
            self._prompt("injection", event, line)
        elif kind == "TurnDiscardedEvent":
            number = _int(event["turn_number"]) + 1
            for message in t.messages:
                if message.turn == number:
                    message.discarded = True
            t.turns.pop(number, None)
        elif kind == "ThinkingCompleteEvent":
            self._thinking(event)
        elif kind == "AgentNameChosenEvent":
            chosen, chooser = _text(event.get("chosen_name")), _text(event.get("agent_id"))
            if chosen and chooser:
                t.chosen_names[chooser] = chosen
        elif kind == "TurnCompleteEvent":
            number = _int(event["turn_number"]) + 1
            info = t.turns.setdefault(number, TurnInfo(number))
            info.completed = True
            score = event.get("convergence_score")
            info.convergence = float(score) if isinstance(score, int | float) else None
        elif kind == "ConversationEndEvent":
            t.ended = True
            t.end_status = _text(event.get("status"))
            t.end_reason = _text(event.get("reason"))
            t.error = _text(event.get("error"))

    def _start(self, event: dict[str, Any]) -> None:
        t = self.transcript
        t.initial_prompt = _text(event.get("initial_prompt"))
        turns = event.get("max_turns")
        t.max_turns = turns if isinstance(turns, int) else None
        for agent_id in ("agent_a", "agent_b"):
            details = event.get(agent_id)
            details = details if isinstance(details, dict) else {}
            display = _text(event.get(f"{agent_id}_display_name")) or _text(
                details.get("display_name")
            )
            model = _text(event.get(f"{agent_id}_model")) or _text(details.get("model"))
            if display:
                t.agent_names[agent_id] = display
            if model:
                t.agent_models[agent_id] = model

    def _prompt(self, kind: str, event: dict[str, Any], line: int) -> None:
        t = self.transcript
        # PromptInjectionEvent is younger than this reader: its text is read from the
        # first field of these that holds one, so that a renamed field still shows.
        content = next(
            (event[k] for k in ("prompt", "content", "text") if isinstance(event.get(k), str)),
            None,
        )
        if content is None:
            raise TypeError(f"{kind} prompt without text")
        agent_id = _text(event.get("agent_id"))
        given = event.get("turn_number")
        turn = _int(given) + 1 if given is not None else (0 if kind == "system" else self._turn)
        role = _text(event.get("role"))
        t.prompts.append(PromptInfo(kind, agent_id, turn, content, line, role))
        display = _text(event.get("agent_display_name"))
        if display and agent_id:
            t.agent_names[agent_id] = display

    def _thinking(self, event: dict[str, Any]) -> None:
        """Attach thinking to the agent's message of that turn (it may come first)."""
        number = _int(event["turn_number"]) + 1
        agent_id = _str(event.get("agent_id"))
        content = _str(event.get("thinking_content"))
        tokens = event.get("thinking_tokens")
        count = tokens if isinstance(tokens, int) else None
        for message in reversed(self.transcript.messages):
            if message.turn < number:
                break
            if message.turn == number and message.agent_id == agent_id:
                message.thinking, message.thinking_tokens = content, count
                return
        self._pending[(number, agent_id)] = (content, count)


_SHOWN = (
    b"ConversationStartEvent",
    b"TurnStartEvent",
    b"MessageCompleteEvent",
    b"ThinkingCompleteEvent",
    b"TurnCompleteEvent",
    b"ConversationEndEvent",
    b"SystemPromptEvent",
    b"PromptInjectionEvent",
    b"TurnDiscardedEvent",
    b"AgentNameChosenEvent",
)
"""Event types the transcript shows: other lines (requests carrying whole histories in
pidgin-ai logs, chunks, rate limits) are skipped without being parsed."""


def _with_replacement(raw: bytes) -> Any:
    """The line read with U+FFFD in place of bytes that are not UTF-8; None if still not JSON."""
    try:
        return orjson.loads(raw.decode("utf-8", "replace"))
    except orjson.JSONDecodeError:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, not {type(value).__name__}")
    return value
