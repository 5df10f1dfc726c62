"""Analysis: what the per-turn metrics add to a load, and ``pidgin query`` on a live run.

``metrics``: ``load_experiment(dir, db, force=True)`` with the metrics (the default)
against ``metrics=False``, alternating, each into a fresh database file, on the 50 x 50
experiment in both log formats. Issue 14's budget: at most 1.5x.

``query``: the experiment copied under an output root while a ``RunLock`` is held on it
(so it is a running experiment, as ``pidgin query`` meets one), then
``query_live("SELECT ... FROM turns ...", root)`` (read from the JSONL into memory, without
metrics, as the query names no metric) against the full load of the same directory
into a fresh database (metrics included, what a finished run gets). Target: under a
second.
"""

from __future__ import annotations

import importlib
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._harness import SectionResult, absolute, compare, interleave, missing
from bench._setup import copy_dir

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "analysis"
QUERY = (
    "SELECT turn_number, count(*) AS conversations, avg(convergence_score) AS convergence "
    "FROM turns GROUP BY turn_number ORDER BY turn_number"
)


def metrics_load(directory: str, scratch: str, reps: int) -> dict[str, Any]:
    """Child: the load without metrics, then with, into fresh databases, ``reps`` times."""
    load = importlib.import_module("pidgin_load").load_experiment
    work = copy_dir(Path(directory), Path(scratch) / f"metrics-{time.monotonic_ns()}")
    out: dict[str, Any] = {"plain": [], "metrics": []}
    for rep in range(reps + 1):  # the first round warms up
        for series, metrics in (("plain", False), ("metrics", True)):
            db = work.parent / f"{work.name}-{series}-{rep}.duckdb"
            start = time.perf_counter()
            summary = load(work, db, force=True, metrics=metrics)
            elapsed = time.perf_counter() - start
            if summary.failed:
                raise RuntimeError(f"load failed: {summary.failed[0]}")
            if rep:
                out[series].append(elapsed)
            db.unlink()
    out["turn_metrics"] = summary.rows.get("turn_metrics", 0)
    shutil.rmtree(work)
    return out


def live_query(directory: str, scratch: str, reps: int) -> dict[str, Any]:
    """Child: ``query_live`` on the run while it holds a RunLock, against a full load."""
    pidgin_load = importlib.import_module("pidgin_load")
    run_lock = importlib.import_module("pidgin_events").RunLock
    root = Path(scratch) / f"live-{time.monotonic_ns()}"
    work = copy_dir(Path(directory), root / "experiments" / Path(directory).name)
    out: dict[str, Any] = {"query": [], "load": []}
    with run_lock(work):
        for rep in range(reps + 1):
            start = time.perf_counter()
            rows = pidgin_load.query_live(QUERY, root).fetchall()
            elapsed = time.perf_counter() - start
            if rep:
                out["query"].append(elapsed)
            db = root / f"full-{rep}.duckdb"
            start = time.perf_counter()
            summary = pidgin_load.load_experiment(work, db, allow_running=True)
            elapsed = time.perf_counter() - start
            if summary.failed:
                raise RuntimeError(f"load failed: {summary.failed[0]}")
            if rep:
                out["load"].append(elapsed)
            db.unlink()
    out["rows"] = len(rows)
    shutil.rmtree(root)
    return out


def run(ws: Workspace) -> SectionResult:
    result = SectionResult()
    scratch = str(ws.scratch(NAME))
    reps = 1 if ws.quick else 3
    experiments: list[tuple[Path, str]] = []
    legacy = ws.legacy_like_experiment()
    if legacy is not None:
        experiments.append(legacy)
    ours_dir, origin = ws.ours_experiment()
    experiments.append((ours_dir, f"our format ({origin})"))
    for directory, label in experiments:
        ws.log(f"  metrics: loading {directory.name} with and without them")
        rounds = interleave(
            ws.rounds,
            [
                (
                    "ours",
                    ws.ours_task(
                        NAME, "metrics_load", directory=str(directory), scratch=scratch, reps=reps
                    ),
                )
            ],
            ws.log,
        )
        result.rows.append(
            compare(
                NAME,
                f"load with per-turn metrics, {label} ({directory.name})",
                rounds.measure("metrics", "s"),
                "the same load without metrics",
                rounds.measure("plain", "s"),
                how="within",
                threshold=1.5,
                target="<= 1.5x",
                note=rounds.error("ours"),
            )
        )
    ws.log("  query: pidgin query on a running experiment against its full load")
    rounds = interleave(
        ws.rounds,
        [
            (
                "ours",
                ws.ours_task(
                    NAME, "live_query", directory=str(ours_dir), scratch=scratch, reps=reps
                ),
            )
        ],
        ws.log,
    )
    query = rounds.measure("query", "s")
    figure = f"pidgin query on a running experiment ({ours_dir.name}, our format)"
    if query is None:
        result.rows.append(missing(NAME, figure, rounds.error("ours"), target="< 1 s"))
    else:
        result.rows.append(
            absolute(
                NAME,
                figure,
                query,
                limit=1.0,
                target="< 1 s",
                baseline="full load of the same logs into a new database",
                base=rounds.measure("load", "s"),
            )
        )
    result.notes.append(
        "Metrics: each load goes into a new database file, the two kinds alternating in one "
        "child process. Query: `query_live` reads every log under the root into an in-memory "
        f"DuckDB and answers `{QUERY}`; the run's lock is held throughout, as a writer holds it."
    )
    return result
