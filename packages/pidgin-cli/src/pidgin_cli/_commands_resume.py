"""``pidgin experiment resume``: go on with an experiment that stopped or died (``_resume``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click

from ._output import command_hint, fail, output_option, resolve_output_root, safe_text
from ._resolve import complete_run_id, resolve_run

__all__ = ["resume_command"]

START_TIMEOUT = 30.0


@click.command("resume", short_help="Go on with a stopped, killed or crashed experiment.")
@click.argument("experiment", metavar="ID", shell_complete=complete_run_id)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Failed conversations go on too (after a provider outage, say).",
)
@click.option("--detach", is_flag=True, help="Return once resumed instead of following it.")
@output_option
@click.pass_context
def resume_command(
    ctx: click.Context, experiment: str, retry_failed: bool, detach: bool, output: Path | None
) -> None:
    """Go on with an experiment that was stopped, killed, crashed or rebooted.

    Each unfinished conversation continues in its own log where it stood: its history is
    rebuilt from its events, a turn left half done is recorded as discarded and run
    again, and its models are sent exactly what they would have been. Conversations that
    never started start; completed ones are left alone, failed ones too unless
    --retry-failed. Refused (exit status 1) while the experiment is still running.

    \b
    Examples:
      pidgin experiment resume night
      pidgin experiment resume night --retry-failed
    """
    from pidgin_events import is_running

    from ._background import LaunchError, launch_experiment, runner_pid
    from ._resume import ResumeError, spec_for_resume, survey
    from ._run_follow import follow_and_report

    root = resolve_output_root(ctx, output)
    directory = resolve_run(root, experiment, kinds=("experiment",))
    experiment_id = directory.name
    if is_running(directory) is not False:
        pid = runner_pid(directory)
        stop = command_hint("experiment", "stop", experiment_id, root=root)
        raise fail(
            f"experiment {experiment_id} is still running"
            + ("" if pid is None else f" (runner pid {pid})")
            + f": its run lock is held. Stop it first with '{stop}', or let it finish."
        )
    try:
        spec = spec_for_resume(root, directory, retry_failed=retry_failed)
    except (ResumeError, OSError) as exc:
        raise fail(f"cannot resume {experiment_id}: {exc}") from None
    found = survey(directory, spec)
    if not found.resume and not found.never_started:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(found.untouched.items()))
        hint = (
            " (--retry-failed runs the failed ones again)" if found.untouched.get("failed") else ""
        )
        click.echo(f"Nothing to resume in {safe_text(experiment_id)}: {counts}{hint}.")
        return
    try:
        launched = launch_experiment(spec)
        _wait_until_resumed(directory, launched.pid, launched.process.poll)
    except (LaunchError, OSError) as exc:
        raise fail(f"could not resume experiment {experiment_id}: {exc}") from None
    click.echo(
        f"Resumed experiment {safe_text(experiment_id)} ({safe_text(spec.name)}): "
        f"{len(found.resume)} to go on"
        + (f" ({len(found.retried)} failed, retried)" if found.retried else "")
        + f", {len(found.never_started)} not started yet, "
        f"{sum(found.untouched.values())} left as they ended\n"
        f"  follow     {command_hint('experiment', 'attach', spec.name, root=root)}\n"
        f"  stop       {command_hint('experiment', 'stop', spec.name, root=root)}"
    )
    if detach:
        return
    ctx.exit(follow_and_report(root, experiment_id))


def _wait_until_resumed(directory: Path, pid: int, poll: Callable[[], int | None]) -> None:
    """Until the runner has recorded the resume (it writes ``runner.pid`` right after)."""
    from ._background import LaunchError, runner_pid

    deadline = time.monotonic() + START_TIMEOUT
    while runner_pid(directory) != pid:
        code = poll()
        if code is not None:
            log = directory / "runner.log"
            raise LaunchError(f"the runner exited with status {code}; see {log}")
        if time.monotonic() > deadline:
            raise LaunchError(f"the runner did not resume within {START_TIMEOUT:g} s")
        time.sleep(0.02)
