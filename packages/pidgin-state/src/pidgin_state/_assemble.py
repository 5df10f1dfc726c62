"""Building one ``ExperimentState`` from what a ``RunDirTracker`` holds.

The tracker follows the files; ``_status`` decides how the run stands; ``_summaries``
computes timing, convergence, tokens and errors. This module puts them together and says
what was odd on the way (``problems``: what could not be read; ``notes``: inferences).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pidgin_events import (
    EXPERIMENT_LOG,
    FINISHED_STATUSES,
    LOAD_FAILED_MARKER,
    LOADED_MARKER,
    MANIFEST,
    RUN_LOCK,
    RunFormat,
    RunStatus,
    plural,
)

from ._markers import ManifestInfo, database_state, manifest_info
from ._model import ConversationState, ExperimentState, Progress
from ._scan import LogCursor
from ._sinks import ConversationLog, ExperimentLog
from ._status import Writer, conversation_status, manifest_disagrees, run_status
from ._summaries import (
    EPOCH,
    convergence,
    conversation_snapshot,
    count_statuses,
    last_errors,
    timing,
    tokens,
)
from ._time import parse_time
from ._tracker import RunDirTracker, rank

__all__ = ["MAX_PROBLEMS", "assemble"]

MAX_PROBLEMS = 100
_KNOWN_END_STATUSES = frozenset({*FINISHED_STATUSES, "empty"})


@dataclass(slots=True)
class _Findings:
    """Problems (what could not be read) and notes (inferences) met on the way."""

    problems: list[str] = field(default_factory=list)
    count: int = 0
    notes: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.count += 1

    def of_cursor(self, cursor: LogCursor[Any]) -> None:
        if cursor.read_error:
            self.problem(cursor.read_error)
        self.problems.extend(cursor.problems)
        self.count += cursor.problem_count
        if cursor.problem_count > len(cursor.problems):
            self.problems.append(
                f"{cursor.display}: {cursor.problem_count - len(cursor.problems)} more "
                "problems not listed"
            )


def assemble(
    tracker: RunDirTracker, writer: Writer, run_format: RunFormat, now: float
) -> ExperimentState:
    found = _Findings(problems=list(tracker.dir_problems), count=len(tracker.dir_problems))
    legacy = run_format == "pidgin-ai-1.x"
    chosen = _one_log_per_conversation(tracker, found)
    experiment_log = tracker.experiment_log
    if experiment_log is not None:
        found.of_cursor(experiment_log)
        for ignored in tracker.experiment_logs.values():
            if ignored is not experiment_log:
                found.problem(
                    f"{ignored.display}: {experiment_log.display} is used; this one is ignored"
                )
    snapshots, inferred = _conversations(
        tracker, chosen, writer=writer, legacy=legacy, now=now, found=found
    )
    for json_file in tracker.json_files.values():
        if json_file.problem and json_file.display.endswith(MANIFEST):
            found.problem(json_file.problem)
    log = None if experiment_log is None else experiment_log.sink
    manifest = manifest_info(tracker.json_files.get(MANIFEST))
    progress = _progress(tracker, log, manifest, snapshots, found)
    status = _status(
        tracker,
        writer=writer,
        log=log,
        manifest=manifest,
        progress=progress,
        legacy=legacy,
        now=now,
        found=found,
    )
    if inferred and legacy and writer.alive is False:
        found.notes.append(f"conversations without an end event were interrupted: {writer.why}")
    if inferred and writer.alive is None:
        found.notes.append(
            ("pidgin-ai logs have no run lock" if legacy else f"cannot probe {RUN_LOCK}")
            + ": a conversation without an end event is running while its log and its "
            f"newest event are less than {tracker.stale_after:g} s old"
        )
    database, database_problems = database_state(
        tracker.json_files.get(LOADED_MARKER),
        tracker.json_files.get(LOAD_FAILED_MARKER),
        log,
        changes=tracker.changes_since_load,
    )
    for text in database_problems:
        found.problem(text)
    run_id, name = _identity(tracker, log, manifest, snapshots)
    if log is not None and log.completed:
        error, end_reason = log.error, log.reason
    elif tracker.kind == "chat" and len(snapshots) == 1:
        error, end_reason = snapshots[0].error, snapshots[0].end_reason
    else:
        error = end_reason = None
    experiment_last = None if experiment_log is None else experiment_log.last_event_ts
    return ExperimentState(
        id=run_id,
        name=name,
        kind=tracker.kind,
        directory=Path(tracker.directory),
        status=status,
        format=run_format,
        live=writer.alive,
        progress=progress,
        conversations={c.id: c for c in snapshots},
        active_conversations=tuple(c for c in snapshots if c.status == "running"),
        convergence=convergence(snapshots),
        timing=timing(
            log,
            parse_time(experiment_last),
            manifest=manifest,
            snapshots=snapshots,
            status=status,
            progress=progress,
        ),
        tokens=tokens(snapshots),
        error_count=sum(c.error_count for c in snapshots),
        last_errors=last_errors(chosen),
        error=error,
        end_reason=end_reason,
        database=database,
        problems=tuple(found.problems[:MAX_PROBLEMS]),
        problem_count=found.count,
        notes=tuple(found.notes),
        recorded_end=writer.recorded_end,
    )


def _one_log_per_conversation(
    tracker: RunDirTracker, found: _Findings
) -> dict[str, LogCursor[ConversationLog]]:
    """One log per conversation id: a plain log wins over its archive."""
    chosen: dict[str, LogCursor[ConversationLog]] = {}
    for name in sorted(tracker.logs):
        cursor = tracker.logs[name]
        conversation_id = cursor.sink.id
        other = chosen.get(conversation_id)
        if other is None:
            chosen[conversation_id] = cursor
            continue
        keep, drop = (cursor, other) if rank(cursor) < rank(other) else (other, cursor)
        chosen[conversation_id] = keep
        found.problem(
            f"{drop.display}: another log of conversation {conversation_id} "
            f"({keep.display}) is used; this one is ignored"
        )
    return chosen


def _conversations(
    tracker: RunDirTracker,
    chosen: dict[str, LogCursor[ConversationLog]],
    *,
    writer: Writer,
    legacy: bool,
    now: float,
    found: _Findings,
) -> tuple[list[ConversationState], bool]:
    """Each conversation's snapshot, oldest first; and whether a status was inferred."""
    snapshots: list[ConversationState] = []
    inferred = False
    for conversation_id, cursor in chosen.items():
        sink = cursor.sink
        fresh = writer.alive is None and not sink.ended and tracker.log_is_fresh(cursor, now)
        status, reason = conversation_status(
            ended=sink.ended,
            status=sink.end_status,
            reason=sink.end_reason,
            has_events=cursor.event_lines > 0,
            unreadable=cursor.read_error is not None,
            writer=writer,
            fresh=fresh,
            stale_after=tracker.stale_after,
        )
        inferred |= not sink.ended and cursor.event_lines > 0
        if sink.ended and sink.end_status not in _KNOWN_END_STATUSES:
            found.notes.append(
                f"{cursor.display}: end status {sink.end_status!r} read as {status!r}"
                + (f" (reason {sink.end_reason!r})" if sink.end_reason else "")
            )
        if (
            not legacy  # pidgin-ai 1.x wrote one more than the turns it ran
            and sink.ended
            and sink.end_total_turns is not None
            and sink.end_total_turns != len(sink.turns_done)
        ):
            found.notes.append(
                f"{cursor.display}: the end event says {sink.end_total_turns} turns; "
                f"{len(sink.turns_done)} were read"
            )
        if sink.events and sink.started_ts is None:
            found.problem(f"{cursor.display}: no ConversationStartEvent")
        found.of_cursor(cursor)
        if cursor.pending and status != "running":
            found.problem(
                f"{cursor.display}:{cursor.line}: last line is incomplete "
                f"({cursor.pending} bytes, no newline); not counted"
            )
        snapshots.append(conversation_snapshot(conversation_id, cursor, status, reason))
    snapshots.sort(key=lambda c: (c.started_at or EPOCH, c.id))
    return snapshots, inferred


