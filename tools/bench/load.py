"""Loading: ``pidgin_load.load_experiment`` into a fresh DuckDB file, on both log formats.

Baselines on the same files: pidgin-ai 1.1's
``ImportService(db).import_experiment_from_jsonl(dir)`` (row by row from Python), and the
bare ``CREATE TABLE t AS SELECT * FROM read_json([...], format='newline_delimited')``:
DuckDB parsing the same JSON into one table, with nothing normalised. The targets: at
least 20x faster than pidgin-ai and within 1.5x of the bare ``read_json``.
"""

from __future__ import annotations

import importlib
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._harness import SectionResult, compare, interleave, missing
from bench._setup import copy_dir

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "load"
BARE_SQL = "CREATE TABLE t AS SELECT * FROM read_json(?, format='newline_delimited')"


def _logs(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.iterdir() if p.name.endswith(".jsonl"))


def bare_read_json(directory: Path, db: Path) -> int:
    """The baseline: DuckDB's JSON reader straight into one table; returns its row count."""
    import duckdb

    connection = duckdb.connect(str(db))
    try:
        connection.execute(BARE_SQL, [_logs(directory)])
        row = connection.execute("SELECT count(*) FROM t").fetchone()
    finally:
        connection.close()
    return int(row[0]) if row else 0


def load_ours(directory: Path, db: Path, *, metrics: bool = True) -> Any:
    load = importlib.import_module("pidgin_load").load_experiment
    summary = load(directory, db, force=True, metrics=metrics)
    if summary.failed:
        raise RuntimeError(f"pidgin_load failed on {directory}: {summary.failed[0]}")
    return summary


def ours_load(directory: str, scratch: str, reps: int) -> dict[str, Any]:
    """Child: ours, then the bare read_json, into fresh databases, ``reps`` times in turn."""
    import duckdb  # noqa: F401  (imported before timing, as pidgin-ai's import does)

    work = copy_dir(Path(directory), Path(scratch) / f"load-{time.monotonic_ns()}")
    out: dict[str, Any] = {"ours": [], "plain": [], "bare": []}
    summary = None
    for rep in range(reps + 1):  # the first round warms up (lazy imports, page cache)
        for series, metrics in (("ours", True), ("plain", False)):
            db = work.parent / f"{work.name}-{series}-{rep}.duckdb"
            start = time.perf_counter()
            summary = load_ours(work, db, metrics=metrics)
            elapsed = time.perf_counter() - start
            if rep:
                out[series].append(elapsed)
            db.unlink()
        db = work.parent / f"{work.name}-bare-{rep}.duckdb"
        start = time.perf_counter()
        out["bare_rows"] = bare_read_json(work, db)
        elapsed = time.perf_counter() - start
        if rep:
            out["bare"].append(elapsed)
        db.unlink()
    if summary is not None:
        out["rows"] = dict(summary.rows)
        out["bad_lines"] = summary.bad_lines
    shutil.rmtree(work)
    return out


def legacy_load(directory: str, scratch: str, reps: int) -> dict[str, Any]:
    """Child in pidgin-ai's venv: its ImportService into a fresh database each time."""
    service_class = importlib.import_module("pidgin.database.import_service").ImportService
    work = copy_dir(Path(directory), Path(scratch) / f"legacy-load-{time.monotonic_ns()}")
    out: dict[str, Any] = {"legacy": []}
    for rep in range(reps):
        db = work.parent / f"{work.name}-{rep}.duckdb"
        start = time.perf_counter()
        service = service_class(str(db))
        result = service.import_experiment_from_jsonl(work)
        service.db.close()
        out["legacy"].append(time.perf_counter() - start)
        if not result.success:
            raise RuntimeError(f"pidgin-ai import failed: {result.error}")
        out["turns"] = result.turns_imported
        db.unlink()
    shutil.rmtree(work)
    return out


