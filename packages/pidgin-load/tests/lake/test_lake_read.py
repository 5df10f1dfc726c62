"""Reading a lake through Pidgin: ``pidgin query --target``, ``pidgin serve --target``.

Real processes against a real PostgreSQL catalog: what the commands show is checked
against the lake read directly and against a local load of the same runs; an unreachable
catalog is an error that names the lake (never its password) and stops nothing else; a
reader never holds a loader up.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

import pidgin_load as pl

REPO = Path(__file__).resolve().parents[4]
DASHBOARD = (
    "SELECT experiment_id, name, status, conversations, turns, "
    "round(mean_final_convergence, 6) AS convergence, total_tokens "
    "FROM experiment_dashboard ORDER BY experiment_id"
)


def _serve_fixtures() -> ModuleType:
    """The ``pidgin serve`` tests' server process and HTTP client, used as they are."""
    path = REPO / "packages" / "pidgin-cli" / "tests" / "serve" / "conftest.py"
    spec = importlib.util.spec_from_file_location("pidgin_serve_fixtures", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SERVE = _serve_fixtures()


def _pidgin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIDGIN_")}
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run(
        [sys.executable, "-m", "pidgin_cli", *args],
        capture_output=True,
        text=True,
        env={**environment, **(env or {})},
        timeout=300,
        check=False,
    )


def _nowhere(closed_port: int) -> str:
    """A lake whose catalog cannot be reached, with a password that must never be shown."""
    return f"{pl.LAKE_PREFIX}dbname=lake host=127.0.0.1 port={closed_port} password=sesame"


def _loaded(lake: Any, write_experiment: Any, tmp_path: Path) -> tuple[Path, Path]:
    """Three runs loaded into the lake, and the same runs into a local file: (root, file)."""
    root = tmp_path / "out"
    write_experiment(root, conversations=3, turns=4, name="alpha")
    write_experiment(root, conversations=2, turns=2, name="beta", fail_last=True)
    write_experiment(root, conversations=1, turns=5, name="gamma")
    twin = tmp_path / "twin"  # a load appends to the logs: load pristine copies locally
    shutil.copytree(root, twin)
    assert pl.load_all(root, target=lake.target, data_path=str(lake.data_path)).ok
    local = tmp_path / "local.duckdb"
    assert pl.load_all(twin, local).ok
    return root, local


def _json_query(sql: str, target: str) -> list[dict[str, Any]]:
    result = _pidgin("query", sql, "--target", target, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


# --- pidgin query --target ----------------------------------------------------------------


def test_query_target_reads_the_lake_as_a_local_load_of_the_same_runs(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    _, local = _loaded(lake, write_experiment, tmp_path)
    from_lake = _json_query(DASHBOARD, lake.target)
    assert len(from_lake) == 3
    assert from_lake == _json_query(DASHBOARD, str(local))
    assert [row["name"] for row in sorted(from_lake, key=lambda r: r["name"])] == [
        "alpha",
        "beta",
        "gamma",
    ]
    metrics = "SELECT experiment_id, count(*) AS n FROM turn_metrics GROUP BY 1 ORDER BY 1"
    assert _json_query(metrics, lake.target) == _json_query(metrics, str(local))
    # what the lake itself holds, read without Pidgin's command
    direct = lake.query("SELECT count(*) FROM turns")[0][0]
    assert _json_query("SELECT count(*) AS n FROM turns", lake.target) == [{"n": direct}]


def test_query_target_is_read_only(lake: Any, write_experiment: Any, tmp_path: Path) -> None:
    _, local = _loaded(lake, write_experiment, tmp_path)
    for target in (lake.target, str(local)):
        result = _pidgin("query", "DELETE FROM experiments", "--target", target)
        assert result.returncode == 1
        assert "read-only" in result.stderr.lower() or "read only" in result.stderr.lower()
    assert lake.query("SELECT count(*) FROM experiments") == [(3,)]
    with duckdb.connect(str(local), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM experiments").fetchone() == (3,)


def test_query_target_unreachable_catalog_is_one_clear_line(
    free_port: Callable[[], int],
) -> None:
    nowhere = _nowhere(free_port())
    result = _pidgin("query", "FROM experiments", "--target", nowhere)
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: cannot open the lake ducklake:postgres:dbname=lake ")
    assert "password=***" in line
    assert "sesame" not in result.stderr
    assert "Traceback" not in result.stderr


def test_query_without_target_stays_live_when_the_environment_names_a_lake(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    """$PIDGIN_LOAD_TARGET says where loads go; `pidgin query` reads the logs by default."""
    root = tmp_path / "out"
    run = write_experiment(root, name="unloaded")
    result = _pidgin(
        "-o",
        str(root),
        "query",
        "SELECT experiment_id FROM experiments",
        "--format",
        "json",
        env={pl.TARGET_ENV: lake.target},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"experiment_id": run.name}]


# --- pidgin serve --target ----------------------------------------------------------------

HISTORY = "{ history(first: 50) { experimentId name status conversations turns totalTokens } }"


def test_serve_target_shows_the_lake_history_in_graphql_and_on_its_page(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    root, _ = _loaded(lake, write_experiment, tmp_path)
    elsewhere = tmp_path / "another-machine"  # serves none of these runs live
    elsewhere.mkdir()
    expected = {
        row[0]: row
        for row in lake.query(
            "SELECT experiment_id, name, status, conversations, turns, total_tokens "
            "FROM experiment_dashboard"
        )
    }
    server = SERVE.Server(elsewhere, "--target", lake.target + " password=sesame")
    try:
        assert any("history from " + lake.target + " password=***" in b for b in server.banner)
        status, document = server.graphql(HISTORY)
        assert status == 200
        assert "errors" not in document, document
        got = {
            row["experimentId"]: (
                row["experimentId"],
                row["name"],
                row["status"],
                row["conversations"],
                row["turns"],
                row["totalTokens"],
            )
            for row in document["data"]["history"]
        }
        assert got == expected
        status, _, page = server.get("/history")
        assert status == 200
        assert "password=***" in page
        assert "sesame" not in page
        for experiment_id, row in expected.items():
            assert f'data-id="{experiment_id}"' in page
            assert row[1] in page
            # another machine's run: shown, not linked (this server has no page for it)
            assert f'href="/experiments/{experiment_id}"' not in page
    finally:
        assert "Traceback" not in server.stop()

    # served from the machine that ran them: linked, and the lake's aggregates per turn
    server = SERVE.Server(root, "--target", lake.target)
    try:
        status, _, page = server.get("/history")
        assert status == 200
        assert all(f'href="/experiments/{experiment_id}"' in page for experiment_id in expected)
        some = sorted(expected)[0]
        query = "query ($id: String!) { experiment(id: $id) { convergenceByTurn { turn mean } } }"
        status, document = server.graphql(query, {"id": some})
        assert status == 200
        assert "errors" not in document, document
        by_turn = lake.query(
            "SELECT turn_number + 1, round(avg_convergence, 9) FROM convergence_by_turn "
            "WHERE experiment_id = ? ORDER BY 1",
            [some],
        )
        shown = [
            (row["turn"], round(row["mean"], 9))
            for row in document["data"]["experiment"]["convergenceByTurn"]
        ]
        assert shown == [tuple(row) for row in by_turn]
        assert shown
    finally:
        assert "Traceback" not in server.stop()


def test_serve_with_an_unreachable_catalog_says_so_and_keeps_serving_live_runs(
    write_experiment: Any, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    root = tmp_path / "out"
    run = write_experiment(root, name="still-visible")
    server = SERVE.Server(root, "--target", _nowhere(free_port()))
    try:
        for _ in range(2):  # an error per request; the server stays up
            status, _, page = server.get("/history")
            assert status == 503
            assert 'id="history-error"' in page
            assert "cannot open the lake ducklake:postgres:dbname=lake" in page
            assert "sesame" not in page
            status, document = server.graphql(HISTORY)
            assert status == 200
            (error,) = document["errors"]
            assert error["message"].startswith("cannot open the lake ducklake:postgres:")
            assert "sesame" not in json.dumps(document)
        # live data comes from the logs, unaffected
        status, document = server.graphql("{ experiments { items { id name status } } }")
        assert status == 200
        assert "errors" not in document, document
        assert document["data"]["experiments"]["items"] == [
            {"id": run.name, "name": "still-visible", "status": "completed"}
        ]
        status, _, page = server.get(f"/experiments/{run.name}")
        assert status == 200
        assert "still-visible" in page
    finally:
        stderr = server.stop()
    assert "Traceback" not in stderr
    assert "sesame" not in stderr


def test_serve_reads_history_where_the_environment_sends_loads(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    root, local = _loaded(lake, write_experiment, tmp_path)
    only_local = write_experiment(tmp_path / "local-root", name="only-local")
    assert pl.load_experiment(only_local, local).ok
    environment = {pl.TARGET_ENV: lake.target}
    server = SERVE.Server(root, env=environment)
    try:
        status, document = server.graphql(HISTORY)
        assert status == 200
        names = {row["name"] for row in document["data"]["history"]}
        assert names == {"alpha", "beta", "gamma"}
    finally:
        server.stop()
    # an explicit target wins over the environment
    server = SERVE.Server(root, "--target", str(local), env=environment)
    try:
        status, document = server.graphql(HISTORY)
        assert status == 200
        names = {row["name"] for row in document["data"]["history"]}
        assert names == {"alpha", "beta", "gamma", "only-local"}
    finally:
        server.stop()


# --- reading while loading ------------------------------------------------------------------


def test_readers_neither_wait_for_a_loader_nor_hold_it_up(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    first = write_experiment(tmp_path / "first", name="first")
    assert pl.load_experiment(first, target=lake.target, data_path=str(lake.data_path)).ok
    # a reader with a transaction open across the whole load
    reader = pl.connect_lake(lake.target)
    reader.execute("BEGIN TRANSACTION")
    assert reader.execute("SELECT count(*) FROM experiments").fetchone() == (1,)

    second = write_experiment(tmp_path / "second", name="second")
    # the loader holds the publish lock, its rows written, for a pause far longer than a query
    loader = lake.loader(second.parent.parent, env=lake.env(**{pl.LAKE_PAUSE_ENV: "40"}))
    try:
        lake.wait_for(loader, "before the lake commit")
        during = _json_query("SELECT name FROM experiments ORDER BY 1", lake.target)
        answered_before_the_commit = loader.poll() is None
        out, err = loader.communicate(timeout=300)
    finally:
        loader.kill()
        loader.wait()
    assert loader.returncode == 0, err
    assert [item["experiment_id"] for item in json.loads(out)["loaded"]] == [second.name]
    assert answered_before_the_commit, "the query waited for the loader"
    assert during == [{"name": "first"}]  # the uncommitted load is not seen
    # the open transaction still reads its snapshot; a new one sees the load
    assert reader.execute("SELECT count(*) FROM experiments").fetchone() == (1,)
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM experiments").fetchone() == (2,)
    reader.close()
    assert _json_query("SELECT name FROM experiments ORDER BY 1", lake.target) == [
        {"name": "first"},
        {"name": "second"},
    ]


@pytest.mark.parametrize("command", ["query", "serve"])
def test_a_target_that_is_neither_a_lake_nor_a_file_is_refused(
    command: str, tmp_path: Path
) -> None:
    args = ["query", "FROM experiments"] if command == "query" else ["serve", "--port", "0"]
    result = _pidgin(*args, "--target", str(tmp_path / "missing.duckdb"))
    assert result.returncode == 1
    assert "no such database file" in result.stderr
    result = _pidgin(*args, "--target", "ducklake:sqlite:lake.db")
    assert result.returncode == 1
    assert "PostgreSQL is the only catalog supported" in result.stderr
