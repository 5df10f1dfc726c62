"""Benchmark pidgin-load against pidgin-ai 1.1's importer and a bare DuckDB ``read_json``.

Usage, from the repository root, with a Python that has duckdb and orjson (the workspace
``.venv``, or any Python: the packages' ``src`` folders are put on PYTHONPATH for the
child processes)::

    python tools/bench_load.py                       # the 50x50 pidgin-ai experiment
    python tools/bench_load.py --runs 7 --pidgin-ai-runs 3
    python tools/bench_load.py --big                 # also ~1 GB of our own logs
    python tools/bench_load.py --big 2 --skip-small  # only the big case, 2 GB

What is measured, each run in a fresh child process timed inside itself, into a fresh
database file (interpreter start and imports excluded), on a scratch copy of the
experiment so that no marker lands in the source directory:

``pidgin-load``
    ``load_experiment(copy, db, force=True)``: open and migrate the database, load every
    table in one transaction, write the markers, close.
``read_json``
    ``duckdb.connect(db)``; ``CREATE TABLE t AS SELECT * FROM read_json([logs])``; close.
    The floor: DuckDB's own reader with nothing but a copy into one table.
``pidgin-ai``
    pidgin-ai 1.1's ``ImportService(db).import_experiment_from_jsonl(copy)``; close, run
    with pidgin-ai's own Python (``--pidgin-ai-python``, a virtualenv with
    ``pip install pidgin-ai==1.1.0``). The experiment is made with the ``make_experiment.py``
    beside the pidgin-ai fixtures (``python make_experiment.py big-50x50 50 50 10``).

It prints the median and the minimum of each and the ratios against the targets: at
least 20x faster than pidgin-ai, within 1.5x of ``read_json``. Nothing is asserted: the
figures are for people, measured side by side in one run on one machine.

``--big [GB]`` writes about that many GB of logs in our own format (lines written with
orjson directly, in the exact layout pidgin-events writes), then loads them in a child
process and reports the time, the throughput and the child's peak resident memory
(``ru_maxrss`` from ``os.wait4``), next to the same figures for ``read_json``. Memory is
bounded by pidgin-load's DuckDB memory limit (``PIDGIN_LOAD_MEMORY_LIMIT``, default 1GB)
and its 32 MB read batches, not by the size of the experiment.

Standard library only; the children import duckdb and pidgin_load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EXPERIMENT = Path("/tmp/bigexp/pidgin_output/experiments/big-50x50_3e189819")
DEFAULT_PIDGIN_AI_PYTHON = Path("/tmp/pidginai/bin/python")
SRC_DIRS = [
    REPO / "packages" / name / "src" for name in ("pidgin-events", "pidgin-state", "pidgin-load")
]

# --- the children: each prints one JSON object on its last line --------------------------

OURS = """
import json, sys, time
from pidgin_load import load_experiment
started = time.perf_counter()
summary = load_experiment(sys.argv[1], sys.argv[2], force=True, allow_running=True)
seconds = time.perf_counter() - started
assert summary.ok and summary.loaded, summary.to_json()
print(json.dumps({"seconds": seconds, "rows": summary.rows}))
"""

READ_JSON = """
import glob, json, os, sys, time
import duckdb
files = sorted(glob.glob(os.path.join(glob.escape(sys.argv[1]), "*.jsonl")))
started = time.perf_counter()
con = duckdb.connect(sys.argv[2])
con.execute("CREATE TABLE t AS SELECT * FROM read_json(?)", [files])
rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
con.close()
print(json.dumps({"seconds": time.perf_counter() - started, "rows": {"t": rows}}))
"""

PIDGIN_AI = """
import json, logging, sys, time
from pathlib import Path
logging.disable(logging.CRITICAL)
from pidgin.database.import_service import ImportService
started = time.perf_counter()
service = ImportService(sys.argv[2])
result = service.import_experiment_from_jsonl(Path(sys.argv[1]))
service.close()
seconds = time.perf_counter() - started
assert result.success, result.error
print(json.dumps({"seconds": seconds, "rows": {"turns": result.turns_imported,
                  "conversations": result.conversations_imported}}))
"""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(path) for path in SRC_DIRS]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_child(
    python: str | Path, code: str, *args: str | Path, env: dict[str, str]
) -> dict[str, Any]:
    """Run a child to completion and return its JSON report."""
    result = subprocess.run(
        [str(python), "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"child failed ({python}):\n{result.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def run_measured(
    python: str | Path, code: str, *args: str | Path, env: dict[str, str]
) -> tuple[dict[str, Any], int]:
    """Like run_child, but reaps the child with os.wait4 to read its own peak RSS (kB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [str(python), "-c", code, *map(str, args)], stdout=out, stderr=err, env=env, text=True
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"child failed ({python}):\n{err.read()[-3000:]}")
        peak_kb = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss // 1024
        report: dict[str, Any] = json.loads(out.read().strip().splitlines()[-1])
        return report, peak_kb


