"""What a transcript document holds: a run's conversations, each with its state and words.

The status, tokens and cost of a conversation come from the StateBuilder; its words (the
prompts it was given, the messages, thinking, per-turn convergence) from a
``TranscriptReader`` over the same log. Both read the JSONL only, so a transcript of a run
that is still writing shows what has been written so far. The renderers
(``_transcript_md``, ``_transcript_html``, ``_transcript_json``) take a ``TranscriptDoc``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._output import fail
from ._render_text import format_cost, format_tokens
from ._transcript import ChatMessage, PromptInfo, Transcript, TranscriptReader

if TYPE_CHECKING:
    from pidgin_events import RunKind
    from pidgin_state import ConversationState, ExperimentState

__all__ = [
    "AGENTS",
    "ConversationView",
    "InitialPrompt",
    "TranscriptDoc",
    "TurnStart",
    "agent_label",
    "build_document",
    "pick_conversation",
]

AGENTS = ("agent_a", "agent_b")
_LETTER = {"agent_a": "A", "agent_b": "B"}


@dataclass(frozen=True, slots=True)
class TurnStart:
    """Where a turn's first message begins (``turn`` is 1-based)."""

    turn: int


@dataclass(frozen=True, slots=True)
class InitialPrompt:
    """Where a document shows the conversation's initial prompt, and its text."""

    text: str


@dataclass(frozen=True, slots=True)
class ConversationView:
    """One conversation: its state (status, tokens, cost) and its transcript (words)."""

    state: ConversationState
    transcript: Transcript

    def timeline(self) -> list[PromptInfo | ChatMessage]:
        """Prompts and messages in log order; messages of discarded turns left out."""
        shown: list[PromptInfo | ChatMessage] = [
            *self.transcript.prompts,
            *(m for m in self.transcript.messages if not m.discarded),
        ]
        shown.sort(key=lambda item: item.line)
        return shown

    def layout(self) -> Iterator[PromptInfo | ChatMessage | TurnStart | InitialPrompt]:
        """The timeline as a document lays it out: a ``TurnStart`` before each turn's first
        message, and the ``InitialPrompt`` (when there is one) once, after the system
        prompts and before the first turn."""
        initial = self.transcript.initial_prompt
        turn = 0
        for item in self.timeline():
            if isinstance(item, ChatMessage) and item.turn != turn:
                if initial:
                    yield InitialPrompt(initial)
                    initial = None
                turn = item.turn
                yield TurnStart(turn)
            yield item
        if initial:
            yield InitialPrompt(initial)

    def convergence_of(self, turn: int) -> float | None:
        info = self.transcript.turns.get(turn)
        return None if info is None else info.convergence

    def facts(self) -> list[str]:
        """The lines above a conversation's words, as plain text (renderers escape them):
        each agent with its tokens and cost, the outcome, the totals, the error."""
        state, t = self.state, self.transcript
        lines = []
        for agent in AGENTS:
            tokens = state.tokens.get(agent)
            spent = ""
            if tokens is not None:
                spent = f": {format_tokens(tokens.total)} tokens, {format_cost(tokens.cost_usd)}"
            lines.append(f"{agent_label(t, agent)}{spent}")
        total = sum((c.total for c in state.tokens.values()), 0)
        cost = sum((c.cost_usd for c in state.tokens.values()), 0.0)
        turns = f"{state.turns_completed}" + (f" of {state.max_turns}" if state.max_turns else "")
        ended = f" ({state.end_reason})" if state.end_reason else ""
        lines.append(f"Status: {state.status}{ended}; turns: {turns}")
        lines.append(f"Tokens: {format_tokens(total)}; cost: {format_cost(cost)}")
        if state.error:
            lines.append(f"Error: {state.error}")
        lines += [f"Unreadable: {p.describe(t.log_path)}" for p in t.problems]
        return lines


@dataclass(frozen=True, slots=True)
class TranscriptDoc:
    """The run and the conversations a transcript shows, in start order."""

    run: ExperimentState
    conversations: tuple[ConversationView, ...]


def agent_label(transcript: Transcript, agent_id: str | None) -> str:
    """``Agent A · Name (model)``; the parts that are known. ``None`` means both agents."""
    if agent_id is None:
        return "both agents"
    letter = _LETTER.get(agent_id)
    head = f"Agent {letter}" if letter else agent_id
    name = transcript.chosen_names.get(agent_id) or transcript.agent_names.get(agent_id)
    model = transcript.agent_models.get(agent_id)
    if name and model and name != model:
        return f"{head} · {name} ({model})"
    if name or model:
        return f"{head} · {name or model}"
    return head


def pick_conversation(state: ExperimentState, text: str) -> str:
    """The id of the conversation ``text`` names: its id, or a unique prefix of it."""
    if text in state.conversations:
        return text
    found = sorted(cid for cid in state.conversations if cid.startswith(text))
    if len(found) == 1:
        return found[0]
    known = ", ".join(sorted(state.conversations)[:10]) or "none yet"
    if found:
        raise fail(f"--conversation {text!r} matches several conversations: {', '.join(found)}")
    raise fail(f"no conversation {text!r} in {state.id} (its conversations: {known})")


def build_document(directory: Path, kind: RunKind, conversation: str | None) -> TranscriptDoc:
    """Read the run's logs: every conversation, or the one ``conversation`` names."""
    from pidgin_state import NotAnExperimentError, StateBuilder

    builder = StateBuilder()
    try:
        run = builder.chat(directory) if kind == "chat" else builder.experiment(directory)
    except NotAnExperimentError as exc:
        raise fail(str(exc)) from None
    if conversation is not None:
        ids = [pick_conversation(run, conversation)]
    else:
        ids = sorted(run.conversations, key=lambda c: _start_key(run.conversations[c]))
    views = []
    for cid in ids:
        state = run.conversations[cid]
        reader = TranscriptReader(cid, _log_path(directory, state))
        views.append(ConversationView(state, reader.refresh()))
    return TranscriptDoc(run, tuple(views))


def _log_path(directory: Path, state: ConversationState) -> Path:
    path = state.log_path
    return path if path.is_absolute() else directory / path.name


def _start_key(state: ConversationState) -> tuple[float, str]:
    started = state.started_at
    return (started.timestamp() if started else float("inf"), state.id)
