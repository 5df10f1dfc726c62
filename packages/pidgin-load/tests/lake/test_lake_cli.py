"""The ``pidgin`` command with a lake: the automatic load after a run, and ``load-db``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pidgin_events as pe
import pidgin_load as pl

pytest.importorskip("pidgin_cli")


def _pidgin(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pidgin_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _experiment(root: Path) -> Path:
    (directory,) = (root / "experiments").iterdir()
    return directory


def test_a_finished_run_loads_into_the_lake_named_by_the_environment(
    lake: Any, tmp_path: Path
) -> None:
    root = tmp_path / "out"
    args = ("run", "-a", "local:test", "-b", "silent:none", "-r", "2", "-t", "3", "-o", str(root))
    result = _pidgin(*args, env=lake.env())
    assert result.returncode == 0, result.stderr
    directory = _experiment(root)
    assert json.loads((directory / pe.LOADED_MARKER).read_text())["db_path"] == lake.target
    assert not (root / "experiments" / "experiments.duckdb").exists()
    rows = lake.query(
        "SELECT count(*) FROM conversations WHERE experiment_id = ?", [directory.name]
    )
    assert rows == [(2,)]


def test_an_unreachable_catalog_never_fails_the_run_and_load_db_retries(
    lake: Any, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    root = tmp_path / "out"
    nowhere = f"{pl.LAKE_PREFIX}dbname=lake host=127.0.0.1 port={free_port()} user=pidgin"
    args = ("run", "-a", "local:test", "-b", "silent:none", "-r", "1", "-t", "2", "-o", str(root))
    result = _pidgin(*args, env=lake.env(**{pl.TARGET_ENV: nowhere}))
    assert result.returncode == 0, result.stderr
    directory = _experiment(root)
    failed = json.loads((directory / pe.LOAD_FAILED_MARKER).read_text())
    assert failed["db_path"] == nowhere
    assert "cannot open the lake" in failed["error"]
    assert not (directory / pe.LOADED_MARKER).exists()

    retried = _pidgin(
        "load-db",
        "--all",
        "--json",
        "--target",
        lake.target,
        "--data-path",
        str(lake.data_path),
        "-o",
        str(root),
        env=lake.env(),
    )
    assert retried.returncode == 0, retried.stderr
    assert [item["run_dir"] for item in json.loads(retried.stdout)["loaded"]] == [str(directory)]
    assert not (directory / pe.LOAD_FAILED_MARKER).exists()
    assert lake.query("SELECT count(*) FROM experiments") == [(1,)]


def test_load_db_refuses_db_and_target_together(tmp_path: Path) -> None:
    result = _pidgin(
        "load-db",
        "--all",
        "--db",
        str(tmp_path / "x.duckdb"),
        "--target",
        f"{pl.LAKE_PREFIX}dbname=x",
        "-o",
        str(tmp_path),
        env=dict(os.environ),
    )
    assert result.returncode == 2
    assert "not both" in result.stderr
