"""What the state builder returns: immutable snapshots that monitors draw from.

Every snapshot is a frozen dataclass, so a builder can hand the same object out again
when nothing changed and callers can compare two snapshots with ``==``. Mappings inside
are plain dicts for ``dataclasses.asdict``; treat them as read-only.
Nothing here depends on the clock except the ``elapsed``/``eta`` helpers, which take
the time as an argument (or use now), so a cached snapshot never goes stale by itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pidgin_events import ConversationStatus, RunFormat, RunKind, RunStatus

__all__ = [
    "Convergence",
    "ConvergenceWarning",
    "ConversationState",
    "ConversationStatus",
    "DatabaseState",
    "ErrorInfo",
    "ExperimentState",
    "Progress",
    "RunFormat",
    "RunKind",
    "RunStatus",
    "Timing",
    "TokenCount",
    "TokenTotals",
    "to_jsonable",
]


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)


@dataclass(frozen=True, slots=True)
class TokenCount:
    """Tokens of the messages counted (from ``MessageCompleteEvent``)."""

    prompt: int = 0
    completion: int = 0
    total: int = 0
    messages: int = 0
    cost_usd: float = 0.0
    """The messages' ``cost_usd`` summed (catalogue prices); 0 for models without prices."""

    def __add__(self, other: TokenCount) -> TokenCount:
        return TokenCount(
            self.prompt + other.prompt,
            self.completion + other.completion,
            self.total + other.total,
            self.messages + other.messages,
            self.cost_usd + other.cost_usd,
        )


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """One error event, with where it was read."""

    conversation_id: str | None
    event_type: str
    error_type: str | None
    message: str
    timestamp: datetime | None
    location: str
    """``file:line`` of the event."""


@dataclass(frozen=True, slots=True)
class ConvergenceWarning:
    """A ``ConvergenceWarningEvent``: the score reached the threshold under ``warn``."""

    turn: int
    """1-based, as screens number turns."""
    score: float
    threshold: float


@dataclass(frozen=True, slots=True)
class ConversationState:
    """One conversation, as its event log tells it."""

    id: str
    status: ConversationStatus
    log_path: Path
    current_turn: int
    """1-based number of the turn in progress (or of the last one completed); 0 before any."""
    turns_completed: int
    """Distinct ``TurnCompleteEvent``s: the truth, whatever the end event says."""
    max_turns: int | None
    agent_a_model: str | None
    agent_b_model: str | None
    convergence: tuple[float, ...]
    """Convergence score of each completed turn that had one, in log order."""
    latest_convergence: float | None
    mean_convergence: float | None
    tokens: dict[str, TokenCount]
    """Per agent id (``agent_a``, ``agent_b``)."""
    message_count: int
    started_at: datetime | None
    ended_at: datetime | None
    last_message_at: datetime | None
    last_event_at: datetime | None
    end_reason: str | None
    error: str | None
    error_count: int
    paused: bool
    reported_total_turns: int | None
    """``total_turns`` as the end event wrote it (pidgin-ai 1.x wrote one too many)."""
    convergence_warnings: tuple[ConvergenceWarning, ...] = ()
    """The ``ConvergenceWarningEvent``s of the conversation, in log order."""
    streaming: dict[str, str] = field(default_factory=dict)
    """Per agent id, the text of its reply while it streams (from ``MessageChunkEvent``s);
    an agent is absent once its ``MessageCompleteEvent`` is written, and every agent once
    the attempt fails, the turn is discarded or the conversation ends."""


@dataclass(frozen=True, slots=True)
class Progress:
    """How many conversations are planned, and where each one stands."""

    planned: int
    completed: int = 0
    failed: int = 0
    interrupted: int = 0
    running: int = 0
    empty: int = 0
    unknown: int = 0

    @property
    def started(self) -> int:
        """Conversations that have a log."""
        return (
            self.completed + self.failed + self.interrupted + self.running + self.empty
        ) + self.unknown

    @property
    def finished(self) -> int:
        """Conversations that will not change any more."""
        return self.completed + self.failed + self.interrupted + self.empty

    @property
    def pending(self) -> int:
        """Planned conversations that have not started yet."""
        return max(0, self.planned - self.started)

    @property
    def fraction(self) -> float:
        """Finished over planned, in [0, 1] (1.0 when nothing was planned)."""
        return min(1.0, self.finished / self.planned) if self.planned else 1.0


@dataclass(frozen=True, slots=True)
class Convergence:
    """Convergence of every conversation: trajectories, latest and mean scores."""

    trajectories: dict[str, tuple[float, ...]]
    latest: dict[str, float]
    mean: dict[str, float]
    mean_of_latest: float | None
    """Mean over conversations of their latest score: "how converged is the experiment now"."""


