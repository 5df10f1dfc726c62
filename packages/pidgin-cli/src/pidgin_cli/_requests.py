"""One message asked of a model: fit the context, pace, stream, retry, price, record.

Retries: a retryable ``ModelError`` (429, 529, 5xx, timeout, dropped connection) is tried
again after ``base * 2**attempt`` seconds with "equal jitter" (half fixed, half random, at
most ``cap``), and never sooner than the provider's ``Retry-After``. Every failed attempt
is an ``APIErrorEvent`` carrying the status, whether it is retried and the wait.

Context window: before sending, the view is measured (``ceil(chars / 4)`` per message
plus the reply's ``max_output_tokens``) against the model's window from the catalogue;
a provider's own context error counts too. Policy ``truncate`` (the default, as in
pidgin-ai) drops the oldest messages, never the system prompt nor the last message, and
records a ``ContextTruncationEvent``; policy ``end`` records a ``ContextLimitEvent`` and
ends the conversation with reason ``context_limit``.

Streaming: text reaches the log as ``MessageChunkEvent`` lines, coalesced to at most one
per ``chunk_interval`` seconds (0.5 by default, 0 for none) so that live views, which are
rebuilt from the log, can show a reply growing while a long message costs a few lines,
not one per token. ``chunk`` holds the text since the previous chunk event; a retried
attempt starts again at ``chunk_index`` 0. The complete text is always in the
``MessageCompleteEvent``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pidgin_events import (
    APIErrorEvent,
    ContextLimitEvent,
    ContextTruncationEvent,
    Conversation,
    MessageChunkEvent,
    RateLimitPaceEvent,
)

from ._models import ChatMessage, Model, ModelError, Reply, estimate_tokens, streams
from ._pacing import Budget, Pacers

__all__ = [
    "CONTEXT_POLICIES",
    "ContextPolicy",
    "ConversationEnd",
    "RequestSettings",
    "Requester",
    "backoff_delay",
    "fit_context",
]

ContextPolicy = Literal["truncate", "end"]
CONTEXT_POLICIES: tuple[ContextPolicy, ...] = ("truncate", "end")
MAX_CONTEXT_RETRIES = 3
"""How often a provider's context error shrinks the view further before giving up."""


