"""A conversation's history, rebuilt from its events: what each model was sent, turn by turn.

``replay(path)`` folds a conversation log into a ``Replay``; ``Replay.view(agent, turn)``
is the list of messages ``agent``'s model was sent in ``turn`` (0-based), the system
prompt first. The runner builds every request with ``agent_view``, the rule the replay
uses, so a conversation resumed or branched from its log is sent what it would have been.

Each event type's contribution is one function registered in ``CONTRIBUTIONS`` under its
``event_type`` name; an event type nobody registered contributes nothing. Registering by
name lets types this version of pidgin-events does not define yet (they arrive as
``UnknownEvent``) be replayed all the same, as ``PromptInjectionEvent`` is here.

What counts: system prompts (``SystemPromptEvent``, the last one per agent), the opening
prompt (``ConversationStartEvent.initial_prompt``, else ``[Begin]`` as pidgin-ai sends),
the messages (``MessageCompleteEvent``), prompts injected mid-conversation
(``PromptInjectionEvent``: seen only by the agent it names), reasoning
(``ThinkingCompleteEvent``, attached to the agent's message of that turn, for providers
that want it back), context truncation (``ContextTruncationEvent``: the oldest messages
dropped from that one request) and discarded turns (``TurnDiscardedEvent``: the messages
of a half-done turn are taken out again). Reads pidgin-ai 1.x logs as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pidgin_events import BadLine, Event, LogReader

__all__ = [
    "AGENT_IDS",
    "COLD_START",
    "CONTRIBUTIONS",
    "ChatLine",
    "Replay",
    "ReplayError",
    "Said",
    "agent_view",
    "contributes",
    "replay",
    "replay_events",
]

AGENT_IDS = ("agent_a", "agent_b")
COLD_START = "[Begin]"
"""What the first agent is sent when there is no initial prompt (pidgin-ai does the same)."""


class ReplayError(ValueError):
    """The log cannot be replayed (not a conversation log, or unreadable lines)."""


@dataclass(frozen=True, slots=True)
class Said:
    """One entry of a conversation's history, as the models may be sent it."""

    speaker: str
    """``human`` (the opening prompt), ``agent_a``, ``agent_b``, or ``injection``."""
    content: str
    turn: int | None = None
    """0-based turn of an agent's message or an injection; None for the opening prompt."""
    audience: str | None = None
    """Only this agent is sent it (an injection); None: both are."""
    role: str | None = None
    """An injection's role (``user`` or ``system``); None: by who speaks."""
    thinking: str | None = None
    """The speaker's reasoning before this message, where it was recorded."""


@dataclass(frozen=True, slots=True)
class ChatLine:
    """One message of a request: ``role`` is ``system``, ``user`` or ``assistant``."""

    role: str
    content: str
    thinking: str | None = None


def agent_view(
    system_prompt: str | None, history: Iterable[Said], agent: str, dropped: int = 0
) -> list[ChatLine]:
    """What ``agent`` is sent: its system prompt, then the history as it sees it.

    Its own messages are ``assistant`` (with their reasoning), everything else ``user``;
    injections for the other agent are left out. ``dropped``: the oldest non-system
    messages left out to fit the context window, as a ``ContextTruncationEvent`` says;
    the runner's truncation (``fit_context``) then sends every system message first.
    """
    lines = [ChatLine("system", system_prompt)] if system_prompt else []
    for said in history:
        if said.audience is not None and said.audience != agent:
            continue
        if said.role is not None:
            lines.append(ChatLine(said.role, said.content))
        elif said.speaker == agent:
            lines.append(ChatLine("assistant", said.content, said.thinking))
        else:
            lines.append(ChatLine("user", said.content))
    if not dropped:
        return lines
    system = [line for line in lines if line.role == "system"]
    return system + [line for line in lines if line.role != "system"][dropped:]


