"""The writer never tears a line: concurrent processes, kills, torn tails, big lines."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import pidgin_events as pe

WRITER_LOOP = """
import sys
import pidgin_events as pe
path, count, size, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with pe.EventWriter(path) as writer:
    for i in range(count):
        body = (tag * (size // len(tag) + 1))[: size + (i % 7) * 1000]
        writer.emit(pe.ErrorEvent(conversation_id=tag, error_type=str(i), error_message=body))
        if count > 1000 and i == 50:
            print("started", flush=True)
"""


def message_event(content: str = "hello") -> pe.MessageCompleteEvent:
    return pe.MessageCompleteEvent(
        conversation_id="conv_1",
        agent_id="agent_a",
        message=pe.Message(role="assistant", content=content, agent_id="agent_a"),
        prompt_tokens=1,
        completion_tokens=2,
        total_tokens=3,
        duration_ms=4,
    )


def lines_of(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().split(b"\n") if line]


def test_seq_starts_at_zero_and_continues_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "conv_1_events.jsonl"
    with pe.EventWriter(path, experiment_id="exp_1") as writer:
        assert [writer.emit(message_event()) for _ in range(3)] == [0, 1, 2]
    with pe.EventWriter(path) as writer:
        assert writer.next_seq == 3
        writer.emit(message_event())
    events = pe.read_events(path).events
    assert [e.seq for e in events] == [0, 1, 2, 3]
    assert [e.experiment_id for e in events] == ["exp_1"] * 3 + [None]
    assert len({e.event_id for e in events}) == 4
    assert all(e.schema_version == pe.SCHEMA_VERSION for e in events)


def test_event_is_visible_as_soon_as_emit_returns(tmp_path: Path) -> None:
    path = tmp_path / "conv_1_events.jsonl"
    with pe.EventWriter(path, fsync="never") as writer:
        for i in range(5):
            writer.emit(message_event(str(i)))
            assert len(lines_of(path)) == i + 1


def test_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "conv_1_events.jsonl"
    with pe.EventWriter(path) as writer:
        writer.emit(message_event())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_torn_tail_is_sealed_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "conv_1_events.jsonl"
    with pe.EventWriter(path) as writer:
        writer.emit(message_event("first"))
        writer.emit(message_event("second"))
    whole = path.read_bytes()
    torn = b'{"event_type":"MessageCompleteEvent","timestamp":"2026-'
    path.write_bytes(whole + torn)
    with pe.EventWriter(path) as writer:
        assert writer.next_seq == 2
        writer.emit(message_event("third"))
    raw = path.read_bytes()
    assert raw.startswith(whole + torn + b"\n")
    result = pe.read_events(path)
    assert [e.seq for e in result.events] == [0, 1, 2]
    assert [b.line for b in result.bad_lines] == [3]
    assert str(result.bad_lines[0]).startswith(f"{path}:3: not valid JSON")


def test_sixteen_megabyte_lines(tmp_path: Path) -> None:
    path = tmp_path / "conv_1_events.jsonl"
    content = "x" * (16 * 1024 * 1024)
    with pe.EventWriter(path) as writer:
        writer.emit(message_event(content))
        writer.emit(message_event("after"))
    events = pe.read_events(path).events
    assert len(events) == 2
    first = events[0]
    assert isinstance(first, pe.MessageCompleteEvent)
    assert first.message.content == content


def test_unencodable_values_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "conv_1_events.jsonl"
    with pe.EventWriter(path) as writer:
        writer.emit(message_event())
        with pytest.raises(TypeError):
            writer.emit(
                pe.ExperimentStartEvent(
                    experiment_id="e", name="n", total_conversations=1, config={"where": Path("/")}
                )
            )
        writer.emit(message_event())
    assert [e.seq for e in pe.read_events(path).events] == [0, 1]


def test_concurrent_processes_never_interleave_lines(tmp_path: Path, python: Any) -> None:
    path = tmp_path / "shared_events.jsonl"
    writers = [
        python.start(WRITER_LOOP, str(path), "200", str(70_000 + i * 5_000), f"w{i}")
        for i in range(4)
    ]
    for process in writers:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    lines = lines_of(path)
    assert len(lines) == 800
    per_writer: dict[str, list[int]] = {}
    for line in lines:
        data = orjson.loads(line)  # every line parses: nothing glued, nothing torn
        assert len(data["error_message"]) >= 70_000
        per_writer.setdefault(data["conversation_id"], []).append(int(data["error_type"]))
    assert {k: sorted(v) for k, v in per_writer.items()} == {
        f"w{i}": list(range(200)) for i in range(4)
    }


def test_writer_killed_mid_stream_loses_only_its_torn_tail(tmp_path: Path, python: Any) -> None:
    path = tmp_path / "conv_1_events.jsonl"
    process = python.start(WRITER_LOOP, str(path), "1000000", "3000", "k")
    assert process.stdout is not None
    assert process.stdout.readline() == b"started\n"
    time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    before = path.read_bytes()
    complete = before[: before.rfind(b"\n") + 1]
    expected = len(lines_of_bytes(complete))
    assert expected > 50

    with pe.EventWriter(path) as writer:
        seq = writer.emit(pe.ErrorEvent(conversation_id="k", error_type="after", error_message=""))
    result = pe.read_events(path)
    good = [e for e in result.events if isinstance(e, pe.ErrorEvent)]
    assert [e.error_type for e in good[:expected]] == [str(i) for i in range(expected)]
    assert good[-1].error_type == "after"
    assert seq == expected  # numbering continues after the last complete event
    assert len(result.bad_lines) == (0 if before.endswith(b"\n") else 1)
    assert path.read_bytes().startswith(before)  # nothing already written was removed


def lines_of_bytes(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\n") if line]


def test_fsync_policy_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync must be"):
        # A policy outside FsyncPolicy on purpose: callers without a type checker can pass one.
        pe.EventWriter(tmp_path / "x_events.jsonl", fsync="sometimes")  # type: ignore[arg-type]
    with pe.EventWriter(tmp_path / "x_events.jsonl", fsync="always") as writer:
        writer.emit(message_event())
    assert writer.closed
    with pytest.raises(ValueError, match="writer is closed"):
        writer.emit(message_event())


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_raises_a_clear_error() -> None:
    writer = pe.EventWriter("/dev/full", fsync="never")
    with pytest.raises(pe.EventWriteError, match="/dev/full: could not append event seq=0"):
        writer.emit(message_event())
    writer.close()
