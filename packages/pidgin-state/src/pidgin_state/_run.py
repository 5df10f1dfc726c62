"""One run directory (an experiment or a chat) followed across calls.

A refresh probes the run lock, lists the directory, ``stat``s the files that matter and
lets each log cursor read what was appended. When nothing changed (same files, same
``stat``s, same liveness) the previous snapshot object is returned as it is: that path
costs one ``scandir``, one ``stat`` per file and one ``flock`` probe.

Liveness, and so ``running`` versus ``interrupted``:

* Pidgin's own runs hold a shared ``flock`` on ``.pidgin.lock`` while they write; the
  kernel drops it when the process dies, ``kill -9`` included. The lock is probed
  *before* the logs are read, so an end event written just after the probe is seen as
  ``running`` for one refresh, never as ``interrupted``. A conversation (or experiment)
  without its end event whose lock is free is ``interrupted``; when the lock cannot be
  probed it stays ``running`` and a note says so.
* pidgin-ai 1.x directories have no lock. A conversation there without an end event is
  ``running`` only while its log was modified within the last ``stale_after`` seconds
  (10 minutes by default: longer than pidgin-ai's provider timeout with retries), and
  ``interrupted`` after that.
"""

from __future__ import annotations

import math
import os
import stat
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from pidgin_events import (
    EXPERIMENT_LOG,
    LOAD_FAILED_MARKER,
    LOADED_MARKER,
    RUN_LOCK,
    conversation_id_of_log,
    is_running,
)

from ._errors import NotAnExperimentError
from ._markers import JsonFile, ManifestInfo, database_state, manifest_info
from ._model import (
    Convergence,
    ConversationState,
    ConversationStatus,
    DatabaseState,
    ErrorInfo,
    ExperimentState,
    Progress,
    RunFormat,
    RunKind,
    RunStatus,
    Timing,
    TokenCount,
    TokenTotals,
)
from ._scan import LogCursor
from ._sinks import MAX_ERRORS_KEPT, ConversationLog, ExperimentLog
from ._stale import DiskFile, changes_since_load, files_a_load_reads, only_bookkeeping_after
from ._time import parse_time

__all__ = [
    "DEFAULT_STALE_AFTER",
    "MAX_PROBLEMS",
    "RunTracker",
    "UnlistableRunError",
    "unlistable_state",
]

