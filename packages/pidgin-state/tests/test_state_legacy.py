"""Experiment directories written by pidgin-ai 1.1: counts, statuses, turns, convergence."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pidgin_state import StateBuilder


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The fixture's events, read independently of pidgin_state (stdlib json)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_five_conversations_of_twenty_turns(legacy_fixtures: Path) -> None:
    directory = legacy_fixtures / "exp-5x20-full_f41ebd59"
    state = StateBuilder.from_experiment_dir(directory)
    manifest = json.loads((directory / "manifest.json").read_text())

    assert state.format == "pidgin-ai-1.x"
    assert state.kind == "experiment"
    assert (state.id, state.name) == ("experiment_f41ebd59", "exp-5x20-full")
    assert state.status == "completed"
    assert state.live is False  # its manifest records the run's end: nobody writes it
    assert state.progress.planned == 5
    assert (state.progress.completed, state.progress.running, state.progress.pending) == (5, 0, 0)
    assert state.problems == ()
    assert state.notes == ()
    assert state.timing.created == datetime.fromisoformat(manifest["created_at"])
    assert sorted(state.conversations) == sorted(manifest["conversations"])
    assert state.active_conversations == ()

    for conversation in state.conversations.values():
        events = read_lines(directory / f"events_{conversation.id}.jsonl")
        turn_events = [e for e in events if e["event_type"] == "TurnCompleteEvent"]
        messages = [e for e in events if e["event_type"] == "MessageCompleteEvent"]
        (start,) = [e for e in events if e["event_type"] == "ConversationStartEvent"]
        (end,) = [e for e in events if e["event_type"] == "ConversationEndEvent"]
        assert conversation.status == "completed"
        assert conversation.turns_completed == 20
        assert conversation.current_turn == 20
        assert end["total_turns"] == 21  # pidgin-ai's off-by-one, kept for reference only
        assert conversation.reported_total_turns == 21
        assert conversation.max_turns == 20
        assert conversation.end_reason == "max_turns"
        assert (conversation.agent_a_model, conversation.agent_b_model) == (
            "local:test",
            "local:test",
        )
        expected_scores = tuple(e["convergence_score"] for e in turn_events)
        assert conversation.convergence == expected_scores
        assert expected_scores[:2] == (0.5, 1.0)
        assert conversation.latest_convergence == expected_scores[-1]
        assert conversation.mean_convergence == pytest.approx(sum(expected_scores) / 20)
        assert conversation.message_count == len(messages) == 40
        for agent in ("agent_a", "agent_b"):
            own = [m for m in messages if m["agent_id"] == agent]
            tokens = conversation.tokens[agent]
            assert tokens.prompt == sum(m["prompt_tokens"] for m in own)
            assert tokens.completion == sum(m["completion_tokens"] for m in own)
            assert tokens.total == sum(m["total_tokens"] for m in own)
            assert tokens.messages == 20
        assert events[0]["event_type"] == "SystemPromptEvent"  # pidgin-ai writes these first
        assert conversation.started_at == datetime.fromisoformat(start["timestamp"])
        assert conversation.ended_at == datetime.fromisoformat(end["timestamp"])
        assert conversation.last_message_at == datetime.fromisoformat(messages[-1]["timestamp"])
        assert conversation.last_event_at == datetime.fromisoformat(events[-1]["timestamp"])

    assert state.timing.turns_completed == 100
    assert state.tokens.total.messages == 200
    assert set(state.tokens.by_model) == {"local:test"}
    assert state.convergence.latest == dict.fromkeys(state.conversations, 1.0)
    assert state.convergence.mean_of_latest == 1.0
    assert state.error_count == 0
    assert not state.database.loaded


def test_chat_stored_as_an_experiment(legacy_fixtures: Path) -> None:
    directory = legacy_fixtures / "chat-silent-10turn_4700f813"
    state = StateBuilder.from_experiment_dir(directory)
    events = read_lines(directory / "events_conv_7fc087b1.jsonl")
    scores = tuple(e["convergence_score"] for e in events if e["event_type"] == "TurnCompleteEvent")

    assert state.status == "completed"
    assert state.progress.planned == 1
    assert state.progress.completed == 1
    (conversation,) = state.conversations.values()
    assert conversation.id == "conv_7fc087b1"
    assert conversation.turns_completed == 10
    assert conversation.reported_total_turns == 11
    assert conversation.convergence == scores
    assert set(scores) == {0.23}
    assert (conversation.agent_a_model, conversation.agent_b_model) == (
        "local:test",
        "silent:none",
    )
    assert conversation.tokens["agent_b"].completion == 0
    assert state.tokens.by_model["silent:none"].messages == 10
    assert state.problems == ()


def test_chat_directory_reads_the_same_as_a_chat(legacy_fixtures: Path) -> None:
    directory = legacy_fixtures / "chat-silent-10turn_4700f813"
    state = StateBuilder.from_chat_dir(directory)
    assert state.kind == "chat"
    assert state.id == "chat-silent-10turn_4700f813"
    assert state.name == "conv_7fc087b1"
    assert state.status == "completed"


def copy_of_5x20(legacy_fixtures: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "exp-5x20-full_f41ebd59"
    shutil.copytree(legacy_fixtures / "exp-5x20-full_f41ebd59", directory)
    for path in directory.iterdir():
        path.chmod(0o644)
    return directory


def cut_end_event(log: Path) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    assert b'"ConversationEndEvent"' in lines[-1]
    log.write_bytes(b"".join(lines[:-1]))


def running_copy(legacy_fixtures: Path, tmp_path: Path, logs: Any) -> tuple[Path, Path]:
    """The 5x20 experiment as pidgin-ai leaves it mid-run: the manifest says ``running``
    (no ``completed_at``), one conversation has no end event and wrote a line just now."""
    directory = copy_of_5x20(legacy_fixtures, tmp_path)
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["status"] = "running"
    del manifest["completed_at"]
    manifest_path.write_text(json.dumps(manifest))
    log = directory / "events_conv_0fc24c12.jsonl"
    cut_end_event(log)
    now = datetime.now(UTC).isoformat()
    logs.append(
        log,
        logs.legacy_line(
            "TurnStartEvent", conversation_id="conv_0fc24c12", turn_number=20, timestamp=now
        ),
    )
    return directory, log


def test_unfinished_legacy_conversation_is_running_while_its_log_is_fresh(
    legacy_fixtures: Path, tmp_path: Path, logs: Any
) -> None:
    directory, log = running_copy(legacy_fixtures, tmp_path, logs)
    logs.set_mtime(log, 5)
    state = StateBuilder(stale_after=60).experiment(directory)
    conversation = state.conversations["conv_0fc24c12"]
    assert conversation.status == "running"
    assert conversation.turns_completed == 20  # the turns are all there; only the end is not
    assert state.status == "running"
    assert state.live is None  # no pid file (a foreground run): freshness decides
    assert state.progress.running == 1
    assert [c.id for c in state.active_conversations] == ["conv_0fc24c12"]
    assert any("no run lock" in note for note in state.notes)


def test_unfinished_legacy_conversation_goes_stale_into_interrupted(
    legacy_fixtures: Path, tmp_path: Path, logs: Any
) -> None:
    directory, log = running_copy(legacy_fixtures, tmp_path, logs)
    builder = StateBuilder(stale_after=60)
    logs.set_mtime(log, 5)
    for path in directory.iterdir():
        if path != log:
            logs.set_mtime(path, 3600)
    assert builder.experiment(directory).status == "running"
    before = builder.bytes_read

    logs.set_mtime(log, 3600)  # nothing appended, but an hour has passed since the last write
    state = builder.experiment(directory)
    assert builder.bytes_read == before
    conversation = state.conversations["conv_0fc24c12"]
    assert conversation.status == "interrupted"
    assert conversation.end_reason is not None
    assert "no write" in conversation.end_reason
    assert state.status == "interrupted"
    assert state.progress.interrupted == 1
    assert state.progress.completed == 4
    assert any("no run lock" in note for note in state.notes)


def test_stopped_legacy_run_is_interrupted_at_once(
    legacy_fixtures: Path, tmp_path: Path, logs: Any
) -> None:
    """Its manifest records the end (``completed_at``, a final status) while a conversation
    has no end event: that conversation was interrupted, however fresh its file."""
    directory = copy_of_5x20(legacy_fixtures, tmp_path)
    log = directory / "events_conv_0fc24c12.jsonl"
    cut_end_event(log)
    logs.set_mtime(log, 0)
    state = StateBuilder(stale_after=3600).experiment(directory)
    conversation = state.conversations["conv_0fc24c12"]
    assert conversation.status == "interrupted"
    assert conversation.end_reason == (
        "no end event and manifest.json records the run's end (status 'completed')"
    )
    assert (state.status, state.live) == ("interrupted", False)
    assert (state.progress.completed, state.progress.interrupted) == (4, 1)
    assert state.timing.running is False
    assert state.timing.eta() is None


def test_copied_running_legacy_run_is_judged_by_its_events_own_time(
    legacy_fixtures: Path, tmp_path: Path, logs: Any
) -> None:
    """A run whose manifest still says running (killed), copied or restored from a backup:
    its files are fresh, its events are days old. Not running."""
    directory, log = running_copy(legacy_fixtures, tmp_path, logs)
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))  # drop the fresh line: the newest event is old
    for path in directory.iterdir():
        logs.set_mtime(path, 0)
    state = StateBuilder(stale_after=600).experiment(directory)
    assert state.conversations["conv_0fc24c12"].status == "interrupted"
    assert state.status == "interrupted"
    assert state.timing.running is False


@pytest.mark.parametrize(("alive", "expected"), [(True, "running"), (False, "interrupted")])
def test_pidgin_ai_pid_file_tells_a_live_daemon_from_a_killed_one(
    *,
    legacy_fixtures: Path,
    tmp_path: Path,
    logs: Any,
    python: Any,
    monkeypatch: pytest.MonkeyPatch,
    alive: bool,
    expected: str,
) -> None:
    """pidgin-ai's daemon writes ``<cache>/pidgin/active_experiments/<id>.pid`` and removes it
    on a clean exit; a kill leaves it, naming a dead process."""
    directory, log = running_copy(legacy_fixtures, tmp_path, logs)
    logs.set_mtime(log, 3600)  # stale by time: only the pid file can say running
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    pid_dir = cache / "pidgin" / "active_experiments"
    pid_dir.mkdir(parents=True)
    daemon = python.start("import time; print('up', flush=True); time.sleep(60)", "pidgin")
    try:
        assert daemon.stdout is not None
        assert daemon.stdout.readline() == b"up\n"  # exec'd: /proc shows its command line
        if not alive:
            daemon.kill()
            daemon.communicate()
        (pid_dir / "experiment_f41ebd59.pid").write_text(str(daemon.pid))
        state = StateBuilder(stale_after=60).experiment(directory)
    finally:
        daemon.kill()
        daemon.communicate()
    assert state.status == expected
    assert state.live is alive
    assert state.conversations["conv_0fc24c12"].status == expected
