"""``DatabaseState.stale``: a loaded run whose files changed since, by the loader's rule.

pidgin-state's tests run without pidgin-load installed, so ``record_load`` below writes
``.loaded_to_db`` with the load contract's own writer (``pidgin_events.write_loaded_marker``,
which pidgin-load calls after its commit, over the files ``files_a_load_reads`` names) and
appends the loader's ``DatabaseLoadEvent``. pidgin-cli's tests check the two against the
real loader.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pidgin_events as pe
from pidgin_state import ExperimentState, StateBuilder


def record_load(directory: Path, *, event: bool = True) -> None:
    """What a successful load leaves: the marker, then the loader's own event."""
    regular = [e.name for e in os.scandir(directory) if e.is_file(follow_symlinks=False)]
    files = pe.stat_files(directory, pe.files_a_load_reads(regular))
    marker = pe.LoadedMarker(
        loaded_at=datetime.now(UTC).isoformat(),
        db_path=str(directory.parent / "experiments.duckdb"),
        schema_version=1,
        experiment_id=directory.name,
        files=tuple(files.values()),
        rows={"events": 1},
    )
    pe.write_loaded_marker(directory, marker)
    if event and (directory / pe.EXPERIMENT_LOG).exists():
        emit(
            directory,
            pe.DatabaseLoadEvent(
                experiment_id=directory.name, status="loaded", db_path=marker.db_path
            ),
        )


def emit(directory: Path, event: pe.Event) -> None:
    with pe.EventWriter(directory / pe.EXPERIMENT_LOG, experiment_id=directory.name) as writer:
        writer.emit(event)


def loaded(builder: StateBuilder, directory: Path) -> ExperimentState:
    state = builder.experiment(directory)
    assert state.database.loaded
    assert not state.database.failed
    return state


def test_not_stale_after_a_fresh_load(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path)
    builder = StateBuilder()
    assert builder.experiment(directory).database.stale is False  # not loaded: not stale
    record_load(directory)
    state = loaded(builder, directory)
    assert state.database.stale is False
    assert state.database.stale_reason is None
    assert state.problems == ()
    assert StateBuilder.from_experiment_dir(directory).database == state.database


def test_stale_after_appending_to_a_conversation_log(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path)
    record_load(directory)
    builder = StateBuilder()
    assert loaded(builder, directory).database.stale is False
    log = directory / "conv_000_events.jsonl"
    size = log.stat().st_size
    event = pe.ErrorEvent(conversation_id="conv_000", error_type="late", error_message="x")
    logs.append(log, pe.encode_event(event, seq=999))
    state = loaded(builder, directory)  # the same builder: an incremental refresh sees it
    assert state.database.stale is True
    assert state.database.stale_reason == (
        f"changed since its load: conv_000_events.jsonl changed size from {size} to "
        f"{log.stat().st_size} bytes"
    )
    assert StateBuilder.from_experiment_dir(directory).database == state.database
    assert json.loads(json.dumps(state.to_dict()))["database"]["stale"] is True

    record_load(directory)  # loaded again: up to date again
    assert loaded(builder, directory).database.stale is False


def test_not_stale_after_the_loaders_own_events(tmp_path: Path, logs: Any) -> None:
    """The loader appends its DatabaseLoadEvent after writing the marker; the runner brackets
    the load with post-processing events: experiment.jsonl grows, the run is not stale."""
    directory = logs.write_experiment(tmp_path)
    experiment_log = directory / pe.EXPERIMENT_LOG
    emit(directory, pe.PostProcessingStartEvent(experiment_id="exp_test", tasks=("database_load",)))
    before = experiment_log.stat().st_size
    record_load(directory)  # appends DatabaseLoadEvent
    emit(
        directory,
        pe.PostProcessingCompleteEvent(
            experiment_id="exp_test", tasks_completed=("database_load",)
        ),
    )
    assert experiment_log.stat().st_size > before
    builder = StateBuilder()
    state = loaded(builder, directory)
    assert state.database.stale is False, state.database.stale_reason
    # Reloads append more of them, and failures too: still nothing but bookkeeping.
    emit(
        directory,
        pe.DatabaseLoadEvent(
            experiment_id="exp_test", status="skipped", db_path="/elsewhere.duckdb"
        ),
    )
    assert loaded(builder, directory).database.stale is False

    # Not bookkeeping: say it was loaded while running and has completed since.
    complete = pe.ExperimentCompleteEvent(
        experiment_id="exp_test",
        total_conversations=2,
        completed_conversations=2,
        failed_conversations=0,
        status="completed",
    )
    emit(directory, complete)
    state = loaded(builder, directory)
    assert state.database.stale is True
    assert state.database.stale_reason == (
        "changed since its load: experiment.jsonl has new events (not the loader's own)"
    )


