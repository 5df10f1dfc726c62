"""``pidgin experiment stop`` (and ``pidgin stop``, as pidgin-ai users type it).

It ends a running experiment cleanly, its conversations in flight recorded as
``interrupted``.
"""

from __future__ import annotations

import signal
from pathlib import Path

import click

from ._output import command_hint, fail, output_option, resolve_output_root, safe_text
from ._resolve import complete_run_id, resolve_run

__all__ = ["stop_command"]

STOP_TIMEOUT = 10.0


@click.command("stop", short_help="Stop a running experiment cleanly.")
@click.argument("experiment", metavar="[ID]", required=False, shell_complete=complete_run_id)
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Stop every experiment running under the output root (as pidgin-ai's stop --all).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 3600),
    default=STOP_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the experiment to record its end.",
)
@output_option
@click.pass_context
def stop_command(
    ctx: click.Context, experiment: str | None, every: bool, timeout: float, output: Path | None
) -> None:
    """Stop a running experiment: conversations in flight end as interrupted.

    Conversations not started yet are never started, and the experiment is recorded as
    interrupted (it is still loaded into DuckDB afterwards). ID is the id, the name or a
    unique prefix; --all stops every experiment running under the output root. Exit
    status 1 if it is not running or did not stop in time (with --all: if any did not).

    \b
    Examples:
      pidgin experiment stop curious-echo
      pidgin stop restless-echo
      pidgin stop --all
    """
    if every == (experiment is not None):
        raise click.UsageError("give the ID of one experiment, or --all")
    root = resolve_output_root(ctx, output)
    if every:
        _stop_every(root, timeout)
        return
    directory = _experiment_to_stop(root, experiment or "")
    _refuse_unless_running(directory)
    pid = _signal(directory)
    click.echo(f"Stopping {safe_text(directory.name)} (runner pid {pid})...")
    _report_end(root, directory, pid, timeout)


def _stop_every(root: Path, timeout: float) -> None:
    """Signal every running experiment at once, then wait for each to record its end."""
    import time

    from pidgin_events import is_running

    from ._resolve import scan_runs

    running = [
        ref.directory for ref in scan_runs(root, ("experiment",)) if is_running(ref.directory)
    ]
    if not running:
        click.echo(f"No experiment is running under {safe_text(str(root))}.")
        return
    stopping: list[tuple[Path, int]] = []
    problems: list[str] = []
    for directory in running:
        try:
            pid = _signal(directory)
        except click.ClickException as exc:
            problems.append(exc.format_message())
            continue
        click.echo(f"Stopping {safe_text(directory.name)} (runner pid {pid})...")
        stopping.append((directory, pid))
    deadline = time.monotonic() + timeout  # one wait for all: they stop side by side
    for directory, pid in stopping:
        try:
            _report_end(root, directory, pid, max(0.1, deadline - time.monotonic()))
        except click.ClickException as exc:
            problems.append(exc.format_message())
    if problems:
        raise fail("\n".join(problems))


def _refuse_unless_running(directory: Path) -> None:
    from pidgin_events import is_running

    from ._background import completion

    experiment_id = directory.name
    if is_running(directory) is not False:
        return
    ended = completion(directory)
    if ended is not None:
        raise fail(f"experiment {experiment_id} is not running: it already ended ({ended.status}).")
    raise fail(
        f"experiment {experiment_id} is not running: its writer stopped without completing "
        "it (killed?), so it counts as interrupted."
    )


def _signal(directory: Path) -> int:
    """Ask the runner writing ``directory`` to stop (SIGTERM); its pid."""
    from ._background import runner_pid, signal_runner

    pid = signal_runner(directory, signal.SIGTERM)
    if pid is None:
        known = runner_pid(directory)
        raise fail(
            f"experiment {directory.name} is not written by a runner that pidgin started"
            + ("" if known is None else f" (runner.pid says {known}, which is not it)")
            + "; stop the process writing it."
        )
    return pid


def _report_end(root: Path, directory: Path, pid: int, timeout: float) -> None:
    from ._background import wait_until_ended

    experiment_id = directory.name
    complete = wait_until_ended(directory, timeout)
    if complete is None:
        raise fail(
            f"sent SIGTERM to runner {pid}, but {experiment_id} has not recorded its end "
            f"within {timeout:g} s. It ends at its conversations' next step; check again "
            f"with '{command_hint('experiment', 'status', experiment_id, root=root)}'."
        )
    click.echo(
        f"Stopped {safe_text(experiment_id)}: {safe_text(complete.status)} "
        f"({complete.completed_conversations} completed, "
        f"{complete.interrupted_conversations} interrupted, "
        f"{complete.failed_conversations} failed)."
    )


def _experiment_to_stop(root: Path, text: str) -> Path:
    """The experiment ``text`` names; a chat is refused with how chats stop (Ctrl-C)."""
    try:
        return resolve_run(root, text, kinds=("experiment",))
    except click.UsageError:
        raise
    except click.ClickException:
        try:
            chat = resolve_run(root, text, kinds=("chat",))
        except click.ClickException:
            chat = None
        if chat is None:
            raise
    raise fail(
        f"{chat.name} is a chat, not an experiment: a chat runs in the foreground of the "
        "'pidgin chat' that started it, and stops with Ctrl-C in that terminal "
        "(it is recorded as interrupted)."
    )
