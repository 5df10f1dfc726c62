"""Opening a database for writing: wait a bounded time for another writer, then say so."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pidgin_events import FILE_MODE, make_private_dir

from ._errors import DatabaseLockedError, LoadError
from ._schema import migrate

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_MEMORY_LIMIT",
    "LOCK_TIMEOUT_ENV",
    "MEMORY_LIMIT_ENV",
    "PRIVATE_FILES",
    "connect",
    "lock_timeout_from_env",
    "memory_limit_from_env",
]

DEFAULT_LOCK_TIMEOUT = 10.0
LOCK_TIMEOUT_ENV = "PIDGIN_LOAD_LOCK_TIMEOUT"
"""Seconds to wait for a database another process holds (default 10)."""
MEMORY_LIMIT_ENV = "PIDGIN_LOAD_MEMORY_LIMIT"
"""DuckDB memory limit while loading (default 1GB); DuckDB spills to disk beyond it."""
DEFAULT_MEMORY_LIMIT = "1GB"

STRING_COMPRESSION = "zstd"
"""How the loader's checkpoints compress text columns.

DuckDB's automatic choice for a column of long strings (the payloads, the 2-10 KB
messages) analyses them for dictionary and FSST compression, which took most of a load
of big logs (a 112 MB log: 17 s of a 20 s load, for a 50 MB database); zstd writes it in
under a second and smaller (11 MB). Only text columns are affected: numbers and
timestamps keep DuckDB's own choice, and readers read any of them. A database file in a
storage format older than zstd (made by DuckDB before 2.0, whose files default to the
v1.0 format) keeps DuckDB's choice: forcing zstd there would store the text uncompressed.
"""
CATALOG = "pidgin"
"""The name the loader's connection gives the database file it attaches."""

ROW_GROUP_ROWS = 16_384
"""Rows per row group the loader writes (DuckDB's default: 122,880).

Rows a transaction inserts stay in memory until they fill a row group, which DuckDB then
compresses and writes to the file at once; the rest waits for ``COMMIT``. With 10 KB
messages a default row group is over a gigabyte: beyond the memory limit, so it spilled
to disk and back, and ``COMMIT`` compressed what was left (44 s of a 1.1 GB load, 22 s
with this). Smaller row groups keep a big load's memory bounded and its ``COMMIT`` short;
readers read any row group size.
"""

_ZSTD_STORAGE = (1, 2, 0)
"""The first storage format with zstd."""


