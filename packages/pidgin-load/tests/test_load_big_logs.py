"""A log bigger than a read batch is read in ranges of whole lines, and loads exactly the same.

The batch size is made tiny here (a few kB) so that small logs take the paths a 1 GB log
takes with the real one: ranges copied apart, numbered from their first line, bad lines
and long lines on range boundaries, statements over the payloads run slice by slice.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pidgin_events as pe
import pidgin_load as pl
from pidgin_load import _ingest, _sources
from pidgin_load._chunks import line_ranges

SMALL_BATCH = 3000
"""Bytes per read batch in these tests: every log below is several batches long."""

_VOLATILE = {
    "experiments": "EXCLUDE (loaded_at, fingerprint, run_dir)",
    "loads": "EXCLUDE (loaded_at, target)",
}


def _table_rows(db: Path, experiment_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the experiment in every table, in a stable order."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            table: con.execute(
                f"SELECT * {_VOLATILE.get(table, '')} FROM {table} "
                "WHERE experiment_id = ? ORDER BY ALL",
                [experiment_id],
            ).fetchall()
            for table in pl.TABLES
        }


def _load_whole_and_in_ranges(
    directory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path, pl.LoadSummary]:
    """Load copies of ``directory`` with the real batch size and with a tiny one."""
    copies = []
    for name in ("whole", "ranges"):
        copy = tmp_path / name / "experiments" / directory.name
        shutil.copytree(directory, copy)
        copies.append(copy)
    whole_db, ranges_db = tmp_path / "whole.duckdb", tmp_path / "ranges.duckdb"
    assert pl.load_experiment(copies[0], whole_db).ok
    monkeypatch.setattr(_sources, "BATCH_BYTES", SMALL_BATCH)
    summary = pl.load_experiment(copies[1], ranges_db)
    assert summary.ok, summary.to_json()
    return whole_db, ranges_db, summary


def _ours_with_damage(root: Path) -> tuple[Path, Path, dict[str, int]]:
    """An experiment whose conversation log spans many batches, damaged on purpose.

    Returns the directory, the damaged log, and the line number of each kind of damage.
    """
    with (
        pe.Experiment.create(root, name="long", experiment_id="exp_long") as exp,
        exp.conversation(
            agent_a="local:test", agent_b="local:test", conversation_id="conv_long"
        ) as conv,
    ):
        for turn in range(12):
            conv.turn_start()
            conv.message("agent_a", f"a{turn} " * 40, completion_tokens=turn)
            # longer than a batch: a range of its own
            conv.message("agent_b", "b" * (2 * SMALL_BATCH if turn == 5 else 90))
            conv.turn_complete(turn / 12)
            if turn == 8:
                conv.error("TestError", "an error between the ranges", context="c" * 500)
    log = conv.path
    lines = {}
    with open(log, "ab") as stream:
        stream.write(b"not json\n" + b'{"event_type":"X","c":"caf\xe9"}\n' + b"\r\n")
    count = len(log.read_bytes().splitlines())
    lines["not json"] = count - 2
    lines["not utf-8"] = count - 1
    with pe.EventWriter(log) as writer:
        # turn 3 completed again, much later: the last one counts
        writer.emit(
            pe.TurnCompleteEvent(conversation_id="conv_long", turn_number=3, convergence_score=1)
        )
    return exp.directory, log, lines


def test_line_ranges_cut_a_file_into_numbered_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"aa\nbbbb\n\ncc\n" + b"d" * 9 + b"\neee")
    ranges = [(r.start, r.end, r.first_line) for r in line_ranges(path, limit=8, block_size=3)]
    # 'aa\n' + 'bbbb\n' = 8 bytes; '\ncc\n' = 4; the 10-byte line alone; the torn tail
    assert ranges == [(0, 8, 1), (8, 12, 3), (12, 22, 5), (22, 25, 6)]


@settings(max_examples=400, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"\n", b"x", b"yyy\n", b"z" * 9]), max_size=30).map(b"".join),
    limit=st.integers(1, 20),
    block_size=st.integers(1, 12),
)
def test_line_ranges_are_whole_lines_at_most_the_limit(
    data: bytes, limit: int, block_size: int
) -> None:
    with tempfile.NamedTemporaryFile() as stream:
        stream.write(data)
        stream.flush()
        ranges = list(line_ranges(stream.name, limit, block_size))
    position = 0
    for line_range in ranges:
        assert line_range.start == position < line_range.end
        chunk = data[line_range.start : line_range.end]
        assert line_range.first_line == data[: line_range.start].count(b"\n") + 1
        if line_range.end < len(data):
            assert chunk.endswith(b"\n")
        if line_range.size > limit:
            assert chunk.count(b"\n") <= 1  # a single line longer than the limit
        elif line_range.end < len(data):
            rest = data[line_range.end :]
            next_line = rest.find(b"\n") + 1 or len(rest)
            assert line_range.size + next_line > limit  # no further line would have fit
        position = line_range.end
    assert position == len(data)


@pytest.mark.parametrize("compression", [None, "gz"])
def test_a_log_read_in_ranges_loads_exactly_as_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: Any, compression: str | None
) -> None:
    directory, log, lines = _ours_with_damage(tmp_path / "source")
    assert log.stat().st_size > 8 * SMALL_BATCH
    if compression == "gz":
        log.with_name(log.name + ".gz").write_bytes(gzip.compress(log.read_bytes()))
        log.unlink()

    whole_db, ranges_db, summary = _load_whole_and_in_ranges(directory, tmp_path, monkeypatch)

    assert _table_rows(ranges_db, "exp_long") == _table_rows(whole_db, "exp_long")
    assert summary.bad_lines == 2
    assert query(ranges_db, "SELECT line_number, reason FROM load_errors ORDER BY line_number") == [
        (lines["not json"], "not valid JSON"),
        (lines["not utf-8"], "not valid UTF-8 (byte 0xe9 at byte 27)"),
    ]
    assert query(ranges_db, "SELECT convergence_score FROM turns WHERE turn_number = 3") == [(1.0,)]
    assert query(ranges_db, "SELECT max(chars) FROM messages") == [(2 * SMALL_BATCH,)]
    assert query(ranges_db, "SELECT count(*) FROM turns") == [(12,)]


def test_a_pidgin_ai_log_read_in_ranges_keeps_its_seq(
    pidgin_ai_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: Any
) -> None:
    directory = pidgin_ai_root / "experiments" / "exp-5x20-full_f41ebd59"
    assert max(log.stat().st_size for log in directory.glob("events_*.jsonl")) > SMALL_BATCH

    whole_db, ranges_db, _ = _load_whole_and_in_ranges(directory, tmp_path, monkeypatch)

    rows = _table_rows(ranges_db, "experiment_f41ebd59")
    assert rows == _table_rows(whole_db, "experiment_f41ebd59")
    assert len(rows["turns"]) == 100
    # pidgin-ai lines carry no seq: it is the line number minus one, in every range
    assert query(ranges_db, "SELECT count(*) FROM events WHERE seq <> line_number - 1") == [(0,)]


def test_copies_of_ranges_go_batch_by_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1 GB log must not need 1 GB of copies: each batch's go once it is read."""
    directory, log, _ = _ours_with_damage(tmp_path / "source")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(_sources, "BATCH_BYTES", SMALL_BATCH)
    copied: list[int] = []  # bytes in the scratch directory as each batch is read
    insert_events = _ingest._insert_events

    def observed(*args: Any) -> int:
        copied.append(sum(path.stat().st_size for path in scratch.rglob("*") if path.is_file()))
        return insert_events(*args)

    monkeypatch.setattr(_ingest, "_insert_events", observed)

    assert pl.load_experiment(directory, tmp_path / "db.duckdb").ok

    assert len(copied) > 8
    assert 0 < max(copied) <= 3 * SMALL_BATCH < log.stat().st_size
    assert list(scratch.iterdir()) == []


