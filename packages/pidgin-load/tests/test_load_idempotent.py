"""Loading twice gives the same rows; changes are seen; force replaces."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pidgin_events as pe
import pidgin_load as pl


def _append(log: Path, experiment_id: str, event: pe.Event) -> None:
    with pe.EventWriter(log, experiment_id=experiment_id) as writer:
        writer.emit(event)


def test_second_load_is_skipped_and_changes_nothing(
    tmp_path: Path, write_experiment: Any, counts: Any, query: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_twice")
    db = tmp_path / "db.duckdb"
    first = pl.load_experiment(directory, db)
    before = counts(db, "exp_twice")
    marker = (directory / pe.LOADED_MARKER).read_text()

    second = pl.load_experiment(directory, db)

    assert len(first.loaded) == 1
    assert not first.skipped
    assert not second.loaded
    assert len(second.skipped) == 1
    assert "unchanged" in second.skipped[0].reason
    assert counts(db, "exp_twice") == before
    assert (directory / pe.LOADED_MARKER).read_text() == marker
    # the DatabaseLoadEvent the first load appended does not make the run stale
    assert (
        sum(
            isinstance(e, pe.DatabaseLoadEvent)
            for e in pe.read_events(directory / pe.EXPERIMENT_LOG).events
        )
        == 1
    )


def test_force_reload_replaces_rows_without_duplicates(
    tmp_path: Path, write_experiment: Any, counts: Any, query: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_force")
    other = write_experiment(tmp_path, experiment_id="exp_other")
    db = tmp_path / "db.duckdb"
    pl.load_experiment(directory, db)
    pl.load_experiment(other, db)
    before, before_other = counts(db, "exp_force"), counts(db, "exp_other")

    forced = pl.load_experiment(directory, db, force=True)

    assert len(forced.loaded) == 1
    assert "forced" in forced.loaded[0].reason
    after = counts(db, "exp_force")
    # the first load appended its DatabaseLoadEvent; bookkeeping is never loaded, so a
    # reload of unchanged logs writes exactly the same rows
    assert (directory / pe.EXPERIMENT_LOG).read_bytes().count(b"DatabaseLoadEvent") == 2
    assert after == before
    again = pl.load_experiment(directory, db, force=True)
    assert len(again.loaded) == 1
    assert counts(db, "exp_force") == before
    assert query(
        db,
        "SELECT count(*) FROM events WHERE list_contains(?, event_type)",
        [list(pe.BOOKKEEPING_EVENTS)],
    ) == [(0,)]
    assert counts(db, "exp_other") == before_other
    assert query(
        db,
        "SELECT count(*) FROM (SELECT source_file, line_number FROM events "
        "WHERE experiment_id = 'exp_force' GROUP BY ALL HAVING count(*) > 1)",
    ) == [(0,)]
    assert query(
        db,
        "SELECT count(*), count(DISTINCT (source_file, line_number)) FROM messages "
        "WHERE experiment_id = 'exp_force'",
    ) == [(before["messages"], before["messages"])]


def test_appending_to_a_conversation_log_makes_the_run_stale(
    tmp_path: Path, write_experiment: Any, counts: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_stale", turns=2)
    db = tmp_path / "db.duckdb"
    pl.load_experiment(directory, db)
    before = counts(db, "exp_stale")
    log = sorted(directory.glob("*_events.jsonl"))[0]
    conversation_id = pe.conversation_id_of_log(log.name)
    assert conversation_id is not None
    _append(log, "exp_stale", pe.TurnStartEvent(conversation_id=conversation_id, turn_number=2))
    _append(
        log,
        "exp_stale",
        pe.TurnCompleteEvent(conversation_id=conversation_id, turn_number=2, convergence_score=1.0),
    )

    summary = pl.load_experiment(directory, db)

    assert [o.experiment_id for o in summary.stale] == ["exp_stale"]
    assert log.name in summary.stale[0].reason
    assert "changed size" in summary.stale[0].reason
    assert [o.experiment_id for o in summary.loaded] == ["exp_stale"]
    after = counts(db, "exp_stale")
    assert after["turns"] == before["turns"] + 1
    assert after["events"] == before["events"] + 2  # the two appended (bookkeeping is not)
    assert not pl.load_experiment(directory, db).loaded  # and now it is current again


def test_a_rewrite_of_the_same_size_is_seen_through_mtime(
    tmp_path: Path, write_experiment: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_mtime")
    db = tmp_path / "db.duckdb"
    pl.load_experiment(directory, db)
    log = sorted(directory.glob("*_events.jsonl"))[0]
    info = log.stat()
    os.utime(log, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))

    summary = pl.load_experiment(directory, db)

    assert len(summary.stale) == 1
    assert "was modified" in summary.stale[0].reason


def test_other_events_appended_to_experiment_log_make_it_stale(
    tmp_path: Path, write_experiment: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_explog")
    db = tmp_path / "db.duckdb"
    pl.load_experiment(directory, db)
    log = directory / pe.EXPERIMENT_LOG
    bookkeeping = pe.PostProcessingCompleteEvent(experiment_id="exp_explog", tasks_completed=("x",))
    _append(log, "exp_explog", bookkeeping)
    assert not pl.load_experiment(directory, db).stale  # post-processing notes are not data

    _append(log, "exp_explog", pe.UnknownEvent(event_type="ResearcherNoteEvent"))

    summary = pl.load_experiment(directory, db)
    assert len(summary.stale) == 1
    assert pe.EXPERIMENT_LOG in summary.stale[0].reason


def test_a_new_conversation_file_makes_the_run_stale(
    tmp_path: Path, write_experiment: Any, counts: Any
) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_new", conversations=1)
    db = tmp_path / "db.duckdb"
    pl.load_experiment(directory, db)
    with pe.EventWriter(directory / "conv_late_events.jsonl", experiment_id="exp_new") as w:
        w.emit(pe.ConversationStartEvent(conversation_id="conv_late"))

    summary = pl.load_experiment(directory, db)

    assert "conv_late_events.jsonl is new" in summary.stale[0].reason
    assert counts(db, "exp_new")["conversations"] == 2


def test_load_all_reloads_failed_and_missing_runs(
    tmp_path: Path, write_experiment: Any, counts: Any
) -> None:
    first = write_experiment(tmp_path, experiment_id="exp_failed_before")
    second = write_experiment(tmp_path, experiment_id="exp_fine")
    assert len(pl.load_all(tmp_path).loaded) == 2
    pl.record_load_failure(first, pl.LoadError("disk full"), pl.experiments_db(tmp_path))
    assert (first / pe.LOAD_FAILED_MARKER).exists()

    summary = pl.load_all(tmp_path)

    assert [o.experiment_id for o in summary.loaded] == ["exp_failed_before"]
    assert [o.experiment_id for o in summary.skipped] == ["exp_fine"]
    assert not (first / pe.LOAD_FAILED_MARKER).exists()

    # a database that lost an experiment's rows: the marker is not trusted over it
    import duckdb

    with duckdb.connect(str(pl.experiments_db(tmp_path))) as con:
        for table in pl.TABLES:
            con.execute(f"DELETE FROM {table} WHERE experiment_id = 'exp_fine'")
    write_experiment(tmp_path, experiment_id="exp_third")
    summary = pl.load_all(tmp_path)
    assert sorted(str(o.experiment_id) for o in summary.loaded) == ["exp_fine", "exp_third"]
    assert counts(pl.experiments_db(tmp_path), "exp_fine")["experiments"] == 1
    assert second.is_dir()


def test_a_marker_for_another_database_does_not_skip(tmp_path: Path, write_experiment: Any) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_two_dbs")
    pl.load_experiment(directory, tmp_path / "a.duckdb")
    summary = pl.load_experiment(directory, tmp_path / "b.duckdb")
    assert len(summary.loaded) == 1
    marker = json.loads((directory / pe.LOADED_MARKER).read_text())
    assert marker["db_path"] == str(tmp_path / "b.duckdb")