def run(ws: Workspace) -> SectionResult:
    result = SectionResult()
    scratch = str(ws.scratch("load"))
    legacy = ws.legacy_like_experiment()
    legacy_dir, legacy_label = legacy if legacy else (None, "")
    ours_dir, origin = ws.ours_experiment()
    use_legacy = ws.legacy_python() is not None
    if not use_legacy:
        result.notes.append(f"pidgin-ai ImportService not measured: {ws.legacy_reason}")
    reps = 1 if ws.quick else 2
    legacy_time = None
    if legacy_dir is not None:
        ws.log(f"  loading the {legacy_label} {legacy_dir.name}")
        contenders = [
            (
                "ours",
                ws.ours_task(
                    "load", "ours_load", directory=str(legacy_dir), scratch=scratch, reps=reps
                ),
            )
        ]
        if use_legacy:
            contenders.append(
                (
                    "pidgin-ai",
                    ws.legacy_task(
                        "load", "legacy_load", directory=str(legacy_dir), scratch=scratch, reps=1
                    ),
                )
            )
        rounds = interleave(ws.rounds, contenders, ws.log)
        figure = f"load {legacy_label} ({_shape(legacy_dir)}) into a new database"
        ours = rounds.measure("ours", "s")
        legacy_time = rounds.measure("legacy", "s")
        result.rows.append(
            compare(
                NAME,
                figure,
                ours,
                "pidgin-ai ImportService",
                legacy_time,
                how="faster",
                threshold=20,
                target=">= 20x faster",
                note=rounds.error("pidgin-ai", "ours")
                or ("" if use_legacy else f"pidgin-ai not measured: {ws.legacy_reason}"),
            )
        )
        _against_bare(result, figure, rounds)
        _rows_note(result, rounds.extras, legacy_dir.name)
    else:
        result.rows.append(
            missing(
                NAME,
                "load pidgin-ai 1.1 experiment",
                "no pidgin-ai experiment available",
                target=">= 20x faster",
            )
        )
    ws.log(f"  loading our experiment ({origin})")
    rounds = interleave(
        ws.rounds,
        [
            (
                "ours",
                ws.ours_task(
                    "load", "ours_load", directory=str(ours_dir), scratch=scratch, reps=reps
                ),
            )
        ],
        ws.log,
    )
    figure = f"load our format ({_shape(ours_dir)}, {origin}) into a new database"
    ours = rounds.measure("ours", "s")
    _against_bare(result, figure, rounds)
    if legacy_time is not None:
        result.rows.append(
            compare(
                NAME,
                figure,
                ours,
                "pidgin-ai ImportService on its own logs of the same content",
                legacy_time,
                how="faster",
            )
        )
    _rows_note(result, rounds.extras, ours_dir.name)
    result.notes.append(
        "Each load goes into a new database file (connect, schema, load, commit, close all "
        "timed); DuckDB is imported before the clock starts for every contender. "
        f"The bare baseline is `{BARE_SQL}` over the same .jsonl files. A load computes the "
        "per-turn metrics unless told not to; pidgin-ai's import computes its own, so the "
        "comparison with it is with the metrics. The 1.5x target against the bare read is "
        "judged on the load without them (`metrics=False`): the metrics have their own "
        "budget against that load (section analysis)."
    )
    return result


def _against_bare(result: SectionResult, figure: str, rounds: Any) -> None:
    """The load without metrics against the bare read (the target), and with them beside."""
    bare = rounds.measure("bare", "s")
    result.rows.append(
        compare(
            NAME,
            f"{figure}, without metrics",
            rounds.measure("plain", "s"),
            "bare CREATE TABLE AS read_json",
            bare,
            how="within",
            threshold=1.5,
            target="<= 1.5x",
            note=rounds.error("ours"),
        )
    )
    result.rows.append(
        compare(
            NAME,
            f"{figure}, with per-turn metrics (the default)",
            rounds.measure("ours", "s"),
            "bare CREATE TABLE AS read_json",
            bare,
            how="within",
        )
    )


def _shape(directory: Path) -> str:
    logs = [p for p in directory.iterdir() if p.name.endswith(".jsonl")]
    return f"{len(logs)} files, {sum(p.stat().st_size for p in logs) / 1e6:.1f} MB"


def _rows_note(result: SectionResult, extras: dict[str, dict[str, Any]], name: str) -> None:
    ours = extras.get("ours", {})
    if ours.get("rows"):
        rows = ", ".join(f"{table} {count}" for table, count in sorted(ours["rows"].items()))
        text = f"Rows loaded from {name}: {rows}; bare read_json rows {ours.get('bare_rows')}"
        if "turns" in extras.get("pidgin-ai", {}):
            text += f"; pidgin-ai imported {extras['pidgin-ai']['turns']} turns"
        result.notes.append(text + ".")
