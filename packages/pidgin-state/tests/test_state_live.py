"""Real writer processes: state followed live, kill -9, permissions seen by another user."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pidgin_events as pe
from pidgin_state import NotAnExperimentError, StateBuilder

LIVE_WRITER = """
import random, sys, time
import pidgin_events as pe

rng = random.Random(7)
with pe.Experiment.create(sys.argv[1], name="live", total_conversations=3,
                          experiment_id="exp_live") as exp:
    for index in range(3):
        with exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=20,
                              conversation_id=f"conv_{index}") as conv:
            conv.system_prompt("agent_a", "be brief")
            for turn in range(20):
                conv.turn_start()
                for agent in ("agent_a", "agent_b"):
                    conv.request(agent, message_count=2 * turn + 1)
                    size = rng.choice([10, 2000, 200_000, 600_000])
                    conv.message(agent, "w" * size, prompt_tokens=turn,
                                 completion_tokens=size // 100)
                conv.turn_complete(convergence_score=round(turn / 20, 3))
                time.sleep(0.002)
"""

HELD_WRITER = """
import sys, time
import pidgin_events as pe

exp = pe.Experiment.create(sys.argv[1], name="held", total_conversations=2,
                           experiment_id="exp_kill")
done = exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=1, conversation_id="conv_done")
done.turn_start(); done.message("agent_a", "a"); done.message("agent_b", "b")
done.turn_complete(0.25); done.end()
conv = exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=100, conversation_id="conv_k")
for turn in range(3):
    conv.turn_start(); conv.message("agent_a", "hi"); conv.message("agent_b", "ho")
    conv.turn_complete(0.5)
conv.turn_start()
print("ready", flush=True)
while True:
    time.sleep(0.01)
"""

HELD_CHAT = """
import sys, time
import pidgin_events as pe

chat = pe.Chat.create(sys.argv[1], agent_a="m:a", agent_b="m:b", max_turns=10)
chat.turn_start(); chat.message("agent_a", "hi"); chat.message("agent_b", "ho")
chat.turn_complete(0.1)
print("ready", flush=True)
while True:
    time.sleep(0.01)
"""


def wait_ready(process: Any) -> None:
    line = process.stdout.readline()
    assert line == b"ready\n", process.stderr.read().decode()


def test_state_followed_live_ends_equal_to_a_cold_rebuild(tmp_path: Path, python: Any) -> None:
    directory = tmp_path / "experiments" / "exp_live"
    process = python.start(LIVE_WRITER, str(tmp_path))
    builder = StateBuilder()
    seen_running = 0
    turns = 0
    refreshes = 0
    try:
        while process.poll() is None:
            try:
                state = builder.experiment(directory)
            except NotAnExperimentError:
                time.sleep(0.002)  # the writer has not created it yet
                continue
            refreshes += 1
            assert state.problems == ()  # a line caught mid-write is pending, not a problem
            assert state.timing.turns_completed >= turns  # never counted back
            turns = state.timing.turns_completed
            if state.status == "running":
                seen_running += 1
                assert state.live is True
            time.sleep(0.003)
    finally:
        process.kill()
        _, err = process.communicate()
    assert process.returncode == 0, err.decode()
    assert seen_running > 10
    assert refreshes > 10

    final = builder.experiment(directory)
    assert final == StateBuilder.from_experiment_dir(directory)
    assert final.status == "completed"
    assert final.live is False
    assert final.progress.completed == 3
    for index in range(3):
        conversation = final.conversations[f"conv_{index}"]
        assert conversation.turns_completed == 20
        assert conversation.convergence == tuple(round(t / 20, 3) for t in range(20))
        assert conversation.message_count == 40
    assert final.tokens.by_agent["agent_a"].prompt == 3 * sum(range(20))


def test_kill_9_turns_running_into_interrupted(tmp_path: Path, python: Any, logs: Any) -> None:
    directory = tmp_path / "experiments" / "exp_kill"
    process = python.start(HELD_WRITER, str(tmp_path))
    try:
        wait_ready(process)
        builder = StateBuilder()
        running = builder.experiment(directory)
        assert running.status == "running"
        assert running.live is True
        conversation = running.conversations["conv_k"]
        assert conversation.status == "running"
        assert (conversation.turns_completed, conversation.current_turn) == (3, 4)
        assert running.conversations["conv_done"].status == "completed"
        assert [c.id for c in running.active_conversations] == ["conv_k"]
        assert running.timing.eta() is not None
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL

    read = builder.bytes_read
    state = builder.experiment(directory)  # no byte changed: only the lock was released
    assert builder.bytes_read == read
    assert state.status == "interrupted"
    assert state.live is False
    conversation = state.conversations["conv_k"]
    assert conversation.status == "interrupted"
    assert conversation.end_reason == "no end event and no live writer"
    assert conversation.turns_completed == 3
    assert state.conversations["conv_done"].status == "completed"
    assert (state.progress.completed, state.progress.interrupted) == (1, 1)
    assert state.active_conversations == ()
    assert state.timing.eta() is None
    assert state == StateBuilder.from_experiment_dir(directory)

    # A write torn by the crash is reported, not counted and not lost.
    log = directory / "conv_k_events.jsonl"
    logs.append(log, b'{"event_type":"TurnCompleteEvent","timestamp":"2026-')
    state = builder.experiment(directory)
    assert state.conversations["conv_k"].turns_completed == 3
    assert any("last line is incomplete" in problem for problem in state.problems)


def test_kill_9_of_a_chat(tmp_path: Path, python: Any) -> None:
    process = python.start(HELD_CHAT, str(tmp_path))
    builder = StateBuilder()
    try:
        wait_ready(process)
        (chat,) = builder.output_root(tmp_path)
        assert (chat.kind, chat.status, chat.live) == ("chat", "running", True)
        assert chat.progress.planned == 1
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    (chat,) = builder.output_root(tmp_path)
    assert (chat.status, chat.live) == ("interrupted", False)
    (conversation,) = chat.conversations.values()
    assert chat.name == conversation.id
    assert conversation.turns_completed == 1
    assert chat == StateBuilder.from_chat_dir(chat.directory)


READ_AS_ANOTHER_USER = """
import importlib, json, os, pkgutil, sys
import pidgin_events, pidgin_state
from pidgin_state import StateBuilder

