"""``pidgin load-db``: load runs into DuckDB by hand (hidden: loading is automatic).

What it is for: retrying loads that failed (a database held by another process), loading
runs that changed since their load (stale), loading into another database. The work is
pidgin-load's; this module adds IDs, a progress bar and the summary.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._output import (
    fail,
    json_option,
    no_color,
    output_option,
    resolve_output_root,
    safe_text,
    use_rich,
)
from ._resolve import complete_run_id, resolve_run

if TYPE_CHECKING:
    from pidgin_load import LoadSummary

__all__ = ["load_db_command"]

ProgressCallback = Callable[[int, int, str], None]


@click.command("load-db")
@click.argument("run_ids", nargs=-1, metavar="[ID]...", shell_complete=complete_run_id)
@click.option(
    "--all",
    "load_everything",
    is_flag=True,
    help="Every finished run not loaded yet, whose load failed, or that changed since.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Reload runs already loaded; with IDs, also load a run that is still running.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Load into this database [default: <root>/experiments/experiments.duckdb; "
    "chats: $PIDGIN_CHATS_DB or ~/.pidgin/chats.duckdb].",
)
@click.option(
    "--target",
    metavar="SPEC",
    default=None,
    help='Load into a DuckLake instead: ducklake:postgres:"dbname=... host=..." '
    "[default: $PIDGIN_LOAD_TARGET when --db is not given]. Needs pidgin-load[lake].",
)
@click.option(
    "--data-path",
    metavar="PATH",
    default=None,
    help="With --target: where the lake's Parquet files go, a shared directory or s3://... "
    "[default: $PIDGIN_LAKE_DATA_PATH].",
)
@click.option("--no-chats", is_flag=True, help="With --all: experiments only.")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="With --all: exit 0 when the output root holds no run (by default that fails).",
)
@click.option(
    "--no-metrics",
    is_flag=True,
    help="Leave turn_metrics empty (most of a load of long replies); fill them in later "
    "with --all --recompute-metrics.",
)
@click.option(
    "--recompute-metrics",
    is_flag=True,
    help="With --all: then compute turn_metrics again for every run in the databases "
    "(fills in metrics added since a run was loaded).",
)
@json_option
@output_option
@click.pass_context
def load_db_command(
    ctx: click.Context,
    run_ids: tuple[str, ...],
    *,
    load_everything: bool,
    force: bool,
    db_path: Path | None,
    target: str | None,
    data_path: str | None,
    no_chats: bool,
    allow_empty: bool,
    no_metrics: bool,
    recompute_metrics: bool,
    as_json: bool,
    output: Path | None,
) -> None:
    """Load experiments (and chats) into DuckDB. Runs are loaded automatically when they
    finish; use this to retry a failed load, reload a changed run or load elsewhere.

    \b
    Examples:
      pidgin load-db --all
      pidgin load-db greetings exp_0c1d --force
      pidgin load-db --all --db /tmp/copy.duckdb --json
      pidgin load-db --all --target ducklake:postgres:"dbname=lake host=db" --data-path /shared/lake
      pidgin load-db --all --recompute-metrics
      pidgin load-db greetings --force --no-metrics

    Exit status 0 when every run is loaded (or already was), 1 when any failed or
    --all found no run (unless --allow-empty).
    """
    if load_everything and run_ids:
        raise click.UsageError("give IDs or --all, not both")
    if not load_everything and not run_ids:
        raise click.UsageError("give one or more experiment IDs, or --all")
    if no_chats and not load_everything:
        raise click.UsageError("--no-chats goes with --all")
    if allow_empty and not load_everything:
        raise click.UsageError("--allow-empty goes with --all")
    if target is not None and db_path is not None:
        raise click.UsageError("give --db or --target, not both")
    if data_path is not None and target is None:
        raise click.UsageError("--data-path goes with --target")
    lake = (target, data_path)
    if recompute_metrics and not load_everything:
        raise click.UsageError("--recompute-metrics goes with --all")
    if recompute_metrics and no_metrics:
        raise click.UsageError("give --no-metrics or --recompute-metrics, not both")
    root = resolve_output_root(ctx, output)
    # Every ID is resolved before anything loads: a typo in the third one loads nothing.
    directories = list(dict.fromkeys(resolve_run(root, text) for text in run_ids))
    if load_everything and not root.is_dir():
        raise fail(f"output root {root} does not exist or is not a directory")

    try:
        with _progress(enabled=use_rich(sys.stderr)) as progress:
            if load_everything:
                summary = _load_all(
                    root,
                    db_path,
                    force=force,
                    chats=not no_chats,
                    tick=progress,
                    lake=lake,
                    metrics=not no_metrics,
                )
            else:
                summary = _load_some(
                    directories,
                    db_path,
                    force=force,
                    tick=progress,
                    lake=lake,
                    metrics=not no_metrics,
                )
    except KeyboardInterrupt:
        click.echo("Interrupted: runs not yet committed were not loaded.", err=True)
        ctx.exit(1)
    recomputed_ok = True
    if recompute_metrics:
        recomputed_ok = _recompute(root, db_path, chats=not no_chats)
    if as_json:
        click.echo(summary.to_json())
    else:
        _print_summary(summary)
    if load_everything and summary.found_nothing:
        from pidgin_load import empty_root_message

        accepted = "" if allow_empty else "; pass --allow-empty if that is expected"
        click.echo(f"warning: {safe_text(empty_root_message(root))}{accepted}", err=True)
        ctx.exit(0 if allow_empty and recomputed_ok else 1)
    ctx.exit(0 if summary.ok and recomputed_ok else 1)


def _recompute(root: Path, db_path: Path | None, *, chats: bool) -> bool:
    from pidgin_load import LoadError, recompute_all_metrics

    try:
        recomputed = recompute_all_metrics(root, db_path, include_chats=chats)
    except LoadError as exc:
        click.echo(f"recomputing metrics failed: {safe_text(str(exc))}", err=True)
        return False
    for db, per_run in recomputed.items():
        click.echo(
            f"metrics recomputed for {len(per_run)} runs ({sum(per_run.values())} turns) "
            f"in {safe_text(db)}",
            err=True,
        )
    return True


def _load_all(
    root: Path,
    db_path: Path | None,
    *,
    force: bool,
    chats: bool,
    tick: ProgressCallback,
    lake: tuple[str | None, str | None],
    metrics: bool,
) -> LoadSummary:
    from pidgin_load import load_all

    return load_all(
        root,
        db_path,
        force=force,
        include_chats=chats,
        progress=tick,
        target=lake[0],
        data_path=lake[1],
        on_lock_wait=_say_waiting,
        metrics=metrics,
    )


def _load_some(
    directories: list[Path],
    db_path: Path | None,
    *,
    force: bool,
    tick: ProgressCallback,
    lake: tuple[str | None, str | None],
    metrics: bool,
) -> LoadSummary:
    from pidgin_load import LoadError, LoadSummary, RunOutcome, load_experiment

    summary = LoadSummary()
    for done, directory in enumerate(directories, start=1):
        try:
            part = load_experiment(
                directory,
                db_path,
                force=force,
                target=lake[0],
                data_path=lake[1],
                on_lock_wait=_say_waiting,
                metrics=metrics,
            )
        except LoadError as exc:
            where = lake[0] if db_path is None else str(db_path)
            summary.failed.append(RunOutcome(str(directory), directory.name, where, str(exc)))
        else:
            summary.merge(part)
            summary.seconds += part.seconds
        tick(done, len(directories), directory.name)
    return summary


def _say_waiting(message: str) -> None:
    """At once, on stderr: a load waiting for a locked database is not a hung command."""
    click.echo(safe_text(f"waiting: {message}"), err=True)


@contextmanager
def _progress(*, enabled: bool) -> Iterator[ProgressCallback]:
    """A rich progress bar on stderr (stdout stays clean for ``--json``), else nothing."""
    if not enabled:
        yield lambda done, total, label: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ._output import make_console

    bar = Progress(
        TextColumn("loading"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}", markup=False),
        console=make_console(stderr=True),
        transient=True,
    )
    task = bar.add_task("", total=None)

    def tick(done: int, total: int, label: str) -> None:
        # A run directory's name: shown, never read as markup or obeyed as a control code.
        bar.update(task, completed=done, total=total, description=safe_text(label))

    with bar:
        yield tick


def _print_summary(summary: LoadSummary) -> None:
    styled = use_rich() and not no_color()

    def word(text: str, color: str) -> str:
        return click.style(text, fg=color, bold=True) if styled else text

    # Ids, directories and reasons come from the runs' logs and names: shown, never obeyed.
    for outcome in summary.loaded:
        click.echo(
            f"{word('loaded ', 'green')}  {safe_text(outcome.experiment_id)}  "
            f"{safe_text(outcome.reason)}"
        )
    for outcome in summary.skipped:
        click.echo(
            f"{word('skipped', 'blue')}  {safe_text(outcome.experiment_id or outcome.run_dir)}  "
            f"{safe_text(outcome.reason)}"
        )
    for outcome in summary.failed:
        click.echo(
            f"{word('FAILED ', 'red')}  {safe_text(outcome.experiment_id or outcome.run_dir)}  "
            f"{safe_text(outcome.reason)}",
            err=True,
        )
    for warning in summary.warnings:
        click.echo(f"warning: {safe_text(warning)}", err=True)
    click.echo(safe_text(summary, multiline=True))
    if summary.rows:
        rows = ", ".join(f"{table} {count}" for table, count in sorted(summary.rows.items()))
        click.echo(f"rows: {rows}")