DEFAULT_STALE_AFTER = 600.0
"""Seconds without a write after which an unfinished pidgin-ai conversation is interrupted."""
MAX_PROBLEMS = 100
MANIFEST = "manifest.json"
_JSON_FILES = frozenset({MANIFEST, LOADED_MARKER, LOAD_FAILED_MARKER})
_EXPERIMENT_LOGS = frozenset({EXPERIMENT_LOG, EXPERIMENT_LOG + ".gz", EXPERIMENT_LOG + ".zst"})
_END_STATUSES = frozenset({"completed", "failed", "interrupted", "empty"})
_RUN_END_STATUSES = frozenset({"completed", "failed", "interrupted"})
# pidgin-ai's status_for_end_reason, for end events without a usable status.
_COMPLETED_REASONS = frozenset(
    {"max_turns", "max_turns_reached", "high_convergence", "convergence_threshold"}
)
_FAILED_REASONS = frozenset({"error", "api_error", "exception"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnlistableRunError(NotAnExperimentError):
    """The directory exists but cannot be listed (a permission, an I/O error)."""


class RunTracker:
    """Follows one run directory; not thread-safe (one caller at a time)."""

    def __init__(self, directory: str, kind: RunKind, stale_after: float) -> None:
        self.directory = directory
        self.kind: RunKind = kind
        self.stale_after = stale_after
        self._real_directory: str | None = None
        self.logs: dict[str, LogCursor[ConversationLog]] = {}
        self.experiment_logs: dict[str, LogCursor[ExperimentLog]] = {}
        """``experiment.jsonl`` and its archives (``.gz``, ``.zst``) by name."""
        self.json_files: dict[str, JsonFile] = {}
        self.lock_present = False
        self.stats: dict[str, os.stat_result] = {}
        """The ``lstat`` of each file above that is not a symbolic link, by name."""
        self._bookkeeping: tuple[tuple[object, ...], bool] | None = None
        """The last ``only_bookkeeping_after`` verdict on experiment.jsonl, and its key."""
        self.dir_problems: tuple[str, ...] = ()
        self.version = 0
        self.bytes_read_before = 0
        """Bytes read by cursors that were dropped (files that went away)."""
        self._key: tuple[object, ...] | None = None
        self._state: ExperimentState | None = None

    @property
    def bytes_read(self) -> int:
        total = self.bytes_read_before + sum(c.bytes_read for c in self.logs.values())
        return total + sum(c.bytes_read for c in self.experiment_logs.values())

    @property
    def experiment_log(self) -> LogCursor[ExperimentLog] | None:
        """The experiment log used: the plain one if there is one, else its archive."""
        if not self.experiment_logs:
            return None
        return min(self.experiment_logs.values(), key=lambda c: (_rank(c), c.path))

    # --- refresh -----------------------------------------------------------------------

    def refresh(self) -> ExperimentState:
        now = time.time()
        # Before reading: a lock seen free means every write before it is on disk.
        live = is_running(self.directory)
        if self._scan_directory():
            self.version += 1
        run_format = self._format()
        if run_format == "pidgin-ai-1.x":
            live = None
            key: tuple[object, ...] = (self.version, self._fresh_flags(now))
        else:
            key = (self.version, live)
        if key == self._key and self._state is not None:
            return self._state
        state = self._assemble(live, run_format, now)
        self._key, self._state = key, state
        return state

    def _scan_directory(self) -> bool:
        try:
            with os.scandir(self.directory) as listing:
                entries = list(listing)
        except FileNotFoundError:
            raise NotAnExperimentError(self.directory, "it does not exist") from None
        except NotADirectoryError:
            raise NotAnExperimentError(self.directory, "it is not a directory") from None
        except OSError as exc:
            raise UnlistableRunError(
                self.directory, f"cannot list it: {exc.strerror or exc}"
            ) from None
        changed = False
        problems: list[str] = []
        seen_logs: set[str] = set()
        seen_json: set[str] = set()
        lock_present = False
        seen_experiment_logs: set[str] = set()
        stats: dict[str, os.stat_result] = {}
        for entry in entries:
            name = entry.name
            if name == RUN_LOCK:
                lock_present = True
                continue
            conversation_id: str | None = None
            if name not in _EXPERIMENT_LOGS and name not in _JSON_FILES:
                conversation_id = conversation_id_of_log(name)
                if conversation_id is None:
                    continue
            path = entry.path
            try:
                if entry.is_symlink():
                    target = self._target_inside(entry.path)
                    if target is None:
                        problems.append(
                            f"{entry.path}: symbolic link to {os.readlink(entry.path)!r} "
                            "outside the run directory; not followed"
                        )
                        continue
                    path = target
                    st = os.stat(target)
                else:
                    st = stats[name] = entry.stat(follow_symlinks=False)
            except OSError as exc:
                problems.append(f"{entry.path}: cannot stat: {exc.strerror or exc}")
                continue
            if conversation_id is not None:
                seen_logs.add(name)
                log_cursor = self.logs.get(name)
                if log_cursor is None or log_cursor.path != path:
                    if log_cursor is not None:
                        self.bytes_read_before += log_cursor.bytes_read
                    make_sink = partial(ConversationLog, conversation_id)
                    log_cursor = self.logs[name] = LogCursor(path, entry.path, make_sink)
                    changed = True
                changed |= log_cursor.sync(st)
            elif name in _EXPERIMENT_LOGS:
                seen_experiment_logs.add(name)
                experiment_cursor = self.experiment_logs.get(name)
                if experiment_cursor is None or experiment_cursor.path != path:
                    if experiment_cursor is not None:
                        self.bytes_read_before += experiment_cursor.bytes_read
                    experiment_cursor = LogCursor(path, entry.path, ExperimentLog)
                    self.experiment_logs[name] = experiment_cursor
                    changed = True
                changed |= experiment_cursor.sync(st)
            else:
                seen_json.add(name)
                json_file = self.json_files.get(name)
                if json_file is None or json_file.path != path:
                    json_file = self.json_files[name] = JsonFile(path, entry.path)
                    changed = True
                changed |= json_file.sync(st)
        for name in self.logs.keys() - seen_logs:
            self.bytes_read_before += self.logs.pop(name).bytes_read
            changed = True
        for name in self.experiment_logs.keys() - seen_experiment_logs:
            self.bytes_read_before += self.experiment_logs.pop(name).bytes_read
            changed = True
        for name in self.json_files.keys() - seen_json:
            del self.json_files[name]
            changed = True
        if lock_present != self.lock_present:
            self.lock_present = lock_present
            changed = True
        self.stats = stats  # any change in them changed a cursor or a JSON file above
        if tuple(problems) != self.dir_problems:
            self.dir_problems = tuple(problems)
            changed = True
        if not (self.logs or self.experiment_logs or self.json_files or lock_present or problems):
            raise NotAnExperimentError(
                self.directory, "no event log, manifest.json or run lock in it"
            )
        return changed

    def _target_inside(self, link: str) -> str | None:
        """The target of a symlink if it stays inside the run directory, else None."""
        if self._real_directory is None:
            self._real_directory = os.path.realpath(self.directory)
        target = os.path.realpath(link)
        inside = os.path.commonpath([self._real_directory, target]) == self._real_directory
        return target if inside and target != self._real_directory else None

    def _format(self) -> RunFormat:
        if not self.experiment_logs and (
            MANIFEST in self.json_files or any(name.startswith("events_") for name in self.logs)
        ):
            return "pidgin-ai-1.x"
        return "pidgin"

    def _fresh_flags(self, now: float) -> tuple[object, ...]:
        """Which unfinished pidgin-ai logs still count as being written (part of the cache key)."""
        flags: list[object] = [self._recently_written(now)]
        for name, cursor in self.logs.items():
            if not cursor.sink.ended:
                flags.append((name, self._is_fresh(cursor.mtime, now)))
        return tuple(flags)

    def _is_fresh(self, mtime: float | None, now: float) -> bool:
        return mtime is not None and now - mtime <= self.stale_after

    def _recently_written(self, now: float) -> bool:
        times = [c.mtime for c in self.logs.values()]
        times += [f.mtime for f in self.json_files.values()]
        newest = max((t for t in times if t is not None), default=None)
        return self._is_fresh(newest, now)

    # --- snapshots ---------------------------------------------------------------------

    def _assemble(self, live: bool | None, run_format: RunFormat, now: float) -> ExperimentState:
        problems: list[str] = list(self.dir_problems)
        problem_count = len(problems)
        notes: list[str] = []
        legacy = run_format == "pidgin-ai-1.x"

        # Conversations: one log per id; a plain log wins over its archive.
        chosen: dict[str, LogCursor[ConversationLog]] = {}
        for name in sorted(self.logs):
            cursor = self.logs[name]
            conversation_id = cursor.sink.id
            other = chosen.get(conversation_id)
            if other is not None:
                keep, drop = (cursor, other) if _rank(cursor) < _rank(other) else (other, cursor)
                chosen[conversation_id] = keep
                problems.append(
                    f"{drop.display}: another log of conversation {conversation_id} "
                    f"({keep.display}) is used; this one is ignored"
                )
                problem_count += 1
            else:
                chosen[conversation_id] = cursor

        experiment_log = self.experiment_log
        if experiment_log is not None:
            problem_count += self._cursor_problems(experiment_log, problems)
            for ignored in self.experiment_logs.values():
                if ignored is not experiment_log:
                    problems.append(
                        f"{ignored.display}: {experiment_log.display} is used; this one is ignored"
                    )
                    problem_count += 1
        snapshots: list[ConversationState] = []
        inferred = False
        for conversation_id, cursor in chosen.items():
            conversation_status, reason = self._conversation_status(cursor, live, legacy, now)
            inferred |= reason is not None and not cursor.sink.ended
            sink = cursor.sink
            if sink.ended and sink.end_status not in _END_STATUSES:
                notes.append(
                    f"{cursor.display}: end status {sink.end_status!r} read as "
                    f"{conversation_status!r}"
                    + (f" (reason {sink.end_reason!r})" if sink.end_reason else "")
                )
            if (
                not legacy  # pidgin-ai 1.x wrote one more than the turns it ran
                and sink.ended
                and sink.end_total_turns is not None
                and sink.end_total_turns != len(sink.turns_done)
            ):
                notes.append(
                    f"{cursor.display}: the end event says {sink.end_total_turns} turns; "
                    f"{len(sink.turns_done)} were read"
                )
            if sink.events and sink.started_ts is None:
                problems.append(f"{cursor.display}: no ConversationStartEvent")
                problem_count += 1
            problem_count += self._cursor_problems(cursor, problems)
            if cursor.pending and conversation_status != "running":
                problems.append(
                    f"{cursor.display}:{cursor.line}: last line is incomplete "
                    f"({cursor.pending} bytes, no newline); not counted"
                )
                problem_count += 1
            snapshots.append(self._snapshot(conversation_id, cursor, conversation_status, reason))
        snapshots.sort(key=lambda c: (c.started_at or _EPOCH, c.id))
        conversations = {c.id: c for c in snapshots}

        for json_file in self.json_files.values():
            if json_file.problem and json_file.display.endswith(MANIFEST):
                problems.append(json_file.problem)
                problem_count += 1
        log = None if experiment_log is None else experiment_log.sink
        manifest = manifest_info(self.json_files.get(MANIFEST))

        counts = _count(snapshots)
        seen = len(snapshots)
        declared = log.planned if log is not None and log.planned is not None else manifest.planned
        if declared is None and self.kind == "chat":
            declared = 1
        if declared is not None and declared < seen:
            notes.append(f"{seen} conversations found, {declared} planned")
        progress = Progress(planned=max(declared or 0, seen), **counts)

        # Status: from the events and the liveness signal, never from a mutable file.
        status: RunStatus
        if log is not None and log.completed:
            if log.status in _RUN_END_STATUSES:
                status = log.status  # type: ignore[assignment]
            else:
                status = "unknown"
                problems.append(
                    f"{experiment_log.display if experiment_log else EXPERIMENT_LOG}: "
                    f"ExperimentCompleteEvent status {log.status!r} is not understood"
                )
                problem_count += 1
        elif legacy:
            status = _aggregate(progress)
            if status != "running" and progress.pending and self._recently_written(now):
                status = "running"  # pidgin-ai starts the next conversation in a moment
            if manifest.status is not None and _manifest_disagrees(manifest.status, status):
                notes.append(
                    f"manifest.json says status {manifest.status!r}; the events say {status!r}"
                )
        elif log is not None:
            status = "interrupted" if live is False else "running"
        elif not snapshots:
            status = "empty" if live is False else "running"
        else:
            status = _aggregate(progress)
            if status != "running" and progress.pending and live is not False:
                status = "running"
        if live is None and not legacy and (status == "running" or progress.running):
            notes.append(
                f"cannot tell whether a writer holds {RUN_LOCK}; unfinished conversations "
                "are shown as running"
            )
        if inferred and legacy:
            notes.append(
                "pidgin-ai logs have no run lock: a conversation without an end event is "
                f"running while its log changed in the last {self.stale_after:g} s"
            )

        timing = self._timing(log, manifest, snapshots, status, progress)
        database, database_problems = database_state(
            self.json_files.get(LOADED_MARKER),
            self.json_files.get(LOAD_FAILED_MARKER),
            log,
            changes=self._changes_since_load,
        )
        problems.extend(database_problems)
        problem_count += len(database_problems)

        directory_name = os.path.basename(self.directory.rstrip(os.sep)) or self.directory
        if self.kind == "chat":
            run_id = directory_name
            name = snapshots[0].id if len(snapshots) == 1 else directory_name
        else:
            run_id = (
                (log.experiment_id if log else None) or manifest.experiment_id or directory_name
            )
            name = (log.name if log else None) or manifest.name or directory_name
        if log is not None and log.completed:
            error, end_reason = log.error, log.reason
        elif self.kind == "chat" and len(snapshots) == 1:
            error, end_reason = snapshots[0].error, snapshots[0].end_reason
        else:
            error = end_reason = None

        return ExperimentState(
            id=run_id,
            name=name,
            kind=self.kind,
            directory=Path(self.directory),
            status=status,
            format=run_format,
            live=live,
            progress=progress,
            conversations=conversations,
            active_conversations=tuple(c for c in snapshots if c.status == "running"),
            convergence=_convergence(snapshots),
            timing=timing,
            tokens=_tokens(snapshots),
            error_count=sum(c.error_count for c in snapshots),
            last_errors=self._last_errors(chosen),
            error=error,
            end_reason=end_reason,
            database=database,
            problems=tuple(problems[:MAX_PROBLEMS]),
            problem_count=problem_count,
            notes=tuple(notes),
        )

    def _changes_since_load(self, recorded: Any) -> list[str] | None:
        """``changes_since_load`` for this run's files as the last scan saw them."""
        disk: dict[str, DiskFile] = {
            name: (st.st_size, st.st_mtime_ns)
            for name, st in self.stats.items()
            if stat.S_ISREG(st.st_mode)
        }
        return changes_since_load(recorded, files_a_load_reads(disk), self._bookkeeping_after)

    def _bookkeeping_after(self, offset: int) -> bool:
        """Whether experiment.jsonl holds only bookkeeping lines after ``offset``; cached."""
        seen = self.stats.get(EXPERIMENT_LOG)
        if seen is None:
            return False
        key = (offset, seen.st_ino, seen.st_size, seen.st_mtime_ns, seen.st_ctime_ns)
        if self._bookkeeping is None or self._bookkeeping[0] != key:
            path = os.path.join(self.directory, EXPERIMENT_LOG)
            self._bookkeeping = (key, only_bookkeeping_after(path, offset, seen.st_size))
        return self._bookkeeping[1]

    @staticmethod
    def _cursor_problems(cursor: LogCursor[Any], problems: list[str]) -> int:
        count = cursor.problem_count
        if cursor.read_error:
            problems.append(cursor.read_error)
            count += 1
        problems.extend(cursor.problems)
        if cursor.problem_count > len(cursor.problems):
            problems.append(
                f"{cursor.display}: {cursor.problem_count - len(cursor.problems)} more "
                "problems not listed"
            )
        return count

    def _conversation_status(
        self, cursor: LogCursor[ConversationLog], live: bool | None, legacy: bool, now: float
    ) -> tuple[ConversationStatus, str | None]:
        sink = cursor.sink
        if sink.ended:
            return _end_status(sink.end_status, sink.end_reason), sink.end_reason
        if cursor.event_lines == 0 and cursor.read_error:
            return "unknown", None
        if legacy:
            if self._is_fresh(cursor.mtime, now):
                return "running", None
            why = f"no end event and no write for over {self.stale_after:g} s"
        else:
            if live is not False:
                return "running", None
            why = "no end event and no live writer"
        return ("interrupted", why) if cursor.event_lines else ("empty", None)

    def _snapshot(
        self,
        conversation_id: str,
        cursor: LogCursor[ConversationLog],
        status: ConversationStatus,
        reason: str | None,
    ) -> ConversationState:
        # Cached on the cursor, so that it lives and dies with the log it describes.
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
        )
        cursor.snapshot = (key, snapshot)
        return snapshot

    def _timing(
        self,
        log: ExperimentLog | None,
        manifest: ManifestInfo,
        snapshots: list[ConversationState],
        status: RunStatus,
        progress: Progress,
    ) -> Timing:
        starts = [c.started_at for c in snapshots if c.started_at is not None]
        created = (parse_time(log.started_ts) if log else None) or manifest.created
        started = min(starts) if starts else None
        created = created or started
        started = started or created
        last_times = [c.last_event_at for c in snapshots if c.last_event_at is not None]
        experiment_log = self.experiment_log
        if experiment_log is not None:
            experiment_last = parse_time(experiment_log.last_event_ts)
            if experiment_last is not None:
                last_times.append(experiment_last)
        last_event = max(last_times) if last_times else None
        completed: datetime | None = None
        if log is not None and log.completed:
            completed = parse_time(log.completed_ts)
        elif status in _RUN_END_STATUSES and snapshots:
            ends = [c.ended_at or c.last_event_at for c in snapshots]
            completed = max((e for e in ends if e is not None), default=None)
        turns_completed = sum(c.turns_completed for c in snapshots)
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
        if progress.pending:
            turns_planned = _add(
                turns_planned, None if default_turns is None else progress.pending * default_turns
            )
        return Timing(
            created=created,
            started=started,
            last_event=last_event,
            completed=completed,
            turns_completed=turns_completed,
            turns_planned=turns_planned,
            running=status == "running",
        )

    def _last_errors(self, chosen: dict[str, LogCursor[ConversationLog]]) -> tuple[ErrorInfo, ...]:
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
                errors.append((when or _EPOCH, conversation_id, record.line, info))
        errors.sort(key=lambda item: item[:3])
        return tuple(item[3] for item in errors[-MAX_ERRORS_KEPT:])


def _rank(cursor: LogCursor[Any]) -> int:
    return 0 if not cursor.compressed else 1 if cursor.path.endswith(".gz") else 2


def _add(total: int | None, value: int | None) -> int | None:
    return None if total is None or value is None else total + value


def _end_status(status: str | None, reason: str | None) -> ConversationStatus:
    if status in _END_STATUSES:
        return status  # type: ignore[return-value]
    if reason in _COMPLETED_REASONS:
        return "completed"
    if reason in _FAILED_REASONS:
        return "failed"
    return "interrupted"


def _count(snapshots: Iterable[ConversationState]) -> dict[str, int]:
    counts = {
        "completed": 0,
        "failed": 0,
        "interrupted": 0,
        "running": 0,
        "empty": 0,
        "unknown": 0,
    }
    for c in snapshots:
        counts[c.status] += 1
    return counts


def _aggregate(progress: Progress) -> RunStatus:
    """A run's status from its conversations' (no run-level end event to go by)."""
    if progress.running:
        return "running"
    started = progress.started
    if started == 0:
        return "empty"
    if progress.unknown:
        return "unknown"
    if progress.interrupted or progress.pending:
        return "interrupted"
    if progress.failed == started:
        return "failed"
    if progress.empty == started:
        return "empty"
    return "completed"


def _manifest_disagrees(manifest_status: str, status: RunStatus) -> bool:
    if manifest_status == status:
        return False
    return not (manifest_status == "completed_with_failures" and status == "completed")


def _convergence(snapshots: list[ConversationState]) -> Convergence:
    latest = {c.id: c.latest_convergence for c in snapshots if c.latest_convergence is not None}
    mean = {c.id: c.mean_convergence for c in snapshots if c.mean_convergence is not None}
    return Convergence(
        trajectories={c.id: c.convergence for c in snapshots},
        latest=latest,
        mean=mean,
        mean_of_latest=math.fsum(latest.values()) / len(latest) if latest else None,
    )


def _tokens(snapshots: list[ConversationState]) -> TokenTotals:
    by_agent: dict[str, TokenCount] = {}
    by_model: dict[str, TokenCount] = {}
    total = TokenCount()
    for c in snapshots:
        for agent, count in c.tokens.items():
            model = (
                c.agent_a_model
                if agent == "agent_a"
                else c.agent_b_model
                if agent == "agent_b"
                else None
            ) or "unknown"
            by_agent[agent] = by_agent.get(agent, TokenCount()) + count
            by_model[model] = by_model.get(model, TokenCount()) + count
            total = total + count
    return TokenTotals(by_agent=by_agent, by_model=by_model, total=total)


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