@dataclass(slots=True)
class Replay:
    """A conversation folded from its events; see the module docstring."""

    conversation_id: str | None = None
    experiment_id: str | None = None
    start: dict[str, Any] = field(default_factory=dict)
    """The ``ConversationStartEvent``'s fields (models, ``config``, ``initial_prompt``)."""
    system_prompts: dict[str, str] = field(default_factory=dict)
    history: list[Said] = field(default_factory=list)
    turns_completed: int = 0
    """Turns with a ``TurnCompleteEvent`` (a discarded turn is not one)."""
    open_turn: int | None = None
    """A turn started and neither completed nor discarded: the run stopped inside it."""
    truncations: dict[tuple[str, int], int] = field(default_factory=dict)
    """(agent, turn) -> oldest messages dropped from that request."""
    thinking: dict[tuple[str, int], str] = field(default_factory=dict)
    end_status: str | None = None
    """The last ``ConversationEndEvent``'s status, unless the conversation was resumed since."""
    end_reason: str | None = None
    branched_from: tuple[str, int] | None = None
    """(parent conversation, branch turn) from a ``ConversationBranchedEvent``."""
    scores: list[float | None] = field(default_factory=list)
    """The convergence score of each completed turn, in order."""

    @property
    def finished(self) -> bool:
        return self.end_status is not None

    def history_before(self, turn: int) -> list[Said]:
        """The opening prompt and everything of the turns before ``turn``."""
        return [said for said in self.history if said.turn is None or said.turn < turn]

    def messages_of(self, turn: int) -> list[Said]:
        """The agents' messages in ``turn``, in the order they were said."""
        return [s for s in self.history if s.turn == turn and s.speaker in AGENT_IDS]

    def view(self, agent: str, turn: int | None = None) -> list[ChatLine]:
        """What ``agent``'s model was sent in ``turn`` (default: its next request).

        Within a turn agent A speaks first, so agent B's view holds A's reply of the turn.
        """
        if turn is None:
            turn = self.open_turn if self.open_turn is not None else self.turns_completed
        history: list[Said] = []
        for said in self.history:
            if said.turn is not None and said.turn > turn:
                break
            # Within a turn, agent A speaks first: B's view holds A's reply, A's does not.
            if (
                said.turn == turn
                and said.speaker in AGENT_IDS
                and agent in (said.speaker, AGENT_IDS[0])
            ):
                break
            history.append(said)
        dropped = self.truncations.get((agent, turn), 0)
        return agent_view(self.system_prompts.get(agent), history, agent, dropped)


Contribution = Callable[[Replay, Event], None]
CONTRIBUTIONS: dict[str, Contribution] = {}
"""``event_type`` -> how an event of that type changes the replay; add to extend it."""


def contributes(*event_types: str) -> Callable[[Contribution], Contribution]:
    """Register a function as the contribution of ``event_types`` to a replay."""

    def register(function: Contribution) -> Contribution:
        for event_type in event_types:
            CONTRIBUTIONS[event_type] = function
        return function

    return register


def _get(event: Event, name: str) -> Any:
    """A field of a known event type, or of an ``UnknownEvent`` (kept in ``extra``)."""
    if hasattr(event, name):
        return getattr(event, name)
    return event.extra.get(name)


@contributes("ConversationStartEvent")
def _start(state: Replay, event: Event) -> None:
    state.conversation_id = state.conversation_id or _get(event, "conversation_id")
    state.experiment_id = state.experiment_id or event.experiment_id
    if state.start:
        return  # a start event written again (a foreign writer) changes nothing
    fields = ("agent_a", "agent_b", "config", "max_turns", "initial_prompt")
    state.start = {name: _get(event, name) for name in fields}
    for name in ("agent_a_model", "agent_b_model", "temperature_a", "temperature_b"):
        state.start[name] = _get(event, name)
    prompt = state.start["initial_prompt"]
    state.history.insert(0, Said("human", prompt or COLD_START))


@contributes("SystemPromptEvent")
def _system_prompt(state: Replay, event: Event) -> None:
    state.system_prompts[_get(event, "agent_id")] = _get(event, "prompt")


@contributes("TurnStartEvent")
def _turn_start(state: Replay, event: Event) -> None:
    state.open_turn = _get(event, "turn_number")


