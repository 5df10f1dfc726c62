"""One truth about a run: every surface shows the same status, whatever became of the run.

A matrix of real situations: runs started with ``pidgin run`` (a real background runner)
that completed, were stopped with ``pidgin experiment stop`` or killed with SIGKILL; a
writer killed right after it recorded its start; a pidgin-ai 1.1 run that was stopped
(its manifest records the end, a conversation has no end event); and a pidgin-ai run
killed mid-run, restored from a backup with fresh file times. For each, the status that
``pidgin experiment list --json``, ``pidgin experiment status --json``, ``pidgin monitor
--once --json``, the StateBuilder and DuckDB's ``experiments.status`` (after
``pidgin load-db --all``) show must be one and the same, and the expected one. The table
is printed (``pytest -s``) for the closing note.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from _faultlog import PythonProcesses, RunCommand
from test_faults_cli import runner_pid, start_experiment, stop_runners, wait_for_turns, wait_gone

import pidgin_events as pe
from pidgin_state import StateBuilder

__all__ = ["stop_runners"]  # the fixture, shared with the fault suite

SURFACES = ("list", "status", "monitor", "StateBuilder", "DuckDB")
LEGACY_SOURCE = "exp-5x20-full_f41ebd59"
CUT_CONVERSATION = "conv_0fc24c12"


@dataclass
class Situation:
    name: str
    directory: Path
    expected: str
    shown: dict[str, str | None]


def _started(out_root: Path, pidgin: RunCommand, pids: list[int], name: str) -> Path:
    experiment_id = start_experiment(pidgin, name, "-t", "5000", "-r", "4", "--max-parallel", "2")
    directory = out_root / pe.EXPERIMENTS_DIR / experiment_id
    pids.append(runner_pid(directory))
    wait_for_turns(directory, 3)
    return directory


def completed_run(out_root: Path, pidgin: RunCommand, pids: list[int]) -> Path:
    experiment_id = start_experiment(pidgin, "done", "-t", "3", "-r", "2")
    directory = out_root / pe.EXPERIMENTS_DIR / experiment_id
    pid = runner_pid(directory)
    pids.append(pid)
    wait_gone(pid, timeout=90)  # after its automatic load
    return directory


def stopped_run(out_root: Path, pidgin: RunCommand, pids: list[int]) -> Path:
    directory = _started(out_root, pidgin, pids, "stopped")
    stopped = pidgin("experiment", "stop", "stopped", "--timeout", "30")
    assert stopped.returncode == 0, stopped.stderr
    wait_gone(pids[-1], timeout=90)
    return directory


def killed_run(out_root: Path, pidgin: RunCommand, pids: list[int]) -> Path:
    directory = _started(out_root, pidgin, pids, "killed")
    os.kill(pids[-1], signal.SIGKILL)
    wait_gone(pids[-1])
    return directory


CRASH = """
import os, signal, sys
import pidgin_events as pe
pe.Experiment.create(sys.argv[1], name="crashed", total_conversations=3,
                     experiment_id="exp_crashed_before_start")
