"""Drives one conversation between two models and records every step through pidgin-events.

Per turn: ``TurnStartEvent``; for agent A then agent B a ``MessageRequestEvent`` (with the
number of messages sent, never the history) and a ``MessageCompleteEvent`` (with the turn
number); then ``TurnCompleteEvent`` with the convergence score of the two replies.

How a conversation ends (``ConversationEndEvent``):

========================  ===============  ====================================================
what happened              status           reason
========================  ===============  ====================================================
all turns ran              completed        ``max_turns``
score >= threshold, stop   completed        ``high_convergence`` (pidgin-ai counts it completed)
stop flag set              interrupted      the flag's reason (e.g. ``SIGTERM``)
empty reply                interrupted      ``empty_response`` (after an ``EmptyResponseEvent``)
provider error             failed           ``api_error`` (after ``APIErrorEvent`` per attempt)
context window full        completed        ``context_limit`` (policy end, ``ContextLimitEvent``)
experiment budget spent    interrupted      ``budget`` (``--max-cost``; the stop flag's reason)
any other exception        failed           ``exception`` (after an ``ErrorEvent``)
========================  ===============  ====================================================

``--convergence-action``: ``stop`` ends the conversation as above; ``warn`` and
``continue`` both let it run on. ``warn`` writes a ``ConvergenceWarningEvent`` (turn,
score, threshold) each time the score crosses the threshold upward, which every screen
and the runner log show, and passes ``warn=True`` to ``on_turn`` for that turn;
``continue`` records nothing more than the score (the threshold and action are in the
conversation's config). pidgin-ai's ``InterruptRequestEvent`` is not written for a
warning: nobody asked to interrupt anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pidgin_events import (
    ConvergenceWarningEvent,
    Conversation,
    EmptyResponseEvent,
    ErrorEvent,
)
from pidgin_state import COLD_START, Replay, Said, agent_view

from ._convergence import convergence_score
from ._models import MODELS, ChatMessage, Model, ModelRegistry, Reply
from ._requests import ContextPolicy, ConversationEnd, Requester, RequestSettings

__all__ = [
    "AGENTS",
    "BASIC_SYSTEM_PROMPT",
    "COLD_START",
    "ConversationPlan",
    "ConversationResult",
    "StopRequest",
    "run_conversation",
]

AGENTS = ("agent_a", "agent_b")
BASIC_SYSTEM_PROMPT = "You are an AI having a conversation with another AI."
"""pidgin-ai's default ("basic" awareness) system prompt, given to both agents."""

ConvergenceAction = Literal["stop", "warn", "continue"]
CONVERGENCE_ACTIONS: tuple[ConvergenceAction, ...] = ("stop", "warn", "continue")


class StopRequest(threading.Event):
    """A ``threading.Event`` that also says why it was set (e.g. ``"SIGTERM"``)."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = "interrupted"

    def request(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
        self.set()


@dataclass(frozen=True, slots=True)
class ConversationPlan:
    """Everything that decides how one conversation runs; recorded in its config."""

    agent_a: str
    agent_b: str
    max_turns: int
    initial_prompt: str | None = None
    temperature_a: float | None = None
    temperature_b: float | None = None
    convergence_threshold: float | None = None
    convergence_action: ConvergenceAction = "stop"
    seed: int | None = None
    system_prompt: str | None = BASIC_SYSTEM_PROMPT
    context_policy: ContextPolicy = "truncate"
    """When a view outgrows the model's context window: drop the oldest turns, or end."""
    retries: int = 5
    """How often a retryable ``ModelError`` is retried before the conversation fails."""
    retry_delay: float = 1.0
    """Seconds before the first retry; doubled for each further one, with jitter."""

    def temperature(self, agent_id: str) -> float | None:
        return self.temperature_a if agent_id == "agent_a" else self.temperature_b

    def model(self, agent_id: str) -> str:
        return self.agent_a if agent_id == "agent_a" else self.agent_b

    def config(self) -> dict[str, Any]:
        hidden = ("retries", "retry_delay")
        return {key: value for key, value in asdict(self).items() if key not in hidden}

    def start_arguments(self, registry: ModelRegistry = MODELS) -> dict[str, Any]:
        """Keyword arguments for ``Experiment.conversation`` / ``Chat.create``."""
        same = self.agent_a == self.agent_b
        agents = {}
        for agent_id, suffix in zip(AGENTS, ("A", "B"), strict=True):
            info = registry.resolve(self.model(agent_id))
            agents[agent_id] = {
                "id": agent_id,
                "model": info.name,
                "display_name": f"{info.display_name}-{suffix}" if same else info.display_name,
                "model_display_name": info.display_name,
                "temperature": self.temperature(agent_id),
            }
        return {
            "agent_a": agents["agent_a"],
            "agent_b": agents["agent_b"],
            "max_turns": self.max_turns,
            "initial_prompt": self.initial_prompt,
            "config": self.config(),
        }


