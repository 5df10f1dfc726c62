"""The two marker files a run directory carries: ``.loaded_to_db`` and ``.load_failed``.

The fingerprint is a SHA-256 over the name, size and ``mtime_ns`` of every file the load
read: ``os.stat`` only, so checking a thousand experiments costs milliseconds, and any
append (size) or rewrite (mtime) is seen. A rewrite that keeps both size and mtime is not
seen; ``force`` reloads then.

``experiment.jsonl`` is special: the loader itself appends a ``DatabaseLoadEvent`` to it
after each load, and the runner brackets the load with post-processing events. Its
fingerprint entry is therefore its size when loaded, without mtime, and a later check
accepts bytes after that size only if they are such bookkeeping lines
(``BOOKKEEPING_EVENTS``); anything else appended there makes the run stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pidgin_events import (
    EXPERIMENT_LOG,
    FILE_MODE,
    LOAD_FAILED_MARKER,
    LOADED_MARKER,
    DatabaseLoadEvent,
    EventWriter,
    LogReader,
    is_running,
)

from ._runs import MANIFEST, Run, inspect_run

__all__ = [
    "BOOKKEEPING_EVENTS",
    "FileStat",
    "file_stats",
    "fingerprint",
    "read_marker",
    "record_load_failure",
    "record_load_success",
    "stale_reason",
    "write_json_atomic",
]


@dataclass(frozen=True, slots=True)
class FileStat:
    """What the fingerprint covers of one file."""

    name: str
    size: int
    mtime_ns: int | None  # None for experiment.jsonl, which the loader appends to

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}


def file_stats(run: Run) -> list[FileStat]:
    """Stat every file the load reads, sorted by name."""
    paths = [log.path for log in run.logs]
    if run.manifest is not None:
        paths.append(run.path / MANIFEST)
    stats = []
    for path in paths:
        info = path.stat()
        mtime = None if path.name == EXPERIMENT_LOG else info.st_mtime_ns
        stats.append(FileStat(path.name, info.st_size, mtime))
    return sorted(stats, key=lambda stat: stat.name)


def fingerprint(stats: list[FileStat]) -> str:
    digest = hashlib.sha256()
    for stat in stats:
        digest.update(f"{stat.name}\0{stat.size}\0{stat.mtime_ns}\n".encode())
    return "stat-v1:" + digest.hexdigest()


def read_marker(run_dir: Path, name: str = LOADED_MARKER) -> dict[str, Any] | None:
    """A marker's JSON content, or None if it is absent or unreadable."""
    try:
        data = json.loads((run_dir / name).read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


BOOKKEEPING_EVENTS = (
    "DatabaseLoadEvent",
    "PostProcessingStartEvent",
    "PostProcessingCompleteEvent",
)
"""Events written after a run ended, about its post-processing; they never make it stale."""

_BOOKKEEPING_PREFIXES = tuple(f'{{"event_type":"{name}"'.encode() for name in BOOKKEEPING_EVENTS)


def _only_bookkeeping_after(path: Path, offset: int) -> bool:
    """Whether everything after ``offset`` in experiment.jsonl is bookkeeping lines."""
    reader = LogReader(path, offset=offset)
    for _, raw in reader.lines():
        if not raw.startswith(_BOOKKEEPING_PREFIXES):
            return False
    return reader.pending == 0


def effective_stats(run: Run, marker: dict[str, Any] | None) -> list[FileStat]:
    """Current stats, with experiment.jsonl counted at its loaded size if only we appended."""
    stats = file_stats(run)
    recorded = {
        entry.get("name"): entry.get("size")
        for entry in (marker or {}).get("files", [])
        if isinstance(entry, dict)
    }
    loaded_size = recorded.get(EXPERIMENT_LOG)
    if not isinstance(loaded_size, int):
        return stats
    return [
        FileStat(stat.name, loaded_size, None)
        if stat.name == EXPERIMENT_LOG
        and stat.size > loaded_size
        and _only_bookkeeping_after(run.path / EXPERIMENT_LOG, loaded_size)
        else stat
        for stat in stats
    ]


def stale_reason(marker: dict[str, Any], stats: list[FileStat]) -> str:
    """In words, how the files differ from what the marker says was loaded."""
    before: dict[str, dict[str, Any]] = {
        str(entry.get("name")): entry
        for entry in marker.get("files", [])
        if isinstance(entry, dict)
    }
    now = {stat.name: stat for stat in stats}
    changes = []
    for name in sorted(now.keys() - before.keys()):
        changes.append(f"{name} is new")
    for name in sorted(before.keys() - now.keys()):
        changes.append(f"{name} was removed")
    for name in sorted(now.keys() & before.keys()):
        old, new = before[name], now[name]
        if old.get("size") != new.size:
            changes.append(f"{name} changed size from {old.get('size')} to {new.size} bytes")
        elif old.get("mtime_ns") != new.mtime_ns:
            changes.append(f"{name} was modified")
    return "changed since its last load: " + ("; ".join(changes) or "fingerprint differs")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new, never half."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, sort_keys=True)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _append_load_event(run: Run, event: DatabaseLoadEvent) -> None:
    log = run.experiment_log
    if log is None:
        return  # chats and pidgin-ai directories have no experiment log to append to
    if is_running(run.path):
        return  # its live writer numbers the events; a second writer would repeat a seq
    with EventWriter(log, experiment_id=run.experiment_id) as writer:
        writer.emit(event)


def record_load_success(
    run: Run,
    *,
    db_path: str | os.PathLike[str],  # a file, or a lake's label
    schema_version: int,
    stats: list[FileStat],
    rows: dict[str, int],
    duration_ms: int,
) -> None:
    """After the commit: write ``.loaded_to_db``, drop ``.load_failed``, log the load."""
    write_json_atomic(
        run.path / LOADED_MARKER,
        {
            "loaded_at": _now(),
            "db_path": str(db_path),
            "schema_version": schema_version,
            "experiment_id": run.experiment_id,
            "files": [stat.to_dict() for stat in stats],
            "fingerprint": fingerprint(stats),
            "rows": rows,
        },
    )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(run.path / LOAD_FAILED_MARKER)
    _append_load_event(
        run,
        DatabaseLoadEvent(
            experiment_id=run.experiment_id,
            status="loaded",
            db_path=str(db_path),
            rows=rows,
            duration_ms=duration_ms,
        ),
    )


def record_load_failure(
    run_dir: str | os.PathLike[str], error: BaseException | str, db_path: str | os.PathLike[str]
) -> None:
    """Record in the run directory why its load failed, so that it stays visibly unloaded.

    Writes ``.load_failed`` (JSON: failed_at, db_path, error, error_type) and, for an
    experiment written by pidgin-events, appends a ``DatabaseLoadEvent(status="failed")``
    to its ``experiment.jsonl``. ``load_all`` retries such runs. Raises ``OSError`` if the
    directory cannot be written.
    """
    path = Path(run_dir).absolute()
    message = str(error)
    error_type = type(error).__name__ if isinstance(error, BaseException) else "LoadError"
    write_json_atomic(
        path / LOAD_FAILED_MARKER,
        {
            "failed_at": _now(),
            "db_path": str(db_path),
            "error": message,
            "error_type": error_type,
        },
    )
    try:
        run = inspect_run(path)
    except Exception:
        return  # not a readable run: the marker alone says what happened
    _append_load_event(
        run,
        DatabaseLoadEvent(
            experiment_id=run.experiment_id, status="failed", db_path=str(db_path), error=message
        ),
    )
