"""The summaries of a run that are not its status: timing, convergence, tokens, errors.

Pure functions of the conversation snapshots (and of the aggregates of the experiment
log), so that a refresh that changed nothing builds none of them again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from pidgin_events import FINISHED_STATUSES, RunKind, RunStatus

from ._markers import ManifestInfo
from ._model import (
    Convergence,
    ConvergenceWarning,
    ConversationState,
    ConversationStatus,
    DatabaseState,
    ErrorInfo,
    ExperimentState,
    Progress,
    Timing,
    TokenCount,
    TokenTotals,
)
from ._scan import LogCursor
from ._sinks import MAX_ERRORS_KEPT, ConversationLog, ExperimentLog
from ._time import parse_time

__all__ = [
    "EPOCH",
    "convergence",
    "conversation_snapshot",
    "count_statuses",
    "last_errors",
    "timing",
    "tokens",
    "unlistable_state",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def conversation_snapshot(
    conversation_id: str,
    cursor: LogCursor[ConversationLog],
    status: ConversationStatus,
    reason: str | None,
) -> ConversationState:
    """One conversation as its log tells it; cached on the cursor, which it lives with."""
    key = (cursor.version, status, reason)
    if cursor.snapshot is not None and cursor.snapshot[0] == key:
        return cursor.snapshot[1]  # type: ignore[no-any-return]
    sink = cursor.sink
    scores = tuple(sink.scores)
    turns_completed = len(sink.turns_done)
    snapshot = ConversationState(
        id=conversation_id,
        status=status,
        log_path=Path(cursor.display),
        current_turn=turns_completed + (1 if sink.turn_open and not sink.ended else 0),
        turns_completed=turns_completed,
        max_turns=sink.max_turns,
        agent_a_model=sink.agent_a_model,
        agent_b_model=sink.agent_b_model,
        convergence=scores,
        latest_convergence=scores[-1] if scores else None,
        mean_convergence=math.fsum(scores) / len(scores) if scores else None,
        tokens={
            agent: TokenCount(c[0], c[1], c[2], c[3], sink.costs.get(agent, 0.0))
            for agent, c in sorted(sink.tokens.items())
        },
        message_count=sink.messages,
        started_at=parse_time(sink.started_ts),
        ended_at=parse_time(sink.end_ts),
        last_message_at=parse_time(sink.last_message_ts),
        last_event_at=parse_time(cursor.last_event_ts),
        end_reason=reason,
        error=sink.end_error,
        error_count=sink.error_count,
        paused=sink.paused and not sink.ended,
        reported_total_turns=sink.end_total_turns,
        convergence_warnings=tuple(
            ConvergenceWarning(turn + 1, score, threshold)
            for turn, score, threshold in sink.warnings
        ),
        streaming={agent: "".join(pieces) for agent, pieces in sink.streaming.items()},
    )
    cursor.snapshot = (key, snapshot)
    return snapshot


def count_statuses(snapshots: Iterable[ConversationState]) -> dict[str, int]:
    counts = dict.fromkeys(("completed", "failed", "interrupted", "running", "empty", "unknown"), 0)
    for c in snapshots:
        counts[c.status] += 1
    return counts


def timing(
    log: ExperimentLog | None,
    experiment_last_event: datetime | None,
    *,
    manifest: ManifestInfo,
    snapshots: list[ConversationState],
    status: RunStatus,
    progress: Progress,
) -> Timing:
    """When the run was created, started, last written and ended; turns done and planned.

    A run's end is when its events say it ended: its ``ExperimentCompleteEvent``, else
    the last conversation's end (never pidgin-ai's ``completed_at``, written after its
    post-processing).
    """
    starts = [c.started_at for c in snapshots if c.started_at is not None]
    created = (parse_time(log.started_ts) if log else None) or manifest.created
    started = min(starts) if starts else None
    created = created or started
    started = started or created
    last_times = [c.last_event_at for c in snapshots if c.last_event_at is not None]
    if experiment_last_event is not None:
        last_times.append(experiment_last_event)
    last_event = max(last_times) if last_times else None
    completed: datetime | None = None
    if log is not None and log.completed:
        completed = parse_time(log.completed_ts)
    elif status in FINISHED_STATUSES and snapshots:
        ends = [c.ended_at or c.last_event_at for c in snapshots]
        completed = max((e for e in ends if e is not None), default=None)
    default_turns = (log.max_turns if log else None) or manifest.max_turns
    known = [c.max_turns for c in snapshots if c.max_turns is not None]
    default_turns = default_turns or (max(known) if known else None)
    turns_planned: int | None = 0
    for c in snapshots:
        if c.status != "running":
            turns_planned = _add(turns_planned, c.turns_completed)
        else:
            limit = c.max_turns or default_turns
            turns_planned = _add(
                turns_planned, None if limit is None else max(limit, c.turns_completed)
            )
    if progress.pending and status == "running":
        turns_planned = _add(
            turns_planned, None if default_turns is None else progress.pending * default_turns
        )
    return Timing(
        created=created,
        started=started,
        last_event=last_event,
        completed=completed,
        turns_completed=sum(c.turns_completed for c in snapshots),
        turns_planned=turns_planned,
        running=status == "running",
    )


def _add(total: int | None, value: int | None) -> int | None:
    return None if total is None or value is None else total + value


def convergence(snapshots: list[ConversationState]) -> Convergence:
    latest = {c.id: c.latest_convergence for c in snapshots if c.latest_convergence is not None}
    mean = {c.id: c.mean_convergence for c in snapshots if c.mean_convergence is not None}
    return Convergence(
        trajectories={c.id: c.convergence for c in snapshots},
        latest=latest,
        mean=mean,
        mean_of_latest=math.fsum(latest.values()) / len(latest) if latest else None,
    )


def tokens(snapshots: list[ConversationState]) -> TokenTotals:
    by_agent: dict[str, TokenCount] = {}
    by_model: dict[str, TokenCount] = {}
    total = TokenCount()
    for c in snapshots:
        for agent, count in c.tokens.items():
            model = {"agent_a": c.agent_a_model, "agent_b": c.agent_b_model}.get(agent)
            by_agent[agent] = by_agent.get(agent, TokenCount()) + count
            by_model[model or "unknown"] = by_model.get(model or "unknown", TokenCount()) + count
            total = total + count
    return TokenTotals(by_agent=by_agent, by_model=by_model, total=total)


def last_errors(chosen: dict[str, LogCursor[ConversationLog]]) -> tuple[ErrorInfo, ...]:
    """The most recent error events of every conversation, oldest first."""
    errors: list[tuple[datetime, str, int, ErrorInfo]] = []
    for conversation_id, cursor in chosen.items():
        for record in cursor.sink.errors:
            when = parse_time(record.timestamp)
            info = ErrorInfo(
                conversation_id=conversation_id,
                event_type=record.event_type,
                error_type=record.error_type,
                message=record.message,
                timestamp=when,
                location=f"{cursor.display}:{record.line}",
            )
            errors.append((when or EPOCH, conversation_id, record.line, info))
    errors.sort(key=lambda item: item[:3])
    return tuple(item[3] for item in errors[-MAX_ERRORS_KEPT:])


def unlistable_state(directory: str, kind: RunKind, reason: str) -> ExperimentState:
    """A placeholder for a run directory that cannot even be listed."""
    name = os.path.basename(directory.rstrip(os.sep)) or directory
    return ExperimentState(
        id=name,
        name=name,
        kind=kind,
        directory=Path(directory),
        status="unknown",
        format="pidgin",
        live=None,
        progress=Progress(planned=0),
        conversations={},
        active_conversations=(),
        convergence=Convergence({}, {}, {}, None),
        timing=Timing(None, None, None, None, 0, None, False),
        tokens=TokenTotals({}, {}, TokenCount()),
        error_count=0,
        last_errors=(),
        error=None,
        end_reason=None,
        database=DatabaseState(),
        problems=(f"{directory}: {reason}",),
        problem_count=1,
        notes=(),
    )
