"""Other processes: a database held by someone else, a run still writing, a load killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import pidgin_events as pe
import pidgin_load as pl

HOLD_DATABASE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold_database(db: Path, seconds: float, holder: list[subprocess.Popen[str]]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_DATABASE, str(db), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    holder.append(process)
    assert process.stdout is not None
    assert process.stdout.readline() == "holding\n"


def test_locked_database_waits_then_names_the_file(
    tmp_path: Path, write_experiment: Any, holder: list[subprocess.Popen[str]], counts: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_locked")
    db = tmp_path / "held.duckdb"
    _hold_database(db, 300, holder)

    with pytest.raises(pl.DatabaseLockedError) as caught:
        pl.load_experiment(directory, db, lock_timeout=1.0)

    message = str(caught.value)
    assert str(db) in message
    assert "pidgin-load --all" in message
    assert "pidgin load-db --all" in message
    assert caught.value.waited >= 1.0
    # the loader itself records nothing: only a caller that wants it does
    assert not (directory / pe.LOAD_FAILED_MARKER).exists()
    assert not (directory / pe.LOADED_MARKER).exists()

    pl.record_load_failure(directory, caught.value, db)

    failed = json.loads((directory / pe.LOAD_FAILED_MARKER).read_text())
    assert failed["db_path"] == str(db)
    assert failed["error_type"] == "DatabaseLockedError"
    assert failed["error"] == message
    assert failed["failed_at"]
    assert (directory / pe.LOAD_FAILED_MARKER).stat().st_mode & 0o777 == 0o600
    last = pe.read_events(directory / pe.EXPERIMENT_LOG).events[-1]
    assert isinstance(last, pe.DatabaseLoadEvent)
    assert (last.status, last.db_path, last.error) == ("failed", str(db), message)

    holder[0].kill()
    holder[0].wait()
    summary = pl.load_all(tmp_path, db)
    assert [o.experiment_id for o in summary.loaded] == ["exp_locked"]
    assert not (directory / pe.LOAD_FAILED_MARKER).exists()
    assert counts(db, "exp_locked")["conversations"] == 2


def test_a_lock_released_while_waiting_is_taken(
    tmp_path: Path, write_experiment: Any, holder: list[subprocess.Popen[str]]
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_wait")
    db = tmp_path / "held.duckdb"
    _hold_database(db, 1.5, holder)  # exits by itself while the loader retries

    summary = pl.load_experiment(directory, db, lock_timeout=120)

    assert [o.experiment_id for o in summary.loaded] == ["exp_wait"]


def test_load_all_on_a_locked_database_fails_each_pending_run_once(
    tmp_path: Path,
    write_experiment: Any,
    holder: list[subprocess.Popen[str]],
    run_cli: Any,
) -> None:
    write_experiment(tmp_path, experiment_id="exp_a")
    write_experiment(tmp_path, experiment_id="exp_b")
    db = pl.experiments_db(tmp_path)
    _hold_database(db, 300, holder)

    summary = pl.load_all(tmp_path, lock_timeout=0.5)

    assert sorted(o.experiment_id or "" for o in summary.failed) == ["exp_a", "exp_b"]
    assert all(isinstance(o.reason, str) and str(db) in o.reason for o in summary.failed)
    assert not summary.ok

    result = run_cli("--all", tmp_path, "--lock-timeout", "0.5")
    assert result.returncode == 1
    assert "is locked by another process" in result.stderr
    assert str(db) in result.stderr


def test_running_experiment_is_refused_unless_forced(
    tmp_path: Path, run_cli: Any, counts: Any
) -> None:
    exp = pe.Experiment.create(tmp_path, name="live", experiment_id="exp_live")
    conv = exp.conversation(agent_a="local:test", agent_b="local:test")
    conv.turn_start()
    conv.message("agent_a", "hi")
    conv.turn_complete(0.5)
    db = tmp_path / "db.duckdb"
    try:
        with pytest.raises(pl.ExperimentRunningError, match=r"still running .*\.pidgin\.lock"):
            pl.load_experiment(exp.directory, db)
        assert not db.exists()

        skipped = pl.load_all(tmp_path, db)
        assert not skipped.loaded
        assert skipped.ok
        assert "still running" in skipped.skipped[0].reason

        refused = run_cli(exp.directory, "--db", db)
        assert refused.returncode == 1
        assert "still running" in refused.stderr

        forced = run_cli(exp.directory, "--db", db, "--force")
        assert forced.returncode == 0, forced.stderr
        assert counts(db, "exp_live")["turns"] == 1
        # the live writer owns experiment.jsonl's numbering: no load event was appended
        assert not any(
            isinstance(e, pe.DatabaseLoadEvent)
            for e in pe.read_events(exp.directory / pe.EXPERIMENT_LOG).events
        )
        pl.load_experiment(exp.directory, db, allow_running=True, force=True)
    finally:
        conv.end()
        exp.complete()
    after = pl.load_experiment(exp.directory, db)
    assert len(after.stale) == 1  # it changed since the forced load of the live run


def test_pidgin_ai_experiment_still_running_per_manifest(
    pidgin_ai_root: Path,
) -> None:
    """pidgin-ai has no run lock: a run whose manifest says running is running while a
    conversation without an end event is being written (by its file and its events' time)."""
    directory = pidgin_ai_root / "experiments" / "exp-5x20-full_f41ebd59"
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["completed_at"]
    (directory / "manifest.json").write_text(json.dumps(manifest | {"status": "running"}))
    log = directory / "events_conv_0fc24c12.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    now = datetime.now(UTC).isoformat()
    fresh = {"conversation_id": "conv_0fc24c12", "turn_number": 20, "timestamp": now}
    line = orjson.dumps(fresh | {"event_type": "TurnStartEvent"}) + b"\n"
    log.write_bytes(b"".join(lines[:-1]) + line)
    with pytest.raises(pl.ExperimentRunningError, match=r"manifest\.json says status 'running'"):
        pl.load_experiment(directory, pidgin_ai_root / "db.duckdb")
    assert pl.load_experiment(directory, pidgin_ai_root / "db.duckdb", force=True).ok

    # Killed: nothing written for longer than any provider waits. Loaded as it is.
    log.write_bytes(b"".join(lines[:-1]))
    old = time.time() - 3600
    os.utime(log, (old, old))
    summary = pl.load_experiment(directory, pidgin_ai_root / "db.duckdb")
    assert summary.ok
    assert len(summary.loaded) == 1


def _start_paused_load(
    directory: Path, db: Path, *extra: str, holder: list[subprocess.Popen[str]]
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pidgin_load", str(directory), "--db", str(db), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PIDGIN_LOAD_TEST_PAUSE_AFTER_INSERT": "300"},
    )
    holder.append(process)
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "pausing 300 s inside the transaction" in line, line + process.stderr.read()
    return process