def test_running_out_of_memory_names_the_limit_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counts: Any
) -> None:
    with (
        pe.Experiment.create(tmp_path, name="long", experiment_id="exp_oom") as exp,
        exp.conversation(agent_a="local:test", agent_b="local:test") as conv,
    ):
        conv.turn_start()
        conv.message("agent_a", "x" * (8 << 20))
        conv.turn_complete(0.0)
    monkeypatch.setenv("PIDGIN_LOAD_MEMORY_LIMIT", "32MB")
    db = tmp_path / "db.duckdb"

    with pytest.raises(pl.LoadError, match=r"memory limit is 32MB; raise it with \$PIDGIN_LOAD_"):
        pl.load_experiment(exp.directory, db)

    assert set(counts(db, "exp_oom").values()) == {0}
    assert not (exp.directory / pe.LOADED_MARKER).exists()


def test_long_text_is_stored_zstd_compressed_and_reads_back_whole(tmp_path: Path) -> None:
    """Long payloads and messages are written with zstd, not analysed for dictionaries.

    DuckDB's own choice for columns of long strings (dictionary and FSST analysis) was most
    of the time of a load of big logs; the loader's connection asks for zstd instead.
    """
    texts = [
        f"turn {turn}: " + " ".join(f"word{i * turn % 997}" for i in range(900))
        for turn in range(30)
    ]
    with (
        pe.Experiment.create(tmp_path, name="long", experiment_id="exp_zstd") as exp,
        exp.conversation(agent_a="local:test", agent_b="local:test") as conv,
    ):
        for text in texts:
            conv.turn_start()
            conv.message("agent_a", text)
            conv.turn_complete(0.5)
    db = tmp_path / "db.duckdb"

    assert pl.load_experiment(exp.directory, db).ok

    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute(
            "SELECT content FROM messages WHERE experiment_id = 'exp_zstd' ORDER BY turn"
        ).fetchall()
        compression = {
            table: {
                row[0]
                for row in con.execute(
                    "SELECT DISTINCT compression FROM pragma_storage_info(?) "
                    "WHERE column_name = ? AND segment_type NOT IN ('VALIDITY')",
                    [table, column],
                ).fetchall()
            }
            for table, column in (("events", "payload"), ("messages", "content"))
        }
    assert [row[0] for row in stored] == texts
    assert compression == {"events": {"ZSTD"}, "messages": {"ZSTD"}}
