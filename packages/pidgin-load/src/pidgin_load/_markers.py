"""The two marker files a run directory carries: ``.loaded_to_db`` and ``.load_failed``.

What ``.loaded_to_db`` holds, which files it covers and when a run has changed since are
the load contract's rules (``pidgin_events``' ``LoadedMarker``, ``files_a_load_reads``,
``changes_since_load``), shared with pidgin-state so that "stale" on a screen means "the
next load reloads it". This module applies them: it says why a run is stale, and writes
the markers and the ``DatabaseLoadEvent`` after a load.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pidgin_events import (
    EXPERIMENT_LOG,
    LOAD_FAILED_MARKER,
    DatabaseLoadEvent,
    EventWriter,
    FileStat,
    LoadedMarker,
    changes_since_load,
    is_running,
    only_bookkeeping_after,
    stat_files,
    write_json_atomic,
    write_loaded_marker,
)

from ._run_files import RunFiles, inspect_run

__all__ = ["file_stats", "record_load_failure", "record_load_success", "stale_reason"]


def file_stats(run: RunFiles) -> list[FileStat]:
    """``FileStat`` of every file the load reads, sorted by name."""
    return sorted(stat_files(run.path, run.files).values(), key=lambda entry: entry.name)


def stale_reason(run: RunFiles, marker: dict[str, Any]) -> str | None:
    """How the run changed since the load ``marker`` records, in words; None if it did not."""
    now = {entry.name: entry for entry in file_stats(run)}
    log = run.path / EXPERIMENT_LOG
    size = now[EXPERIMENT_LOG].size if EXPERIMENT_LOG in now else 0
    changes = changes_since_load(
        marker.get("files"), now, lambda offset: only_bookkeeping_after(log, offset, size)
    )
    if changes is None:
        return "changed since its last load: its marker lists no files"
    return "changed since its last load: " + "; ".join(changes) if changes else None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _append_load_event(run: RunFiles, event: DatabaseLoadEvent) -> None:
    log = run.experiment_log
    if log is None:
        return  # chats and pidgin-ai directories have no experiment log to append to
    if is_running(run.path):
        return  # its live writer numbers the events; a second writer would repeat a seq
    with EventWriter(log, experiment_id=run.experiment_id) as writer:
        writer.emit(event)


def record_load_success(
    run: RunFiles,
    *,
    db_path: Path,
    schema_version: int,
    stats: list[FileStat],
    rows: dict[str, int],
    duration_ms: int,
) -> None:
    """After the commit: write ``.loaded_to_db``, drop ``.load_failed``, log the load."""
    write_loaded_marker(
        run.path,
        LoadedMarker(
            loaded_at=_now(),
            db_path=str(db_path),
            schema_version=schema_version,
            experiment_id=run.experiment_id,
            files=tuple(stats),
            rows=rows,
        ),
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
