"""A load that has to wait for a database another process holds says so as the wait begins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pidgin_load as pl

HOLD_DATABASE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(300)
"""


def _hold(db: Path, holder: list[subprocess.Popen[str]]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_DATABASE, str(db)], stdout=subprocess.PIPE, text=True
    )
    holder.append(process)
    assert process.stdout is not None
    assert process.stdout.readline() == "holding\n"


def test_on_lock_wait_is_told_once_before_the_load_gives_up(
    tmp_path: Path, write_experiment: Any, holder: list[subprocess.Popen[str]]
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_waits")
    db = tmp_path / "held.duckdb"
    _hold(db, holder)
    told: list[str] = []
    with pytest.raises(pl.DatabaseLockedError):
        pl.load_experiment(directory, db, lock_timeout=1.0, on_lock_wait=told.append)
    (message,) = told  # once, however many retries the backoff made
    assert message.startswith(f"database {db} is held by another process (")
    assert message.endswith("waiting up to 1 s for it")
    told.clear()
    summary = pl.load_all(tmp_path, db, lock_timeout=0.5, on_lock_wait=told.append)
    assert len(told) == 1
    assert [o.experiment_id for o in summary.failed] == ["exp_waits"]


def test_a_free_database_is_not_waited_for(tmp_path: Path, write_experiment: Any) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_free")
    told: list[str] = []
    summary = pl.load_experiment(directory, tmp_path / "free.duckdb", on_lock_wait=told.append)
    assert summary.ok
    assert told == []


def test_the_command_says_it_waits_before_it_fails(
    tmp_path: Path, write_experiment: Any, holder: list[subprocess.Popen[str]], run_cli: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_cli")
    db = tmp_path / "held.duckdb"
    _hold(db, holder)
    result = run_cli(directory, "--db", db, "--lock-timeout", "1")
    assert result.returncode == 1
    first, *rest = result.stderr.splitlines()
    assert first.startswith(f"waiting: database {db} is held by another process")
    assert any(str(db) in line for line in rest)  # then the failure, naming the file