def test_torn_or_shrunk_experiment_log_is_stale(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path)
    record_load(directory)
    experiment_log = directory / pe.EXPERIMENT_LOG
    builder = StateBuilder()
    assert loaded(builder, directory).database.stale is False
    whole = experiment_log.read_bytes()
    logs.append(experiment_log, b'{"event_type":"DatabaseLoadEvent","timest')  # no newline yet
    assert loaded(builder, directory).database.stale is True
    loaded_size = json.loads((directory / pe.LOADED_MARKER).read_text())["files"]
    size = next(f["size"] for f in loaded_size if f["name"] == pe.EXPERIMENT_LOG)
    experiment_log.write_bytes(whole[: size - 10])
    state = loaded(builder, directory)
    assert state.database.stale_reason == (
        f"changed since its load: experiment.jsonl changed size from {size} to {size - 10} bytes"
    )


def test_touched_new_and_removed_logs(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path, conversations=3)
    record_load(directory)
    builder = StateBuilder()
    assert loaded(builder, directory).database.stale is False

    first = directory / "conv_000_events.jsonl"
    info = first.stat()
    os.utime(first, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))  # same bytes
    assert loaded(builder, directory).database.stale_reason == (
        "changed since its load: conv_000_events.jsonl was modified"
    )
    os.utime(first, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert loaded(builder, directory).database.stale is False

    (directory / "conv_002_events.jsonl").unlink()
    (directory / "conv_new_events.jsonl").write_bytes(logs.conversation_events("conv_new", 1))
    assert loaded(builder, directory).database.stale_reason == (
        "changed since its load: conv_new_events.jsonl is new; conv_002_events.jsonl was removed"
    )


def test_files_a_load_never_reads_do_not_count(tmp_path: Path, logs: Any) -> None:
    """Symbolic links, archives beside their plain log, files that are not logs."""
    directory = logs.write_experiment(tmp_path)
    record_load(directory)
    log = directory / "conv_000_events.jsonl"
    shutil.copyfile(log, directory / "conv_000_events.jsonl.gz")  # an archive being made
    (directory / "conv_link_events.jsonl").symlink_to(log.name)
    (directory / "runner.log").write_text("anything\n")
    (directory / "notes.txt").write_text("anything\n")
    state = StateBuilder.from_experiment_dir(directory)
    assert state.database.loaded
    assert state.database.stale is False, state.database.stale_reason


def test_archived_after_the_load_is_stale(tmp_path: Path, logs: Any) -> None:
    """A log compressed after the load is another file to the loader: it reloads it."""
    import gzip

    directory = logs.write_experiment(tmp_path)
    record_load(directory)
    log = directory / "conv_001_events.jsonl"
    (directory / "conv_001_events.jsonl.gz").write_bytes(gzip.compress(log.read_bytes()))
    log.unlink()
    state = StateBuilder.from_experiment_dir(directory)
    assert state.database.stale_reason == (
        "changed since its load: conv_001_events.jsonl.gz is new; conv_001_events.jsonl was removed"
    )


def test_marker_without_a_files_list_cannot_tell(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path)
    marker: dict[str, object] = {
        "loaded_at": "2026-02-03T04:05:06+00:00",
        "db_path": "/data/e.duckdb",
    }
    (directory / pe.LOADED_MARKER).write_text(json.dumps(marker))
    for files in (None, "many", [1, 2]):
        if files is not None:
            marker["files"] = files
            (directory / pe.LOADED_MARKER).write_text(json.dumps(marker))
        state = StateBuilder.from_experiment_dir(directory)
        assert state.database.loaded
        assert state.database.stale is False
        assert state.problems == ()


def test_pidgin_ai_run_counts_its_manifest(legacy_fixtures: Path, tmp_path: Path) -> None:
    directory = tmp_path / "experiments" / "legacy"
    shutil.copytree(legacy_fixtures / "exp-5x20-full_f41ebd59", directory)
    record_load(directory)
    files = json.loads((directory / pe.LOADED_MARKER).read_text())["files"]
    assert [f["name"] for f in files] == sorted(
        [name for name in os.listdir(directory) if pe.conversation_id_of_log(name)]
        + ["manifest.json"]
    )
    builder = StateBuilder()
    state = loaded(builder, directory)
    assert state.format == "pidgin-ai-1.x"
    assert state.database.stale is False, state.database.stale_reason
    manifest = directory / "manifest.json"
    manifest.write_text(manifest.read_text() + " ")
    assert loaded(builder, directory).database.stale_reason == (
        f"changed since its load: manifest.json changed size from "
        f"{manifest.stat().st_size - 1} to {manifest.stat().st_size} bytes"
    )


def test_a_kept_builder_caches_and_rejudges(tmp_path: Path, logs: Any) -> None:
    directory = logs.write_experiment(tmp_path)
    builder = StateBuilder()
    assert not builder.experiment(directory).database.loaded
    record_load(directory)
    first = loaded(builder, directory)
    assert first.database.stale is False
    assert builder.experiment(directory) is first  # nothing changed: the same snapshot
    log = directory / "conv_001_events.jsonl"
    info = log.stat()
    os.utime(log, ns=(info.st_atime_ns, info.st_mtime_ns - 1_000_000_000))  # no byte changed
    assert loaded(builder, directory).database.stale is True
