"""Database load state from the loader's markers and DatabaseLoadEvents, garbage tolerated."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pidgin_events as pe
from pidgin_state import StateBuilder


def test_loaded_marker(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path)
    builder = StateBuilder()
    state = builder.experiment(directory)
    assert not state.database.loaded
    assert not state.database.failed

    marker = {
        "loaded_at": "2026-02-03T04:05:06+00:00",
        "db_path": "/data/experiments.duckdb",
        "fingerprint": "sha256:abc",
        "rows": {"events": 42, "turns": 6},
        "schema_version": 1,
    }
    (directory / pe.LOADED_MARKER).write_text(json.dumps(marker))
    state = builder.experiment(directory)
    database = state.database
    assert database.loaded
    assert not database.failed
    assert database.loaded_at == datetime.fromisoformat("2026-02-03T04:05:06+00:00")
    assert database.db_path == "/data/experiments.duckdb"
    assert database.fingerprint == "sha256:abc"
    assert database.rows == {"events": 42, "turns": 6}
    assert database.details == marker
    assert database.source == ".loaded_to_db"
    assert state.problems == ()
    assert builder.experiment(directory) is state


def test_garbage_and_incomplete_markers(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path)
    marker = directory / pe.LOADED_MARKER
    marker.write_bytes(b"\x00\xffnot json")
    state = StateBuilder.from_experiment_dir(directory)
    assert state.database.loaded  # it exists: the loader committed; its details are lost
    assert state.database.loaded_at is not None  # the file's own time
    assert len(state.problems) == 1
    assert state.problems[0] == f"{marker}: not valid UTF-8: byte 0xff at column 2"

    marker.write_text(json.dumps({"db_path": 7, "rows": "many"}))
    state = StateBuilder.from_experiment_dir(directory)
    assert state.database.loaded
    assert state.database.db_path is None
    assert state.database.rows is None
    assert state.problems == (f"{marker}: no 'loaded_at'; using the file's time",)

    marker.write_text("[1, 2]")
    state = StateBuilder.from_experiment_dir(directory)
    assert state.problems == (f"{marker}: expected a JSON object",)


def test_failed_marker_and_a_later_successful_load(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path)
    failed = directory / pe.LOAD_FAILED_MARKER
    failed.write_text(
        json.dumps(
            {
                "failed_at": "2026-02-03T04:00:00+00:00",
                "db_path": "/data/experiments.duckdb",
                "error": "Could not set lock on file",
            }
        )
    )
    builder = StateBuilder()
    state = builder.experiment(directory)
    assert state.database.failed
    assert not state.database.loaded
    assert state.database.error == "Could not set lock on file"
    assert state.database.source == ".load_failed"
    assert state.database.db_path == "/data/experiments.duckdb"

    (directory / pe.LOADED_MARKER).write_text(
        json.dumps({"loaded_at": "2026-02-03T05:00:00+00:00", "db_path": "/data/e.duckdb"})
    )
    state = builder.experiment(directory)
    assert state.database.loaded
    assert not state.database.failed
    assert state.database.error is None

    failed.write_text(json.dumps({"failed_at": "2026-02-03T06:00:00+00:00", "error": "disk full"}))
    state = builder.experiment(directory)
    assert state.database.loaded
    assert state.database.failed
    assert state.database.error == "disk full"


def test_failed_database_load_event(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path)
    event = pe.DatabaseLoadEvent(
        experiment_id="exp_test",
        status="failed",
        db_path="/data/experiments.duckdb",
        error="IO Error: database is locked",
    )
    logs.append(directory / pe.EXPERIMENT_LOG, pe.encode_event(event, seq=99))
    state = StateBuilder.from_experiment_dir(directory)
    assert state.database.failed
    assert not state.database.loaded
    assert state.database.error == "IO Error: database is locked"
    assert state.database.source == "DatabaseLoadEvent"
    assert state.status == "completed"  # a failed load never changes the run's outcome
    json.dumps(state.to_dict())  # what --json prints
