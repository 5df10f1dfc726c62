"""Small JSON files beside the logs: the loader's markers and pidgin-ai's manifest.

They are written by other programs (pidgin-load, pidgin-ai) and may be missing keys,
half-written or garbage: each is read only when its ``stat`` changes, and anything
wrong becomes a problem on the state, never an exception.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from pidgin_events import open_for_reading, unreadable_reason

from ._model import DatabaseState
from ._sinks import ExperimentLog, LoadRecord
from ._time import parse_time

__all__ = ["JsonFile", "ManifestInfo", "database_state", "manifest_info"]

_MAX_JSON_FILE = 16 << 20


class JsonFile:
    """A small JSON object on disk, re-read when its ``stat`` changes."""

    def __init__(self, path: str, display: str) -> None:
        self.path = path
        self.display = display
        self.identity: tuple[int, int, int, int, int] | None = None
        self.data: dict[str, Any] | None = None
        self.problem: str | None = None
        self.mtime: float | None = None

    def sync(self, st: os.stat_result) -> bool:
        seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if seen == self.identity:
            return False
        self.identity = seen
        self.mtime = st.st_mtime
        self.data, self.problem = None, None
        if not stat.S_ISREG(st.st_mode):
            self.problem = f"{self.display}: not a regular file; not read"
        elif st.st_size > _MAX_JSON_FILE:
            self.problem = f"{self.display}: {st.st_size} bytes is too large; not read"
        else:
            try:
                fd = open_for_reading(self.path)
                try:  # os.read allocates what it is asked for: ask for what is there
                    raw = os.read(fd, min(os.fstat(fd).st_size, _MAX_JSON_FILE) + 1)
                finally:
                    os.close(fd)
            except OSError as exc:
                self.problem = f"{self.display}: cannot read: {exc.strerror or exc}"
                self.identity = None  # try again next time: a permission may be fixed
                return True
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                self.problem = f"{self.display}: {unreadable_reason(raw, exc)}"
            else:
                if isinstance(value, dict):
                    self.data = value
                else:
                    self.problem = f"{self.display}: expected a JSON object"
        return True


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _time(data: dict[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    return parse_time(value) if isinstance(value, str) else None


def _rows(value: Any) -> dict[str, int] | None:
    if isinstance(value, dict) and all(
        isinstance(k, str) and type(v) is int for k, v in value.items()
    ):
        return dict(value)
    return None


def database_state(
    loaded: JsonFile | None,
    failed: JsonFile | None,
    log: ExperimentLog | None,
    *,
    changes: Callable[[Any], list[str] | None] | None = None,
) -> tuple[DatabaseState, list[str]]:
    """Whether the run is in DuckDB, and the problems met finding out.

    The ``.loaded_to_db`` marker decides ``loaded``;
    the newest failure (``.load_failed`` or a failed ``DatabaseLoadEvent``) that is
    newer than that load sets ``failed``. Marker timestamps fall back to file times.
    ``changes`` compares the marker's ``files`` list with the disk (pidgin-events' load
    contract, ``changes_since_load``): any difference makes a loaded run ``stale``.

    A ``DatabaseLoadEvent`` saying "loaded" without its marker does not count as loaded:
    the marker is written after the commit, so it is the loader's word.
    """
    problems: list[str] = []
    loaded_at: datetime | None = None
    db_path = fingerprint = error = None
    rows: dict[str, int] | None = None
    details: dict[str, Any] | None = None
    stale_reason: str | None = None
    is_loaded = loaded is not None
    source: str | None = None
    if loaded is not None:
        source = ".loaded_to_db"
        if loaded.problem:
            problems.append(loaded.problem)
        data = loaded.data or {}
        details = loaded.data
        loaded_at = _time(data, "loaded_at") or _file_time(loaded)
        db_path = _text(data, "db_path")
        fingerprint = _text(data, "fingerprint")
        rows = _rows(data.get("rows"))
        if loaded.data is not None and "loaded_at" not in data:
            problems.append(f"{loaded.display}: no 'loaded_at'; using the file's time")
        found = None if changes is None else changes(data.get("files"))
        if found:  # None: no usable list (not pidgin-load's marker), so nobody can tell
            stale_reason = "changed since its load: " + "; ".join(found)

    failure_at: datetime | None = None
    failure_error: str | None = None
    failure_db: str | None = None
    failure_source: str | None = None
    if failed is not None:
        if failed.problem:
            problems.append(failed.problem)
        data = failed.data or {}
        failure_at = _time(data, "failed_at") or _file_time(failed)
        failure_error = _text(data, "error") or (
            "unknown (unreadable .load_failed marker)" if failed.data is None else None
        )
        failure_db = _text(data, "db_path")
        failure_source = ".load_failed"
        if not is_loaded:
            details = failed.data
    event: LoadRecord | None = None if log is None else log.last_load_failure
    if event is not None:
        event_at = parse_time(event.timestamp)
        if failure_at is None or (event_at is not None and event_at > failure_at):
            failure_at, failure_error = event_at, event.error
            failure_db, failure_source = event.db_path, "DatabaseLoadEvent"
    is_failed = failure_source is not None and (
        not is_loaded
        or (failure_at is not None and loaded_at is not None and failure_at > loaded_at)
    )
    if is_failed:
        source = failure_source
        error = failure_error
        db_path = db_path or failure_db
    elif not is_loaded and log is not None and log.last_load is not None:
        db_path = log.last_load.db_path
    state = DatabaseState(
        loaded=is_loaded,
        loaded_at=loaded_at,
        db_path=db_path,
        fingerprint=fingerprint,
        rows=rows,
        failed=is_failed,
        failed_at=failure_at if is_failed else None,
        error=error,
        source=source,
        details=details,
        stale=stale_reason is not None,
        stale_reason=stale_reason,
        post_processing=None if log is None else log.post_processing,
    )
    return state, problems


def _file_time(marker: JsonFile) -> datetime | None:
    return None if marker.mtime is None else datetime.fromtimestamp(marker.mtime, UTC)


class ManifestInfo:
    """What is taken from pidgin-ai's ``manifest.json``: names, plan, creation time, and
    whether the run recorded its end (a final ``status`` with its ``completed_at``).

    Status and counts in it are rewritten in place after every turn: the status says only
    whether the writer is done, never how the conversations ended (the events say that).
    """

    __slots__ = (
        "completed_at",
        "created",
        "experiment_id",
        "max_turns",
        "name",
        "planned",
        "status",
    )

    def __init__(self) -> None:
        self.experiment_id: str | None = None
        self.name: str | None = None
        self.planned: int | None = None
        self.created: datetime | None = None
        self.status: str | None = None
        self.completed_at: datetime | None = None
        self.max_turns: int | None = None


def manifest_info(manifest: JsonFile | None) -> ManifestInfo:
    info = ManifestInfo()
    if manifest is None or manifest.data is None:
        return info
    data = manifest.data
    info.experiment_id = _text(data, "experiment_id")
    info.name = _text(data, "name")
    planned = data.get("total_conversations")
    info.planned = planned if type(planned) is int and planned >= 0 else None
    info.created = _time(data, "created_at")
    info.status = _text(data, "status")
    info.completed_at = _time(data, "completed_at")
    config = data.get("config")
    if isinstance(config, dict) and type(config.get("max_turns")) is int:
        info.max_turns = config["max_turns"]
    return info