@dataclass(slots=True)
class ConversationResult:
    """How a conversation ended, for the runner's summary and the foreground display."""

    conversation_id: str
    status: str
    reason: str | None
    turns: int
    scores: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def final_convergence(self) -> float | None:
        return self.scores[-1] if self.scores else None


OnMessage = Callable[[str, str, int], None]
"""``on_message(agent_id, content, turn_number)``, called after the event is written."""
OnTurn = Callable[[int, float, bool], None]
"""``on_turn(turn_number, score, warn)``; ``warn``: a ``ConvergenceWarningEvent`` was written."""


_End = ConversationEnd
"""Leaves the turn loop with a status; never escapes ``run_conversation``."""


def run_conversation(
    conversation: Conversation,
    plan: ConversationPlan,
    *,
    models: Mapping[str, Model] | None = None,
    registry: ModelRegistry = MODELS,
    stop: threading.Event | None = None,
    on_message: OnMessage | None = None,
    on_turn: OnTurn | None = None,
    settings: RequestSettings | None = None,
    resume: Replay | None = None,
) -> ConversationResult:
    """Run ``plan`` in the started ``conversation`` and end it; returns how it ended.

    ``resume``: the replay of the conversation's log so far (its completed turns; a
    half-done turn already discarded): the conversation goes on from there, its models
    sent exactly what they would have been had it never stopped.

    ``models`` maps ``agent_a``/``agent_b`` to model objects (default: made from the
    registry). ``stop`` is checked before every turn and every request. ``settings`` are
    the run's pacers, budget and retry policy (default: a run of one conversation,
    retrying as the plan says). An exception
    from writing events (a full disk) ends the conversation as failed if that can still
    be written, and is raised again.
    """
    if models is None:
        models = {agent: registry.create(plan.model(agent)) for agent in AGENTS}
    providers = {agent: registry.resolve(plan.model(agent)).provider for agent in AGENTS}
    stop = stop if stop is not None else threading.Event()
    if settings is None:
        settings = RequestSettings(
            retries=plan.retries,
            backoff_base=plan.retry_delay,
            context_policy=plan.context_policy,
        )
    requester = Requester(
        conversation,
        settings,
        stop,
        context_windows={agent: _context_window(plan.model(agent)) for agent in AGENTS},
        providers=dict(providers),
        models={agent: registry.resolve(plan.model(agent)).name for agent in AGENTS},
    )
    driver = _Driver(conversation, plan, models, providers, stop, requester=requester)
    if resume is not None:
        driver.resume_from(resume)
    reason: str = "max_turns"
    error: str | None = None
    with conversation:  # an unexpected exception ends it as failed, Ctrl-C as interrupted
        try:
            driver.converse(on_message, on_turn)
        except _End as end:
            reason, error = end.reason, end.error
            conversation.end(end.status, reason=reason, error=error)
        else:
            conversation.end("completed", reason=reason)
    return ConversationResult(
        conversation_id=conversation.id,
        status=conversation.status or "failed",
        reason=reason,
        turns=conversation.turns_completed,
        scores=driver.scores,
        error=error,
    )


