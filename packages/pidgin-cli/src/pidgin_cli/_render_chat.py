"""Following one conversation as a chat: names, turn numbers, convergence, the words.

pidgin-ai's default display, rebuilt from the JSONL: each refresh, the StateBuilder
snapshot gives the status and the reply still streaming (its ``MessageChunkEvent``s), and
a ``TranscriptReader`` kept for the whole session reads only the lines appended since
the previous refresh for the prompts and messages. What is complete is printed once, in
log order; on a terminal the reply being written is shown growing below it (a rich
``Live`` footer), in a pipe only complete messages are printed (plain lines, no escape).
Everything from the logs goes through ``safe_text``/``rich_text``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pidgin_events import FINISHED_STATUSES

from ._output import make_console, rich_text, safe_text
from ._render_text import format_cost, format_score, format_tokens
from ._transcript import ChatMessage, PromptInfo, Transcript, TranscriptReader
from ._transcript_view import AGENTS, agent_label, pick_conversation

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from pidgin_state import ConversationState, ExperimentState

__all__ = ["ChatDisplay", "chat_lines"]

STREAM_LINES = 12
"""Lines of a streaming reply the terminal footer shows (its newest ones)."""


class ChatFollower:
    """What is new in one conversation since the last refresh, as lines of a chat."""

    def __init__(self, conversation: str | None) -> None:
        self.wanted = conversation
        self.conversation_id: str | None = None
        self.reader: TranscriptReader | None = None
        self.last_line = 0
        self.header_shown = False
        self.turn = 0
        self.scored: set[int] = set()
        self.warned = 0
        self.ended: str | None = None
        """The followed conversation's final status, once it ended."""

    def pick(self, state: ExperimentState) -> ConversationState | None:
        """The followed conversation: the one named, else the first to start."""
        if self.conversation_id is None:
            if self.wanted is not None:
                if not state.conversations and state.status not in FINISHED_STATUSES:
                    return None  # not started yet: wait for it
                self.conversation_id = pick_conversation(state, self.wanted)
            elif state.conversations:
                self.conversation_id = min(state.conversations.values(), key=_start_order).id
            else:
                return None
        conversation = state.conversations.get(self.conversation_id)
        if conversation is not None and self.reader is None:
            self.reader = TranscriptReader(conversation.id, Path(conversation.log_path))
        return conversation

    def new_lines(self, state: ExperimentState) -> list[tuple[str, str]]:
        """``(text, style)`` of everything completed since the last call."""
        conversation = self.pick(state)
        if conversation is None or self.reader is None:
            return []
        t = self.reader.refresh()
        out: list[tuple[str, str]] = []
        if not self.header_shown and (t.agent_models or t.agent_names):
            self.header_shown = True
            out.append((_header(conversation.id, t), "bold"))
        items: list[PromptInfo | ChatMessage] = [
            *(p for p in t.prompts if p.line > self.last_line),
            *(m for m in t.messages if m.line > self.last_line and not m.discarded),
        ]
        items.sort(key=lambda item: item.line)
        for item in items:
            if isinstance(item, PromptInfo):
                out.append((_prompt_line(t, item), "yellow"))
            else:
                if item.turn != self.turn:
                    out += self._scores(t, upto=item.turn)
                    if self.turn == 0 and t.initial_prompt:
                        out.append((f"[initial prompt] {t.initial_prompt}", "yellow"))
                    self.turn = item.turn
                    out.append((f"── Turn {item.turn} ──", "bold cyan"))
                out.append((_message_line(t, item), "green" if item.agent_id == "agent_a" else ""))
            self.last_line = max(self.last_line, item.line)
        out += self._scores(t, upto=self.turn + 1)
        out += self._warnings(conversation)
        if conversation.status in FINISHED_STATUSES and self.ended is None:
            self.ended = conversation.status
            out.append((end_line(conversation), "bold"))
        return out

    def _scores(self, t: Transcript, *, upto: int) -> list[tuple[str, str]]:
        """Convergence of the completed turns before ``upto`` not shown yet."""
        out = []
        for number, info in sorted(t.turns.items()):
            if number < upto and info.completed and number not in self.scored:
                self.scored.add(number)
                out.append((f"   convergence {format_score(info.convergence)}", "dim"))
        return out

    def _warnings(self, conversation: ConversationState) -> list[tuple[str, str]]:
        """Convergence warnings of the turns whose score was shown, each once."""
        out = []
        for warning in conversation.convergence_warnings[self.warned :]:
            if warning.turn not in self.scored:
                break
            self.warned += 1
            out.append(
                (
                    f"   warning: convergence {format_score(warning.score)} reached the "
                    f"threshold {warning.threshold:g} at turn {warning.turn}",
                    "bold yellow",
                )
            )
        return out

    def streaming(self, state: ExperimentState) -> list[tuple[str, str]]:
        """The replies being written now, by agent (empty when none is)."""
        if self.conversation_id is None or self.reader is None:
            return []
        conversation = state.conversations.get(self.conversation_id)
        if conversation is None:
            return []
        t = self.reader.transcript
        return [
            (agent_label(t, agent), conversation.streaming[agent])
            for agent in sorted(conversation.streaming)
        ]


