"""A DuckLake as the place a load goes: many loaders, on many machines, at once.

A run is loaded in two steps. First the loader's usual transaction fills a staging
database (in memory, spilling to a private temporary directory), with the local schema
and the loader's SQL unchanged. Then ``publish`` copies those rows into the lake in one
lake transaction: delete the experiment's earlier rows (if any), one ``INSERT`` per
table, commit. The lake thus sees one short transaction per experiment, writing one
Parquet file per table, however many statements the load itself needed (each lake
statement costs round trips to the catalog). The lake's schema is the local database's,
adapted to what DuckLake supports (``lake_sql``).

Two kinds of collision are settled in PostgreSQL, with transaction-scoped advisory locks
taken through a second connection to the catalog database (released by PostgreSQL when
the transaction ends or the loader dies):

* creating the catalog and applying migrations: concurrent first attaches would collide
  on the catalog's own tables, so one loader at a time attaches and migrates;
* publishing: two loaders of the same experiment (the same directory on a shared disk,
  or a copy on two machines) would each delete nothing and insert their rows, which
  DuckLake does not see as a conflict; and DuckLake 1.5's concurrent commits to a
  PostgreSQL catalog fail now and then even without a logical conflict (racing on new
  ids: duckdb/ducklake#459, #1094, #1248), more often the busier the machines. So the
  lake transaction runs under one lock for the whole lake, taken before it starts and
  released after it commits: a second load of an experiment replaces the first's rows,
  and commits never race. Only the copy and commit (fractions of a second) are
  serialised; reading the logs and staging the rows, the bulk of a load, run in
  parallel on every loader.

Other commit conflicts are retried, by DuckLake itself when the two snapshots do not
touch the same data, and by ``publish`` (the copy again, after a growing pause) when
they do; one that persists is reported as a failed load, which stays pending.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import DatabaseLockedError, LoadError
from ._extensions import load_lake_extensions
from ._schema import TABLES, migrate, stored_fingerprints
from ._target import TARGET_ENV, LakeTarget

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "CATALOG_ALIAS",
    "COMMIT_ATTEMPTS",
    "LAKE_PAUSE_ENV",
    "LakeDatabase",
    "attach_lake",
    "connect_lake",
    "lake_sql",
]

CATALOG_ALIAS = "pidgin_lake"
_LOCKS_ALIAS = "pidgin_lake_locks"
_STAGING = "memory"  # DuckDB's name for the in-memory database it opens
LAKE_PAUSE_ENV = "PIDGIN_LOAD_TEST_PAUSE_BEFORE_LAKE_COMMIT"
"""Test hook: seconds to sleep inside the lake transaction, its rows written, before COMMIT."""
COMMIT_ATTEMPTS = 6
"""Loads of one experiment tried when commits keep conflicting, before it is reported."""
_FIRST_PAUSE = 0.2
_FIRST_LOCK_PAUSE = 0.02
_CATALOG_LOCK_TIMEOUT = 120.0  # attaching and migrating take milliseconds; this is a hang
_PUBLISH_LOCK_TIMEOUT = 300.0
"""At least this long to wait for the lake's publish lock: other loaders hold it in turn."""

_PRIMARY_KEY_CLAUSE = re.compile(r",\s*PRIMARY KEY\s*\([^)]*\)", re.IGNORECASE)
_INLINE_KEY = re.compile(r"(\s+NOT NULL)?\s+PRIMARY KEY\b", re.IGNORECASE)
_INLINE_UNIQUE = re.compile(r"\s+UNIQUE\b", re.IGNORECASE)
_NON_LITERAL_DEFAULT = re.compile(r"\s+DEFAULT\s+current_timestamp\b", re.IGNORECASE)
_INDEX = re.compile(r"CREATE\s+(UNIQUE\s+)?INDEX\b[^;]*;", re.IGNORECASE)


def lake_sql(sql: str) -> str:
    """A migration as DuckLake takes it: no keys, indexes or computed defaults.

    DuckLake supports NOT NULL but no PRIMARY KEY, UNIQUE or index, and only literal
    defaults. The local database keeps them; in the lake, the loader's own
    delete-then-insert under the publish lock is what keeps rows unique.
    """
    sql = _INDEX.sub("", sql)
    sql = _PRIMARY_KEY_CLAUSE.sub("", sql)  # its columns are declared NOT NULL anyway
    sql = _INLINE_KEY.sub(" NOT NULL", sql)  # a key column stays non-null
    sql = _INLINE_UNIQUE.sub("", sql)
    return _NON_LITERAL_DEFAULT.sub("", sql)


