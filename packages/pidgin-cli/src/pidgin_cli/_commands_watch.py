"""The watching commands: ``experiment list|status|attach`` and ``monitor``.

All of them read the JSONL logs through pidgin-state and never open DuckDB, so they work
while a run writes and while another process holds the database. The live ones keep one
incremental ``StateBuilder`` for their whole life, so a refresh costs what was appended
since the previous one, not everything ever written.

rich and pidgin-state are imported inside the commands: ``--help`` stays cheap.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from pidgin_events import EXPERIMENTS_DIR, FINISHED_STATUSES, RUN_STATUSES, run_kind_of, utc_now

from ._output import (
    JSON_SCHEMA_VERSION,
    conversation_option,
    echo_json,
    fail,
    json_option,
    make_console,
    output_option,
    resolve_output_root,
    tail_option,
    use_rich,
)
from ._resolve import complete_run_id, resolve_run

if TYPE_CHECKING:
    from pidgin_state import ExperimentState, StateBuilder

    from ._render_attach import AttachDisplay

View = Literal["progress", "chat", "tail"]

__all__ = [
    "View",
    "attach_command",
    "attach_experiment",
    "list_command",
    "monitor_command",
    "status_command",
]

ATTACH_INTERVAL = 0.5
START_GRACE = 10.0
"""Seconds attach waits for a run that has not written its first events yet."""


def _build(path: Path, builder: StateBuilder | None = None) -> ExperimentState:
    """One run's state; a directory that is not a run is a clear failure (exit status 1)."""
    from pidgin_state import NotAnExperimentError, StateBuilder

    try:
        return _refresh(builder or StateBuilder(), path)
    except NotAnExperimentError as exc:
        raise fail(str(exc)) from None


def _refresh(builder: StateBuilder, path: Path) -> ExperimentState:
    """Refresh a run directory: a chat if it sits under ``chats/``, else an experiment."""
    if run_kind_of(path) == "chat":
        return builder.chat(path)
    return builder.experiment(path)


def _all_runs(root: Path, builder: StateBuilder | None = None) -> list[ExperimentState]:
    """Every run under ``root``, newest first; none (not an error) when there is no root."""
    from pidgin_state import StateBuilder

    if not root.exists():
        return []
    if not root.is_dir():
        raise fail(f"output root {root} is not a directory")
    if builder is not None:
        return builder.output_root(root)
    return StateBuilder.from_output_root(root)


# --- experiment list -------------------------------------------------------------------


@click.command("list")
@click.option("--all", "include_chats", is_flag=True, help="Include single chats.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(RUN_STATUSES),
    help="Only runs with this status (repeatable).",
)
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most N runs.")
@json_option
@output_option
@click.pass_context
def list_command(
    ctx: click.Context,
    *,
    include_chats: bool,
    statuses: tuple[str, ...],
    limit: int | None,
    as_json: bool,
    output: Path | None,
) -> None:
    """List experiments, newest first: status, progress, age and whether loaded into DuckDB.

    \b
    Examples:
      pidgin experiment list
      pidgin experiment list --all --status running
      pidgin experiment list --json | jq -r '.experiments[].id'
    """
    from ._render_json import list_document
    from ._render_tables import list_plain, list_rich

    root = resolve_output_root(ctx, output)
    states = [
        state
        for state in _all_runs(root)
        if (include_chats or state.kind == "experiment")
        and (not statuses or state.status in statuses)
    ][:limit]
    now = utc_now()
    if as_json:
        echo_json(list_document(states, str(root), now))
        return
    if not states:
        what = "runs" if include_chats else "experiments"
        click.echo(f"No {what} under {root}.", err=True)
        return
    if use_rich():
        make_console().print(list_rich(states, now))
    else:
        click.echo(list_plain(states, now))


# --- experiment status -----------------------------------------------------------------


@click.command("status")
@click.argument("run_id", metavar="ID", shell_complete=complete_run_id)
@json_option
@output_option
@click.pass_context
def status_command(ctx: click.Context, run_id: str, as_json: bool, output: Path | None) -> None:
    """Show one experiment (or chat) in detail, its conversations included.

    ID is the full id, the name, or a unique prefix of either.

    \b
    Examples:
      pidgin experiment status greetings
      pidgin experiment status greetings --json | jq -c '.experiment.conversations[]'
    """
    from ._render_json import detail_json
    from ._render_tables import detail_plain, detail_rich

    root = resolve_output_root(ctx, output)
    state = _build(resolve_run(root, run_id))
    now = utc_now()
    if as_json:
        echo_json({"schema_version": JSON_SCHEMA_VERSION, "experiment": detail_json(state, now)})
    elif use_rich():
        make_console().print(detail_rich(state, now))
    else:
        click.echo(detail_plain(state, now))


# --- experiment attach -----------------------------------------------------------------