def _start_order(conversation: ConversationState) -> tuple[float, str]:
    started = conversation.started_at
    return (started.timestamp() if started else float("inf"), conversation.id)


def _header(conversation_id: str, t: Transcript) -> str:
    agents = " vs ".join(agent_label(t, agent) for agent in AGENTS)
    turns = f", {t.max_turns} turns" if t.max_turns else ""
    return f"Conversation {conversation_id}: {agents}{turns}"


def _prompt_line(t: Transcript, prompt: PromptInfo) -> str:
    who = agent_label(t, prompt.agent_id)
    if prompt.kind == "system":
        return f"[system prompt for {who}] {prompt.content}"
    role = f" as {prompt.role}" if prompt.role else ""
    return f"[prompt injected for {who}{role}] {prompt.content}"


def _message_line(t: Transcript, message: ChatMessage) -> str:
    head = agent_label(t, message.agent_id)
    thinking = " (thought first)" if message.thinking else ""
    return f"{head}{thinking}: {message.content}"


def end_line(conversation: ConversationState) -> str:
    total = sum((c.total for c in conversation.tokens.values()), 0)
    cost = sum((c.cost_usd for c in conversation.tokens.values()), 0.0)
    reason = f" ({conversation.end_reason})" if conversation.end_reason else ""
    return (
        f"Conversation {conversation.status}{reason}: {conversation.turns_completed} turns, "
        f"{format_tokens(total)} tokens, cost {format_cost(cost)}"
    )


def chat_lines(lines: list[tuple[str, str]]) -> str:
    """Plain text of chat lines: control characters shown, continuation lines indented."""
    return "\n".join(safe_text(text, multiline=True).replace("\n", "\n  ") for text, _ in lines)


class ChatDisplay:
    """An ``AttachDisplay`` that follows one conversation as a chat."""

    def __init__(self, conversation: str | None, *, rich: bool) -> None:
        self.follower = ChatFollower(conversation)
        self._live: Live | None = None
        if rich:
            from rich.live import Live

            self.console = make_console()
            self._live = Live(console=self.console, auto_refresh=False, transient=True)
            self._live.start()

    @property
    def done(self) -> str | None:
        return self.follower.ended

    def update(self, state: ExperimentState) -> None:
        lines = self.follower.new_lines(state)
        if self._live is None:
            if lines:
                click.echo(chat_lines(lines))
                sys.stdout.flush()
            return
        for text, style in lines:
            self._live.console.print(rich_text(text, style, multiline=True))
        self._live.update(self._footer(state), refresh=True)

    def _footer(self, state: ExperimentState) -> RenderableType:
        from rich.console import Group

        parts: list[RenderableType] = []
        for who, text in self.follower.streaming(state):
            tail = "\n".join(text.splitlines()[-STREAM_LINES:])
            parts.append(rich_text(f"{who} (writing…): {tail}", "italic", multiline=True))
        conversation = state.conversations.get(self.follower.conversation_id or "")
        if conversation is not None and conversation.status not in FINISHED_STATUSES:
            turns = f"{conversation.current_turn}" + (
                f"/{conversation.max_turns}" if conversation.max_turns else ""
            )
            parts.append(rich_text(f"turn {turns} · {conversation.status}", "dim"))
        return Group(*parts)

    def close(self) -> None:
        if self._live is not None:
            self._live.update("", refresh=True)
            self._live.stop()
        sys.stdout.flush()

    def summary(self, state: ExperimentState) -> None:
        from ._render_attach import summary_line

        click.echo(summary_line(state))