@contributes("MessageCompleteEvent")
def _message(state: Replay, event: Event) -> None:
    agent = _get(event, "agent_id")
    turn = _get(event, "turn_number")
    if turn is None:  # pidgin-ai: the turn last started
        turn = state.open_turn if state.open_turn is not None else state.turns_completed
    content = _get(event, "message").content
    state.history.append(Said(agent, content, turn, thinking=state.thinking.get((agent, turn))))


@contributes("ThinkingCompleteEvent")
def _thinking(state: Replay, event: Event) -> None:
    # Recorded before the message it led to; attached to it when the message comes.
    agent, turn = _get(event, "agent_id"), _get(event, "turn_number")
    state.thinking[(agent, turn)] = _get(event, "thinking_content")


@contributes("PromptInjectionEvent")
def _injection(state: Replay, event: Event) -> None:
    agent = _get(event, "agent_id")
    state.history.append(
        Said(
            "injection",
            _get(event, "content"),
            _get(event, "turn_number"),
            audience=agent if agent in AGENT_IDS else None,
            role=_get(event, "role") or "user",
        )
    )


@contributes("ContextTruncationEvent")
def _truncation(state: Replay, event: Event) -> None:
    # A retried request may be truncated again: the last truncation is what was sent.
    key = (_get(event, "agent_id"), _get(event, "turn_number"))
    state.truncations[key] = _get(event, "messages_dropped")


@contributes("TurnCompleteEvent")
def _turn_complete(state: Replay, event: Event) -> None:
    state.turns_completed = max(state.turns_completed, _get(event, "turn_number") + 1)
    state.open_turn = None
    state.scores.append(_get(event, "convergence_score"))


@contributes("TurnDiscardedEvent")
def _turn_discarded(state: Replay, event: Event) -> None:
    turn = _get(event, "turn_number")
    state.history = [said for said in state.history if said.turn != turn]
    for key in [key for key in state.truncations if key[1] == turn]:
        del state.truncations[key]
    state.open_turn = None


@contributes("ConversationEndEvent")
def _end(state: Replay, event: Event) -> None:
    state.end_status, state.end_reason = _get(event, "status"), _get(event, "reason")


@contributes("ConversationResumedEvent")
def _resumed(state: Replay, event: Event) -> None:
    state.end_status = state.end_reason = None


@contributes("ConversationBranchedEvent")
def _branched(state: Replay, event: Event) -> None:
    state.branched_from = (_get(event, "source_conversation_id"), _get(event, "branch_point"))


def replay_events(events: Iterable[Event], *, until_turn: int | None = None) -> Replay:
    """Fold ``events`` (one conversation's, in log order) into a ``Replay``.

    ``until_turn``: stop at the start of that turn, as if the log ended there.
    """
    state = Replay()
    for event in events:
        starts = event.event_type == "TurnStartEvent"
        if until_turn is not None and starts and _get(event, "turn_number") >= until_turn:
            break
        contribution = CONTRIBUTIONS.get(event.event_type)
        if contribution is not None:
            contribution(state, event)
    return state


def replay(path: str | os.PathLike[str], *, until_turn: int | None = None) -> Replay:
    """The replay of the conversation log at ``path``; see ``replay_events``.

    A line that cannot be read is allowed only where a killed run leaves one: last in
    the log, or sealed by the writer just before a resume discarded the turn it was in
    (or resumed). Anywhere else an event may be missing from the history, and
    ``ReplayError`` says where.
    """
    events: list[Event] = []
    suspect: BadLine | None = None
    for item in LogReader(path).events():
        if isinstance(item, BadLine):
            suspect = suspect or item
            continue
        if suspect is not None and item.event_type not in _AFTER_A_CRASH:
            raise ReplayError(f"{suspect}; the history would miss an event")
        suspect = None
        events.append(item)
    state = replay_events(events, until_turn=until_turn)
    if not state.start:
        raise ReplayError(f"{os.fspath(path)}: no ConversationStartEvent: not a conversation log")
    return state


_AFTER_A_CRASH = frozenset({"TurnDiscardedEvent", "ConversationResumedEvent"})
