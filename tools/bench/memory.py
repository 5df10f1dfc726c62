"""Peak memory of the StateBuilder and of the loader on about 1 GB of our logs.

Each contender runs alone in a fresh process and reports its peak resident set size
(``getrusage``). "Bounded" means the peak does not follow the data: the same 500
conversations with ten times fewer turns (about 100 MB) serve as the baseline, and the
1 GB peak must stay within 2x of it. Baselines for scale: streaming ``json.loads`` of every
line (the StateBuilder's floor) and the bare DuckDB ``read_json`` into one table (the
loader's), on the same 1 GB.
"""

from __future__ import annotations

import importlib
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._harness import Measure, SectionResult, compare, format_bytes, interleave
from bench._setup import link_copy
from bench.load import bare_read_json, load_ours
from bench.state import json_every_line

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "memory"
BOUND = 2.0
LOAD_TARGET = 1.5
"""A load without metrics, of any size, within this factor of the bare ``read_json`` (issue 14)."""
MEDIUM = (180, 10)
"""Conversations and turns of the ~40 MB size (10 KB messages), between the two others."""


def _rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def floor(modules: list[str]) -> dict[str, Any]:
    """Child: the peak of the interpreter with the contender's imports and nothing read."""
    for module in modules:
        importlib.import_module(module)
    return {"rss": [_rss_mib()]}


def state_memory(directory: str) -> dict[str, Any]:
    """Child: one cold rebuild of the experiment."""
    builder = importlib.import_module("pidgin_state").StateBuilder()
    start = time.perf_counter()
    state = builder.experiment(directory)
    elapsed = time.perf_counter() - start
    return {"rss": [_rss_mib()], "seconds": [elapsed], "conversations": len(state.conversations)}


def json_memory(directory: str) -> dict[str, Any]:
    """Child: stream every line through json.loads."""
    start = time.perf_counter()
    lines = json_every_line(Path(directory))
    return {"rss": [_rss_mib()], "seconds": [time.perf_counter() - start], "lines": lines}


def load_memory(directory: str, scratch: str, metrics: bool = True) -> dict[str, Any]:
    """Child: load a linked copy of the experiment into a new database."""
    import duckdb  # noqa: F401  (as in the load section: imported before timing)

    work = link_copy(Path(directory), Path(scratch) / f"memory-{time.monotonic_ns()}")
    db = work.with_suffix(".duckdb")
    start = time.perf_counter()
    summary = load_ours(work, db, metrics=metrics)
    elapsed = time.perf_counter() - start
    size = db.stat().st_size
    db.unlink()
    shutil.rmtree(work)
    package = importlib.import_module("pidgin_load")
    limit = os.environ.get("PIDGIN_LOAD_MEMORY_LIMIT") or getattr(
        package, "DEFAULT_MEMORY_LIMIT", None
    )
    if limit is None:  # not exported (yet): the module that sets it
        connect = importlib.import_module("pidgin_load._connect")
        limit = getattr(connect, "DEFAULT_MEMORY_LIMIT", None)
    return {
        "rss": [_rss_mib()],
        "seconds": [elapsed],
        "db_bytes": [float(size)],
        "events": summary.rows.get("events"),
        "memory_limit": limit,
    }


def bare_memory(directory: str, scratch: str) -> dict[str, Any]:
    """Child: the bare ``CREATE TABLE t AS SELECT * FROM read_json(...)``."""
    import duckdb  # noqa: F401

    db = Path(scratch) / f"memory-bare-{time.monotonic_ns()}.duckdb"
    start = time.perf_counter()
    rows = bare_read_json(Path(directory), db)
    elapsed = time.perf_counter() - start
    db.unlink()
    return {"rss": [_rss_mib()], "seconds": [elapsed], "rows": rows}


def _label(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


def _bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.name.endswith(".jsonl"))


