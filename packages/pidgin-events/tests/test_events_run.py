"""The agent-facing API: correct logs are the easy path, failures are recorded."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest

import pidgin_events as pe

HOLD_EXPERIMENT = """
import sys, time
import pidgin_events as pe
exp = pe.Experiment.create(sys.argv[1], name="held", total_conversations=1)
conv = exp.conversation(agent_a="local:test", agent_b="local:test")
conv.turn_start()
print(exp.directory, flush=True)
time.sleep(120)
"""


def events_of(path: Path) -> list[pe.Event]:
    result = pe.read_events(path)
    assert result.bad_lines == []
    return result.events


def one_conversation_log(directory: Path) -> Path:
    (log,) = directory.glob("*_events.jsonl")
    return log


def test_experiment_writes_start_and_end_events_for_you(tmp_path: Path) -> None:
    with pe.Experiment.create(tmp_path, name="greetings", total_conversations=2) as exp:
        assert pe.is_running(exp.directory) is True
        for _ in range(2):
            with exp.conversation(agent_a="local:test", agent_b="local:drift", max_turns=1) as c:
                c.system_prompt("agent_a", "be brief")
                c.turn_start()
                c.request("agent_a", message_count=2)
                c.message("agent_a", "hello", prompt_tokens=5, completion_tokens=1)
                c.message("agent_b", "hi")
                c.turn_complete(convergence_score=0.5)
    assert exp.directory == tmp_path / "experiments" / exp.id
    assert pe.is_running(exp.directory) is False
    assert stat.S_IMODE(exp.directory.stat().st_mode) == 0o700

    start, end = events_of(exp.directory / pe.EXPERIMENT_LOG)
    assert isinstance(start, pe.ExperimentStartEvent)
    assert start.name == "greetings"
    assert start.total_conversations == 2
    assert isinstance(end, pe.ExperimentCompleteEvent)
    assert (end.status, end.completed_conversations, end.failed_conversations) == (
        "completed",
        2,
        0,
    )

    logs = sorted(exp.directory.glob("*_events.jsonl"))
    assert len(logs) == 2
    events = events_of(logs[0])
    assert [e.event_type for e in events] == [
        "ConversationStartEvent",
        "SystemPromptEvent",
        "TurnStartEvent",
        "MessageRequestEvent",
        "MessageCompleteEvent",
        "MessageCompleteEvent",
        "TurnCompleteEvent",
        "ConversationEndEvent",
    ]
    assert [e.seq for e in events] == list(range(8))
    assert {e.experiment_id for e in events} == {exp.id}
    first = events[0]
    assert isinstance(first, pe.ConversationStartEvent)
    assert (first.agent_a_model, first.agent_b_model, first.max_turns) == (
        "local:test",
        "local:drift",
        1,
    )
    message = events[4]
    assert isinstance(message, pe.MessageCompleteEvent)
    assert (message.turn_number, message.total_tokens) == (0, 6)
    last = events[-1]
    assert isinstance(last, pe.ConversationEndEvent)
    assert (last.status, last.total_turns) == ("completed", 1)


def test_an_exception_ends_the_conversation_as_failed(tmp_path: Path) -> None:
    exp = pe.Experiment.create(tmp_path, name="boom")
    with (  # noqa: PT012 - the block under test is the whole with-statement
        pytest.raises(RuntimeError, match="provider exploded"),
        exp,
        exp.conversation(agent_a="a", agent_b="b") as conv,
    ):
        conv.turn_start()
        raise RuntimeError("provider exploded")
    events = events_of(one_conversation_log(exp.directory))
    error, end = events[-2:]
    assert isinstance(error, pe.ErrorEvent)
    assert error.error_message == "provider exploded"
    assert isinstance(end, pe.ConversationEndEvent)
    assert (end.status, end.error) == ("failed", "RuntimeError: provider exploded")
    complete = events_of(exp.directory / pe.EXPERIMENT_LOG)[-1]
    assert isinstance(complete, pe.ExperimentCompleteEvent)
    assert (complete.status, complete.failed_conversations) == ("failed", 1)


def test_ctrl_c_ends_the_conversation_as_interrupted(tmp_path: Path) -> None:
    exp = pe.Experiment.create(tmp_path, name="stopped")
    with pytest.raises(KeyboardInterrupt), exp, exp.conversation(agent_a="a", agent_b="b") as conv:  # noqa: PT012
        conv.turn_start()
        raise KeyboardInterrupt
    end = events_of(one_conversation_log(exp.directory))[-1]
    assert isinstance(end, pe.ConversationEndEvent)
    assert end.status == "interrupted"
    complete = events_of(exp.directory / pe.EXPERIMENT_LOG)[-1]
    assert isinstance(complete, pe.ExperimentCompleteEvent)
    assert (complete.status, complete.interrupted_conversations) == ("interrupted", 1)


def test_a_chat_gets_its_own_timestamped_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIDGIN_OUTPUT", str(tmp_path / "from-env"))
    with pe.Chat.create(agent_a="local:test", agent_b="silent:none") as chat:
        assert pe.is_running(chat.directory) is True
        chat.turn_start()
        chat.message("agent_a", "anyone there?")
        chat.message("agent_b", "")
        chat.turn_complete()
    assert chat.directory.parent == tmp_path / "from-env" / "chats"
    stamp, _, short = chat.directory.name.partition("_")[0], None, chat.directory.name[16:]
    assert len(stamp) == 8
    assert chat.id == f"conv_{short}"
    assert pe.is_running(chat.directory) is False
    events = events_of(chat.path)
    assert {e.experiment_id for e in events} == {None}
    assert isinstance(events[-1], pe.ConversationEndEvent)
    assert events[-1].total_turns == 1


def test_a_killed_writer_no_longer_counts_as_running(tmp_path: Path, python: Any) -> None:
    process = python.start(HOLD_EXPERIMENT, str(tmp_path))
    assert process.stdout is not None
    directory = Path(process.stdout.readline().decode().strip())
    assert pe.is_running(directory) is True
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert pe.is_running(directory) is False
    # What it wrote before dying is intact, and has no end event.
    events = events_of(one_conversation_log(directory))
    assert [e.event_type for e in events] == ["ConversationStartEvent", "TurnStartEvent"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../escape",
        "a/b",
        "a\\b",
        "..",
        "x..y",
        ".hidden",
        "nul\x00",
        "new\nline",
        "semi;colon",
        "quote'",
        "space here",
        "ｆｕｌｌwidth",
        "a" * 129,
        "-dash-first",
    ],
)
def test_unsafe_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid experiment name"):
        pe.Experiment.create(tmp_path, name=bad)
    with pytest.raises(ValueError, match="invalid conversation id"):
        pe.Chat.create(tmp_path, agent_a="a", agent_b="b", conversation_id=bad)
    assert not any(tmp_path.rglob("*_events.jsonl"))


def test_an_existing_experiment_directory_is_never_reused(tmp_path: Path) -> None:
    with pe.Experiment.create(tmp_path, name="first", experiment_id="exp_same"):
        pass
    with pytest.raises(FileExistsError):
        pe.Experiment.create(tmp_path, name="second", experiment_id="exp_same")
    start = events_of(tmp_path / "experiments" / "exp_same" / pe.EXPERIMENT_LOG)[0]
    assert isinstance(start, pe.ExperimentStartEvent)
    assert start.name == "first"
