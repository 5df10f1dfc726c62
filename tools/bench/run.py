"""Pidgin's benchmark suite: ``python3 tools/dev.py bench`` (or ``python tools/bench/run.py``).

Measures Pidgin against pidgin-ai 1.1 and against the limits of the machine, in one run:
writer throughput, import cost, state rebuild and refresh, loading into DuckDB, command
line start-up, log size, peak memory, and real providers at scale (``providers.py``).
Everything it needs (a pidgin-ai venv from PyPI, pidgin-ai experiments, our own logs, 1 GB
of them) is made on the first full run and cached in the work directory (default
``~/.cache/pidgin-bench``).

A full run writes ``docs/benchmarks.md`` and ``docs/benchmarks.json``. ``--quick`` runs
every section on tiny data with one repetition (never installing pidgin-ai, never
touching the network) and writes to ``<work>/results/`` unless ``--output`` says otherwise;
so does a run restricted with ``--only``. Run it with the Python that has the Pidgin
packages (``tools/dev.py bench`` does that). Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench import _report
from bench._harness import SectionResult, missing, python_version
from bench._setup import DEFAULT_WORK, PIDGIN_AI_VERSION, REPO, Workspace

SECTIONS = (
    "writer", "imports", "state", "load", "analysis", "cli", "size", "memory", "serve", "providers",
)  # fmt: skip
OPTIONAL_SECTIONS = ("lake",)
"""Run only when named with --only: they need an environment of their own (``lake``)."""
COMMAND = "python3 tools/dev.py bench"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tools/bench/run.py",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny data, one repetition, no install"
    )
    parser.add_argument(
        "--only",
        metavar="SECTION[,SECTION]",
        help=f"run only these sections ({', '.join(SECTIONS)}; "
        f"and {', '.join(OPTIONAL_SECTIONS)}, only when named)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=DEFAULT_WORK,
        help=f"cache and scratch directory (default {DEFAULT_WORK})",
    )
    parser.add_argument(
        "--output", type=Path, help="where benchmarks.md/.json go (default docs/ for a full run)"
    )
    parser.add_argument(
        "--pidgin-ai-python",
        metavar="PYTHON",
        help=f"a Python that has pidgin-ai=={PIDGIN_AI_VERSION}",
    )
    parser.add_argument(
        "--pidgin-ai-dir",
        type=Path,
        metavar="DIR",
        help="an existing pidgin-ai 50x50 experiment directory",
    )
    parser.add_argument(
        "--no-pidgin-ai", action="store_true", help="skip every pidgin-ai comparison"
    )
    args = parser.parse_args(argv)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        known = SECTIONS + OPTIONAL_SECTIONS
        unknown = [s for s in wanted if s not in known]
        if unknown:
            parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(known)}")
        args.sections = [s for s in known if s in wanted]
    else:
        args.sections = list(SECTIONS)
    if args.pidgin_ai_dir is not None and not (args.pidgin_ai_dir / "manifest.json").is_file():
        parser.error(
            f"--pidgin-ai-dir {args.pidgin_ai_dir}: no manifest.json there "
            "(not a pidgin-ai experiment)"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", flush=True)

    probe = subprocess.run(
        [sys.executable, "-c", "import pidgin_events"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        print(
            f"{sys.executable} cannot import pidgin_events. Run the suite with the development "
            "environment: `python3 tools/dev.py bench`, or set PYTHONPATH to the packages' src "
            "directories.",
            file=sys.stderr,
        )
        return 2
    full = not args.quick and args.only is None
    output = args.output or (REPO / "docs" if full else args.work / "results")
    mode = "quick" if args.quick else "full"
    log(f"{mode} run of {', '.join(args.sections)}; work dir {args.work}; results to {output}")
    ws = Workspace(
        args.work,
        quick=args.quick,
        log=log,
        pidgin_ai_python=args.pidgin_ai_python,
        pidgin_ai_dir=args.pidgin_ai_dir.resolve() if args.pidgin_ai_dir else None,
        use_pidgin_ai=not args.no_pidgin_ai,
    )
    load_start = _report.load_average()
    results: dict[str, SectionResult] = {}
    try:
        for name in args.sections:
            log(f"== {name}")
            section_started = time.perf_counter()
            try:
                module = importlib.import_module(f"bench.{name}")
                result: SectionResult = module.run(ws)
            except Exception as exc:  # a broken section must not hide the others' figures
                traceback.print_exc()
                result = SectionResult(
                    rows=[missing(name, f"{name} section", f"section failed: {exc!r}")]
                )
            result.seconds = time.perf_counter() - section_started
            results[name] = result
            _print_section(name, result)
    finally:
        ws.cleanup()
    legacy_python = ws.legacy_python_used
    run = {
        "command": COMMAND
        + (" --quick" if args.quick else "")
        + (f" --only {args.only}" if args.only else ""),
        "argv": shlex.join(sys.argv[1:] if argv is None else argv),
        "mode": mode,
        "sections_run": args.sections,
        "finished_at": _report.now(),
        "seconds": round(time.perf_counter() - started, 1),
        "load_start": load_start,
        "load_end": _report.load_average(),
        "rounds": ws.rounds,
        "repetitions_per_round": ws.reps,
        "machine": _report.machine_info(REPO),
        "pidgin_ai": {
            "version": PIDGIN_AI_VERSION if legacy_python else None,
            "python_version": python_version(legacy_python) if legacy_python else None,
            "reason": None
            if legacy_python
            else (ws.legacy_reason or "not needed by these sections"),
        },
    }
    md, js = _report.write(output, run, results)
    targets = [row for r in results.values() for row in r.rows if row.target]
    met = sum(1 for row in targets if row.met)
    log(f"{met} of {len(targets)} targets met; wrote {md} and {js}")
    return 0


def _print_section(name: str, result: SectionResult) -> None:
    print()
    for line in _report.table(result.rows):
        print(line)
    for note in result.notes:
        print(f"  - {note}")
    for row in result.rows:
        if row.note:
            print(f"  - {row.figure}: {row.note[:500]}")
    print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
