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
    APIErrorEvent,
    ConvergenceWarningEvent,
    Conversation,
    EmptyResponseEvent,
    ErrorEvent,
)

from ._convergence import convergence_score
from ._models import MODELS, ChatMessage, Model, ModelError, ModelRegistry, Reply

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
COLD_START = "[Begin]"
"""What the first agent is sent when there is no initial prompt (pidgin-ai does the same)."""

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
    retries: int = 2
    """How often a retryable ``ModelError`` is retried before the conversation fails."""
    retry_delay: float = 1.0
    """Seconds before the first retry; doubled for each further one (at most 30)."""

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


class _End(Exception):
    """Leaves the turn loop with a status; never escapes ``run_conversation``."""

    def __init__(self, status: str, reason: str, error: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error = error


def run_conversation(
    conversation: Conversation,
    plan: ConversationPlan,
    *,
    models: Mapping[str, Model] | None = None,
    registry: ModelRegistry = MODELS,
    stop: threading.Event | None = None,
    on_message: OnMessage | None = None,
    on_turn: OnTurn | None = None,
) -> ConversationResult:
    """Run ``plan`` in the started ``conversation`` and end it; returns how it ended.

    ``models`` maps ``agent_a``/``agent_b`` to model objects (default: made from the
    registry). ``stop`` is checked before every turn and every request. An exception
    from writing events (a full disk) ends the conversation as failed if that can still
    be written, and is raised again.
    """
    if models is None:
        models = {agent: registry.create(plan.model(agent)) for agent in AGENTS}
    providers = {agent: registry.resolve(plan.model(agent)).provider for agent in AGENTS}
    stop = stop if stop is not None else threading.Event()
    driver = _Driver(conversation, plan, models, providers, stop)
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
    ) -> None:
        self.conversation = conversation
        self.plan = plan
        self.models = models
        self.providers = providers
        self.stop = stop
        self.scores: list[float] = []
        self.above_threshold = False
        """Whether the latest score was at or above the threshold (warn once per crossing)."""
        # (speaker, content); speakers are "system", "human", "agent_a", "agent_b".
        self.history: list[tuple[str, str]] = []

    def converse(self, on_message: OnMessage | None, on_turn: OnTurn | None) -> None:
        conversation, plan = self.conversation, self.plan
        if plan.system_prompt:
            for agent in AGENTS:
                conversation.system_prompt(agent, plan.system_prompt)
        self.history.append(("human", plan.initial_prompt or COLD_START))
        for _ in range(plan.max_turns):
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
        """The conversation as ``agent`` sees it: its own messages as assistant, all else user."""
        prompt = self.plan.system_prompt
        messages = [ChatMessage("system", prompt)] if prompt else []
        for speaker, content in self.history:
            messages.append(ChatMessage("assistant" if speaker == agent else "user", content))
        return messages

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
        conversation.message(
            agent,
            reply.content,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        self.history.append((agent, reply.content))
        return reply.content

    def generate(self, agent: str, turn: int, messages: list[ChatMessage]) -> Reply:
        """The model's reply; retryable provider errors are retried with backoff."""
        conversation, plan, provider = self.conversation, self.plan, self.providers[agent]
        attempt = 0
        while True:
            try:
                return self.models[agent].generate(
                    messages, agent_id=agent, temperature=plan.temperature(agent), seed=plan.seed
                )
            except ModelError as exc:
                retry = exc.retryable and attempt < plan.retries
                conversation.emit(
                    APIErrorEvent(
                        conversation_id=conversation.id,
                        error_type=type(exc).__name__,
                        error_message=str(exc),
                        context=f"turn {turn}",
                        agent_id=agent,
                        provider=exc.provider or provider,
                        error_code=exc.code,
                        retryable=exc.retryable,
                        retry_count=attempt,
                    )
                )
                if not retry:
                    raise _End("failed", "api_error", str(exc)) from exc
                attempt += 1
                self.stop.wait(min(30.0, plan.retry_delay * 2.0 ** (attempt - 1)))
                self.check_stop()
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
