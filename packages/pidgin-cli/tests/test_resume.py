"""``pidgin experiment resume``, tested with real runner processes and real ``kill -9``.

A seeded ``local:drift`` experiment (its replies take a little time, so kills land inside
turns) is killed with SIGKILL at 20 seeded random moments, each followed by a resume; at
the end its messages, turns and the histories its models were sent are those of the same
experiment run without interruption.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pidgin_events import (
    EXPERIMENTS_DIR,
    TurnCompleteEvent,
    conversation_id_of_log,
    is_running,
    read_events,
)
from pidgin_state import Replay, StateBuilder, replay

RunCli = Callable[..., "subprocess.CompletedProcess[str]"]

TURNS = 8
CONVERSATIONS = 4
SEED = 11
KILLS = 20
RUN: tuple[str, ...] = ("-a", "local:drift", "-b", "local:drift", "-t", str(TURNS))
RUN += ("-r", str(CONVERSATIONS), "--max-parallel", "2", "--seed", str(SEED))


def _directory(root: Path, name: str) -> Path:
    (directory,) = [
        path for path in (root / EXPERIMENTS_DIR).iterdir() if path.is_dir() and _name(path) == name
    ]
    return directory


def _name(directory: Path) -> str | None:
    with (directory / "experiment.jsonl").open("rb") as stream:
        name = json.loads(stream.readline()).get("name")
    return name if isinstance(name, str) else None


def _conversations(directory: Path) -> dict[int, Path]:
    """Each conversation log by its seed (the same seed is the same conversation)."""
    logs = {}
    for path in directory.iterdir():
        if conversation_id_of_log(path.name) is not None:
            logs[replay(path).start["config"]["seed"]] = path
    return logs


def _wait(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _ended(directory: Path) -> bool:
    return bool(StateBuilder().experiment(directory).recorded_end) and not is_running(directory)


def _said(state: Replay) -> list[tuple[str, int | None, str]]:
    return [(said.speaker, said.turn, said.content) for said in state.history]


def _views(state: Replay) -> list[list[tuple[str, str]]]:
    return [
        [(line.role, line.content) for line in state.view(agent, turn)]
        for turn in range(TURNS)
        for agent in ("agent_a", "agent_b")
    ]


def test_kill_9_at_random_moments_then_resume_matches_an_uninterrupted_run(
    run_cli: RunCli, output_root: Path
) -> None:
    done = run_cli("run", *RUN, "--name", "straight", timeout=120)
    assert done.returncode == 0, done.stderr
    reference = _directory(output_root, "straight")

    started = run_cli("run", *RUN, "--name", "killed", "--detach")
    assert started.returncode == 0, started.stderr
    directory = _directory(output_root, "killed")
    rng = random.Random(20261129)
    moments = [round(rng.uniform(0.02, 0.25), 3) for _ in range(KILLS)]
    print(f"kill -9 after these seconds of each (resumed) run: {moments}")
    landed = 0
    for number, moment in enumerate(moments):
        time.sleep(moment)
        pid = int((directory / "runner.pid").read_text())
        with_end = _ended(directory)
        with contextlib.suppress(ProcessLookupError):  # it had already finished
            os.kill(pid, signal.SIGKILL)
        _wait(lambda: is_running(directory) is False)
        landed += not with_end
        resumed = run_cli("experiment", "resume", "killed", "--detach")
        assert resumed.returncode == 0, f"resume {number}: {resumed.stdout}{resumed.stderr}"
    assert landed > 0, "no kill landed while the experiment ran"
    # The last detached resume may still be running (a live run is refused): let it end.
    _wait(lambda: is_running(directory) is False)
    final = run_cli("experiment", "resume", "killed", timeout=120)
    assert final.returncode == 0, final.stdout + final.stderr
    _wait(lambda: _ended(directory))

    expected, got = _conversations(reference), _conversations(directory)
    assert sorted(got) == sorted(expected) == [SEED + index for index in range(CONVERSATIONS)]
    for seed, path in got.items():
        mine, theirs = replay(path), replay(expected[seed])
        assert mine.end_status == "completed"
        assert mine.turns_completed == theirs.turns_completed == TURNS
        assert _said(mine) == _said(theirs), f"seed {seed}: messages differ"
        assert _views(mine) == _views(theirs), f"seed {seed}: histories sent differ"
        events = read_events(path).events
        completed = [e.turn_number for e in events if isinstance(e, TurnCompleteEvent)]
        assert completed == list(range(TURNS)), f"seed {seed}: turns {completed}"
        seqs = [event.seq for event in events]
        assert seqs == list(range(len(seqs))), f"seed {seed}: seq does not continue"

    state = StateBuilder().experiment(directory)
    assert state.status == "completed"
    for conversation in state.conversations.values():
        assert conversation.turns_completed == TURNS
        assert conversation.message_count == 2 * TURNS
    _assert_loaded_without_duplicates(directory)


def _assert_loaded_without_duplicates(directory: Path) -> None:
    import duckdb

    import pidgin_load

    database = directory.parent / "resume-check.duckdb"
    pidgin_load.load_experiment(directory, database)
    with duckdb.connect(str(database), read_only=True) as db:
        rows = db.execute(
            "SELECT conversation_id, count(*), count(DISTINCT (turn_number, agent_id)) "
            "FROM messages GROUP BY ALL"
        ).fetchall()
        turns = db.execute("SELECT conversation_id, count(*) FROM turns GROUP BY ALL").fetchall()
        discarded = db.execute(
            "SELECT count(*) FROM events WHERE event_type = 'TurnDiscardedEvent'"
        ).fetchone()
    assert len(rows) == CONVERSATIONS
    assert all(count == unique == 2 * TURNS for _, count, unique in rows), rows
    assert all(count == TURNS for _, count in turns), turns
    assert discarded is not None
    assert discarded[0] > 0


def test_resume_of_a_live_run_is_refused(run_cli: RunCli, output_root: Path) -> None:
    started = run_cli("run", *RUN, "-t", "200", "--name", "alive", "--detach")
    assert started.returncode == 0, started.stderr
    directory = _directory(output_root, "alive")
    try:
        refused = run_cli("experiment", "resume", "alive")
        assert refused.returncode == 1
        assert "still running" in refused.stderr
        assert "run lock" in refused.stderr
        before = (directory / "experiment.jsonl").read_bytes()
        assert b"ExperimentResumedEvent" not in before
    finally:
        run_cli("experiment", "stop", "alive")
    _wait(lambda: _ended(directory))
    assert StateBuilder().experiment(directory).status == "interrupted"
    # Stopped (not killed): a resume goes on from the recorded interruption.
    again = run_cli("experiment", "resume", "alive", "--detach")
    assert again.returncode == 0, again.stderr
    _wait(lambda: b"ExperimentResumedEvent" in (directory / "experiment.jsonl").read_bytes())
    run_cli("experiment", "stop", "alive")
    _wait(lambda: _ended(directory))


def test_retry_failed_goes_on_with_failed_conversations_only_when_asked(
    run_cli: RunCli, output_root: Path, tmp_path: Path
) -> None:
    done = run_cli("run", *RUN, "-r", "2", "--name", "flaky", timeout=120)
    assert done.returncode == 0, done.stderr
    directory = _directory(output_root, "flaky")
    logs = _conversations(directory)
    failed_path = logs[SEED + 1]
    expected = _said(replay(failed_path))
    _fail_after_turns(failed_path, 3)

    untouched = run_cli("experiment", "resume", "flaky")
    assert untouched.returncode == 0
    assert "Nothing to resume" in untouched.stdout
    assert "--retry-failed" in untouched.stdout
    retried = run_cli("experiment", "resume", "flaky", "--retry-failed", timeout=120)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    _wait(lambda: _ended(directory))
    state = replay(failed_path)
    assert state.end_status == "completed"
    assert state.turns_completed == TURNS
    assert _said(state) == expected
    assert StateBuilder().experiment(directory).status == "completed"


def _fail_after_turns(path: Path, turns: int) -> None:
    """Rewrite a finished log as if its provider failed in turn ``turns`` (0-based)."""
    kept: list[bytes] = []
    for line in path.read_bytes().splitlines(keepends=True):
        event = json.loads(line)
        if event["event_type"] == "TurnStartEvent" and event["turn_number"] == turns:
            kept.append(line)
            break
        kept.append(line)
    seq = json.loads(kept[-1])["seq"] + 1
    end = {
        "event_type": "ConversationEndEvent",
        "conversation_id": json.loads(kept[-1])["conversation_id"],
        "timestamp": json.loads(kept[-1])["timestamp"],
        "seq": seq,
        "total_turns": turns,
        "status": "failed",
        "reason": "api_error",
        "error": "503 from the provider",
    }
    path.write_bytes(b"".join(kept) + json.dumps(end).encode() + b"\n")


@pytest.mark.parametrize("argv", [("experiment", "resume", "--help")])
def test_help_has_an_example(argv: tuple[str, ...], run_cli: RunCli) -> None:
    shown = run_cli(*argv)
    assert shown.returncode == 0
    assert "pidgin experiment resume night" in shown.stdout
    assert "--retry-failed" in shown.stdout


def test_resume_starts_a_grid_cells_conversation_that_never_started(
    run_cli: RunCli, output_root: Path, tmp_path: Path
) -> None:
    """A conversations grid killed before its last cell began: resume starts that cell's
    conversation with the cell's own plan and seed, as the uninterrupted run did."""
    spec = tmp_path / "grid.yaml"
    spec.write_text(
        "name: cells\nagent_a: local:drift\nagent_b: local:drift\nseed: 5\nrepetitions: 1\n"
        "grid_mode: conversations\ngrid:\n  turns: [2, 3]\n  temperature: [0.2, 1.3]\n"
    )
    done = run_cli("run", str(spec), timeout=120)
    assert done.returncode == 0, done.stderr
    directory = _directory(output_root, "cells")
    logs = _conversations(directory)
    last = logs[max(logs)]  # the last cell: 3 turns at temperature 1.3
    expected = _said(replay(last))
    assert replay(last).turns_completed == 3
    last.unlink()
    _cut_before_the_end(directory / "experiment.jsonl")

    resumed = run_cli("experiment", "resume", "cells", timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1 not started yet" in resumed.stdout
    _wait(lambda: _ended(directory))
    again = _conversations(directory)
    assert sorted(again) == sorted(logs)
    state = replay(again[max(again)])
    assert state.start["config"]["temperature_a"] == 1.3
    assert _said(state) == expected
    assert StateBuilder().experiment(directory).status == "completed"


def _cut_before_the_end(log: Path) -> None:
    """Leave an experiment log as a runner killed before it recorded the end leaves it."""
    lines = log.read_bytes().splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if b'"ExperimentCompleteEvent"' in line]
    log.write_bytes(b"".join(lines[: ends[0]]))
