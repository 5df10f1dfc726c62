"""The ``pidgin-load`` console script, for CI jobs that install only the loader.

Standard library only (argparse, a progress line rewritten on stderr), so the command
starts fast and needs nothing beyond pidgin-load's own dependencies.

Exit status: 0 when every run is loaded or was already loaded, 1 when any failed or
``--all ROOT`` found no run (unless ``--allow-empty``), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from ._paths import CHATS_DB_ENV
from ._summary import LoadSummary, RunOutcome
from ._target import LAKE_DATA_PATH_ENV, TARGET_ENV

__all__ = ["main"]

_EPILOG = f"""\
databases:
  experiments load into <root>/experiments/experiments.duckdb (for a directory
  <root>/experiments/<id>/), chats into ~/.pidgin/chats.duckdb (${CHATS_DB_ENV}
  overrides it); --db sends everything to one file.
  --target ducklake:postgres:"dbname=... host=..." (or ${TARGET_ENV}) sends
  everything to a DuckLake instead, its Parquet files under --data-path (or
  ${LAKE_DATA_PATH_ENV}); needs pidgin-load[lake]. See docs/many-machines.md.

exit status: 0 all loaded or already loaded, 1 something failed or --all found
  no run (a wrong path, most often; --allow-empty accepts that), 2 usage error.
"""


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked: the metadata lookup costs milliseconds."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("pidgin-load")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        print(f"pidgin-load {found}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pidgin-load",
        description="Load finished Pidgin experiments and chats into DuckDB.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "runs", nargs="*", metavar="EXP_DIR", help="experiment or chat directories to load"
    )
    parser.add_argument(
        "--all",
        metavar="ROOT",
        dest="root",
        help="load every finished run under an output root (e.g. pidgin_output)",
    )
    parser.add_argument("--db", metavar="PATH", help="load into this database file")
    parser.add_argument(
        "--target",
        metavar="SPEC",
        help=f'load into a DuckLake: ducklake:postgres:"dbname=... host=..." (${TARGET_ENV})',
    )
    parser.add_argument(
        "--data-path",
        metavar="PATH",
        help=f"where the lake's Parquet files go: a shared directory or s3://... "
        f"(${LAKE_DATA_PATH_ENV}; needed when the lake is created)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="reload runs already loaded, and load EXP_DIRs that are still running",
    )
    parser.add_argument("--no-chats", action="store_true", help="with --all: skip chats")
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="with --all: exit 0 when ROOT holds no run (by default that fails: a wrong path)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a machine-readable summary on stdout"
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument(
        "--no-metrics",
        action="store_true",
        help="leave turn_metrics empty (most of a load of long replies); fill them in "
        "later with --all ROOT --recompute-metrics",
    )
    parser.add_argument(
        "--recompute-metrics",
        action="store_true",
        help="with --all: afterwards compute turn_metrics again for every run in the "
        "databases (fills in metrics added since a run was loaded)",
    )
    parser.add_argument(
        "--lock-timeout",
        type=float,
        metavar="SECONDS",
        help="how long to wait for a database another process holds (default 10)",
    )
    return parser


class _ProgressLine:
    """``[done/total] label`` on one terminal line, rewritten in place."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._used = False

    def __call__(self, done: int, total: int, label: str) -> None:
        self._used = True
        self._stream.write(f"\r\033[K[{done}/{total}] {label}"[:120])
        self._stream.flush()

    def finish(self) -> None:
        if self._used:
            self._stream.write("\r\033[K")
            self._stream.flush()