def test_a_load_killed_mid_transaction_leaves_nothing_partial(
    tmp_path: Path, write_experiment: Any, holder: list[subprocess.Popen[str]], counts: Any
) -> None:
    kept = write_experiment(tmp_path, experiment_id="exp_kept", turns=2)
    victim = write_experiment(tmp_path, experiment_id="exp_victim", conversations=3, turns=5)
    db = tmp_path / "db.duckdb"
    pl.load_experiment(kept, db)
    kept_rows = counts(db, "exp_kept")

    # a first load killed after every insert, before COMMIT
    process = _start_paused_load(victim, db, holder=holder)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL

    assert set(counts(db, "exp_victim").values()) == {0}
    assert counts(db, "exp_kept") == kept_rows
    assert not (victim / pe.LOADED_MARKER).exists()

    # a forced reload killed after deleting and re-inserting: the old rows survive
    process = _start_paused_load(kept, db, "--force", holder=holder)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert counts(db, "exp_kept") == kept_rows

    summary = pl.load_experiment(victim, db)
    assert [o.experiment_id for o in summary.loaded] == ["exp_victim"]
    assert counts(db, "exp_victim")["turns"] == 15


@pytest.mark.slow
def test_kills_at_arbitrary_moments_leave_all_or_nothing(
    tmp_path: Path, write_experiment: Any, holder: list[subprocess.Popen[str]], counts: Any
) -> None:
    victim = write_experiment(tmp_path, experiment_id="exp_kills", conversations=40, turns=25)
    db = tmp_path / "db.duckdb"
    for attempt in range(8):
        process = subprocess.Popen(
            [sys.executable, "-m", "pidgin_load", str(victim), "--db", str(db), "--force"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            process.wait(timeout=0.2 + 0.15 * attempt)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
        # a database file, once it exists, has its schema: creation is atomic too
        rows = counts(db, "exp_kills") if db.exists() else {"turns": 0, "experiments": 0}
        assert (rows["turns"], rows["experiments"]) in ((0, 0), (1000, 1)), rows
    assert pl.load_experiment(victim, db, force=True).ok
    assert counts(db, "exp_kills")["turns"] == 1000