def fresh_db(scratch: Path, name: str) -> Path:
    db = scratch / f"{name}.duckdb"
    for suffix in ("", ".wal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return db


def copy_run(source: Path, target: Path) -> Path:
    """A scratch copy of a run's logs and manifest (no transcripts, no markers)."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.suffix in (".jsonl", ".gz", ".zst") or path.name == "manifest.json":
            shutil.copy2(path, target / path.name)
    return target


def small_benchmark(args: argparse.Namespace, scratch: Path) -> None:
    source = args.experiment
    logs = sorted(source.glob("*.jsonl"))
    size = sum(path.stat().st_size for path in logs)
    print(f"experiment: {source}\n  {len(logs)} logs, {size / 1e6:.1f} MB\n", flush=True)
    env = child_env()
    ours_dir = copy_run(source, scratch / "ours" / "experiments" / source.name)
    base_dir = copy_run(source, scratch / "base" / source.name)
    results: dict[str, list[float]] = {}
    rows: dict[str, Any] = {}

    def ours(_: int) -> float:
        report = run_child(sys.executable, OURS, ours_dir, fresh_db(scratch, "ours"), env=env)
        rows["pidgin-load"] = report["rows"]
        return float(report["seconds"])

    def baseline(_: int) -> float:
        report = run_child(sys.executable, READ_JSON, base_dir, fresh_db(scratch, "base"), env=env)
        return float(report["seconds"])

    # interleaved, so that both see the same machine state
    for index in range(args.runs):
        results.setdefault("read_json", []).append(baseline(index))
        results.setdefault("pidgin-load", []).append(ours(index))
        print(
            f"  run {index + 1}/{args.runs}: read_json {results['read_json'][-1]:.3f} s, "
            f"pidgin-load {results['pidgin-load'][-1]:.3f} s",
            flush=True,
        )
    python = args.pidgin_ai_python
    if args.pidgin_ai_runs and Path(python).exists():
        ai_env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        ai_env["HOME"] = str(scratch / "pidgin-ai-home")
        for index in range(args.pidgin_ai_runs):
            ai_dir = copy_run(source, scratch / f"ai{index}" / source.name)
            report = run_child(
                python, PIDGIN_AI, ai_dir, fresh_db(scratch, f"ai{index}"), env=ai_env
            )
            results.setdefault("pidgin-ai 1.1", []).append(float(report["seconds"]))
            rows["pidgin-ai 1.1"] = report["rows"]
            seconds = results["pidgin-ai 1.1"][-1]
            print(f"  run {index + 1}/{args.pidgin_ai_runs}: pidgin-ai {seconds:.3f} s", flush=True)
    else:
        print(f"  (pidgin-ai skipped: {python} not found or --pidgin-ai-runs 0)")

    print(f"\n{'':<16}{'median':>10}{'min':>10}{'runs':>6}   MB/s (median)")
    for name, times in results.items():
        median = statistics.median(times)
        rate = size / 1e6 / median
        print(f"{name:<16}{median:>9.3f}s{min(times):>9.3f}s{len(times):>6}   {rate:8.1f}")
    ours_median = statistics.median(results["pidgin-load"])
    base_median = statistics.median(results["read_json"])
    print(f"\npidgin-load / read_json: {ours_median / base_median:.2f}x   (target <= 1.5x)")
    if "pidgin-ai 1.1" in results:
        ai_median = statistics.median(results["pidgin-ai 1.1"])
        print(f"pidgin-ai / pidgin-load: {ai_median / ours_median:.1f}x faster   (target >= 20x)")
    print(f"rows written by pidgin-load: {rows.get('pidgin-load')}")
    if "pidgin-ai 1.1" in rows:
        print(f"rows reported by pidgin-ai:  {rows['pidgin-ai 1.1']}")


# --- ~1 GB of our own logs -----------------------------------------------------------------


def _dumps(value: dict[str, Any]) -> bytes:
    try:
        import orjson
    except ImportError:
        return json.dumps(value, separators=(",", ":")).encode() + b"\n"
    return orjson.dumps(value) + b"\n"


_WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 30
_START = datetime(2026, 1, 1, tzinfo=UTC)
_BIG_ID = "exp_bench_big"


def _conversation_log(conversation_id: str, number: int, turns: int) -> bytes:
    """One conversation's log, as pidgin-events writes it (same keys, same order)."""
    out = bytearray()
    moment = _START
    seq = 0

    def emit(event_type: str, **fields: Any) -> None:
        nonlocal seq, moment
        line = {
            "event_type": event_type,
            "timestamp": moment.isoformat(),
            "experiment_id": _BIG_ID,
            "seq": seq,
            "event_id": f"{number:012x}-{seq}",  # a prefix per writer, as EventWriter draws
            "schema_version": 1,
            "conversation_id": conversation_id,
            **fields,
        }
        out.extend(_dumps(line))
        seq += 1
        moment += timedelta(milliseconds=7)

    agent = {"model": "local:test", "temperature": 0.7}
    emit(
        "ConversationStartEvent",
        agent_a={"id": "agent_a", **agent},
        agent_b={"id": "agent_b", **agent},
        config={},
        agent_a_model="local:test",
        agent_b_model="local:test",
        max_turns=turns,
        initial_prompt="Hello",
        temperature_a=0.7,
        temperature_b=0.7,
    )
    for turn in range(turns):
        emit("TurnStartEvent", turn_number=turn)
        for agent_id in ("agent_a", "agent_b"):
            emit(
                "MessageRequestEvent",
                agent_id=agent_id,
                turn_number=turn,
                message_count=2 * turn + 1,
            )
            content = _WORDS[: 400 + (turn * 37 + number) % 1200]
            emit(
                "MessageCompleteEvent",
                agent_id=agent_id,
                message={
                    "role": "assistant",
                    "content": content,
                    "agent_id": agent_id,
                    "timestamp": moment.isoformat(),
                },
                prompt_tokens=100 + turn,
                completion_tokens=len(content) // 4,
                total_tokens=100 + turn + len(content) // 4,
                duration_ms=150,
                turn_number=turn,
            )
        emit(
            "TurnCompleteEvent",
            turn_number=turn,
            convergence_score=((turn * 13 + number) % 100) / 100,
        )
    emit(
        "ConversationEndEvent",
        total_turns=turns,
        status="completed",
        reason="max_turns",
        duration_ms=1000,
    )
    return bytes(out)


def write_big_experiment(root: Path, gigabytes: float, turns: int = 200) -> Path:
    """Write an experiment of about ``gigabytes`` GB in pidgin-events' line layout."""
    directory = root / "experiments" / _BIG_ID
    directory.mkdir(parents=True, mode=0o700)
    target = int(gigabytes * (1 << 30))
    written = conversations = 0
    while written < target:
        conversation_id = f"conv_{conversations:06d}"
        data = _conversation_log(conversation_id, conversations, turns)
        (directory / f"{conversation_id}_events.jsonl").write_bytes(data)
        written += len(data)
        conversations += 1
    envelope = {"timestamp": _START.isoformat(), "experiment_id": _BIG_ID, "schema_version": 1}
    start_event = {
        "event_type": "ExperimentStartEvent",
        **envelope,
        "seq": 0,
        "event_id": "b3nch-0",
        "name": "bench-big",
        "total_conversations": conversations,
        "config": {},
    }
    complete_event = {
        "event_type": "ExperimentCompleteEvent",
        **envelope,
        "seq": 1,
        "event_id": "b3nch-1",
        "total_conversations": conversations,
        "completed_conversations": conversations,
        "failed_conversations": 0,
        "status": "completed",
    }
    (directory / "experiment.jsonl").write_bytes(_dumps(start_event) + _dumps(complete_event))
    return directory


def big_benchmark(args: argparse.Namespace, scratch: Path) -> None:
    started = time.perf_counter()
    directory = write_big_experiment(scratch / "big", args.big)
    logs = sorted(directory.glob("*.jsonl"))
    size = sum(path.stat().st_size for path in logs)
    print(
        f"\nbig: {len(logs)} logs of our format, {size / 1e9:.2f} GB "
        f"(written in {time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    env = child_env()
    print(f"\n{'':<16}{'seconds':>10}{'MB/s':>10}{'peak RSS':>12}")
    for name, code in (("read_json", READ_JSON), ("pidgin-load", OURS)):
        report, peak_kb = run_measured(
            sys.executable, code, directory, fresh_db(scratch, f"big-{name}"), env=env
        )
        seconds = float(report["seconds"])
        print(
            f"{name:<16}{seconds:>9.2f}s{size / 1e6 / seconds:>10.1f}{peak_kb / 1024:>9.0f} MB",
            flush=True,
        )
        if name == "pidgin-load":
            print(f"rows: {report['rows']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", type=Path, default=DEFAULT_EXPERIMENT)
    parser.add_argument("--pidgin-ai-python", type=Path, default=DEFAULT_PIDGIN_AI_PYTHON)
    parser.add_argument("--runs", type=int, default=5, help="runs of pidgin-load and read_json")
    parser.add_argument("--pidgin-ai-runs", type=int, default=3)
    parser.add_argument(
        "--big", type=float, nargs="?", const=1.0, help="also load ~N GB (default 1)"
    )
    parser.add_argument("--skip-small", action="store_true", help="only the --big case")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        if not args.skip_small:
            if not args.experiment.is_dir():
                raise SystemExit(f"{args.experiment}: no such experiment (see --experiment)")
            small_benchmark(args, scratch)
        if args.big:
            big_benchmark(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