@dataclass(frozen=True, slots=True)
class Timing:
    """When things happened; ``elapsed``/``eta`` are computed against a clock on demand."""

    created: datetime | None
    started: datetime | None
    last_event: datetime | None
    completed: datetime | None
    turns_completed: int
    turns_planned: int | None
    """Turns still to run are ``turns_planned - turns_completed`` (None when unknown)."""
    running: bool

    def elapsed(self, now: datetime | None = None) -> float | None:
        """Seconds from start to completion (or to ``now`` while running, else last event)."""
        if self.started is None:
            return None
        end = self.completed
        if end is None:
            end = (now or _now()) if self.running else self.last_event
        return None if end is None else max(0.0, (end - self.started).total_seconds())

    def eta(self, now: datetime | None = None) -> float | None:
        """Seconds left at the rate observed so far (turns per second); None if not running."""
        if not self.running or self.turns_planned is None or self.turns_completed <= 0:
            return None
        elapsed = self.elapsed(now)
        if not elapsed:
            return None
        remaining = max(0, self.turns_planned - self.turns_completed)
        return remaining * elapsed / self.turns_completed

    @property
    def elapsed_seconds(self) -> float | None:
        return self.elapsed()

    @property
    def eta_seconds(self) -> float | None:
        return self.eta()


@dataclass(frozen=True, slots=True)
class TokenTotals:
    """Token totals of a run, per agent id and per model."""

    by_agent: dict[str, TokenCount]
    by_model: dict[str, TokenCount]
    total: TokenCount


@dataclass(frozen=True, slots=True)
class DatabaseState:
    """Whether the run was loaded into DuckDB, from the loader's markers and events.

    ``.loaded_to_db`` (written after the loader's commit) decides ``loaded``; a
    ``.load_failed`` marker or a failed ``DatabaseLoadEvent`` newer than the last load
    sets ``failed`` with its ``error``. ``details`` is the marker's JSON as written.
    ``stale``: loaded, but a file the load read has changed since (by the loader's own
    rule, so loading every run reloads it); ``stale_reason`` says which and how.
    """

    loaded: bool = False
    loaded_at: datetime | None = None
    db_path: str | None = None
    fingerprint: str | None = None
    rows: dict[str, int] | None = None
    failed: bool = False
    failed_at: datetime | None = None
    error: str | None = None
    source: str | None = None
    """Where the verdict came from: ``.loaded_to_db``, ``.load_failed`` or ``DatabaseLoadEvent``."""
    details: dict[str, Any] | None = None
    stale: bool = False
    stale_reason: str | None = None
    """E.g. ``changed since its load: conv_1_events.jsonl changed size from 10 to 20 bytes``."""
    post_processing: str | None = None
    """The runner's automatic load: None (not begun), ``started`` or ``completed`` (by its
    ``PostProcessingStartEvent``/``PostProcessingCompleteEvent``)."""


@dataclass(frozen=True, slots=True)
class ExperimentState:
    """An experiment or a chat, rebuilt from its event logs.

    ``id`` is the recorded experiment id (``ExperimentStartEvent`` or pidgin-ai's
    ``manifest.json``), else the directory name; a chat's ``id`` is its directory name
    (``YYYYMMDD_HHMMSS_<short>``), which is unique and what users see on disk.
    """

    id: str
    name: str
    kind: RunKind
    directory: Path
    status: RunStatus
    format: RunFormat
    live: bool | None
    """Whether a writer is at work now (run lock, recorded end, pidgin-ai's pid file); None
    when nothing tells (then the freshness of each log decides, see ``pidgin_state``)."""
    progress: Progress
    conversations: dict[str, ConversationState]
    active_conversations: tuple[ConversationState, ...]
    convergence: Convergence
    timing: Timing
    tokens: TokenTotals
    error_count: int
    last_errors: tuple[ErrorInfo, ...]
    """The few most recent error events, oldest first."""
    error: str | None
    """The run-level error (``ExperimentCompleteEvent.error``), if any."""
    end_reason: str | None
    database: DatabaseState
    problems: tuple[str, ...]
    """``file:line: reason`` for what could not be read (capped; see ``problem_count``)."""
    problem_count: int
    notes: tuple[str, ...]
    """Inferences worth knowing (liveness unknown, the manifest disagrees with the events)."""
    recorded_end: bool = False
    """Whether the run recorded its own end (an ``ExperimentCompleteEvent``, pidgin-ai's
    final manifest status); False while it runs and for a run killed before its end."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO timestamps, paths as strings) for ``--json`` output."""
        result: dict[str, Any] = to_jsonable(self)
        return result


def to_jsonable(value: Any) -> Any:
    """Turn snapshots (and what they hold) into JSON-ready values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value
