"""The load contract and the log access both loader and state use, on real files."""

from __future__ import annotations

import errno
import gzip
import json
import os
from pathlib import Path

import pytest

import pidgin_events as pe


def turn(n: int) -> bytes:
    return pe.encode_event(pe.TurnStartEvent(conversation_id="c", turn_number=n), seq=n)


def bookkeeping(n: int) -> bytes:
    return pe.encode_event(pe.DatabaseLoadEvent(experiment_id="e", status="loaded"), seq=n)


def test_files_a_load_reads_one_log_per_conversation_and_the_right_experiment_record() -> None:
    names = [
        "c1_events.jsonl",
        "c1_events.jsonl.gz",  # an archive being made beside its log: the log is read
        "c2_events.jsonl.zst",
        "c2_events.jsonl.gz",  # .gz before .zst
        "events_legacy.jsonl",
        "experiment.jsonl",
        "runner.log",
        ".loaded_to_db",
    ]
    assert pe.files_a_load_reads(names) == [
        "c1_events.jsonl",
        "c2_events.jsonl.gz",
        "events_legacy.jsonl",
        "experiment.jsonl",
    ]
    chosen, ignored = pe.choose_logs(names)
    assert chosen == {
        "c1": "c1_events.jsonl",
        "c2": "c2_events.jsonl.gz",
        "legacy": "events_legacy.jsonl",
    }
    assert sorted(ignored) == [
        ("c1_events.jsonl.gz", "c1_events.jsonl"),
        ("c2_events.jsonl.zst", "c2_events.jsonl.gz"),
    ]
    # pidgin-ai's manifest is the experiment record when there is one
    assert pe.files_a_load_reads(["events_a.jsonl", pe.MANIFEST, pe.EXPERIMENT_LOG]) == [
        "events_a.jsonl",
        pe.MANIFEST,
    ]


def test_a_marker_written_by_the_contract_reads_back_and_compares(tmp_path: Path) -> None:
    log = tmp_path / "c_events.jsonl"
    experiment = tmp_path / pe.EXPERIMENT_LOG
    log.write_bytes(turn(0) + turn(1))
    experiment.write_bytes(turn(0))
    names = pe.files_a_load_reads(os.listdir(tmp_path))
    stats = pe.stat_files(tmp_path, names)
    assert stats[pe.EXPERIMENT_LOG].mtime_ns is None  # appended to after a load: size only
    assert stats["c_events.jsonl"].mtime_ns == log.stat().st_mtime_ns
    marker = pe.LoadedMarker(
        loaded_at="2026-01-01T00:00:00+00:00",
        db_path="/data/e.duckdb",
        schema_version=2,
        experiment_id="e",
        files=tuple(stats.values()),
        rows={"events": 3},
    )
    pe.write_loaded_marker(tmp_path, marker)
    read = pe.read_marker(tmp_path / pe.LOADED_MARKER)
    assert read is not None
    assert read["fingerprint"] == pe.fingerprint(stats.values()) == marker.fingerprint
    by_name = sorted(stats.values(), key=lambda entry: entry.name)
    assert read["files"] == [entry.to_dict() for entry in by_name]

    def now() -> dict[str, pe.FileStat]:
        return pe.stat_files(tmp_path, pe.files_a_load_reads(os.listdir(tmp_path)))

    def after(offset: int) -> bool:
        return pe.only_bookkeeping_after(experiment, offset, experiment.stat().st_size)

    assert pe.changes_since_load(read["files"], now(), after) == []
    with experiment.open("ab") as stream:  # the loader's own event: not a change
        stream.write(bookkeeping(1))
    assert pe.changes_since_load(read["files"], now(), after) == []
    with experiment.open("ab") as stream:
        stream.write(turn(2))
    assert pe.changes_since_load(read["files"], now(), after) == [
        "experiment.jsonl has new events (not the loader's own)"
    ]
    experiment.write_bytes(turn(0))
    with log.open("ab") as stream:
        stream.write(turn(2))
    size = log.stat().st_size
    (tmp_path / "d_events.jsonl").write_bytes(turn(0))
    assert pe.changes_since_load(read["files"], now(), after) == [
        "d_events.jsonl is new",
        f"c_events.jsonl changed size from {size - len(turn(2))} to {size} bytes",
    ]
    assert pe.changes_since_load(None, now(), after) is None  # no list: nobody can tell


def test_only_whole_bookkeeping_lines_count_as_bookkeeping(tmp_path: Path) -> None:
    path = tmp_path / pe.EXPERIMENT_LOG
    path.write_bytes(turn(0) + bookkeeping(1) + b"\n" + bookkeeping(2))
    start = len(turn(0))
    assert pe.only_bookkeeping_after(path, start, path.stat().st_size)
    with path.open("ab") as stream:
        stream.write(bookkeeping(3)[:20])  # torn: a change in progress
    assert not pe.only_bookkeeping_after(path, start, path.stat().st_size)
    renamed = bookkeeping(4).replace(b"DatabaseLoadEvent", b"DatabaseLoadEventX")
    path.write_bytes(turn(0) + renamed)
    assert not pe.only_bookkeeping_after(path, start, path.stat().st_size)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_open_log_owns_a_descriptor_opened_without_following_links(
    tmp_path: Path, suffix: str
) -> None:
    data = turn(0) + turn(1)
    path = tmp_path / f"c_events.jsonl{suffix}"
    path.write_bytes(gzip.compress(data) if suffix else data)
    fd = pe.open_for_reading(path)
    with pe.open_log(fd, name=str(path)) as stream:
        assert stream.read() == data
    with pytest.raises(OSError, match="Bad file descriptor") as closed:
        os.fstat(fd)  # closing the stream closed the descriptor
    assert closed.value.errno == errno.EBADF
    link = tmp_path / "link_events.jsonl"
    link.symlink_to(path.name)
    with pytest.raises(OSError, match="symbolic links") as refused:
        pe.open_for_reading(link)
    assert refused.value.errno == errno.ELOOP


def test_the_marker_reader_refuses_links_and_garbage(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text(json.dumps({"loaded_at": "x"}))
    link = tmp_path / pe.LOADED_MARKER
    link.symlink_to(real.name)
    assert pe.read_marker(link) is None
    assert pe.read_marker(real) == {"loaded_at": "x"}
    real.write_text("[1, 2]")
    assert pe.read_marker(real) is None
    real.write_text("{")
    assert pe.read_marker(real) is None
