"""A real PostgreSQL server per test session, and a fresh DuckLake per test.

The lake tests need the ``lake`` extra (DuckDB with its ``ducklake`` and
``postgres_scanner`` extensions from PyPI, versions matched) and PostgreSQL's server
binaries (``tools/ci/install-postgres.sh``). They run only in hatch's ``lake`` environment
(the root ``conftest.py`` leaves this folder out elsewhere), where a missing piece is an
error, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

import pidgin_load as pl
from pidgin_load._extensions import LAKE_EXTENSIONS, extension_file

REPO = Path(__file__).resolve().parents[4]
REQUIRE_ENV = "PIDGIN_REQUIRE_LAKE_TESTS"


def _unavailable(why: str) -> None:
    pytest.fail(f"lake tests required (${REQUIRE_ENV}) but {why}")


@pytest.fixture(scope="session")
def pg_cluster(pgcluster: ModuleType) -> Iterator[Any]:
    for extension, package in LAKE_EXTENSIONS:
        try:
            found = extension_file(extension, package, duckdb.__version__)
        except pl.LoadError as exc:
            found = None
            why = str(exc)
        else:
            why = f"{package} is not installed (pip install 'pidgin-load[lake]')"
        if found is None:
            _unavailable(why)
    try:
        cluster = pgcluster.PostgresCluster()
    except pgcluster.PostgresUnavailable as exc:
        _unavailable(str(exc))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@dataclass
class Lake:
    """One fresh lake: its own PostgreSQL database and data directory."""

    target: str
    data_path: Path

    def connect(self) -> duckdb.DuckDBPyConnection:
        return pl.connect_lake(self.target)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        con = self.connect()
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def counts(self, experiment_id: str) -> dict[str, int]:
        return table_counts(self.connect(), experiment_id)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a loader process pointed at this lake."""
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            pl.TARGET_ENV: self.target,
            pl.LAKE_DATA_PATH_ENV: str(self.data_path),
            pl.LOCK_TIMEOUT_ENV: "120",
            **extra,
        }

    def loader(self, root: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
        """``pidgin-load --all ROOT --json`` into this lake, as a separate process."""
        return subprocess.Popen(
            [sys.executable, "-m", "pidgin_load", "--all", str(root), "--json", *extra],
            env=env or self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def wait_for(process: Any, text: str, timeout: float = 300) -> None:
        """Read a loader's stderr until a line holds ``text`` (its pause, for instance)."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            seen += line
            if text in line:
                return
        raise AssertionError(f"never saw {text!r}; stderr so far: {seen}")


def table_counts(con: duckdb.DuckDBPyConnection, experiment_id: str) -> dict[str, int]:
    """Rows per table for one experiment; closes the connection."""
    try:
        return {table: _count(con, table, experiment_id) for table in pl.TABLES}
    finally:
        con.close()


def _count(con: duckdb.DuckDBPyConnection, table: str, experiment_id: str) -> int:
    row = con.execute(
        f"SELECT count(*) FROM {table} WHERE experiment_id = ?", [experiment_id]
    ).fetchone()
    assert row is not None, table  # count(*) answers one row, even of an empty table
    return int(row[0])


@pytest.fixture
def lake(pg_cluster: Any, tmp_path: Path) -> Lake:
    name = f"lake_{uuid.uuid4().hex[:12]}"
    dsn = pg_cluster.create_database(name)
    return Lake(target=f"{pl.LAKE_PREFIX}{dsn}", data_path=tmp_path / "lake-data")


@pytest.fixture(name="table_counts")
def table_counts_fixture() -> Any:
    return table_counts
