"""Broken, hostile and unusual input: recorded as problems with file:line, never a crash."""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import pidgin_events as pe
from pidgin_state import ConversationState, StateBuilder


def lines_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def test_malformed_lines_are_reported_and_the_rest_counted(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    lines = lines_of(logs.conversation_events("conv_a", 3))
    lines.insert(3, b'{"event_type":"TurnCompleteEvent","timestamp": oops\n')  # handled type
    lines.insert(5, b'{"event_type":"MessageRequestEvent","timestamp":"2026-\n')  # skipped type
    lines.insert(7, b"\n")  # blank lines are allowed
    lines.insert(8, b"[1, 2, 3]\n")
    lines.insert(9, b"not json at all\n")
    log.write_bytes(b"".join(lines))

    state = StateBuilder.from_experiment_dir(run_dir)
    conversation = state.conversations["conv_a"]
    assert conversation.turns_completed == 3
    assert conversation.message_count == 6
    assert conversation.status == "completed"
    assert [p.split(": ", 1)[0] for p in state.problems] == [
        f"{log}:4",
        f"{log}:6",
        f"{log}:9",
        f"{log}:10",
    ]
    assert "not valid JSON" in state.problems[0]
    assert "not valid JSON" in state.problems[1]
    assert state.problems[2].endswith("expected a JSON object, got array")
    assert state.problem_count == 4


def test_unknown_and_misplaced_event_types(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    lines = lines_of(logs.conversation_events("conv_a", 2))
    lines.insert(2, b'{"event_type":"FutureEvent","timestamp":"2026-01-01T00:00:00+00:00"}\n')
    lines.insert(3, logs.legacy_line("SomethingNewEvent", conversation_id="conv_a"))
    lines.insert(4, logs.legacy_line("ExperimentStartEvent", name="x", total_conversations=1))
    log.write_bytes(b"".join(lines))
    state = StateBuilder.from_experiment_dir(run_dir)
    assert state.conversations["conv_a"].turns_completed == 2
    assert state.problems == (
        f"{log}:3: unknown event type 'FutureEvent'; ignored",
        f"{log}:4: unknown event type 'SomethingNewEvent'; ignored",
        f"{log}:5: ExperimentStartEvent does not belong in this log; ignored",
    )


def test_wrong_field_types_wrong_conversation_and_duplicates(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    lines = lines_of(logs.conversation_events("conv_a", 2))
    bad_tokens = lines[3].replace(b'"prompt_tokens":5', b'"prompt_tokens":"five"')
    assert bad_tokens != lines[3]
    foreign = lines[3].replace(b'"conv_a"', b'"conv_zzz"')
    duplicate_turn = lines[4]
    assert b'"TurnCompleteEvent"' in duplicate_turn
    log.write_bytes(b"".join([*lines[:6], bad_tokens, foreign, duplicate_turn, *lines[6:]]))

    state = StateBuilder.from_experiment_dir(run_dir)
    conversation = state.conversations["conv_a"]
    assert conversation.turns_completed == 2  # the repeated turn is counted once
    assert conversation.message_count == 4  # bad and foreign messages are not counted
    assert conversation.tokens["agent_a"].prompt == 10
    problems = "\n".join(state.problems)
    assert f"{log}:7: MessageCompleteEvent: field 'prompt_tokens': expected an integer" in problems
    assert f"{log}:8: MessageCompleteEvent: event of conversation 'conv_zzz'" in problems
    assert f"{log}:9: seq 4 does not follow seq 4" in problems
    assert f"{log}:9: TurnCompleteEvent: turn 0 completed again; counted once" in problems


def test_binary_file_named_like_a_log(run_dir: Path) -> None:
    log = run_dir / "conv_bin_events.jsonl"
    data = bytearray(os.urandom(200_000))
    data[::997] = b"\n" * len(data[::997])  # a few hundred "lines" of garbage
    log.write_bytes(bytes(data) + b"\n")
    state = StateBuilder.from_experiment_dir(run_dir)
    conversation = state.conversations["conv_bin"]
    assert conversation.status == "empty"
    assert conversation.turns_completed == 0
    assert state.problem_count > 100
    assert len(state.problems) <= 100
    # line 1 is blank; random bytes are seldom UTF-8, and never JSON
    assert state.problems[0].startswith((f"{log}:2: not valid UTF-8: ", f"{log}:2: not valid JSON"))
    assert any("more problems not listed" in problem for problem in state.problems)


def test_unterminated_event_types(run_dir: Path, logs: Any) -> None:
    # Each line must cost its own length, not the rest of the read block: 60,000 of
    # these once took minutes.
    log = run_dir / "conv_a_events.jsonl"
    hostile = b'{"event_type":"Turn\n' * 30_000 + b'{"x":1,"event_type":"Turn\n' * 30_000
    log.write_bytes(hostile + logs.conversation_events("conv_a", 1))
    state = StateBuilder.from_experiment_dir(run_dir)
    assert state.conversations["conv_a"].turns_completed == 1
    assert state.conversations["conv_a"].status == "completed"
    assert state.problem_count == 60_000
    assert state.problems[0].startswith(f"{log}:1: not valid JSON")
    assert state.problems[-1] == f"{log}: 59980 more problems not listed"


def test_empty_file_and_blank_lines(run_dir: Path) -> None:
    (run_dir / "conv_empty_events.jsonl").write_bytes(b"")
    (run_dir / "conv_blank_events.jsonl").write_bytes(b"\n\n   \n")
    state = StateBuilder.from_experiment_dir(run_dir)
    assert state.conversations["conv_empty"].status == "empty"
    assert state.conversations["conv_blank"].status == "empty"
    assert state.problems == ()
    assert state.status == "empty"


def test_crlf_line_endings(run_dir: Path, logs: Any) -> None:
    data = logs.conversation_events("conv_a", 2).replace(b"\n", b"\r\n")
    (run_dir / "conv_a_events.jsonl").write_bytes(data)
    state = StateBuilder.from_experiment_dir(run_dir)
    assert state.conversations["conv_a"].turns_completed == 2
    assert state.conversations["conv_a"].status == "completed"
    assert state.problems == ()


def test_lost_turns_are_noted(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    lines = lines_of(logs.conversation_events("conv_a", 3))
    turn_lines = [i for i, line in enumerate(lines) if b'"TurnCompleteEvent"' in line]
    del lines[turn_lines[1]]
    log.write_bytes(b"".join(lines))
    state = StateBuilder.from_experiment_dir(run_dir)
    assert state.conversations["conv_a"].turns_completed == 2
    assert state.conversations["conv_a"].reported_total_turns == 3
    assert state.notes == (f"{log}: the end event says 3 turns; 2 were read",)


def test_missing_start_event(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    log.write_bytes(b"".join(lines_of(logs.conversation_events("conv_a", 2))[1:]))
    state = StateBuilder.from_experiment_dir(run_dir)
    assert state.conversations["conv_a"].turns_completed == 2
    assert state.problems == (f"{log}: no ConversationStartEvent",)


def test_symlinks_outside_are_not_followed(run_dir: Path, tmp_path: Path, logs: Any) -> None:
    outside = tmp_path / "outside_events.jsonl"
    outside.write_bytes(logs.conversation_events("conv_out", 2))
    (run_dir / "conv_out_events.jsonl").symlink_to(outside)
    (run_dir / "manifest.json").symlink_to("/etc/hostname")
    inside = run_dir / "archive"
    inside.mkdir()
    (inside / "real.jsonl").write_bytes(logs.conversation_events("conv_in", 1))
    (run_dir / "conv_in_events.jsonl").symlink_to(inside / "real.jsonl")
    state = StateBuilder.from_experiment_dir(run_dir)
    assert list(state.conversations) == ["conv_in"]  # a link that stays inside is followed
    assert state.conversations["conv_in"].turns_completed == 1
    assert sorted(state.problems) == [
        f"{run_dir}/conv_out_events.jsonl: symbolic link to {str(outside)!r} outside the run "
        "directory; not followed",
        f"{run_dir}/manifest.json: symbolic link to '/etc/hostname' outside the run "
        "directory; not followed",
    ]


def test_special_files_named_like_logs(run_dir: Path, logs: Any) -> None:
    (run_dir / "conv_dir_events.jsonl").mkdir()
    os.mkfifo(run_dir / "conv_fifo_events.jsonl")  # opening it must not hang the reader
    (run_dir / "conv_a_events.jsonl").write_bytes(logs.conversation_events("conv_a", 1))
    state = StateBuilder.from_experiment_dir(run_dir)
    assert state.conversations["conv_a"].turns_completed == 1
    assert f"{run_dir}/conv_dir_events.jsonl: not a regular file; not read" in state.problems
    assert f"{run_dir}/conv_fifo_events.jsonl: not a regular file; not read" in state.problems
    assert state.conversations["conv_fifo"].status == "unknown"


def without_path(conversation: ConversationState) -> ConversationState:
    return replace(conversation, log_path=Path("."))


def test_gzip_and_zstd_archives_read_like_plain_logs(run_dir: Path, logs: Any) -> None:
    zstandard = pytest.importorskip("zstandard")
    data = logs.conversation_events("conv_a", 4)
    (run_dir / "conv_a_events.jsonl").write_bytes(data)
    (run_dir / "conv_b_events.jsonl.gz").write_bytes(
        gzip.compress(data.replace(b'"conv_a"', b'"conv_b"'))
    )
    (run_dir / "conv_c_events.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress(data.replace(b'"conv_a"', b'"conv_c"'))
    )
    builder = StateBuilder()
    state = builder.experiment(run_dir)
    plain = state.conversations["conv_a"]
    for name in ("conv_b", "conv_c"):
        archived = state.conversations[name]
        assert without_path(archived) == replace(without_path(plain), id=name)
        assert archived.turns_completed == 4
        assert archived.status == "completed"
        assert archived.tokens == plain.tokens
        assert archived.convergence == plain.convergence
        assert archived.last_event_at == plain.last_event_at
    assert state.problems == ()
    read = builder.bytes_read
    assert builder.experiment(run_dir) is state
    assert builder.bytes_read == read


def test_legacy_archives_read_like_the_fixture(legacy_fixtures: Path, tmp_path: Path) -> None:
    source = legacy_fixtures / "chat-silent-10turn_4700f813"
    directory = tmp_path / "archived"
    shutil.copytree(source, directory)
    log = directory / "events_conv_7fc087b1.jsonl"
    log.chmod(0o644)
    (directory / "events_conv_7fc087b1.jsonl.gz").write_bytes(gzip.compress(log.read_bytes()))
    log.unlink()
    archived = StateBuilder.from_experiment_dir(directory)
    original = StateBuilder.from_experiment_dir(source)
    assert without_path(archived.conversations["conv_7fc087b1"]) == without_path(
        original.conversations["conv_7fc087b1"]
    )
    assert archived.status == "completed"


def test_plain_log_wins_over_its_archive(run_dir: Path, logs: Any) -> None:
    (run_dir / "conv_a_events.jsonl").write_bytes(logs.conversation_events("conv_a", 3))
    (run_dir / "conv_a_events.jsonl.gz").write_bytes(
        gzip.compress(logs.conversation_events("conv_a", 1))
    )
    state = StateBuilder.from_experiment_dir(run_dir)
    assert state.conversations["conv_a"].turns_completed == 3
    assert state.problems == (
        f"{run_dir}/conv_a_events.jsonl.gz: another log of conversation conv_a "
        f"({run_dir}/conv_a_events.jsonl) is used; this one is ignored",
    )


def test_archived_experiment_reads_like_the_original(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path, conversations=2, turns=3)
    original = StateBuilder.from_experiment_dir(directory)
    for log in directory.glob("*.jsonl"):
        (log.parent / (log.name + ".gz")).write_bytes(gzip.compress(log.read_bytes()))
        log.unlink()
    (directory / pe.RUN_LOCK).unlink()
    archived = StateBuilder.from_experiment_dir(directory)
    assert archived.status == original.status == "completed"
    assert archived.timing == original.timing
    assert archived.progress == original.progress
    assert [without_path(c) for c in archived.conversations.values()] == [
        without_path(c) for c in original.conversations.values()
    ]
    assert archived.problems == ()

    (directory / pe.EXPERIMENT_LOG).write_bytes(b"")  # a plain log wins over its archive
    state = StateBuilder.from_experiment_dir(directory)
    assert state.problems == (
        f"{directory}/experiment.jsonl.gz: {directory}/experiment.jsonl is used; "
        "this one is ignored",
    )


def test_damaged_archive_keeps_what_came_before(run_dir: Path, logs: Any) -> None:
    data = logs.conversation_events("conv_a", 600)
    packed = gzip.compress(data)
    (run_dir / "conv_a_events.jsonl.gz").write_bytes(packed[: len(packed) * 2 // 3])
    state = StateBuilder.from_experiment_dir(run_dir)
    conversation = state.conversations["conv_a"]
    assert 100 < conversation.turns_completed < 600
    assert conversation.status == "interrupted"
    assert any("archive damaged after this line" in problem for problem in state.problems)


def test_lines_longer_than_a_read_block(run_dir: Path, logs: Any) -> None:
    history = [{"role": "user", "content": "z" * 1000, "agent_id": "human"}] * 6000
    log = run_dir / "events_conv_big.jsonl"
    big_request = logs.legacy_line(
        "MessageRequestEvent", conversation_id="conv_big", conversation_history=history
    )
    big_message = logs.legacy_line(
        "MessageCompleteEvent",
        conversation_id="conv_big",
        agent_id="agent_a",
        message={"role": "assistant", "content": "y" * 5_000_000, "agent_id": "agent_a"},
        prompt_tokens=1,
        completion_tokens=2,
        total_tokens=3,
    )
    assert len(big_request) > 5_000_000
    log.write_bytes(
        logs.legacy_line("ConversationStartEvent", conversation_id="conv_big", max_turns=1)
        + big_request
        + big_message
        + logs.legacy_line("TurnCompleteEvent", conversation_id="conv_big", turn_number=0)
        + logs.legacy_line(
            "ConversationEndEvent", conversation_id="conv_big", total_turns=2, status="completed"
        )
    )
    state = StateBuilder.from_experiment_dir(run_dir)
    conversation = state.conversations["conv_big"]
    assert conversation.turns_completed == 1
    assert conversation.tokens["agent_a"].total == 3
    assert conversation.status == "completed"
    assert state.problems == ()


def test_lines_too_long_to_hold_are_judged_by_head_and_tail(run_dir: Path, logs: Any) -> None:
    from pidgin_state._lines import MAX_LINE

    history = [{"role": "user", "content": "z" * 1_000_000, "agent_id": "human"}] * (
        MAX_LINE // 1_000_000 + 2
    )
    huge_request = logs.legacy_line(
        "MessageRequestEvent", conversation_id="conv_huge", conversation_history=history
    )
    assert len(huge_request) > MAX_LINE
    log = run_dir / "events_conv_huge.jsonl"
    with open(log, "wb") as handle:
        handle.write(logs.legacy_line("ConversationStartEvent", conversation_id="conv_huge"))
        handle.write(huge_request)
        del huge_request
        handle.write(b"\x00binary" * (MAX_LINE // 7 + 1) + b"\n")
        handle.write(
            logs.legacy_line("TurnCompleteEvent", conversation_id="conv_huge", turn_number=0)
        )
    state = StateBuilder.from_experiment_dir(run_dir)
    assert state.conversations["conv_huge"].turns_completed == 1
    (problem,) = state.problems
    assert problem.startswith(f"{log}:3: not a JSON object (")


def test_experiment_log_problems(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path, conversations=1, turns=1)
    log = directory / pe.EXPERIMENT_LOG
    logs.append(log, logs.legacy_line("TurnStartEvent", conversation_id="c", turn_number=0))
    logs.append(
        log,
        logs.legacy_line(
            "ExperimentCompleteEvent",
            experiment_id="exp_test",
            total_conversations=1,
            completed_conversations=1,
            failed_conversations=0,
            status="exploded",
        ),
    )
    state = StateBuilder.from_experiment_dir(directory)
    assert state.status == "unknown"
    assert f"{log}:3: TurnStartEvent does not belong in this log; ignored" in state.problems
    assert f"{log}: ExperimentCompleteEvent status 'exploded' is not understood" in state.problems
