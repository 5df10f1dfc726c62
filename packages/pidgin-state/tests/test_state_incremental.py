"""A builder kept across calls reads only appended bytes and never drifts from a cold read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pidgin_events as pe
from pidgin_state import ExperimentState, StateBuilder


def cold(directory: Path) -> ExperimentState:
    return StateBuilder.from_experiment_dir(directory)


def test_no_change_refresh_returns_the_cached_state_without_reading(
    tmp_path: Path, logs: Any
) -> None:
    directory = logs.write_experiment(tmp_path, conversations=100, turns=2)
    builder = StateBuilder()
    first = builder.experiment(directory)
    assert first.progress.completed == 100
    read = builder.bytes_read
    assert read == sum(p.stat().st_size for p in directory.glob("*.jsonl"))

    for _ in range(20):
        again = builder.experiment(directory)
        assert again is first  # the very same object: nothing re-read, nothing rebuilt
    assert builder.bytes_read == read
    assert again == cold(directory)


def test_refresh_reads_only_the_appended_bytes(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    whole = logs.conversation_events("conv_a", 6)
    lines = whole.splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:10]))
    builder = StateBuilder()
    first = builder.experiment(run_dir)
    assert builder.bytes_read == log.stat().st_size

    rest = b"".join(lines[10:])
    logs.append(log, rest)
    state = builder.experiment(run_dir)
    assert builder.bytes_read == len(whole)  # the second call read exactly what was appended
    assert state is not first
    assert state.conversations["conv_a"].turns_completed == 6
    assert state.conversations["conv_a"].status == "completed"
    assert state == cold(run_dir)


def test_torn_last_line_waits_for_its_newline(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    whole = logs.conversation_events("conv_a", 3)
    lines = whole.splitlines(keepends=True)
    (last_turn,) = [i for i, line in enumerate(lines) if b'"turn_number":2,"turn"' in line]
    torn = lines[last_turn]
    log.write_bytes(b"".join(lines[:last_turn]) + torn[:25])
    builder = StateBuilder()

    state = builder.experiment(run_dir)
    conversation = state.conversations["conv_a"]
    assert conversation.turns_completed == 2
    assert conversation.status == "interrupted"  # nobody holds the run lock
    (problem,) = state.problems
    assert problem == (
        f"{log}:{last_turn + 1}: last line is incomplete (25 bytes, no newline); not counted"
    )

    logs.append(log, torn[25:])  # the writer finishes the line
    state = builder.experiment(run_dir)
    assert state.conversations["conv_a"].turns_completed == 3
    assert state.conversations["conv_a"].convergence == (0.5, 0.5, 0.5)
    assert state.problems == ()
    logs.append(log, b"".join(lines[last_turn + 1 :]))
    state = builder.experiment(run_dir)
    assert state.conversations["conv_a"].turns_completed == 3
    assert state.conversations["conv_a"].status == "completed"
    assert state == cold(run_dir)


def test_truncated_file_is_read_again_from_the_start(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    whole = logs.conversation_events("conv_a", 5)
    log.write_bytes(whole)
    builder = StateBuilder()
    assert builder.experiment(run_dir).conversations["conv_a"].turns_completed == 5

    lines = whole.splitlines(keepends=True)
    with open(log, "r+b") as handle:  # same inode, fewer bytes
        handle.truncate(len(b"".join(lines[:9])))
    state = builder.experiment(run_dir)
    conversation = state.conversations["conv_a"]
    assert conversation.turns_completed == 2
    assert conversation.status == "interrupted"
    assert state == cold(run_dir)


def test_replaced_file_is_read_again_from_the_start(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    log.write_bytes(logs.conversation_events("conv_a", 2, end=False))
    builder = StateBuilder()
    assert builder.experiment(run_dir).conversations["conv_a"].turns_completed == 2

    # A longer file under the same name (new inode): appended-bytes logic would double count.
    replacement = run_dir / "replacement.tmp"
    replacement.write_bytes(logs.conversation_events("conv_a", 4))
    old_inode = log.stat().st_ino
    os.replace(replacement, log)
    assert log.stat().st_ino != old_inode
    state = builder.experiment(run_dir)
    assert state.conversations["conv_a"].turns_completed == 4
    assert state.conversations["conv_a"].status == "completed"
    assert state == cold(run_dir)


def rewrite_in_place(log: Path, data: bytes) -> None:
    inode = log.stat().st_ino
    with open(log, "r+b") as handle:
        handle.write(data)
    assert log.stat().st_ino == inode


def test_rewritten_in_place_from_the_start_is_read_again(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    first = logs.conversation_events("conv_a", 2, end=False)
    log.write_bytes(first)
    builder = StateBuilder()
    assert builder.experiment(run_dir).conversations["conv_a"].turns_completed == 2

    # Same inode, grown, and the bytes at the old end unchanged: only the head differs.
    other = (
        b'{"event_type":"SystemPromptEvent"}\n'
        + first[35:]
        + logs.conversation_events("conv_a", 3).splitlines(keepends=True)[-1]
    )
    assert other[len(first) - 128 : len(first)] == first[-128:]
    rewrite_in_place(log, other)
    state = builder.experiment(run_dir)
    assert state == cold(run_dir)
    assert state.conversations["conv_a"].status == "completed"
    # Line 1 is now a system prompt and line 2 the rest of the old start event.
    assert state.conversations["conv_a"].started_at is None
    assert any(problem.startswith(f"{log}:2: ") for problem in state.problems)
    assert f"{log}: no ConversationStartEvent" in state.problems


def test_rewritten_in_place_before_the_old_end_is_read_again(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    first = logs.conversation_events("conv_a", 2, end=False)
    log.write_bytes(first)
    builder = StateBuilder()
    assert builder.experiment(run_dir).conversations["conv_a"].convergence == (0.5, 0.5)

    # Same inode, same head, grown, but the last line read before differs.
    other = first.replace(b'"convergence_score":0.5}', b'"convergence_score":0.7}')
    other += logs.conversation_events("conv_a", 2).splitlines(keepends=True)[-1]
    assert other[:128] == first[:128]
    rewrite_in_place(log, other)
    state = builder.experiment(run_dir)
    assert state.conversations["conv_a"].convergence == (0.7, 0.7)
    assert state == cold(run_dir)


def test_new_and_removed_files(run_dir: Path, logs: Any) -> None:
    (run_dir / "conv_a_events.jsonl").write_bytes(logs.conversation_events("conv_a", 1))
    builder = StateBuilder()
    assert list(builder.experiment(run_dir).conversations) == ["conv_a"]

    (run_dir / "conv_b_events.jsonl").write_bytes(logs.conversation_events("conv_b", 2))
    state = builder.experiment(run_dir)
    assert sorted(state.conversations) == ["conv_a", "conv_b"]
    assert state.timing.turns_completed == 3
    assert state == cold(run_dir)

    (run_dir / "conv_a_events.jsonl").unlink()
    state = builder.experiment(run_dir)
    assert list(state.conversations) == ["conv_b"]
    assert state == cold(run_dir)

    # Back under the same name with other content: nothing of the old log may linger.
    (run_dir / "conv_a_events.jsonl").write_bytes(logs.conversation_events("conv_a", 3))
    state = builder.experiment(run_dir)
    assert state.conversations["conv_a"].status == "completed"
    assert state.conversations["conv_a"].turns_completed == 3
    assert state == cold(run_dir)


def test_many_appends_match_a_cold_read(tmp_path: Path, logs: Any) -> None:
    directory = tmp_path / "experiments" / "exp_steps"
    builder = StateBuilder()
    with pe.Experiment.create(
        tmp_path, name="steps", total_conversations=2, experiment_id="exp_steps"
    ) as exp:
        for index in range(2):
            with exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=4) as conv:
                for turn in range(4):
                    conv.turn_start()
                    conv.message("agent_a", "x" * (turn * 1000), prompt_tokens=turn)
                    state = builder.experiment(directory)
                    assert state.conversations[conv.id].current_turn == turn + 1
                    assert state.conversations[conv.id].status == "running"
                    conv.message("agent_b", "y", completion_tokens=1)
                    conv.turn_complete(convergence_score=turn / 4)
                    state = builder.experiment(directory)
                    assert state.conversations[conv.id].turns_completed == turn + 1
                    assert state == cold(directory)
            assert builder.experiment(directory).progress.completed == index + 1
    final = builder.experiment(directory)
    assert final.status == "completed"
    assert final.live is False
    assert final == cold(directory)
    assert final.tokens.by_agent["agent_a"].prompt == 2 * (0 + 1 + 2 + 3)