def _lock_key(name: str) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock``, the same on every machine."""
    digest = hashlib.blake2b(f"pidgin-load:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def _pause_for_tests() -> None:
    seconds = os.environ.get(LAKE_PAUSE_ENV)
    if seconds:
        print(
            f"pidgin-load: pausing {seconds} s before the lake commit", file=sys.stderr, flush=True
        )
        time.sleep(float(seconds))


def _is_conflict(exc: BaseException) -> bool:
    import duckdb

    if not isinstance(exc, duckdb.Error):
        return False
    text = str(exc).lower()
    return isinstance(exc, duckdb.TransactionException) or "conflict" in text


class LakeDatabase:
    """The lake, attached on first need and kept for every run loaded into it."""

    def __init__(
        self,
        target: LakeTarget,
        lock_timeout: float,
        memory_limit: str,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.target = target
        self.path = target.label  # what markers, events and summaries name
        self._lock_timeout = lock_timeout
        self._memory_limit = memory_limit
        self._on_wait = on_wait
        self._con: duckdb.DuckDBPyConnection | None = None
        self._spill: Path | None = None

    # -- connection -------------------------------------------------------------------

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            import duckdb

            self._spill = Path(tempfile.mkdtemp(prefix="pidgin-lake-"))
            try:
                self._con = self._attach()
            except duckdb.Error as exc:
                self.close()
                raise LoadError(
                    f"cannot open the lake {self.path}: "
                    f"{self.target.scrub(str(exc).splitlines()[0])}; "
                    "nothing was loaded, and runs stay pending until a later load "
                    "(`pidgin-load --all ROOT` or `pidgin load-db --all`) reaches it"
                ) from exc
            except BaseException:
                self.close()
                raise
        return self._con

    def _attach(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        con = duckdb.connect(
            ":memory:",
            config={"memory_limit": self._memory_limit, "temp_directory": str(self._spill)},
        )
        self._con = con
        con.execute("SET TimeZone = 'UTC'")
        load_lake_extensions(con)
        catalog = _quoted(self.target.catalog)
        con.execute(f"ATTACH '{catalog}' AS {_LOCKS_ALIAS} (TYPE postgres, READ_ONLY)")
        options = (
            ""
            if self.target.data_path is None
            else (f" (DATA_PATH '{_quoted(self.target.data_path)}')")
        )
        with self._advisory_lock("catalog", _CATALOG_LOCK_TIMEOUT):
            con.execute(f"ATTACH 'ducklake:postgres:{catalog}' AS {CATALOG_ALIAS}{options}")
            con.execute(f"USE {CATALOG_ALIAS}")
            migrate(con, self.path, adapt=lake_sql)
        con.execute(f"USE {_STAGING}")
        migrate(con, f"{self.path} (staging)")
        return con

    @contextlib.contextmanager
    def _advisory_lock(self, name: str, timeout: float) -> Iterator[None]:
        """Hold PostgreSQL's advisory lock ``name`` for the block (other loaders wait).

        ``on_wait`` is told once, as the wait begins, like a wait for a local file.
        """
        import duckdb

        assert self._con is not None
        cursor = self._con.cursor()  # its own transaction, hence its own PostgreSQL one
        try:
            cursor.execute("BEGIN TRANSACTION")
            sql = (
                f"SELECT * FROM postgres_query('{_LOCKS_ALIAS}', "
                f"'SELECT pg_try_advisory_xact_lock({_lock_key(name)})::text AS got')"
            )
            started = time.monotonic()
            pause = _FIRST_LOCK_PAUSE
            while True:
                row = cursor.execute(sql).fetchone()
                if row is not None and row[0] == "true":
                    break
                waited = time.monotonic() - started
                if waited >= timeout:
                    raise DatabaseLockedError(
                        self.path, f"another loader holds the lock on {name}", waited
                    )
                if self._on_wait is not None and pause == _FIRST_LOCK_PAUSE:
                    self._on_wait(
                        f"lake {self.path}: another loader holds its {name} lock; "
                        f"waiting up to {timeout:g} s for it"
                    )
                time.sleep(min(pause, max(0.0, timeout - waited)) * random.uniform(0.5, 1.0))
                pause = min(pause * 2, 0.2)
            yield
        finally:
            with contextlib.suppress(duckdb.Error):
                cursor.execute("ROLLBACK")  # ends the PostgreSQL transaction: lock released
            cursor.close()

    def publish(self, experiment_id: str) -> None:
        """Copy the staged rows of one experiment into the lake, replacing any earlier ones.

        Holds the lake's publish lock throughout; a commit conflict (with a writer outside
        pidgin-load, such as a maintenance ``CHECKPOINT``) is retried with a growing
        pause, and reported (``LoadError``) if it persists. Staging is emptied whatever
        happens.
        """
        con = self.connection()
        try:
            with self._advisory_lock("publish", max(self._lock_timeout, _PUBLISH_LOCK_TIMEOUT)):
                self._publish_with_retries(con, experiment_id)
        finally:
            for table in TABLES:
                con.execute(f"DELETE FROM {_STAGING}.main.{table}")

    def _publish_with_retries(self, con: duckdb.DuckDBPyConnection, experiment_id: str) -> None:
        import duckdb

        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            con.execute("BEGIN TRANSACTION")
            try:
                self._copy(con, experiment_id)
                _pause_for_tests()
                con.execute("COMMIT")
                return
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if not _is_conflict(exc):
                    raise LoadError(
                        f"{experiment_id}: writing to the lake {self.path} failed: "
                        f"{str(exc).splitlines()[0]}"
                    ) from exc
                if attempt == COMMIT_ATTEMPTS:
                    raise LoadError(
                        f"{experiment_id}: commits to the lake {self.path} kept conflicting "
                        f"with other loaders ({attempt} attempts; last: "
                        f"{str(exc).splitlines()[0]}); nothing was written, and the run "
                        "stays pending for the next load"
                    ) from exc
                time.sleep(_FIRST_PAUSE * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise

    @staticmethod
    def _copy(con: duckdb.DuckDBPyConnection, experiment_id: str) -> None:
        lake = f"{CATALOG_ALIAS}.main"
        params = {"experiment_id": experiment_id}
        present = con.execute(
            f"SELECT count(*) FROM {lake}.experiments WHERE experiment_id = $experiment_id",
            params,
        ).fetchone()
        if present and present[0]:  # every table's rows arrive in one commit: check one
            for table in TABLES:
                con.execute(
                    f"DELETE FROM {lake}.{table} WHERE experiment_id = $experiment_id", params
                )
        for table in TABLES:
            con.execute(f"INSERT INTO {lake}.{table} BY NAME SELECT * FROM {_STAGING}.main.{table}")

    # -- queries ----------------------------------------------------------------------

    def fingerprints(self, experiment_ids: list[str]) -> dict[str, str]:
        return stored_fingerprints(self.connection(), experiment_ids, catalog=CATALOG_ALIAS)

    def close(self) -> None:
        con, self._con = self._con, None
        try:
            if con is not None:
                con.close()
        finally:
            if self._spill is not None:
                shutil.rmtree(self._spill, ignore_errors=True)
                self._spill = None


def connect_lake(
    target: str | None = None, *, data_path: str | None = None, read_only: bool = True
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake attached (read-only by default) as its default catalog.

    ``target`` as for loading, else ``$PIDGIN_LOAD_TARGET``. The same tables and views as
    a local database answer there: ``con.sql("FROM experiment_dashboard")``.
    """
    from ._target import lake_target

    lake = lake_target(target, data_path)
    if lake is None:
        raise LoadError(f"no lake named: pass a target or set ${TARGET_ENV}")
    return attach_lake(lake, read_only=read_only)


def attach_lake(lake: LakeTarget, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """``connect_lake`` for a parsed target. Read-only takes no lock: loaders never wait on it.

    The advisory locks are the loaders' among themselves, and PostgreSQL's MVCC lets a
    reader's catalog queries run beside a loader's commit; each read sees the snapshot
    committed when its transaction began.
    """
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        load_lake_extensions(con)
        options = ["READ_ONLY"] if read_only else []
        if lake.data_path is not None:
            options.append(f"DATA_PATH '{_quoted(lake.data_path)}'")
        suffix = f" ({', '.join(options)})" if options else ""
        con.execute(
            f"ATTACH 'ducklake:postgres:{_quoted(lake.catalog)}' AS {CATALOG_ALIAS}{suffix}"
        )
        con.execute(f"USE {CATALOG_ALIAS}")
    except duckdb.Error as exc:
        con.close()
        first = lake.scrub(str(exc).splitlines()[0])
        raise LoadError(f"cannot open the lake {lake.label}: {first}") from exc
    except BaseException:
        con.close()
        raise
    return con