class _Driver:
    """The state of one running conversation: its plan, models, history and scores."""

    def __init__(
        self,
        conversation: Conversation,
        plan: ConversationPlan,
        models: Mapping[str, Model],
        providers: Mapping[str, str],
        stop: threading.Event,
        *,
        requester: Requester,
    ) -> None:
        self.requester = requester
        self.conversation = conversation
        self.plan = plan
        self.models = models
        self.providers = providers
        self.stop = stop
        self.scores: list[float] = []
        self.above_threshold = False
        """Whether the latest score was at or above the threshold (warn once per crossing)."""
        self.history: list[Said] = []
        """What has been said, as ``pidgin_state.replay`` rebuilds it from the log."""
        self.resumed = False
        self.unsent_prompts: list[str] = list(AGENTS)
        self.system_prompts: dict[str, str | None] = dict.fromkeys(AGENTS, plan.system_prompt)

    def resume_from(self, replay: Replay) -> None:
        """Go on where ``replay`` (this conversation's log so far) stands."""
        self.history = list(replay.history)
        # A prompt the log lacks was never written (the run died before it): it is now.
        self.unsent_prompts = [agent for agent in AGENTS if agent not in replay.system_prompts]
        self.system_prompts = {
            agent: replay.system_prompts.get(agent, self.plan.system_prompt) for agent in AGENTS
        }
        self.scores = [score for score in replay.scores if score is not None]
        threshold = self.plan.convergence_threshold
        self.above_threshold = bool(
            threshold is not None and self.scores and self.scores[-1] >= threshold
        )
        self.resumed = True

    def converse(self, on_message: OnMessage | None, on_turn: OnTurn | None) -> None:
        conversation, plan = self.conversation, self.plan
        if plan.system_prompt:
            for agent in self.unsent_prompts:
                conversation.system_prompt(agent, plan.system_prompt)
        if not self.resumed:
            self.history.append(Said("human", plan.initial_prompt or COLD_START))
        for _ in range(conversation.turns_completed, plan.max_turns):
            self.check_stop()
            turn = conversation.turn_start()
            replies: dict[str, str] = {}
            for agent in AGENTS:
                self.check_stop()
                replies[agent] = self.ask(agent, turn)
                if on_message is not None:
                    on_message(agent, replies[agent], turn)
            score = convergence_score(replies["agent_a"], replies["agent_b"])
            self.scores.append(score)
            conversation.turn_complete(score)
            threshold = plan.convergence_threshold
            crossed = threshold is not None and score >= threshold
            warn = crossed and plan.convergence_action == "warn" and not self.above_threshold
            self.above_threshold = crossed
            if warn:
                assert threshold is not None
                conversation.emit(
                    ConvergenceWarningEvent(
                        conversation_id=conversation.id,
                        turn_number=turn,
                        convergence_score=score,
                        threshold=threshold,
                    )
                )
            if on_turn is not None:
                on_turn(turn, score, warn)
            if crossed and plan.convergence_action == "stop":
                raise _End("completed", "high_convergence")

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise _End("interrupted", getattr(self.stop, "reason", "interrupted"))

    def view(self, agent: str) -> list[ChatMessage]:
        """The conversation as ``agent`` sees it, by the rule replay uses (``agent_view``)."""
        lines = agent_view(self.system_prompts[agent], self.history, agent)
        return [ChatMessage(line.role, line.content) for line in lines]  # type: ignore[arg-type]

    def ask(self, agent: str, turn: int) -> str:
        """Request, receive and record one message of ``agent``; returns its content."""
        conversation = self.conversation
        messages = self.view(agent)
        temperature = self.plan.temperature(agent)
        conversation.request(agent, message_count=len(messages), temperature=temperature)
        started = time.monotonic()
        reply = self.generate(agent, turn, messages)
        if not reply.content.strip():
            conversation.emit(
                EmptyResponseEvent(
                    conversation_id=conversation.id,
                    agent_id=agent,
                    turn_number=turn,
                    provider=self.providers[agent],
                )
            )
            raise _End("interrupted", "empty_response")
        cost = _cost(self.plan.model(agent), reply)
        conversation.message(
            agent,
            reply.content,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            duration_ms=int((time.monotonic() - started) * 1000),
            cache_read_tokens=reply.cache_read_tokens,
            cache_write_tokens=reply.cache_write_tokens,
            request_id=reply.request_id,
            model_version=reply.model_version,
            stop_reason=reply.stop_reason,
            cost_usd=cost,
        )
        self.history.append(Said(agent, reply.content, turn))
        self.requester.spend(cost)
        return reply.content

    def generate(self, agent: str, turn: int, messages: list[ChatMessage]) -> Reply:
        """The model's reply; provider errors are retried, paced and recorded by the requester."""
        conversation, provider = self.conversation, self.providers[agent]
        try:
            reply, _sent = self.requester.ask(
                self.models[agent],
                agent,
                turn,
                messages,
                temperature=self.plan.temperature(agent),
                seed=self.plan.seed,
                check_stop=self.check_stop,
            )
        except _End:
            raise
        except Exception as exc:
            conversation.emit(
                ErrorEvent(
                    conversation_id=conversation.id,
                    error_type=type(exc).__name__,
                    error_message=str(exc),
                    context=f"{agent} ({provider}), turn {turn}",
                )
            )
            error = f"{type(exc).__name__}: {exc}"
            raise _End("failed", "exception", error) from exc
        return reply


def _context_window(name: str) -> tuple[int | None, int]:
    """(context window, tokens kept for the reply) of a catalogued model, else (None, 0)."""
    from ._providers import entry_for

    entry = entry_for(name)
    if entry is None or entry.context_window is None:
        return None, 0
    return entry.context_window, entry.max_output_tokens


def _cost(name: str, reply: Reply) -> float | None:
    """What ``reply`` cost by the catalogue's prices; None for models without prices."""
    from ._providers import entry_for

    entry = entry_for(name)
    if entry is None:
        return None
    return entry.cost(
        reply.prompt_tokens,
        reply.completion_tokens,
        reply.cache_read_tokens,
        reply.cache_write_tokens,
    )
