"""Many loaders, one lake: separate processes as if on separate machines, and kill -9."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import duckdb

import pidgin_events as pe
import pidgin_load as pl

LOADERS = 8
EXPERIMENTS = 40
TWICE = 8  # experiments 0..7 are also in the next loader's output root
CHANGED = EXPERIMENTS - 1  # rewritten (longer) between the two rounds


def _per_experiment(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """{table: {experiment_id: rows}} for every table; closes the connection."""
    try:
        return {
            table: {
                str(experiment_id): int(rows)
                for experiment_id, rows in con.execute(
                    f"SELECT experiment_id, count(*) FROM {table} GROUP BY ALL"
                ).fetchall()
            }
            for table in pl.TABLES
        }
    finally:
        con.close()


def _reference(directories: list[Path], scratch: Path) -> dict[str, dict[str, int]]:
    """What the lake must hold: pristine copies loaded into a local database file."""
    db = scratch / "reference.duckdb"
    db.unlink(missing_ok=True)
    for directory in directories:
        copy = scratch / "copies" / directory.name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(directory, copy)
        assert pl.load_experiment(copy, db, force=True).ok
    return _per_experiment(duckdb.connect(str(db), read_only=True))


def _finish(processes: list[Any], timeout: float = 900) -> list[dict[str, Any]]:
    summaries = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, f"{err}\n{out}"
        summaries.append(json.loads(out))
    return summaries


def _rewrite_longer(write_experiment: Any, run: Path, experiment_id: str) -> None:
    """The same experiment written again with more conversations; its load marker kept."""
    marker = (run / pe.LOADED_MARKER).read_bytes()
    scratch = run.parent.parent.parent / "rewrite"
    fresh = write_experiment(scratch, conversations=4, turns=5, experiment_id=experiment_id)
    shutil.rmtree(run)
    shutil.copytree(fresh, run)
    (run / pe.LOADED_MARKER).write_bytes(marker)


def test_eight_loaders_forty_experiments_some_twice_one_changed(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    originals = [
        write_experiment(source, conversations=1 + index % 3, turns=1 + index % 4)
        for index in range(EXPERIMENTS)
    ]
    ids = [path.name for path in originals]  # an experiment's directory is named by its id
    roots = [tmp_path / f"machine{loader}" for loader in range(LOADERS)]
    placed: dict[int, list[Path]] = {}
    for index, original in enumerate(originals):
        owners = [index * LOADERS // EXPERIMENTS]
        if index < TWICE:
            owners.append((owners[0] + 1) % LOADERS)
        for owner in owners:
            copy = roots[owner] / "experiments" / original.name
            shutil.copytree(original, copy)
            placed.setdefault(index, []).append(copy)
    expected = _reference(originals, tmp_path / "reference")
    assert len(expected["experiments"]) == EXPERIMENTS

    # Round 1: a fresh lake, eight loaders at once (so also eight first attaches at once).
    first = _finish([lake.loader(root) for root in roots])
    loaded = [outcome["experiment_id"] for summary in first for outcome in summary["loaded"]]
    assert sorted(loaded) == sorted(ids + ids[:TWICE])
    assert _per_experiment(lake.connect()) == expected

    # One experiment changes; every loader runs again, at once.
    changed = placed[CHANGED][0]
    _rewrite_longer(write_experiment, changed, changed.name)
    expected = _reference([*originals[:CHANGED], changed], tmp_path / "reference")
    second = _finish([lake.loader(root) for root in roots])
    reloaded = [outcome for summary in second for outcome in summary["loaded"]]
    assert [outcome["experiment_id"] for outcome in reloaded] == [changed.name]
    assert [outcome["experiment_id"] for outcome in second[-1]["stale"]] == [changed.name]
    assert sum(len(summary["skipped"]) for summary in second) == EXPERIMENTS + TWICE - 1
    lake_rows = _per_experiment(lake.connect())
    assert lake_rows == expected
    assert lake_rows["conversations"][changed.name] == 4
    assert all(rows == 1 for rows in lake_rows["experiments"].values())


def _lake_or_nothing(lake: Any) -> dict[str, dict[str, int]]:
    """The lake's rows; none if the loaders were killed before creating the catalog, or
    after creating it (one PostgreSQL transaction) but before migrating it (another)."""
    nothing: dict[str, dict[str, int]] = {table: {} for table in pl.TABLES}
    try:
        con = lake.connect()
    except pl.LoadError as exc:
        if "does not exist" not in str(exc):
            raise
        return nothing
    tables = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database()"
    ).fetchone()
    if tables == (0,):
        con.close()
        return nothing
    return _per_experiment(con)


def test_loader_killed_inside_its_lake_transaction_leaves_nothing_and_a_retry_completes(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    root = tmp_path / "out"
    runs = [write_experiment(root, conversations=2, turns=3) for _ in range(3)]
    expected = _reference(runs, tmp_path / "reference")
    # Another loader's experiment, committed before: the kill must not touch it.
    other = write_experiment(tmp_path / "other", conversations=1, turns=2)
    assert pl.load_experiment(other, target=lake.target, data_path=str(lake.data_path)).ok

    victim = lake.loader(root, env=lake.env(**{pl.LAKE_PAUSE_ENV: "600"}))
    try:
        lake.wait_for(victim, "before the lake commit")  # its rows are written, not committed
        os.kill(victim.pid, signal.SIGKILL)
    finally:
        victim.kill()
        victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    after_kill = _per_experiment(lake.connect())
    assert set(after_kill["experiments"]) == {other.name}
    assert all(set(rows) <= {other.name} for rows in after_kill.values())
    assert not any((run / pe.LOADED_MARKER).exists() for run in runs)

    # The retry is not blocked by the dead loader's lock, and loads everything once.
    retry = _finish([lake.loader(root)])[0]
    assert sorted(outcome["experiment_id"] for outcome in retry["loaded"]) == sorted(
        run.name for run in runs
    )
    final = _per_experiment(lake.connect())
    for table, rows in expected.items():
        assert {key: final[table].get(key) for key in rows} == rows, table
    assert final["experiments"][other.name] == 1


def test_loaders_killed_at_random_moments_leave_whole_experiments_only(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    runs = [write_experiment(source, conversations=2, turns=2) for _ in range(6)]
    expected = _reference(runs, tmp_path / "reference")

    def fresh_root(name: str) -> Path:
        """Pristine copies, never loaded: a load appends to its experiment.jsonl."""
        root = tmp_path / name
        shutil.copytree(source, root)
        return root

    rng = random.Random(16)
    delays = [round(rng.uniform(1.0, 12.0), 2) for _ in range(3)]
    for round_number, delay in enumerate(delays):
        victims = [lake.loader(fresh_root(f"round{round_number}-{i}")) for i in range(2)]
        time.sleep(delay)
        for victim in victims:
            victim.send_signal(signal.SIGKILL)
            victim.communicate(timeout=60)
        present = _lake_or_nothing(lake)
        for experiment_id in present["experiments"]:
            for table, rows in expected.items():
                assert present[table].get(experiment_id) == rows.get(experiment_id), (
                    f"after a kill at {delay} s: {table} of {experiment_id}"
                )
        assert all(rows == 1 for rows in present["experiments"].values()), delay
    _finish([lake.loader(fresh_root("retry"))])
    assert _per_experiment(lake.connect()) == expected