def _progress(
    tracker: RunDirTracker,
    log: ExperimentLog | None,
    manifest: ManifestInfo,
    snapshots: list[ConversationState],
    found: _Findings,
) -> Progress:
    seen = len(snapshots)
    declared = log.planned if log is not None and log.planned is not None else manifest.planned
    if declared is None and tracker.kind == "chat":
        declared = 1
    if declared is not None and declared < seen:
        found.notes.append(f"{plural(seen, 'conversation')} found, {declared} planned")
    return Progress(planned=max(declared or 0, seen), **count_statuses(snapshots))


def _status(
    tracker: RunDirTracker,
    *,
    writer: Writer,
    log: ExperimentLog | None,
    manifest: ManifestInfo,
    progress: Progress,
    legacy: bool,
    now: float,
    found: _Findings,
) -> RunStatus:
    """From the events and the writer signals; a mutable file is only cross-checked."""
    if log is not None and log.completed:
        if log.status in FINISHED_STATUSES:
            return log.status
        found.problem(
            f"{tracker.experiment_log.display if tracker.experiment_log else EXPERIMENT_LOG}: "
            f"ExperimentCompleteEvent status {log.status!r} is not understood"
        )
        return "unknown"
    status = run_status(
        progress=progress,
        writer=writer,
        recently_written=writer.alive is None and tracker.recently_written(now),
        legacy=legacy,
        has_experiment_log=log is not None,
    )
    if legacy and manifest.status is not None and manifest_disagrees(manifest.status, status):
        found.notes.append(
            f"manifest.json says status {manifest.status!r}; the events say {status!r}"
        )
    if writer.alive is None and not legacy and status == "running":
        found.notes.append(
            f"cannot tell whether a writer holds {RUN_LOCK}; the run counts as running "
            "while its logs are being written"
        )
    return status


def _identity(
    tracker: RunDirTracker,
    log: ExperimentLog | None,
    manifest: ManifestInfo,
    snapshots: list[ConversationState],
) -> tuple[str, str]:
    """The run's id and name: recorded ones, else its directory's name."""
    directory_name = os.path.basename(tracker.directory.rstrip(os.sep)) or tracker.directory
    if tracker.kind == "chat":
        return directory_name, snapshots[0].id if len(snapshots) == 1 else directory_name
    run_id = (log.experiment_id if log else None) or manifest.experiment_id or directory_name
    return run_id, (log.name if log else None) or manifest.name or directory_name