@click.command("attach")
@click.argument("run_id", metavar="ID", shell_complete=complete_run_id)
@conversation_option("Follow this conversation (id or unique prefix) as a chat, reply by reply.")
@tail_option
@output_option
@click.pass_context
def attach_command(
    ctx: click.Context, run_id: str, conversation: str | None, tail: bool, output: Path | None
) -> None:
    """Follow a running experiment live until it ends; Ctrl-C detaches, it keeps running.

    Shows a progress bar and the convergence of every conversation, refreshed twice a
    second; with --conversation, that conversation as a chat (names, turns, convergence,
    the reply growing while it streams) until it ends; with --tail, the raw events as
    they are appended. Exit status: 0 when the experiment (or the conversation followed)
    completed or you detached, 1 when it failed or was interrupted.

    \b
    Examples:
      pidgin experiment attach greetings
      pidgin experiment attach greetings --conversation conv_0c1d2e3f4a5b
      pidgin experiment attach greetings --tail | jq -c 'select(.event_type == "TurnCompleteEvent")'
    """
    root = resolve_output_root(ctx, output)
    directory = resolve_run(root, run_id)
    view: View = "tail" if tail else "chat" if conversation is not None else "progress"
    # The directory exists, so it has to be a run now; no grace for one still being made.
    ctx.exit(_attach(directory, grace=0.0, view=view, conversation=conversation))


def attach_experiment(root: Path, experiment_id: str, view: View = "progress") -> int:
    """Follow ``<root>/experiments/<experiment_id>`` live; the exit status for the caller.

    For ``pidgin run``: it may call this right after starting the background runner,
    before the directory exists; attach waits a few seconds for it to appear. ``view``:
    ``progress`` (every conversation's progress), ``chat`` (its first conversation as a
    chat) or ``tail`` (the raw events).
    """
    from pidgin_events import validate_id

    directory = root / EXPERIMENTS_DIR / validate_id(experiment_id, "experiment id")
    return _attach(directory, view=view)


def _display(view: View, directory: Path, conversation: str | None) -> AttachDisplay:
    from ._render_attach import LiveDisplay, PlainFollower

    if view == "tail":
        from ._tail import TailDisplay

        return TailDisplay(directory, conversation)
    if view == "chat":
        from ._render_chat import ChatDisplay

        return ChatDisplay(conversation, rich=use_rich())
    return LiveDisplay() if use_rich() else PlainFollower()


def _attach(
    directory: Path,
    interval: float = ATTACH_INTERVAL,
    builder: StateBuilder | None = None,
    *,
    grace: float = START_GRACE,
    view: View = "progress",
    conversation: str | None = None,
) -> int:
    from pidgin_state import StateBuilder

    from ._render_attach import detach_message

    if builder is None:
        builder = StateBuilder()  # one for the whole session: each refresh reads what is new
    display = _display(view, directory, conversation)
    started = time.monotonic()
    state: ExperimentState | None = None
    try:
        while True:
            state = _poll(builder, directory, started, grace)
            if state is not None:
                display.update(state)
                if display.done is not None or _ended(state, started, grace):
                    break
            time.sleep(interval)
    except KeyboardInterrupt:
        display.close()
        click.echo(detach_message(directory), err=True)
        return 0
    except BaseException:
        display.close()  # leave the terminal usable before the error is printed
        raise
    display.close()
    display.summary(state)
    outcome = display.done if display.done is not None else state.status
    return 0 if outcome == "completed" else 1


def _poll(
    builder: StateBuilder, directory: Path, started: float, grace: float
) -> ExperimentState | None:
    """The run's state now, or None while a just-started run has nothing on disk yet."""
    from pidgin_state import NotAnExperimentError

    try:
        return _refresh(builder, directory)
    except NotAnExperimentError as exc:
        if time.monotonic() - started < grace:
            return None
        raise fail(str(exc)) from None


def _ended(state: ExperimentState, started: float, grace: float) -> bool:
    if state.status in FINISHED_STATUSES:
        return True
    if state.status == "running":
        return False
    # empty/unknown: a run still setting up, or one that died before writing anything.
    return state.live is not True and time.monotonic() - started >= grace


# --- monitor ---------------------------------------------------------------------------


@click.command("monitor")
@click.option("--once", is_flag=True, help="Print one frame and exit (for scripts).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@json_option
@output_option
@click.pass_context
def monitor_command(
    ctx: click.Context, *, once: bool, interval: float, as_json: bool, output: Path | None
) -> None:
    """A live system-wide view: what is running, recent errors, what finished recently.

    \b
    Examples:
      pidgin monitor
      pidgin monitor --once
      pidgin monitor --once --json | jq '.running[].id'
    """
    if as_json and not once:
        raise click.UsageError("--json needs --once (a live view has no single document)")
    from pidgin_state import StateBuilder

    from ._render_monitor import MonitorFrame

    root = resolve_output_root(ctx, output)
    builder = StateBuilder()
    if once:
        frame = MonitorFrame(_all_runs(root, builder), root)
        if as_json:
            echo_json(frame.to_json())
        elif use_rich():
            make_console().print(frame.rich())
        else:
            click.echo(frame.plain())
        return
    try:
        if use_rich():
            _monitor_live(builder, root, interval)
        else:
            while True:
                frame = MonitorFrame(_all_runs(root, builder), root)
                click.echo(frame.plain() + "\n")
                time.sleep(interval)
    except KeyboardInterrupt:
        return


def _monitor_live(builder: StateBuilder, root: Path, interval: float) -> None:
    from rich.live import Live

    from ._render_monitor import MonitorFrame

    console = make_console()
    with Live(console=console, auto_refresh=False, screen=False) as live:
        while True:
            frame = MonitorFrame(_all_runs(root, builder), root)
            live.update(frame.rich(), refresh=True)
            time.sleep(interval)