def _storage_version(con: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
    """The database file's storage format, as DuckDB tags it (``v2.0.0+``); () if unknown."""
    row = con.execute(
        "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    tag = str((row[0] or {}).get("storage_version", "")) if row else ""
    digits = tag.strip("v+").split(".")
    return tuple(int(part) for part in digits) if all(p.isdigit() for p in digits) else ()


_FIRST_DELAY = 0.05
_MAX_DELAY = 1.0


class _PrivateUmask:
    """Holds the process umask at 077 while any database is open, then restores it.

    DuckDB creates its write-ahead log (``<db>.wal``) and spill directory (``<db>.tmp``)
    with the process umask, and they hold the rows being loaded: conversation content.
    The umask is per process, so this is counted (nested and threaded opens are fine);
    files other threads create meanwhile are private too, which errs on the safe side.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = 0

    def acquire(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._saved = os.umask(0o077)
            self._depth += 1

    def release(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                os.umask(self._saved)


PRIVATE_FILES = _PrivateUmask()


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


def memory_limit_from_env() -> str:
    """``$PIDGIN_LOAD_MEMORY_LIMIT``, else 1GB: DuckDB would otherwise cache up to 80% of RAM."""
    return os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT


def _is_lock_conflict(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


def _open(db_path: Path, config: dict[str, Any], memory_limit: str) -> duckdb.DuckDBPyConnection:

    import duckdb

    try:
        # DuckDB's own spill directory for a file, beside it (the in-memory catalog the file
        # is attached to would spill to the working directory)
        con = duckdb.connect(":memory:", config={"temp_directory": f"{db_path}.tmp", **config})
    except duckdb.Error as exc:
        hint = f" (${MEMORY_LIMIT_ENV}={memory_limit!r})" if "emory" in str(exc) else ""
        raise LoadError(f"cannot open database {db_path}: {exc}{hint}") from exc
    try:
        quoted = str(db_path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS {CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
        con.execute(f"USE {CATALOG}")
    except duckdb.IOException:
        con.close()
        raise  # the caller tells a lock conflict from the rest
    except duckdb.Error as exc:
        con.close()
        hint = f" (${MEMORY_LIMIT_ENV}={memory_limit!r})" if "emory" in str(exc) else ""
        raise LoadError(f"cannot open database {db_path}: {exc}{hint}") from exc
    try:
        # Naive timestamps (none in our logs, some in pidgin-ai's) are read as UTC.
        con.execute("SET TimeZone = 'UTC'")
        if _storage_version(con) >= _ZSTD_STORAGE:
            con.execute(f"SET force_compression = '{STRING_COMPRESSION}'")
        migrate(con, str(db_path))
    except BaseException:
        con.close()
        raise
    return con


def _create(db_path: Path, config: dict[str, Any], memory_limit: str) -> None:
    """Create the database with its schema under a temporary name, then link it in place.

    So a database file, once it exists, always has its schema: a load killed while
    creating it leaves no file at all (at most a ``.<name>.<pid>.creating`` beside it).
    Linking never replaces: if another loader created it meanwhile, theirs is kept.
    """
    temporary = db_path.with_name(f".{db_path.name}.{os.getpid()}.creating")
    temporary.unlink(missing_ok=True)
    try:
        _open(temporary, config, memory_limit).close()
        os.chmod(temporary, FILE_MODE)  # it will hold conversation content, like the logs
        try:
            os.link(temporary, db_path)
        except FileExistsError:
            pass  # another loader created it first: use theirs
        except OSError:
            # No hard links on this filesystem: a rename, which replaces only a file that
            # appeared in the last microseconds (another loader's empty new database).
            if not db_path.exists():
                os.replace(temporary, db_path)
    finally:
        temporary.unlink(missing_ok=True)
        Path(f"{temporary}.wal").unlink(missing_ok=True)


def connect(
    db_path: Path, *, lock_timeout: float, on_wait: Callable[[str], None] | None = None
) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) and migrate the database at ``db_path``.

    DuckDB lets one process write a database file. If another holds it, retry with
    exponential backoff for up to ``lock_timeout`` seconds, then raise
    ``DatabaseLockedError``. ``on_wait(message)`` is called once, as soon as the wait
    begins, so that nobody sits in front of a silent command. Nothing is written before
    the lock is ours. The caller holds ``PRIVATE_FILES`` while the connection is open.
    """

    import duckdb

    memory_limit = memory_limit_from_env()
    config: dict[str, Any] = {"memory_limit": memory_limit}
    make_private_dir(db_path.parent)
    if not db_path.exists():
        _create(db_path, config, memory_limit)
    started = time.monotonic()
    delay = _FIRST_DELAY
    while True:
        try:
            return _open(db_path, config, memory_limit)
        except duckdb.IOException as exc:
            waited = time.monotonic() - started
            if not _is_lock_conflict(exc):
                raise LoadError(f"cannot open database {db_path}: {exc}") from exc
            detail = str(exc).splitlines()[0]
            if waited >= lock_timeout:
                raise DatabaseLockedError(str(db_path), detail, waited) from exc
            if on_wait is not None and delay == _FIRST_DELAY:
                on_wait(
                    f"database {db_path} is held by another process ({detail}); "
                    f"waiting up to {lock_timeout:g} s for it"
                )
            time.sleep(min(delay, lock_timeout - waited))
            delay = min(delay * 2, _MAX_DELAY)