os.kill(os.getpid(), signal.SIGKILL)
"""


def crashed_before_start(out_root: Path, python: PythonProcesses) -> Path:
    result = python.run(CRASH, str(out_root))
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    return out_root / pe.EXPERIMENTS_DIR / "exp_crashed_before_start"


def _legacy_copy(source: Path, target: Path, *, experiment_id: str, age: timedelta) -> None:
    """A copy of a pidgin-ai 1.1 run under another id, its events moved to ``age`` ago.

    Every file is written anew (fresh mtimes, as a restore from a backup makes them); the
    top-level event timestamps shift together so that the run ended ``age`` ago.
    """
    target.mkdir(parents=True)
    manifest = json.loads((source / pe.MANIFEST).read_text())
    shift = datetime.now(UTC) - age - datetime.fromisoformat(manifest["completed_at"])
    for path in sorted(source.iterdir()):
        if pe.conversation_id_of_log(path.name):
            lines = []
            for raw in path.read_bytes().splitlines():
                event = orjson.loads(raw)
                event["timestamp"] = _shifted(event["timestamp"], shift)
                lines.append(orjson.dumps(event))
            (target / path.name).write_bytes(b"\n".join(lines) + b"\n")
        elif path.name == pe.MANIFEST:
            for key in ("created_at", "started_at", "completed_at"):
                manifest[key] = _shifted(manifest[key], shift)
            manifest["experiment_id"] = experiment_id
            (target / path.name).write_text(json.dumps(manifest, indent=2))
        else:
            shutil.copyfile(path, target / path.name)


def _shifted(timestamp: str, shift: timedelta) -> str:
    return (datetime.fromisoformat(timestamp) + shift).isoformat()


def _cut_end_event(log: Path) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    assert b'"ConversationEndEvent"' in lines[-1]
    log.write_bytes(b"".join(lines[:-1]))


def legacy_stopped(out_root: Path, fixtures: Path, name: str = "legacy-stopped") -> Path:
    """Stopped: its manifest records the end (completed_at, a final status) while one
    conversation has no end event. Written an hour ago, copied just now."""
    directory = out_root / pe.EXPERIMENTS_DIR / f"{name}_f41ebd59"
    experiment_id = "experiment_" + name.replace("-", "_")
    _legacy_copy(
        fixtures / LEGACY_SOURCE, directory, experiment_id=experiment_id, age=timedelta(hours=1)
    )
    _cut_end_event(directory / f"events_{CUT_CONVERSATION}.jsonl")
    return directory


def legacy_restored(out_root: Path, fixtures: Path) -> Path:
    """Killed mid-run (its manifest still says running, no completed_at, a conversation
    without an end event), restored from a backup: fresh files, hour-old events."""
    directory = legacy_stopped(out_root, fixtures, "legacy-restored")
    manifest = json.loads((directory / pe.MANIFEST).read_text())
    manifest["status"] = "running"
    del manifest["completed_at"]
    (directory / pe.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return directory


def _surfaces(
    pidgin: RunCommand, directory: Path, state_id: str, db: Path
) -> dict[str, str | None]:
    import duckdb

    listed = pidgin("experiment", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    in_list = [e["status"] for e in json.loads(listed.stdout)["experiments"] if e["id"] == state_id]
    shown = pidgin("experiment", "status", directory.name, "--json")
    assert shown.returncode == 0, shown.stderr
    monitor = pidgin("monitor", "--once", "--json")
    assert monitor.returncode == 0, monitor.stderr
    frame = json.loads(monitor.stdout)
    on_monitor = [r["status"] for r in frame["running"] if r["id"] == state_id]
    on_monitor += [r["status"] for r in frame["recently_finished"] if r["id"] == state_id]
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT status FROM experiments WHERE experiment_id = ?", [state_id]
        ).fetchone()
    return {
        "list": in_list[0] if len(in_list) == 1 else f"listed {len(in_list)} times",
        "status": json.loads(shown.stdout)["experiment"]["status"],
        "monitor": on_monitor[0] if len(on_monitor) == 1 else f"shown {len(on_monitor)} times",
        "StateBuilder": StateBuilder.from_experiment_dir(directory).status,
        "DuckDB": None if row is None else str(row[0]),
    }


def _database_agrees_with_state(db: Path, directory: Path) -> None:
    """Per conversation too: statuses, counts and the end time come from the state."""
    import duckdb

    state = StateBuilder.from_experiment_dir(directory)
    with duckdb.connect(str(db), read_only=True) as con:
        conversations = dict(
            con.execute(
                "SELECT conversation_id, status FROM conversations WHERE experiment_id = ?",
                [state.id],
            ).fetchall()
        )
        counts = con.execute(
            "SELECT completed_conversations, failed_conversations, interrupted_conversations, "
            "completed_at FROM experiments WHERE experiment_id = ?",
            [state.id],
        ).fetchone()
    assert conversations == {c.id: c.status for c in state.conversations.values()}
    assert counts is not None
    progress = state.progress
    assert counts[:3] == (progress.completed, progress.failed, progress.interrupted)
    assert counts[3] == state.timing.completed  # when the events say it ended


def _events(db: Path, experiment_id: str) -> int:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT count(*) FROM events WHERE experiment_id = ?", [experiment_id]
        ).fetchone()
    return 0 if row is None else int(row[0])


def _table(situations: list[Situation]) -> str:
    head = ["situation", "expected", *SURFACES]
    rows = [[s.name, s.expected, *(str(s.shown[k]) for k in SURFACES)] for s in situations]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in [head, *rows]
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def test_every_surface_tells_the_same_status(
    *,
    out_root: Path,
    pidgin: RunCommand,
    python: PythonProcesses,
    legacy_fixtures: Path,
    stop_runners: list[int],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pidgin-ai's pid files live under the cache directory: one of this test's own.
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    made: list[tuple[str, str, Callable[[], Path]]] = [
        ("completed", "completed", lambda: completed_run(out_root, pidgin, stop_runners)),
        ("stopped (`pidgin experiment stop`)", "interrupted",
         lambda: stopped_run(out_root, pidgin, stop_runners)),
        ("killed (kill -9 of the runner)", "interrupted",
         lambda: killed_run(out_root, pidgin, stop_runners)),
        ("crashed before start (kill -9 after its start event)", "interrupted",
         lambda: crashed_before_start(out_root, python)),
        ("copied pidgin-ai 1.1 stopped run", "interrupted",
         lambda: legacy_stopped(out_root, legacy_fixtures)),
        ("pidgin-ai 1.1 run killed, restored from backup (fresh mtimes)", "interrupted",
         lambda: legacy_restored(out_root, legacy_fixtures)),
    ]  # fmt: skip
    directories = [(name, expected, make()) for name, expected, make in made]
    loaded = pidgin("load-db", "--all", "--json")
    assert loaded.returncode == 0, loaded.stderr
    assert not json.loads(loaded.stdout)["failed"], loaded.stdout
    db = out_root / pe.EXPERIMENTS_DIR / "experiments.duckdb"

    situations = []
    for name, expected, directory in directories:
        state = StateBuilder.from_experiment_dir(directory)
        situations.append(
            Situation(name, directory, expected, _surfaces(pidgin, directory, state.id, db))
        )
    print("\n" + _table(situations))
    for situation in situations:
        assert set(situation.shown.values()) == {situation.expected}, situation
        _database_agrees_with_state(db, situation.directory)

    legacy = StateBuilder.from_experiment_dir(situations[4].directory)
    conversations = {c.id: c.status for c in legacy.conversations.values()}
    assert conversations.pop(CUT_CONVERSATION) == "interrupted"
    assert set(conversations.values()) == {"completed"}

    # A forced reload of unchanged logs writes the same rows: bookkeeping is not data.
    completed = StateBuilder.from_experiment_dir(situations[0].directory)
    before = _events(db, completed.id)
    for _ in range(2):
        again = pidgin("load-db", completed.id, "--force", "--json")
        assert again.returncode == 0, again.stderr
        assert _events(db, completed.id) == before
