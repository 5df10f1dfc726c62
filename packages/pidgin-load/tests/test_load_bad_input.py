"""Bad lines, odd bytes and odd names never abort a load; each bad line is recorded."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import pidgin_events as pe
import pidgin_load as pl
from pidgin_state import StateBuilder


def _first_log(directory: Path) -> Path:
    return sorted(directory.glob("*_events.jsonl"))[0]


def _raw_append(path: Path, data: bytes) -> None:
    with open(path, "ab") as stream:
        stream.write(data)


def test_malformed_lines_are_recorded_with_file_and_line(
    tmp_path: Path, write_experiment: Any, counts: Any, query: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_bad", conversations=1, turns=1)
    log = _first_log(directory)
    good_lines = len(log.read_bytes().splitlines())
    conversation_id = pe.conversation_id_of_log(log.name)
    assert conversation_id is not None
    _raw_append(
        log,
        b'{"event_type":"TurnStartEvent","timestamp":"2026-01-01T00:00:00+00:00","turn\n'  # +1
        b"not json at all\n"  # +2
        b"\n"  # +3 blank: not an event, not an error
        b"[1, 2]\n"  # +4
        b'{"no_type": 1}\n'  # +5
        b'{"event_type": 5}\n'  # +6
        b'{"event_type":"ErrorEvent","c":"caf\xe9 \xff"}\n'  # +7 latin-1 bytes
        b"   \t \r\n"  # +8 whitespace only
        b'{"event_type":"FutureEvent","timestamp":"2026-01-01T00:00:00+00:00","x":1}\r\n'  # +9
        b'{"event_type": ""}\n'  # +10
        b'"just a string"\n'  # +11
        b'{"a": 1} {"b": 2}\n',  # +12 two values on one line
    )
    with pe.EventWriter(log) as writer:  # a valid event after the damage still loads
        writer.emit(
            pe.ConversationEndEvent(
                conversation_id=conversation_id, total_turns=1, status="completed"
            )
        )
    db = tmp_path / "db.duckdb"

    summary = pl.load_experiment(directory, db)

    n = good_lines
    expected = [
        (log.name, n + 1, "not valid JSON"),
        (log.name, n + 2, "not valid JSON"),
        (log.name, n + 4, "expected a JSON object, got an array"),
        (log.name, n + 5, "no 'event_type' string"),
        (log.name, n + 6, "'event_type' is not a non-empty string"),
        (log.name, n + 7, "not valid UTF-8 (byte 0xe9 at byte 36)"),
        (log.name, n + 10, "'event_type' is not a non-empty string"),
        (log.name, n + 11, "expected a JSON object, got a string"),
        (log.name, n + 12, "not valid JSON"),
    ]
    assert (
        query(db, "SELECT source_file, line_number, reason FROM load_errors ORDER BY line_number")
        == expected
    )
    assert query(db, "SELECT excerpt FROM load_errors WHERE line_number = ?", [n + 2]) == [
        ("not json at all",)
    ]
    assert query(db, "SELECT excerpt FROM load_errors WHERE line_number = ?", [n + 7]) == [
        ('{"event_type":"ErrorEvent","c":"caf\\xe9 \\xff"}',)
    ]
    assert summary.bad_lines == len(expected)
    assert summary.unknown_events == 1
    assert query(
        db, "SELECT line_number, payload ->> 'x' FROM events WHERE event_type = 'FutureEvent'"
    ) == [(n + 9, "1")]
    # the end event written after the damage is line n + 13, and the last end event counts
    assert query(
        db, "SELECT line_number FROM events WHERE event_type = 'ConversationEndEvent' ORDER BY 1"
    ) == [(good_lines,), (n + 13,)]
    assert query(
        db,
        "SELECT c.ended_at = e.timestamp FROM conversations AS c JOIN events AS e "
        "USING (experiment_id, conversation_id) WHERE e.line_number = ?",
        [n + 13],
    ) == [(True,)]
    rows = counts(db, "exp_bad")
    assert rows["load_errors"] == len(expected)
    assert rows["events"] == good_lines + 2 + 2  # + FutureEvent + end event + 2 experiment events
    assert query(db, "SELECT count(*) FROM events WHERE event_type IS NULL") == [(0,)]
    assert query(db, "SELECT bad_lines FROM experiments") == [(len(expected),)]


def test_a_file_full_of_bad_bytes_does_not_stop_the_others(
    tmp_path: Path, write_experiment: Any, counts: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_bytes", conversations=2, turns=1)
    (directory / "conv_binary_events.jsonl").write_bytes(bytes(range(256)) * 3 + b"\n")
    db = tmp_path / "db.duckdb"

    summary = pl.load_experiment(directory, db)

    assert summary.ok
    rows = counts(db, "exp_bytes")
    assert rows["conversations"] == 2
    assert rows["turns"] == 2
    assert rows["load_errors"] >= 1


def test_a_seventeen_megabyte_line_loads(tmp_path: Path, query: Any) -> None:
    content = "x" * (17 * 1024 * 1024)
    with (
        pe.Experiment.create(tmp_path, name="long", experiment_id="exp_long") as exp,
        exp.conversation(agent_a="local:test", agent_b="local:test") as conv,
    ):
        conv.turn_start()
        conv.message("agent_a", content, completion_tokens=3)
        conv.message("agent_b", "short")
        conv.turn_complete(0.0)
    db = tmp_path / "db.duckdb"

    summary = pl.load_experiment(exp.directory, db)

    assert summary.bad_lines == 0
    assert query(db, "SELECT agent_id, chars FROM messages ORDER BY seq") == [
        ("agent_a", len(content)),
        ("agent_b", 5),
    ]
    assert query(db, "SELECT agent_a_chars FROM turns") == [(len(content),)]


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_logs_load_like_plain_ones(
    tmp_path: Path, write_experiment: Any, counts: Any, query: Any, suffix: str
) -> None:
    plain = write_experiment(tmp_path / "plain", experiment_id="exp_plain", turns=2)
    packed = write_experiment(tmp_path / "packed", experiment_id="exp_packed", turns=2)
    for log in packed.glob("*_events.jsonl"):
        data = log.read_bytes()
        if suffix == ".gz":
            compressed = gzip.compress(data)
        else:
            zstandard = pytest.importorskip("zstandard")
            compressed = zstandard.ZstdCompressor().compress(data)
        log.with_name(log.name + suffix).write_bytes(compressed)
        log.unlink()
    db = tmp_path / "db.duckdb"

    pl.load_experiment(plain, db)
    pl.load_experiment(packed, db)

    assert counts(db, "exp_packed") == counts(db, "exp_plain")
    assert query(
        db,
        "SELECT DISTINCT right(source_file, 4 + ?) FROM events WHERE experiment_id = 'exp_packed' "
        "AND conversation_id IS NOT NULL",
        [len(suffix) - 1],
    ) == [(f".jsonl{suffix}"[-(4 + len(suffix) - 1) :],)]


def test_plain_and_compressed_copies_of_one_log_load_once(
    tmp_path: Path, write_experiment: Any, counts: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_dup", conversations=1, turns=2)
    log = _first_log(directory)
    log.with_name(log.name + ".gz").write_bytes(gzip.compress(log.read_bytes()))
    db = tmp_path / "db.duckdb"

    summary = pl.load_experiment(directory, db)

    assert counts(db, "exp_dup")["turns"] == 2
    assert any(log.name + ".gz" in warning for warning in summary.warnings)


def test_hostile_names_are_data_not_sql_or_globs(tmp_path: Path, counts: Any, query: Any) -> None:
    root = tmp_path / "we'ird [dir] *x; DROP TABLE events;--"
    directory = root / "experiments" / "exp'); DROP TABLE events; --"
    directory.mkdir(parents=True)
    evil_id = "x'); DELETE FROM experiments; --"
    (directory / "manifest.json").write_text(
        json.dumps({"experiment_id": evil_id, "name": "o'neil", "status": "completed"})
    )
    line = {
        "conversation_id": "conv_1",
        "turn_number": 0,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "event_type": "TurnStartEvent",
        "experiment_id": None,
    }
    (directory / "events_conv_1.jsonl").write_text(json.dumps(line) + "\n")
    (directory / "events_conv_2.jsonl").write_text(
        json.dumps(line | {"conversation_id": "conv_2"}) + "\n"
    )
    db = root / "my'db [1].duckdb"

    summary = pl.load_experiment(directory, db)
    pl.load_experiment(directory, db, force=True)

    assert summary.ok
    assert query(db, "SELECT experiment_id, name, run_dir FROM experiments") == [
        (evil_id, "o'neil", str(directory))
    ]
    assert query(db, "SELECT DISTINCT source_file FROM events ORDER BY 1") == [
        ("events_conv_1.jsonl",),
        ("events_conv_2.jsonl",),
    ]
    assert counts(db, evil_id)["events"] == 2


def test_a_directory_without_logs_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "experiments" / "nothing_here"
    empty.mkdir(parents=True)
    with pytest.raises(pl.LoadError, match="nothing_here: not a Pidgin run directory"):
        pl.load_experiment(empty, tmp_path / "db.duckdb")
    assert not (tmp_path / "db.duckdb").exists()


def test_a_newer_database_schema_is_refused(tmp_path: Path, write_experiment: Any) -> None:
    import duckdb

    directory = write_experiment(tmp_path, experiment_id="exp_schema")
    db = tmp_path / "db.duckdb"
    pl.load_experiment(directory, db)
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone() == (
            pl.SCHEMA_VERSION,
        )
        con.execute("INSERT INTO schema_version (version) VALUES (?)", [pl.SCHEMA_VERSION + 1])

    with pytest.raises(pl.LoadError, match="newer than"):
        pl.load_experiment(directory, db, force=True)
    shutil.rmtree(directory)  # nothing else to check: the refusal wrote nothing


def _insert_line(log: Path, after: int, line: bytes) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([*lines[:after], line, *lines[after:]]))


def test_a_repeated_line_loads_once_and_is_reported(
    tmp_path: Path, write_experiment: Any, counts: Any, query: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_rep", conversations=1, turns=2)
    pl.load_experiment(directory, tmp_path / "clean.duckdb")
    clean = counts(tmp_path / "clean.duckdb", "exp_rep")
    log = _first_log(directory)
    fifth = log.read_bytes().splitlines(keepends=True)[4]
    _insert_line(log, 5, fifth)  # line 6 repeats line 5, seq and event_id included
    db = tmp_path / "db.duckdb"

    summary = pl.load_experiment(directory, db)

    event_id = json.loads(fifth)["event_id"]
    assert query(db, "SELECT source_file, line_number, reason FROM load_errors") == [
        (log.name, 6, f"a repeat of line 5 (event_id {event_id})")
    ]
    assert summary.bad_lines == 1
    # the same rows as before the damage (the first load's DatabaseLoadEvent is bookkeeping)
    assert counts(db, "exp_rep") == {**clean, "load_errors": 1}


def test_an_event_of_another_conversation_is_reported(
    tmp_path: Path, write_experiment: Any, query: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_wrong", conversations=2, turns=1)
    log_a, log_b = sorted(directory.glob("*_events.jsonl"))
    conversation_b = pe.conversation_id_of_log(log_b.name)
    assert conversation_b is not None
    stray = pe.ErrorEvent(conversation_id=conversation_b, error_type="stray", error_message="x")
    _insert_line(log_a, 3, pe.encode_event(stray, seq=3))
    db = tmp_path / "db.duckdb"

    pl.load_experiment(directory, db)

    conversation_a = pe.conversation_id_of_log(log_a.name)
    assert query(db, "SELECT source_file, line_number, reason FROM load_errors") == [
        (log_a.name, 4, f"an event of conversation {conversation_b} in the log of {conversation_a}")
    ]
    assert query(db, "SELECT count(*) FROM errors") == [(0,)]


def test_a_log_named_unlike_its_conversation_still_loads(tmp_path: Path, query: Any) -> None:
    """A foreign writer may carry ids that cannot be file names; the log is still its own."""
    directory = tmp_path / "experiments" / "exp_foreign"
    directory.mkdir(parents=True)
    odd = "conv with spaces/and 'quotes'"
    with pe.EventWriter(directory / "conv_1_events.jsonl", experiment_id="exp_foreign") as w:
        w.emit(pe.ConversationStartEvent(conversation_id=odd))
        w.emit(pe.TurnStartEvent(conversation_id=odd, turn_number=0))
        w.emit(pe.TurnCompleteEvent(conversation_id=odd, turn_number=0, convergence_score=0.5))
        w.emit(pe.ConversationEndEvent(conversation_id=odd, total_turns=1, status="completed"))
    db = tmp_path / "db.duckdb"

    summary = pl.load_experiment(directory, db)

    assert summary.bad_lines == 0
    assert query(db, "SELECT conversation_id, turns, status FROM conversations") == [
        (odd, 1, "completed")
    ]
    state = StateBuilder.from_experiment_dir(directory)  # the same owner, the same status
    assert [(c.id, c.status) for c in state.conversations.values()] == [(odd, "completed")]
    assert state.problems == ()


def test_symbolic_links_are_not_followed(
    tmp_path: Path, write_experiment: Any, counts: Any, query: Any
) -> None:
    directory = write_experiment(tmp_path / "out", experiment_id="exp_links", conversations=1)
    outside = tmp_path / "secret_events.jsonl"
    with pe.EventWriter(outside) as writer:
        writer.emit(
            pe.ErrorEvent(conversation_id="conv_leak", error_type="x", error_message="SECRET")
        )
    (directory / "conv_leak_events.jsonl").symlink_to(outside)
    (directory / "events_conv_passwd.jsonl").symlink_to("/etc/passwd")
    db = tmp_path / "db.duckdb"

    summary = pl.load_experiment(directory, db)

    assert query(db, "SELECT count(*) FROM events WHERE payload::VARCHAR LIKE '%SECRET%'") == [(0,)]
    assert counts(db, "exp_links")["load_errors"] == 0
    assert counts(db, "exp_links")["conversations"] == 1
    for name in ("conv_leak_events.jsonl", "events_conv_passwd.jsonl"):
        assert any(name in w and "symbolic link" in w for w in summary.warnings), summary.warnings
    marker = json.loads((directory / pe.LOADED_MARKER).read_text())
    assert "conv_leak_events.jsonl" not in {entry["name"] for entry in marker["files"]}


def test_database_side_files_are_private_even_under_umask_0(
    tmp_path: Path, write_experiment: Any, holder: list[Any]
) -> None:
    import os
    import subprocess
    import sys

    directory = write_experiment(tmp_path, experiment_id="exp_wal", conversations=1)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    db = shared / "results.duckdb"
    code = (
        "import os, sys\nos.umask(0)\nfrom pidgin_load._cli import main\n"
        "sys.exit(main([sys.argv[1], '--db', sys.argv[2]]))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(directory), str(db)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PIDGIN_LOAD_TEST_PAUSE_AFTER_INSERT": "300"},
    )
    holder.append(process)
    assert process.stderr is not None
    assert "pausing" in process.stderr.readline()
    side = [path for path in shared.iterdir() if path.name.startswith(db.name)]
    assert db in side
    exposed = {
        path.name: oct(path.stat().st_mode & 0o777) for path in side if path.stat().st_mode & 0o077
    }
    assert not exposed
