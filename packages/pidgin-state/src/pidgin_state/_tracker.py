"""Directory tracking: one run directory (an experiment or a chat) followed across calls.

A refresh probes the run lock, lists the directory, ``stat``s the files that matter and
lets each log cursor read what was appended. When nothing changed (same files, same
``stat``s, same verdict on the writer) the previous snapshot object is returned as it is:
that path costs one ``scandir``, one ``stat`` per file and one ``flock`` probe.

The lock is probed *before* the logs are read, so an end event written just after the
probe is seen as ``running`` for one refresh, never as ``interrupted``. Which signals
decide whether a writer is at work, and what follows from it, is ``_status``'s to say.
"""

from __future__ import annotations

import os
import stat
import time
from functools import partial
from typing import Any

from pidgin_events import (
    EXPERIMENT_LOG,
    LOAD_FAILED_MARKER,
    LOADED_MARKER,
    MANIFEST,
    RUN_LOCK,
    FileStat,
    RunFormat,
    RunKind,
    changes_since_load,
    conversation_id_of_log,
    files_a_load_reads,
    is_running,
    only_bookkeeping_after,
)

from ._errors import NotAnExperimentError
from ._markers import JsonFile, manifest_info
from ._model import ExperimentState
from ._scan import LogCursor
from ._sinks import ConversationLog, ExperimentLog
from ._status import (
    PIDGIN_AI_LIVE_STATUSES,
    Writer,
    is_fresh,
    pidgin_ai_pid_alive,
    writer_alive,
)
from ._time import parse_time

__all__ = ["RunDirTracker", "UnlistableRunError"]

_JSON_FILES = frozenset({MANIFEST, LOADED_MARKER, LOAD_FAILED_MARKER})
_EXPERIMENT_LOGS = frozenset({EXPERIMENT_LOG, EXPERIMENT_LOG + ".gz", EXPERIMENT_LOG + ".zst"})


class UnlistableRunError(NotAnExperimentError):
    """The directory exists but cannot be listed (a permission, an I/O error)."""


class RunDirTracker:
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
        return min(self.experiment_logs.values(), key=lambda c: (rank(c), c.path))

    # --- refresh -----------------------------------------------------------------------

    def refresh(self) -> ExperimentState:
        from ._assemble import assemble

        now = time.time()
        # Before reading: a lock seen free means every write before it is on disk.
        lock = is_running(self.directory)
        if self._scan_directory():
            self.version += 1
        run_format = self.format()
        writer = self._writer(lock, run_format)
        fresh = self.fresh_flags(now) if writer.alive is None else ()
        key: tuple[object, ...] = (self.version, writer, fresh)
        if key == self._key and self._state is not None:
            return self._state
        state = assemble(self, writer, run_format, now)
        self._key, self._state = key, state
        return state

    def _writer(self, lock: bool | None, run_format: RunFormat) -> Writer:
        """Whether a writer is at work, from every signal this run directory has."""
        if run_format == "pidgin":
            log = self.experiment_log
            ended = log is not None and log.sink.completed
            recorded_end = "the experiment recorded its end" if ended else None
            return writer_alive(recorded_end=recorded_end, lock=lock, pid_alive=None)
        manifest = manifest_info(self.json_files.get(MANIFEST))
        recorded_end = None
        if manifest.status is not None and manifest.status not in PIDGIN_AI_LIVE_STATUSES:
            recorded_end = f"manifest.json records the run's end (status {manifest.status!r})"
        elif manifest.status is None and manifest.completed_at is not None:
            recorded_end = "manifest.json records the run's end (completed_at)"
        pid_alive = None if recorded_end else pidgin_ai_pid_alive(manifest.experiment_id)
        return writer_alive(recorded_end=recorded_end, lock=None, pid_alive=pid_alive)

    def fresh_flags(self, now: float) -> tuple[object, ...]:
        """Which unfinished logs count as being written now (part of the cache key)."""
        flags: list[object] = [self.recently_written(now)]
        for name, cursor in self.logs.items():
            if not cursor.sink.ended:
                flags.append((name, self.log_is_fresh(cursor, now)))
        return tuple(flags)

    def log_is_fresh(self, cursor: LogCursor[Any], now: float) -> bool:
        return is_fresh(cursor.mtime, parse_time(cursor.last_event_ts), now, self.stale_after)

    def recently_written(self, now: float) -> bool:
        """Whether anything was written lately, by file times and by the events' own."""
        cursors: list[LogCursor[Any]] = [*self.logs.values(), *self.experiment_logs.values()]
        times = [c.mtime for c in cursors] + [f.mtime for f in self.json_files.values()]
        newest = max((t for t in times if t is not None), default=None)
        events = [parse_time(c.last_event_ts) for c in cursors]
        newest_event = max((e for e in events if e is not None), default=None)
        return is_fresh(newest, newest_event, now, self.stale_after)

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

    def format(self) -> RunFormat:
        if not self.experiment_logs and (
            MANIFEST in self.json_files or any(name.startswith("events_") for name in self.logs)
        ):
            return "pidgin-ai-1.x"
        return "pidgin"

    # --- what the snapshot is built from -----------------------------------------------

    def changes_since_load(self, recorded: Any) -> list[str] | None:
        """The load contract's ``changes_since_load`` for the files as the last scan saw them."""
        regular = {name: st for name, st in self.stats.items() if stat.S_ISREG(st.st_mode)}
        now = {
            name: FileStat.of(name, regular[name].st_size, regular[name].st_mtime_ns)
            for name in files_a_load_reads(regular)
        }
        return changes_since_load(recorded, now, self._bookkeeping_after)

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


def rank(cursor: LogCursor[Any]) -> int:
    """0 for a plain log, 1 for its ``.gz``, 2 for its ``.zst``: the lowest is read."""
    return 0 if not cursor.compressed else 1 if cursor.path.endswith(".gz") else 2