class ConversationEnd(Exception):
    """Ends the conversation with ``status`` and ``reason``; caught by the conductor."""

    def __init__(self, status: str, reason: str, error: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error = error


@dataclass(slots=True)
class RequestSettings:
    """How every conversation of a run asks its models; shared by all of them."""

    retries: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    chunk_interval: float = 0.5
    context_policy: ContextPolicy = "truncate"
    pacers: Pacers = field(default_factory=Pacers)
    budget: Budget | None = None
    rng: random.Random = field(default_factory=random.Random)


def backoff_delay(
    attempt: int, base: float, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds before retry number ``attempt + 1``: jittered exponential, >= Retry-After."""
    ceiling = min(cap, base * 2.0**attempt)
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def _view_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(estimate_tokens(message.content) + 4 for message in messages)


def fit_context(
    messages: Sequence[ChatMessage], budget_tokens: int
) -> tuple[list[ChatMessage], int] | None:
    """``messages`` without their oldest ones so that they fit ``budget_tokens``.

    Returns ``(kept, dropped)``; the system prompt (the system messages that open the view)
    and the last message are always kept, and the kept conversation starts with a user
    message. A system message injected mid-conversation stays in its place and goes with
    its turn. None when even that does not fit.
    """
    head = 0
    while head < len(messages) and messages[head].role == "system":
        head += 1
    system = list(messages[:head])
    rest = list(messages[head:])
    dropped = 0
    while rest and (
        _view_tokens(system) + _view_tokens(rest) > budget_tokens or rest[0].role != "user"
    ):
        if len(rest) == 1:
            break
        rest.pop(0)
        dropped += 1
    if not rest or _view_tokens(system) + _view_tokens(rest) > budget_tokens:
        return None
    return system + rest, dropped


OnEnd = Callable[[str], None]


class Requester:
    """Asks one conversation's models for their messages; see the module docstring."""

    def __init__(
        self,
        conversation: Conversation,
        settings: RequestSettings,
        stop: threading.Event,
        *,
        context_windows: dict[str, tuple[int | None, int]],
        providers: dict[str, str],
        models: dict[str, str],
    ) -> None:
        self.conversation = conversation
        self.settings = settings
        self.stop = stop
        self.context_windows = context_windows
        """agent -> (context window or None, tokens reserved for the reply)."""
        self.providers = providers
        self.models = models
        self.learned: dict[str, int] = {}
        """agent -> tokens its provider turned down: views are kept below that from then on."""

    # --- context ---------------------------------------------------------------------------

    def fit(self, agent: str, turn: int, messages: list[ChatMessage]) -> list[ChatMessage]:
        """The view to send: ``messages``, or fewer by the context policy."""
        window, reserve = self.context_windows.get(agent, (None, 0))
        limits = [] if window is None else [window - reserve]
        if agent in self.learned:
            limits.append(self.learned[agent])
        if not limits:
            return messages
        budget = min(limits)
        needed = _view_tokens(messages)
        if needed <= budget:
            return messages
        fitted = (
            fit_context(messages, budget) if self.settings.context_policy == "truncate" else None
        )
        if fitted is None:
            self._context_limit(
                agent,
                turn,
                f"{len(messages)} messages need about {needed} tokens; the window allows {budget}",
            )
        assert fitted is not None
        kept, dropped = fitted
        self.conversation.emit(
            ContextTruncationEvent(
                conversation_id=self.conversation.id,
                agent_id=agent,
                provider=self.providers[agent],
                model=self.models[agent],
                turn_number=turn,
                original_message_count=len(messages),
                truncated_message_count=len(kept),
                messages_dropped=dropped,
            )
        )
        return kept

    def _context_limit(self, agent: str, turn: int, detail: str) -> None:
        self.conversation.emit(
            ContextLimitEvent(
                conversation_id=self.conversation.id,
                agent_id=agent,
                turn_number=turn,
                error_message=detail,
                provider=self.providers[agent],
            )
        )
        raise ConversationEnd("completed", "context_limit", detail)

    # --- the request -----------------------------------------------------------------------

    def ask(
        self,
        model: Model,
        agent: str,
        turn: int,
        messages: list[ChatMessage],
        *,
        temperature: float | None,
        seed: int | None,
        check_stop: Callable[[], None],
        thinking_budget: int | None = None,
    ) -> tuple[Reply, list[ChatMessage]]:
        """The reply of ``agent``'s model, after retries; and the view finally sent."""
        thinking: dict[str, Any] = (
            {} if thinking_budget is None else {"thinking_budget": thinking_budget}
        )
        settings = self.settings
        provider = self.providers[agent]
        pacer = settings.pacers(provider)
        attempt = 0
        context_retries = 0
        while True:
            check_stop()
            view = self.fit(agent, turn, messages)
            estimate = _view_tokens(view)
            release = pacer.acquire(estimate, self.stop.wait, self._pace_recorder(provider))
            try:
                check_stop()
                chunks = _ChunkRecorder(self.conversation, agent, settings.chunk_interval)
                if streams(model) and settings.chunk_interval > 0:
                    reply = model.generate(
                        view,
                        agent_id=agent,
                        temperature=temperature,
                        seed=seed,
                        on_chunk=chunks,
                        **thinking,
                    )
                else:
                    reply = model.generate(
                        view, agent_id=agent, temperature=temperature, seed=seed, **thinking
                    )
            except ModelError as exc:
                if exc.kind == "context" and context_retries < MAX_CONTEXT_RETRIES:
                    self._record_error(exc, agent, turn, attempt, None)
                    if settings.context_policy == "end":
                        self._context_limit(agent, turn, str(exc))
                    context_retries += 1
                    self.learned[agent] = int(_view_tokens(view) * 0.75)
                    continue
                retry = exc.retryable and attempt < settings.retries
                wait = (
                    backoff_delay(
                        attempt,
                        settings.backoff_base,
                        settings.backoff_cap,
                        exc.retry_after,
                        settings.rng,
                    )
                    if retry
                    else None
                )
                if exc.retry_after is not None and exc.kind in ("rate_limit", "overloaded"):
                    pacer.pause(exc.retry_after)
                self._record_error(exc, agent, turn, attempt, wait)
                if wait is None:
                    if exc.kind == "context":
                        self._context_limit(agent, turn, str(exc))
                    raise ConversationEnd("failed", "api_error", str(exc)) from exc
                attempt += 1
                self.stop.wait(wait)
                continue
            finally:
                release()
            pacer.settle(estimate, reply.prompt_tokens + reply.completion_tokens)
            return reply, view

    def _record_error(
        self, exc: ModelError, agent: str, turn: int, attempt: int, wait: float | None
    ) -> None:
        self.conversation.emit(
            APIErrorEvent(
                conversation_id=self.conversation.id,
                error_type=type(exc).__name__ if exc.kind == "other" else exc.kind,
                error_message=str(exc),
                context=f"turn {turn}",
                agent_id=agent,
                provider=exc.provider or self.providers[agent],
                error_code=exc.code,
                retryable=exc.retryable,
                retry_count=attempt,
                status_code=exc.status,
                wait_seconds=None if wait is None else round(wait, 3),
            )
        )

    def _pace_recorder(self, provider: str) -> Callable[[float, str], None]:
        def record(seconds: float, reason: str) -> None:
            self.conversation.emit(
                RateLimitPaceEvent(
                    conversation_id=self.conversation.id,
                    provider=provider,
                    wait_time=round(seconds, 3),
                    reason=reason,
                )
            )

        return record

    def spend(self, cost_usd: float | None) -> None:
        """Count a message's cost; at the limit, stop the run with reason ``budget``."""
        budget = self.settings.budget
        if budget is not None and cost_usd is not None and budget.add(cost_usd):
            request = getattr(self.stop, "request", None)
            if request is not None:
                request("budget")
            else:
                self.stop.set()


class _ChunkRecorder:
    """Receives a streamed reply's text; writes it as coalesced ``MessageChunkEvent`` lines."""

    __slots__ = ("agent", "conversation", "index", "interval", "last", "pending", "started")

    def __init__(self, conversation: Conversation, agent: str, interval: float) -> None:
        self.conversation = conversation
        self.agent = agent
        self.interval = interval
        self.started = self.last = time.monotonic()
        self.pending: list[str] = []
        self.index = 0

    def __call__(self, text: str) -> None:
        self.pending.append(text)
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.conversation.emit(
            MessageChunkEvent(
                conversation_id=self.conversation.id,
                agent_id=self.agent,
                chunk="".join(self.pending),
                chunk_index=self.index,
                elapsed_ms=int((now - self.started) * 1000),
            )
        )
        self.pending.clear()
        self.index += 1
        self.last = now