def run(ws: Workspace) -> SectionResult:
    result = SectionResult()
    large, small, conversations = ws.big_logs()
    scratch = str(ws.scratch("memory"))
    big, little = _bytes(large), _bytes(small)
    big_label, little_label = _label(big), _label(little)
    result.notes.append(
        f"Data: {conversations} conversations of our logs, {big_label} ({large.name}); the "
        f"baseline for boundedness is the same {conversations} conversations with a tenth of the "
        f"turns, {little_label} ({small.name})."
    )
    rounds = 1 if ws.quick else 2

    def child(func: str, directory: Path, **extra: Any) -> Any:
        return ws.ours_task("memory", func, timeout=3600, directory=str(directory), **extra)

    ws.log(f"  StateBuilder on {big_label} and {little_label}")
    state = interleave(
        rounds,
        [
            ("large", child("state_memory", large)),
            ("small", child("state_memory", small)),
            ("json", child("json_memory", large)),
            ("floor", ws.ours_task("memory", "floor", modules=["pidgin_state"])),
        ],
        ws.log,
    )
    per = _split(state)
    result.rows.append(
        compare(
            NAME,
            f"StateBuilder peak RSS, {big_label}",
            per["large"]["rss"],
            f"same conversations, {little_label}",
            per["small"]["rss"],
            how="growth",
            threshold=BOUND,
            target=f"<= {BOUND:g}x (bounded)",
            note=state.error("large", "small"),
        )
    )
    result.rows.append(
        compare(
            NAME,
            f"StateBuilder peak RSS, {big_label}",
            per["large"]["rss"],
            "json.loads streaming every line",
            per["json"]["rss"],
            how="within",
            note=state.error("json"),
        )
    )
    result.rows.append(
        compare(
            NAME,
            f"StateBuilder cold rebuild time, {big_label}",
            per["large"]["seconds"],
            "json.loads every line",
            per["json"]["seconds"],
            how="faster",
        )
    )
    medium = _medium_logs(ws)
    medium_label = _label(_bytes(medium))
    sizes = (
        ("medium", medium, medium_label),
        ("small", small, little_label),
        ("large", large, big_label),
    )
    ws.log(f"  loader on {medium_label}, {little_label} and {big_label}")
    contenders: list[tuple[str, Any]] = []
    for key, directory, _ in sizes:
        contenders += [
            (key, child("load_memory", directory, scratch=scratch)),
            (f"{key}_nometrics", child("load_memory", directory, scratch=scratch, metrics=False)),
            (f"bare_{key}", child("bare_memory", directory, scratch=scratch)),
        ]
    contenders.append(("floor", ws.ours_task("memory", "floor", modules=["pidgin_load", "duckdb"])))
    load = interleave(rounds, contenders, ws.log)
    per_load = _split(load)
    result.rows.append(
        compare(
            NAME,
            f"loader peak RSS, {big_label}",
            per_load["large"]["rss"],
            f"same conversations, {little_label}",
            per_load["small"]["rss"],
            how="growth",
            threshold=BOUND,
            target=f"<= {BOUND:g}x (bounded)",
            note=load.error("large", "small"),
        )
    )
    for key, _, label in sizes:
        bare = f"bare_{key}"
        result.rows.append(
            compare(
                NAME,
                f"loader peak RSS, {label}",
                per_load[key]["rss"],
                "bare CREATE TABLE AS read_json",
                per_load[bare]["rss"],
                how="within",
                note=load.error(bare),
            )
        )
        result.rows.append(
            compare(
                NAME,
                f"load time without metrics, {label}",
                per_load[f"{key}_nometrics"]["seconds"],
                "bare CREATE TABLE AS read_json",
                per_load[bare]["seconds"],
                how="within",
                threshold=LOAD_TARGET,
                target=f"<= {LOAD_TARGET:g}x",
                note=load.error(f"{key}_nometrics", bare),
            )
        )
        # Reported beside it, without a target: what metrics cost on big logs is judged
        # apart (the metrics' own budget is the metrics section's 50 x 50 row).
        result.rows.append(
            compare(
                NAME,
                f"load time with metrics, {label}",
                per_load[key]["seconds"],
                "bare CREATE TABLE AS read_json",
                per_load[bare]["seconds"],
                how="within",
                note=load.error(key, bare),
            )
        )
    db_size = load.by_contender.get("large", {}).get("db_bytes")
    limit = load.extras.get("large", {}).get("memory_limit") or "not set"
    if db_size:
        result.notes.append(
            f"The loaded {big_label} makes a {format_bytes(db_size[0])} database. DuckDB holds "
            "what it reads and writes in its buffer pool up to its memory_limit: pidgin-load "
            f"sets one ({limit}; $PIDGIN_LOAD_MEMORY_LIMIT), the bare baseline runs with "
            "DuckDB's default (80% of RAM)."
        )
    floors = []
    for label, source in (("pidgin_state", per), ("pidgin_load + duckdb", per_load)):
        measure = source["floor"]["rss"]
        if measure is not None:
            floors.append(f"{label} {measure.text()}")
    if floors:
        result.notes.append(
            f"Peak RSS of the interpreter after the imports alone: {', '.join(floors)}."
        )
    return result


def _split(rounds: Any) -> dict[str, dict[str, Measure | None]]:
    """Samples per contender: interleave pools series by name, so each child tags its own."""
    out: dict[str, dict[str, Measure | None]] = {}
    for name, series in rounds.by_contender.items():
        out[name] = {
            "rss": Measure.of(series.get("rss"), "MiB"),
            "seconds": Measure.of(series.get("seconds"), "s"),
        }
    names = ["large", "small", "medium", "json", "floor"]
    names += [f"{prefix}{key}" for key in ("large", "small", "medium") for prefix in ("bare_", "")]
    names += [f"{key}_nometrics" for key in ("large", "small", "medium")]
    for name in names:
        out.setdefault(name, {"rss": None, "seconds": None})
    return out


def _medium_logs(ws: Workspace) -> Path:
    """About 40 MB of 10 KB-message logs (quick mode: a few hundred kB of 1 KB ones)."""
    conversations, turns, message = (8, 10, 1000) if ws.quick else (*MEDIUM, 10_000)
    return ws.synthetic(f"big-{conversations}x{turns}", conversations, turns, message, seed=9)
