"""Loading into a DuckLake: the same rows and views as the local file, idempotent, marked."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb
import pytest

import pidgin_events as pe
import pidgin_load as pl

# Columns that differ between two loads of the same files by design.
_VOLATILE = {"experiments": ["loaded_at", "run_dir"], "loads": ["loaded_at", "target"]}


def _rows(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[Any, ...]]:
    exclude = _VOLATILE.get(relation)
    columns = f"* EXCLUDE ({', '.join(exclude)})" if exclude else "*"
    # as text: equal values print equally, and timestamps need no pytz
    rows = con.execute(f"SELECT COLUMNS({columns})::VARCHAR FROM {relation}").fetchall()
    return sorted((tuple(_number(value) for value in row) for row in rows), key=repr)


def _number(value: Any) -> Any:
    """A float to 12 significant digits: the lake and the file may add a view's floats in
    another order (0.25 against 0.25000000000000006); any other value as it is."""
    if isinstance(value, str) and ("." in value or "e" in value):
        try:
            return f"{float(value):.12g}"
        except ValueError:
            return value
    return value


def _views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The views the migrations created (whichever exist: a new migration's too)."""
    rows = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal "
        "AND database_name = current_database() AND schema_name = 'main' ORDER BY 1"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """{table or view: [(column, type)]} of the default catalog's main schema."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = 'main' "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        columns.setdefault(str(table), []).append((str(column), str(kind)))
    return columns


def _snapshot(con: duckdb.DuckDBPyConnection, views: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    try:
        return {relation: _rows(con, relation) for relation in (*pl.TABLES, *views)}
    finally:
        con.close()


def test_lake_holds_exactly_what_the_local_database_holds(
    lake: Any, write_experiment: Any, pidgin_ai_root: Path, tmp_path: Path
) -> None:
    root = pidgin_ai_root  # pidgin-ai 1.1's runs, and ours beside them
    write_experiment(root, conversations=3, turns=4)
    write_experiment(root, conversations=2, turns=2, fail_last=True, name="flaky")
    # two copies: a load appends its DatabaseLoadEvent, which the next load would read
    twin = tmp_path / "twin"
    shutil.copytree(root, twin)
    local = tmp_path / "local.duckdb"
    first = pl.load_all(root, local, include_chats=False)
    assert first.ok
    assert first.loaded
    into_lake = pl.load_all(
        twin, target=lake.target, data_path=str(lake.data_path), include_chats=False
    )
    assert into_lake.ok, into_lake.failed
    assert len(into_lake.loaded) == len(first.loaded)
    assert into_lake.rows == first.rows
    views = _views(duckdb.connect(str(local), read_only=True))
    assert {"experiment_dashboard", "convergence_by_turn", "convergence_trends"} <= set(views)
    expected = _snapshot(duckdb.connect(str(local), read_only=True), views)
    assert all(expected[table] for table in ("experiments", "events", "loads", "turn_metrics"))
    assert all(expected[view] for view in ("conversation_turns", "convergence_trends"))
    assert _snapshot(lake.connect(), views) == expected
    # the data went where it was told to go
    assert any(lake.data_path.rglob("*.parquet"))


def test_marker_names_the_lake_and_an_unchanged_run_is_skipped(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    root = tmp_path / "out"
    run = write_experiment(root)
    target = lake.target + " password=sesame"
    summary = pl.load_experiment(run, target=target, data_path=str(lake.data_path))
    assert summary.ok
    assert len(summary.loaded) == 1
    marker = json.loads((run / pe.LOADED_MARKER).read_text())
    assert marker["db_path"] == lake.target + " password=***"
    assert "sesame" not in (run / pe.EXPERIMENT_LOG).read_text()
    again = pl.load_experiment(run, target=target)
    assert len(again.skipped) == 1
    assert not again.loaded
    # the local database has not seen it: a plain load goes there and loads it
    local = pl.load_experiment(run, tmp_path / "local.duckdb")
    assert len(local.loaded) == 1


def test_changed_log_replaces_its_rows(
    lake: Any, write_experiment: Any, counts: Any, tmp_path: Path
) -> None:
    root = tmp_path / "out"
    run = write_experiment(root, conversations=2, turns=2, experiment_id="exp_0123456789ab")
    pl.load_all(root, target=lake.target, data_path=str(lake.data_path))
    before = lake.counts("exp_0123456789ab")
    marker = (run / pe.LOADED_MARKER).read_bytes()
    shutil.rmtree(run)  # the same experiment, rewritten longer; its marker kept
    run = write_experiment(root, conversations=3, turns=5, experiment_id="exp_0123456789ab")
    (run / pe.LOADED_MARKER).write_bytes(marker)
    shutil.copytree(run, tmp_path / "copy" / run.name)  # before a load appends to it
    summary = pl.load_all(root, target=lake.target)
    assert len(summary.stale) == 1
    reference = tmp_path / "reference.duckdb"
    pl.load_experiment(tmp_path / "copy" / run.name, reference, force=True)
    after = lake.counts("exp_0123456789ab")
    assert after == counts(reference, "exp_0123456789ab")
    assert after["conversations"] == 3
    assert after != before
    assert after["experiments"] == 1
    assert after["loads"] == 1


def test_each_load_records_host_and_version(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    run = write_experiment(tmp_path / "out")
    pl.load_experiment(run, target=lake.target, data_path=str(lake.data_path))
    rows = lake.query("SELECT host, pidgin_version, duckdb_version, target FROM loads")
    assert rows == [(socket.gethostname(), version("pidgin-load"), duckdb.__version__, lake.target)]


def test_environment_names_the_lake_for_automatic_loads(
    lake: Any, write_experiment: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "out"
    run = write_experiment(root)
    monkeypatch.setenv(pl.TARGET_ENV, lake.target)
    monkeypatch.setenv(pl.LAKE_DATA_PATH_ENV, str(lake.data_path))
    summary = pl.load_experiment(run)  # no target, no db_path: the environment decides
    assert summary.loaded[0].db_path == lake.target
    assert not (root / "experiments" / "experiments.duckdb").exists()
    # an explicit database file still wins over the environment
    local = tmp_path / "local.duckdb"
    assert pl.load_experiment(run, local).loaded[0].db_path == str(local)


def test_unreachable_catalog_fails_the_load_and_a_later_load_retries(
    lake: Any, write_experiment: Any, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    root = tmp_path / "out"
    run = write_experiment(root)
    nowhere = f"{pl.LAKE_PREFIX}dbname=lake host=127.0.0.1 port={free_port()} user=pidgin"
    with pytest.raises(pl.LoadError, match="cannot open the lake") as caught:
        pl.load_experiment(run, target=nowhere, data_path=str(lake.data_path))
    pl.record_load_failure(run, caught.value, nowhere)  # what the runner does
    assert json.loads((run / pe.LOAD_FAILED_MARKER).read_text())["db_path"] == nowhere
    assert not (run / pe.LOADED_MARKER).exists()
    retried = pl.load_all(root, target=lake.target, data_path=str(lake.data_path))
    assert [outcome.run_dir for outcome in retried.loaded] == [str(run)]
    assert not (run / pe.LOAD_FAILED_MARKER).exists()
    assert lake.query("SELECT count(*) FROM experiments") == [(1,)]


def test_a_lake_of_a_newer_schema_is_refused(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    first = write_experiment(tmp_path / "out")
    pl.load_experiment(first, target=lake.target, data_path=str(lake.data_path))
    con = pl.connect_lake(lake.target, read_only=False)
    con.execute("INSERT INTO schema_version VALUES (?, now())", [pl.SCHEMA_VERSION + 1])
    con.close()
    second = write_experiment(tmp_path / "out")
    with pytest.raises(pl.LoadError, match="newer than"):
        pl.load_experiment(second, target=lake.target)
    assert lake.query("SELECT count(*) FROM experiments") == [(1,)]


def test_cli_loads_into_the_lake(lake: Any, write_experiment: Any, tmp_path: Path) -> None:
    root = tmp_path / "out"
    runs = [write_experiment(root) for _ in range(2)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pidgin_load",
            "--all",
            str(root),
            "--json",
            "--target",
            lake.target,
            "--data-path",
            str(lake.data_path),
        ],
        capture_output=True,
        text=True,
        env=lake.env(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert sorted(item["run_dir"] for item in summary["loaded"]) == sorted(map(str, runs))
    assert lake.query("SELECT count(*) FROM experiments") == [(2,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "x.duckdb", "--target", "ducklake:postgres:dbname=x"], "not both"),
        (["--data-path", "somewhere"], "goes with --target"),
    ],
)
def test_cli_refuses_contradictory_targets(
    args: list[str], message: str, write_experiment: Any, tmp_path: Path
) -> None:
    run = write_experiment(tmp_path / "out")
    result = subprocess.run(
        [sys.executable, "-m", "pidgin_load", str(run), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert not (run / pe.LOADED_MARKER).exists()


def test_every_migration_is_applied_to_the_lake_with_the_local_columns(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    """Whatever MIGRATIONS holds (a new one too) reaches the lake with no lake-specific code."""
    run = write_experiment(tmp_path / "out")
    shutil.copytree(run, tmp_path / "copy" / run.name)
    pl.load_experiment(run, target=lake.target, data_path=str(lake.data_path))
    local = tmp_path / "local.duckdb"
    pl.load_experiment(tmp_path / "copy" / run.name, local)
    applied = lake.query("SELECT version FROM schema_version ORDER BY version")
    assert [row[0] for row in applied] == [number for number, _ in pl.MIGRATIONS]
    with duckdb.connect(str(local), read_only=True) as con:
        expected_views = _views(con)
        expected_columns = _columns(con)
    with lake.connect() as con:
        assert _views(con) == expected_views
        assert _columns(con) == expected_columns