def _say_waiting(message: str) -> None:
    """At once, on stderr: a load waiting for a locked database is not a hung command."""
    sys.stderr.write(
        f"\r\033[Kwaiting: {message}\n" if sys.stderr.isatty() else f"waiting: {message}\n"
    )
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Run ``pidgin-load``; returns the exit status."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, where a reader that went away is still caught
        return status
    except BrokenPipeError:
        # The reader went away (`pidgin-load ... | head`): stop quietly, as Unix tools do.
        # Loads were committed before anything was printed; stdout goes to /dev/null so
        # that the interpreter's last flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.root is not None and args.runs:
        parser.error("give EXP_DIR arguments or --all ROOT, not both")
    if args.root is None and not args.runs:
        parser.error("give one or more EXP_DIR arguments, or --all ROOT")
    if args.root is not None and not Path(args.root).is_dir():
        parser.error(f"argument --all: {args.root}: no such directory")
    for run in args.runs:
        if not Path(run).is_dir():
            parser.error(f"argument EXP_DIR: {run}: no such directory")
    if args.recompute_metrics and args.root is None:
        parser.error("--recompute-metrics goes with --all")
    if args.recompute_metrics and args.no_metrics:
        parser.error("argument --no-metrics: not with --recompute-metrics")
    if args.lock_timeout is not None and args.lock_timeout < 0:
        parser.error("argument --lock-timeout: must not be negative")
    if args.allow_empty and args.root is None:
        parser.error("argument --allow-empty: goes with --all ROOT")
    if args.target is not None and args.db is not None:
        parser.error("give --db or --target, not both")
    if args.data_path is not None and args.target is None:
        parser.error("argument --data-path: goes with --target")

    from ._errors import LoadError
    from ._loader import load_all, load_experiment

    progress = _ProgressLine(sys.stderr) if sys.stderr.isatty() else None
    summary = LoadSummary()
    try:
        if args.root is not None:
            summary = load_all(
                args.root,
                args.db,
                force=args.force,
                include_chats=not args.no_chats,
                progress=progress,
                lock_timeout=args.lock_timeout,
                target=args.target,
                data_path=args.data_path,
                on_lock_wait=_say_waiting,
                metrics=not args.no_metrics,
            )
        else:
            for index, run in enumerate(args.runs, start=1):
                if progress is not None:
                    progress(index - 1, len(args.runs), f"loading {run}")
                try:
                    part = load_experiment(
                        run,
                        args.db,
                        force=args.force,
                        lock_timeout=args.lock_timeout,
                        target=args.target,
                        data_path=args.data_path,
                        on_lock_wait=_say_waiting,
                        metrics=not args.no_metrics,
                    )
                except LoadError as exc:
                    where = args.db if args.target is None else args.target
                    summary.failed.append(
                        RunOutcome(str(Path(run).absolute()), None, where, str(exc))
                    )
                else:
                    summary.merge(part)
                    summary.seconds += part.seconds
    except KeyboardInterrupt:
        if progress is not None:
            progress.finish()
        print("pidgin-load: interrupted; runs not yet committed were not loaded", file=sys.stderr)
        return 130
    if progress is not None:
        progress.finish()
    if args.recompute_metrics:
        from ._recompute import recompute_all_metrics

        try:
            recomputed = recompute_all_metrics(
                args.root, args.db, include_chats=not args.no_chats, lock_timeout=args.lock_timeout
            )
        except LoadError as exc:
            print(f"pidgin-load: recomputing metrics failed: {exc}", file=sys.stderr)
            return 1
        for db, per_run in recomputed.items():
            print(
                f"metrics recomputed for {len(per_run)} runs "
                f"({sum(per_run.values())} turns) in {db}",
                file=sys.stderr,
            )
    if args.json:
        print(summary.to_json())
    else:
        _print_human(summary)
    if args.root is not None and summary.found_nothing:
        from ._empty_root import empty_root_message

        accepted = "" if args.allow_empty else "; pass --allow-empty if that is expected"
        print(f"warning: {empty_root_message(args.root)}{accepted}", file=sys.stderr)
        return 0 if args.allow_empty else 1
    return 0 if summary.ok else 1


def _print_human(summary: LoadSummary) -> None:
    for outcome in summary.loaded:
        print(f"loaded   {outcome.experiment_id}  {outcome.reason}")
    for outcome in summary.skipped:
        print(f"skipped  {outcome.experiment_id or outcome.run_dir}  {outcome.reason}")
    for outcome in summary.failed:
        print(
            f"FAILED   {outcome.experiment_id or outcome.run_dir}  {outcome.reason}",
            file=sys.stderr,
        )
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(summary)
