"""What a whole run shares between its conversations: per-provider pacers and the budget.

Concurrency design: one thread per running conversation, blocking in the SDKs' synchronous
clients. A conversation is a strictly sequential chain of requests, the event writer is
synchronous (one ``os.write`` per line), and a thread waiting on a socket holds no GIL and
costs no CPU, so threads keep the conductor a plain loop while 256 of them wait on the
network at once. asyncio would save the threads' stacks (virtual memory, not CPU) at the
price of an async conductor, an async writer and the SDKs' async clients throughout;
the benchmark (``tools/bench/providers.py``) measures what the threads cost per turn.
What threads cannot spread is the SDKs' CPU per request, which runs under one interpreter
lock: ``--workers`` (``_workers.py``) runs the threads in several processes, each pacing
to its share of every limit (``Pacers.parts``), so the limits hold for the whole run.

A ``Pacer`` keeps one provider under its limits for the whole experiment instead of
letting 256 conversations hammer into 429s: at most ``max_concurrency`` requests in
flight, and two token buckets refilled continuously, one for requests per minute and one
for tokens per minute (each holds ten seconds' worth, so a run starts without a burst of
a whole minute's quota). A 429 or 529 with ``Retry-After`` pauses the provider for every
conversation, not only the one that met it. Waits are made on the run's stop flag, so a
stop or a spent budget ends them at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Budget", "Pacer", "PacerLimits", "Pacers"]

BURST_SECONDS = 10.0
"""How much of a per-minute quota a bucket may spend at once."""


@dataclass(frozen=True, slots=True)
class PacerLimits:
    """One provider's limits; 0 means none."""

    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    max_concurrency: int = 0

    def share(self, parts: int) -> PacerLimits:
        """One of ``parts`` equal shares (at least 1 of each limit that is set)."""
        if parts <= 1:
            return self

        def part(limit: int) -> int:
            return 0 if limit == 0 else max(1, limit // parts)

        return PacerLimits(
            part(self.requests_per_minute),
            part(self.tokens_per_minute),
            part(self.max_concurrency),
        )


class _Bucket:
    """A token bucket that may go into debt: the next taker waits until it is repaid."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * BURST_SECONDS)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def take(self, amount: float, now: float) -> float:
        """Take ``amount``; the seconds to wait before using it (0 if available now)."""
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= min(amount, self.capacity)
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def give(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


Wait = Callable[[float], object]
"""Sleeps up to the given seconds; returns early when the run stops (``Event.wait``)."""
OnPace = Callable[[float, str], None]
"""Told ``(seconds waited, why)`` when a request had to wait."""


class Pacer:
    """Admission of one provider's requests; thread-safe."""

    def __init__(self, limits: PacerLimits) -> None:
        self.limits = limits
        self._guard = threading.Lock()
        self._requests = _Bucket(limits.requests_per_minute) if limits.requests_per_minute else None
        self._tokens = _Bucket(limits.tokens_per_minute) if limits.tokens_per_minute else None
        self._slots = (
            threading.BoundedSemaphore(limits.max_concurrency) if limits.max_concurrency else None
        )
        self._paused_until = 0.0

    def acquire(self, tokens: int, wait: Wait, on_pace: OnPace) -> Callable[[], None]:
        """Wait for a slot and the quota for a request of ``tokens``; returns ``release``."""
        waited = 0.0
        reasons: list[str] = []
        with self._guard:
            now = time.monotonic()
            delays = {"retry_after": max(0.0, self._paused_until - now)}
            if self._requests is not None:
                delays["requests_per_minute"] = self._requests.take(1, now)
            if self._tokens is not None:
                delays["tokens_per_minute"] = self._tokens.take(tokens, now)
        delay = max(delays.values())
        if delay > 0:
            reasons.append(max(delays, key=lambda key: delays[key]))
            wait(delay)
            waited += delay
        if self._slots is not None:
            started = time.monotonic()
            while not self._slots.acquire(timeout=0.2):
                if wait(0) is True:  # stopped: give up waiting, the caller checks the flag
                    break
            else:
                queued = time.monotonic() - started
                if queued > 0.01:
                    reasons.append("concurrency")
                    waited += queued
                if waited > 0.01:
                    on_pace(waited, "+".join(reasons))
                return self._slots.release
        if waited > 0.01:
            on_pace(waited, "+".join(reasons))
        return _nothing

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once the reply says what the request really cost."""
        if self._tokens is not None and actual != estimated:
            with self._guard:
                self._tokens.give(estimated - actual)

    def pause(self, seconds: float) -> None:
        """The provider asked everyone to wait ``seconds`` (a 429/529 with Retry-After)."""
        with self._guard:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)


def _nothing() -> None:
    return None


@dataclass(slots=True)
class Pacers:
    """The pacers of one run, one per provider, made on first use from their limits."""

    limits: Mapping[str, PacerLimits] = field(default_factory=dict)
    parts: int = 1
    """How many processes share the limits (``--workers``): each paces to its share."""
    _pacers: dict[str, Pacer] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, provider: str) -> Pacer:
        with self._guard:
            pacer = self._pacers.get(provider)
            if pacer is None:
                limits = self.limits.get(provider, PacerLimits()).share(self.parts)
                pacer = self._pacers[provider] = Pacer(limits)
            return pacer


class Budget:
    """An experiment's spending limit in US dollars; thread-safe."""

    def __init__(self, limit_usd: float) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self._guard = threading.Lock()

    def add(self, cost_usd: float) -> bool:
        """Count a message's cost; True once the spend has reached the limit."""
        with self._guard:
            self.spent_usd += cost_usd
            return self.spent_usd >= self.limit_usd

    @property
    def reached(self) -> bool:
        with self._guard:
            return self.spent_usd >= self.limit_usd