# Import every module now: the other user may not be able to read the clone (lazy imports).
for package in (pidgin_events, pidgin_state):
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
if os.geteuid() == 0:  # root reads everything: become a user the permissions apply to
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
state = StateBuilder.from_experiment_dir(sys.argv[1])
print(json.dumps(state.to_dict()))
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can traverse (pytest's tmp_path is private)."""
    directory = Path(tempfile.mkdtemp(prefix="pidgin-state-", dir="/tmp"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_unreadable_log_and_lock_are_problems_not_crashes(
    shared_dir: Path, python: Any, logs: Any
) -> None:
    directory = logs.write_experiment(shared_dir, conversations=2, turns=2)
    experiment_log = directory / pe.EXPERIMENT_LOG
    lines = experiment_log.read_bytes().splitlines(keepends=True)
    assert lines[-1].startswith(b'{"event_type":"ExperimentCompleteEvent"')
    experiment_log.write_bytes(b"".join(lines[:-1]))  # it has not recorded its end yet
    unfinished = directory / "conv_open_events.jsonl"
    unfinished.write_bytes(logs.conversation_events("conv_open", 1, end=False))
    for path in [shared_dir / "experiments", directory, *directory.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    secret = directory / "conv_001_events.jsonl"
    secret.chmod(0)
    (directory / pe.RUN_LOCK).chmod(0)  # liveness cannot be probed by this user

    result = python.run(READ_AS_ANOTHER_USER, str(directory))
    assert result.returncode == 0, result.stderr.decode()
    state = json.loads(result.stdout)
    assert state["conversations"]["conv_001"]["status"] == "unknown"
    assert f"{secret}: cannot read: Permission denied" in state["problems"]
    assert state["conversations"]["conv_000"]["status"] == "completed"
    assert state["conversations"]["conv_open"]["status"] == "running"
    assert state["live"] is None
    assert any("cannot tell whether a writer holds" in note for note in state["notes"])
    assert state["progress"]["unknown"] == 1
    assert stat.S_IMODE(secret.stat().st_mode) == 0  # nothing was changed by reading


def test_not_an_experiment(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(NotAnExperimentError, match="no event log") as caught:
        StateBuilder.from_experiment_dir(empty)
    assert caught.value.path == str(empty)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(NotAnExperimentError, match="does not exist"):
        StateBuilder.from_experiment_dir(tmp_path / "missing")
    with pytest.raises(NotAnExperimentError, match="not a directory"):
        StateBuilder.from_experiment_dir(empty / "notes.txt")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0)
        with pytest.raises(NotAnExperimentError, match="cannot list"):
            StateBuilder.from_experiment_dir(locked)
