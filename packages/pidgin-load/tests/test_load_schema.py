"""Forward-only migrations: a database an older release wrote keeps every row, each value in
its own column, and reads afterwards exactly as if it had been loaded by this release."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

import pidgin_load as pl
from pidgin_load._schema import migrate

# What write_experiment (conftest) writes: each agent's model, and its turns from 0.
MODELS = {"agent_a": "local:test", "agent_b": "local:echo"}
MESSAGE_ROLE = ("messages", "role")  # the one version 1 column whose meaning changed
# ``loads`` came with version 4, ``turn_metrics`` with version 5 (``--recompute-metrics``
# fills it for older runs) and ``thinking`` with version 6: a migrated database has rows in
# them only for later loads.
LATER_TABLES = ("loads", "turn_metrics", "thinking")
V1_TABLES = tuple(table for table in pl.TABLES if table not in LATER_TABLES)


def _columns(con: duckdb.DuckDBPyConnection, table: str, catalog: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_name = ? ORDER BY ordinal_position",
        [catalog, table],
    ).fetchall()
    return [name for (name,) in rows]


def _rows(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> list[Any]:
    names = ", ".join(columns)
    return con.execute(f"SELECT {names} FROM {table} ORDER BY ALL").fetchall()


def _as_version_1(fresh: Path, old: Path) -> None:
    """A database as version 1 left it: its schema, and the rows a version 1 load wrote.

    Version 1 wrote what this release writes in its columns, but for ``messages.role``,
    which was the message's own role from the event payload.
    """
    with duckdb.connect(str(old)) as con:
        assert migrate(con, str(old), up_to=1) == 1
        con.execute(f"ATTACH '{fresh}' AS fresh (READ_ONLY)")
        for table in V1_TABLES:
            columns = _columns(con, table, "old")
            assert columns, table
            if table == "messages":
                values = ", ".join(
                    "json_extract_string(e.payload, '$.message.role') AS role"
                    if name == "role"
                    else f"m.{name}"
                    for name in columns
                )
                con.execute(
                    f"INSERT INTO messages BY NAME SELECT {values} FROM fresh.messages AS m "
                    "JOIN fresh.events AS e USING (experiment_id, source_file, line_number)"
                )
            else:
                names = ", ".join(columns)
                con.execute(f"INSERT INTO {table} BY NAME SELECT {names} FROM fresh.{table}")


@pytest.fixture
def databases(pidgin_ai_root: Path, write_experiment: Any, tmp_path: Path) -> tuple[Path, Path]:
    """pidgin-ai 1.1's experiments and one of ours, loaded fresh, and as version 1 had them."""
    write_experiment(pidgin_ai_root, conversations=2, turns=3, experiment_id="exp_ours")
    summary = pl.load_all(pidgin_ai_root)
    assert summary.ok, summary.to_json()
    assert len(summary.loaded) == 3
    fresh = pl.experiments_db(pidgin_ai_root)
    old = tmp_path / "old.duckdb"
    _as_version_1(fresh, old)
    return fresh, old


def test_a_version_1_database_migrates_keeping_every_value_in_its_column(
    databases: tuple[Path, Path],
) -> None:
    _, old = databases
    with duckdb.connect(str(old), read_only=True) as con:
        kept = {
            table: [name for name in _columns(con, table, "old") if (table, name) != MESSAGE_ROLE]
            for table in V1_TABLES
        }
        before = {table: _rows(con, table, columns) for table, columns in kept.items()}
        assert {
            role for (role,) in con.execute("SELECT DISTINCT role FROM messages").fetchall()
        } == {"assistant"}

    with duckdb.connect(str(old)) as con:
        assert migrate(con, str(old)) == pl.SCHEMA_VERSION

    with duckdb.connect(str(old), read_only=True) as con:
        assert con.execute(
            "SELECT list(version ORDER BY version) FROM schema_version"
        ).fetchone() == (list(range(1, pl.SCHEMA_VERSION + 1)),)
        for table, rows in before.items():
            assert _rows(con, table, kept[table]) == rows, table
        # the new meanings, derived from what was written: turns from 1, the speaker, its model
        ours = con.execute(
            "SELECT DISTINCT conversation_id, turn_number, turn, agent_id, role, model "
            "FROM messages WHERE experiment_id = 'exp_ours' ORDER BY ALL"
        ).fetchall()
        conversations = sorted({row[0] for row in ours})
        assert len(conversations) == 2
        assert ours == sorted(
            (conversation, t, t + 1, agent, agent, MODELS[agent])
            for conversation in conversations
            for t in range(3)
            for agent in MODELS
        )
        assert con.execute(
            "SELECT count(*) FROM messages WHERE turn IS DISTINCT FROM turn_number + 1 "
            "OR role IS DISTINCT FROM agent_id"
        ).fetchone() == (0,)
        assert con.execute(
            "SELECT DISTINCT turn, turn_number FROM turns WHERE experiment_id = 'exp_ours' "
            "ORDER BY ALL"
        ).fetchall() == [(t + 1, t) for t in range(3)]


def test_a_migrated_database_equals_a_fresh_load_and_loads_into_the_right_columns(
    databases: tuple[Path, Path], pidgin_ai_root: Path, write_experiment: Any, tmp_path: Path
) -> None:
    fresh, old = databases
    later = write_experiment(tmp_path / "later", conversations=1, turns=2, experiment_id="exp_new")
    shutil.copytree(later, pidgin_ai_root / "experiments" / later.name)
    # loading opens the database, which migrates it; then the new run goes in BY NAME
    assert pl.load_experiment(later, old).ok
    assert pl.load_all(pidgin_ai_root).ok  # the same run's copy into the fresh database
    # runs loaded before the metrics existed get them as the README says: recomputed
    assert pl.recompute_metrics(old)["experiment_f41ebd59"] == 100

    with duckdb.connect(str(old), read_only=True) as con:
        con.execute(f"ATTACH '{fresh}' AS fresh (READ_ONLY)")
        # which machine loaded what, and when, is known from version 4 on only
        assert con.execute("SELECT experiment_id FROM loads").fetchall() == [("exp_new",)]
        assert _columns(con, "loads", "old") == _columns(con, "loads", "fresh")
        for relation in (*V1_TABLES, "convergence_by_turn"):
            columns = _columns(con, relation, "fresh")
            assert _columns(con, relation, "old") == columns, relation
            if relation == "experiments":  # each database records where it loaded from
                columns = [name for name in columns if name not in ("loaded_at", "run_dir")]
            names = ", ".join(columns)
            difference = con.execute(
                f"(SELECT {names} FROM old.{relation} EXCEPT ALL "
                f"SELECT {names} FROM fresh.{relation}) UNION ALL "
                f"(SELECT {names} FROM fresh.{relation} EXCEPT ALL "
                f"SELECT {names} FROM old.{relation})"
            ).fetchall()
            assert difference == [], relation
        assert con.execute(
            "SELECT DISTINCT turn, agent_id, model FROM old.messages "
            "WHERE experiment_id = 'exp_new' ORDER BY ALL"
        ).fetchall() == [(t + 1, agent, MODELS[agent]) for t in range(2) for agent in MODELS]
