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
@click.argument("experiment", metavar="ID", shell_complete=complete_run_id)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 3600),
    default=STOP_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the experiment to record its end.",
)
@output_option
@click.pass_context
def stop_command(ctx: click.Context, experiment: str, timeout: float, output: Path | None) -> None:
    """Stop a running experiment: conversations in flight end as interrupted.

    Conversations not started yet are never started, and the experiment is recorded as
    interrupted (it is still loaded into DuckDB afterwards). ID is the id, the name or a
    unique prefix. Exit status 1 if it is not running or did not stop in time.

    \b
    Examples:
      pidgin experiment stop curious-echo
      pidgin stop restless-echo
    """
    from pidgin_events import is_running

    from ._background import completion, runner_pid, signal_runner, wait_until_ended

    root = resolve_output_root(ctx, output)
    directory = _experiment_to_stop(root, experiment)
    experiment_id = directory.name
    running = is_running(directory)
    if running is False:
        ended = completion(directory)
        if ended is not None:
            raise fail(
                f"experiment {experiment_id} is not running: it already ended ({ended.status})."
            )
        raise fail(
            f"experiment {experiment_id} is not running: its writer stopped without completing "
            "it (killed?), so it counts as interrupted."
        )
    pid = signal_runner(directory, signal.SIGTERM)
    if pid is None:
        known = runner_pid(directory)
        raise fail(
            f"experiment {experiment_id} is not written by a runner that pidgin started"
            + ("" if known is None else f" (runner.pid says {known}, which is not it)")
            + "; stop the process writing it."
        )
    shown = safe_text(experiment_id)
    click.echo(f"Stopping {shown} (runner pid {pid})...")
    complete = wait_until_ended(directory, timeout)
    if complete is None:
        raise fail(
            f"sent SIGTERM to runner {pid}, but {experiment_id} has not recorded its end "
            f"within {timeout:g} s. It ends at its conversations' next step; check again "
            f"with '{command_hint('experiment', 'status', experiment_id, root=root)}'."
        )
    click.echo(
        f"Stopped {shown}: {safe_text(complete.status)} ({complete.completed_conversations} "
        f"completed, {complete.interrupted_conversations} interrupted, "
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
