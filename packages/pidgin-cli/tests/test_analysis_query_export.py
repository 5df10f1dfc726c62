"""``pidgin query`` over live runs, ``query_live`` from Python, and ``pidgin export``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

import pidgin_load as pl


def test_query_sees_a_running_experiment_and_never_creates_the_database(
    output_root: Path, run_cli: Any, make_experiment: Any, live_writer: Any
) -> None:
    make_experiment("done", experiment_id="exp_done", outcomes=("completed", "completed"))
    writer = live_writer(output_root, "running", planned=3, experiment_id="exp_live")
    writer.send("conv 10", "turn 0.25", "turn 0.75")
    db = pl.experiments_db(output_root)
    db.unlink(missing_ok=True)  # written by no one here: the finished run was never loaded

    result = run_cli(
        "query",
        "SELECT e.experiment_id, e.status, count(t.turn_number) AS turns, "
        "avg(t.convergence_score) AS mean FROM experiments e LEFT JOIN turns t "
        "USING (experiment_id) GROUP BY ALL ORDER BY 1",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    rows = {row["experiment_id"]: row for row in json.loads(result.stdout)}
    # make_experiment writes 3 turns per conversation with scores 0.2, 0.5, 0.8
    assert rows["exp_done"]["turns"] == 2 * 3
    assert rows["exp_done"]["mean"] == pytest.approx((0.2 + 0.5 + 0.8) / 3)
    assert rows["exp_live"]["status"] == "running"  # its writer holds the run lock
    assert rows["exp_live"]["turns"] == 2
    assert rows["exp_live"]["mean"] == pytest.approx(0.5)
    assert not db.exists()

    # the writer goes on while nothing of ours holds anything; the next query sees it
    writer.send("turn 1.0")
    again = run_cli(
        "query",
        "SELECT count(*) AS n FROM turns WHERE experiment_id = 'exp_live'",
        "--format",
        "csv",
    )
    assert again.returncode == 0, again.stderr
    assert list(csv.reader(io.StringIO(again.stdout))) == [["n"], ["3"]]
    writer.finish()


def test_query_formats_and_metrics(output_root: Path, run_cli: Any, make_experiment: Any) -> None:
    make_experiment("one", experiment_id="exp_one", turns=3)
    table = run_cli("query", "SELECT turn_number, a_word_count FROM turn_metrics ORDER BY 1")
    assert table.returncode == 0, table.stderr
    # "a says 0", "a says 1", ...: three words per reply of agent_a
    assert table.stdout.split("\n")[0].split() == ["turn_number", "a_word_count"]
    assert [line.split() for line in table.stdout.strip().split("\n")[1:]] == [
        [str(turn), "3"] for turn in range(3)
    ]
    target = output_root.parent / "turns.parquet"
    written = run_cli("query", "SELECT * FROM turns", "--format", "parquet", "--to", str(target))
    assert written.returncode == 0, written.stderr
    assert duckdb.execute(f"SELECT count(*) FROM '{target}'").fetchall() == [(3,)]
    missing = run_cli("query", "SELECT 1", "--format", "parquet")
    assert missing.returncode == 2
    assert "--format parquet needs --to FILE" in missing.stderr
    broken = run_cli("query", "SELEC 1")
    assert broken.returncode == 1
    assert "query failed" in broken.stderr
    assert "SELEC" in broken.stderr


def test_query_live_returns_a_relation(output_root: Path, make_experiment: Any) -> None:
    make_experiment("one", experiment_id="exp_one", outcomes=("completed",) * 2)
    relation = pl.query_live("SELECT conversation_id, turns FROM conversations", output_root)
    assert isinstance(relation, duckdb.DuckDBPyRelation)
    rows = relation.fetchall()
    assert sorted(turns for _, turns in rows) == [3, 3]
    # a relation composes further, lazily, over the same in-memory database
    assert relation.aggregate("sum(turns)").fetchall() == [(6,)]
    assert not pl.experiments_db(output_root).exists()
    live = pl.live_database(output_root, metrics=False)
    assert live.runs == 1
    assert live.skipped == []
    assert live.connection.execute("SELECT count(*) FROM turn_metrics").fetchall() == [(0,)]


def test_query_builds_only_the_tables_it_can_read(output_root: Path, make_experiment: Any) -> None:
    make_experiment("one", experiment_id="exp_one", outcomes=("completed",) * 2, errors=1)
    queries = (  # what a query reads through a view, or names in a subquery, is built
        "SELECT sum(completed) FROM experiment_dashboard",
        "SELECT count(*) FROM turns WHERE conversation_id IN (SELECT conversation_id FROM errors)",
        "SELECT count(*) FROM (SELECT * FROM token_usage)",
    )
    everything = pl.live_database(output_root, metrics=False).connection
    expected = [everything.execute(sql).fetchall() for sql in queries]
    assert all(rows[0][0] for rows in expected)  # nothing here is empty to begin with
    for sql, rows in zip(queries, expected, strict=True):
        assert pl.query_live(sql, output_root).fetchall() == rows, sql

    # a query on turns alone (a column named like a table is not the table): the tables
    # nothing else is built from stay empty
    live = pl.live_database(
        output_root, metrics=False, for_sql="SELECT count(*) AS conversations FROM turns"
    )
    con = live.connection
    assert con.execute("SELECT count(*) FROM turns").fetchall() == [(6,)]
    for table in ("errors", "conversations", "token_usage"):
        assert everything.execute(f"SELECT count(*) FROM {table}").fetchall() != [(0,)]
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)], table


def test_export_hive_partitioned(
    output_root: Path, run_cli: Any, make_experiment: Any, tmp_path: Path
) -> None:
    make_experiment("first", experiment_id="exp_first", outcomes=("completed",) * 2)
    make_experiment("second", experiment_id="exp_second")
    assert run_cli("load-db", "--all").returncode == 0
    target = tmp_path / "exported"
    result = run_cli("export", "--all", "--to", str(target))
    assert result.returncode == 0, result.stderr
    assert (target / "turns" / "experiment_id=exp_first" / "data_0.parquet").is_file()
    with duckdb.connect(str(pl.experiments_db(output_root)), read_only=True) as con:
        expected = dict(
            con.execute("SELECT experiment_id, count(*) FROM turns GROUP BY 1").fetchall()
        )
        columns = [row[0] for row in con.execute("DESCRIBE turn_metrics").fetchall()]
    got = duckdb.execute(
        f"SELECT experiment_id, count(*) FROM read_parquet('{target}/turns/*/*.parquet', "
        "hive_partitioning = true) GROUP BY 1"
    ).fetchall()
    assert dict(got) == expected == {"exp_first": 6, "exp_second": 3}
    exported = duckdb.execute(
        f"SELECT * FROM read_parquet('{target}/turn_metrics/*/*.parquet', hive_partitioning = true)"
    )
    assert sorted(column[0] for column in exported.description or []) == sorted(columns)

    csv_target = tmp_path / "csv"
    one = run_cli("export", "second", "--format", "csv", "--to", str(csv_target))
    assert one.returncode == 0, one.stderr
    assert sorted(p.name for p in (csv_target / "turns").iterdir()) == ["experiment_id=exp_second"]
    with open(csv_target / "turns" / "experiment_id=exp_second" / "data_0.csv") as stream:
        assert len(list(csv.DictReader(stream))) == 3
    assert run_cli("export", "--to", str(csv_target)).returncode == 2
    unknown = run_cli("export", "nosuch", "--to", str(csv_target))
    assert unknown.returncode != 0
