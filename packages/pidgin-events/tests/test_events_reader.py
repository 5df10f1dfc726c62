"""Reading logs from an offset: tailing, torn tails, bad lines, archives, legacy files."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import pytest

import pidgin_events as pe

TAILED_WRITER = """
import sys, time
import pidgin_events as pe
with pe.EventWriter(sys.argv[1]) as writer:
    for i in range(400):
        writer.emit(pe.TurnStartEvent(conversation_id="c", turn_number=i))
        if i % 40 == 0:
            time.sleep(0.01)
"""


def turn(n: int) -> bytes:
    return pe.encode_event(pe.TurnStartEvent(conversation_id="c", turn_number=n), seq=n)


def test_reader_resumes_from_its_offset_and_waits_for_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "c_events.jsonl"
    path.write_bytes(turn(0) + turn(1))
    reader = pe.LogReader(path)
    assert [e.seq for e in reader.events() if isinstance(e, pe.Event)] == [0, 1]
    half = turn(2)[:20]
    with path.open("ab") as f:
        f.write(half)
    assert list(reader.events()) == []
    assert reader.pending == len(half)
    with path.open("ab") as f:
        f.write(turn(2)[20:] + turn(3))
    assert [e.seq for e in reader.events() if isinstance(e, pe.Event)] == [2, 3]
    assert reader.offset == path.stat().st_size
    assert reader.line == 5


def test_bad_lines_in_the_middle_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c_events.jsonl"
    path.write_bytes(turn(0) + b"{broken\n" + b"\n" + b"\xff\xfe\n" + turn(1))
    result = pe.read_events(path)
    assert [e.seq for e in result.events] == [0, 1]
    assert [(b.line, b.path) for b in result.bad_lines] == [(2, str(path)), (4, str(path))]
    assert [b.reason.split(":")[0] for b in result.bad_lines] == [
        "not valid JSON",
        "not valid UTF-8",
    ]
    assert result.bad_lines[1].reason == "not valid UTF-8: byte 0xff at column 1"


def test_reading_from_an_offset_keeps_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "c_events.jsonl"
    path.write_bytes(turn(0) + turn(1) + b"oops\n")
    first = pe.read_events(path, offset=len(turn(0)), line=2)
    assert [e.seq for e in first.events] == [1]
    assert first.bad_lines[0].line == 3


def test_tailing_a_file_while_another_process_writes(tmp_path: Path, python: Any) -> None:
    path = tmp_path / "c_events.jsonl"
    path.touch()
    writer = python.start(TAILED_WRITER, str(path))
    reader = pe.LogReader(path)
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        finished = writer.poll() is not None
        for item in reader.events():
            assert isinstance(item, pe.TurnStartEvent), item
            seen.append(item.turn_number)
        if finished:
            break
        time.sleep(0.002)
    _, err = writer.communicate(timeout=30)
    assert writer.returncode == 0, err.decode()
    assert seen == list(range(400))


def test_block_boundaries_do_not_split_lines(tmp_path: Path) -> None:
    path = tmp_path / "c_events.jsonl"
    path.write_bytes(b"".join(turn(i) for i in range(100)))
    reader = pe.LogReader(path, block_size=37)
    assert [e.seq for e in reader.events() if isinstance(e, pe.Event)] == list(range(100))


def test_gzip_and_zstandard_archives_read_like_plain_files(tmp_path: Path) -> None:
    data = b"".join(turn(i) for i in range(10))
    gz = tmp_path / "c_events.jsonl.gz"
    gz.write_bytes(gzip.compress(data))
    assert [e.seq for e in pe.read_events(gz).events] == list(range(10))
    assert [e.seq for e in pe.read_events(gz, offset=len(turn(0)), line=2).events] == list(
        range(1, 10)
    )
    zstandard = pytest.importorskip("zstandard")
    zst = tmp_path / "c_events.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(data))
    assert [e.seq for e in pe.read_events(zst).events] == list(range(10))


def test_truncated_archive_keeps_what_came_before(tmp_path: Path) -> None:
    data = b"".join(turn(i) for i in range(2000))
    gz = tmp_path / "c_events.jsonl.gz"
    gz.write_bytes(gzip.compress(data)[:-200])
    events = pe.read_events(gz).events
    assert 0 < len(events) < 2000
    assert [e.seq for e in events] == list(range(len(events)))


def test_legacy_pidgin_ai_logs_parse(legacy_fixtures: Path) -> None:
    for path in sorted(legacy_fixtures.glob("*/events_*.jsonl")):
        result = pe.read_events(path)
        assert result.bad_lines == []
        assert result.offset == path.stat().st_size
        assert isinstance(result.events[-1], pe.ConversationEndEvent)
        assert pe.conversation_id_of_log(path.name) == result.events[-1].conversation_id


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("conv_1_events.jsonl", "conv_1"),
        ("events_conv_2.jsonl", "conv_2"),
        ("conv_3_events.jsonl.gz", "conv_3"),
        ("events_conv_4.jsonl.zst", "conv_4"),
        ("experiment.jsonl", None),
        ("manifest.json", None),
        ("../x_events.jsonl", None),
    ],
)
def test_conversation_log_names(name: str, expected: str | None) -> None:
    assert pe.conversation_id_of_log(name) == expected
