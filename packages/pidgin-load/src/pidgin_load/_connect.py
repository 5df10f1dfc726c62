"""Opening a database for writing: wait a bounded time for another writer, then say so."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pidgin_events import FILE_MODE, make_private_dir

from ._errors import DatabaseLockedError, LoadError
from ._schema import migrate

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_MEMORY_LIMIT",
    "LOCK_TIMEOUT_ENV",
    "MEMORY_LIMIT_ENV",
    "connect",
    "lock_timeout_from_env",
]

DEFAULT_LOCK_TIMEOUT = 10.0
LOCK_TIMEOUT_ENV = "PIDGIN_LOAD_LOCK_TIMEOUT"
"""Seconds to wait for a database another process holds (default 10)."""
MEMORY_LIMIT_ENV = "PIDGIN_LOAD_MEMORY_LIMIT"
"""DuckDB memory limit while loading (default 1GB); DuckDB spills to disk beyond it."""
DEFAULT_MEMORY_LIMIT = "1GB"

_FIRST_DELAY = 0.05
_MAX_DELAY = 1.0


def lock_timeout_from_env(value: float | None = None) -> float:
    """The argument if given, else ``$PIDGIN_LOAD_LOCK_TIMEOUT``, else 10 seconds."""
    if value is not None:
        return max(0.0, value)
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            raise LoadError(f"${LOCK_TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    return DEFAULT_LOCK_TIMEOUT


def _is_lock_conflict(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


def connect(db_path: Path, *, lock_timeout: float) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) and migrate the database at ``db_path``.

    DuckDB lets one process write a database file. If another holds it, retry with
    exponential backoff for up to ``lock_timeout`` seconds, then raise
    ``DatabaseLockedError``. Nothing is written before the lock is ours.
    """
    import duckdb

    # DuckDB would otherwise cache up to 80% of RAM; a loader's memory stays bounded.
    memory_limit = os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit}
    make_private_dir(db_path.parent)
    created = not db_path.exists()
    started = time.monotonic()
    delay = _FIRST_DELAY
    while True:
        try:
            con = duckdb.connect(str(db_path), config=config)
            break
        except duckdb.IOException as exc:
            waited = time.monotonic() - started
            if not _is_lock_conflict(exc):
                raise LoadError(f"cannot open database {db_path}: {exc}") from exc
            if waited >= lock_timeout:
                detail = str(exc).splitlines()[0]
                raise DatabaseLockedError(str(db_path), detail, waited) from exc
            time.sleep(min(delay, lock_timeout - waited))
            delay = min(delay * 2, _MAX_DELAY)
        except duckdb.Error as exc:
            hint = f" (${MEMORY_LIMIT_ENV}={memory_limit!r})" if "emory" in str(exc) else ""
            raise LoadError(f"cannot open database {db_path}: {exc}{hint}") from exc
    try:
        if created:
            os.chmod(db_path, FILE_MODE)  # it holds conversation content, like the logs
        # Naive timestamps (none in our logs, some in pidgin-ai's) are read as UTC.
        con.execute("SET TimeZone = 'UTC'")
        migrate(con, str(db_path))
    except BaseException:
        con.close()
        raise
    return con
