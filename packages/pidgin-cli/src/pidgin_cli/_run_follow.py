"""After ``pidgin run`` (and ``pidgin demo``) started an experiment: follow it to its end,
then report its automatic load into DuckDB."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._output import command_hint, safe_text

if TYPE_CHECKING:
    from ._commands_watch import View

__all__ = ["follow_and_report"]

LOAD_WAIT = 60.0
"""How long ``run`` waits, after the experiment completed, for the automatic load."""
LOAD_NOTICE = 0.5
"""After this many seconds without the load's end, ``run`` says what it is waiting for."""


def follow_and_report(root: Path, experiment_id: str, view: View = "progress") -> int:
    """Follow the experiment to its end, then report its automatic load; the exit status.

    ``view``: as ``pidgin experiment attach`` shows it (``progress``), its conversation as
    a chat (``chat``: ``pidgin run`` of one conversation), or its raw events (``tail``).
    """
    from pidgin_events import EXPERIMENTS_DIR

    from ._background import attach, completion, database_load

    directory = root / EXPERIMENTS_DIR / experiment_id
    code = attach(root, experiment_id, view)
    say = functools.partial(click.echo, err=view == "tail")  # --tail: stdout is events only
    complete = completion(directory)
    if complete is None:
        return code  # detached: it is still running
    status = command_hint("experiment", "status", experiment_id, root=root)
    try:
        finished = _wait_for_load(directory, say)
    except KeyboardInterrupt:
        say(f"Not waiting for the database load; '{status}' will tell.")
        return code
    load = database_load(directory)
    if not finished:
        say(f"The database load is still running; '{status}' will tell.")
    elif load is not None and load.status == "loaded":
        say(f"Loaded into DuckDB: {safe_text(load.db_path)}")
    else:
        reason = load.error if load is not None else "see runner.log"
        load_one = command_hint("load-db", experiment_id, root=root)
        load_all = command_hint("load-db", "--all", root=root)
        say(
            f"Not loaded into DuckDB: {safe_text(reason)}\n"
            f"  The experiment itself is {safe_text(complete.status)}; load it later with "
            f"'{safe_text(load_one)}' or '{safe_text(load_all)}'."
        )
    return code


def _wait_for_load(directory: Path, say: Callable[[str], None]) -> bool:
    """Wait for the runner's automatic load to end, saying at once what it waits for.

    The runner logs a wait for a database another process holds the moment it begins
    (``LOCK_WAIT_LOG``); that line is repeated here as soon as it appears. A load still
    going after ``LOAD_NOTICE`` seconds without such a line is said to be running.
    """
    from ._background import wait_until_loaded

    def loaded() -> bool:  # the runner's post-processing (its load) recorded as complete
        return wait_until_loaded(directory, 0.0)

    deadline = time.monotonic() + LOAD_WAIT
    notice = time.monotonic() + LOAD_NOTICE
    said_running = said_lock = False
    while True:
        finished = loaded()
        if not said_lock:
            reason = _lock_wait(directory)  # read after the event: a wait it ended is still told
            if reason is not None:
                say(safe_text(f"Waiting for the automatic load into DuckDB: {reason}."))
                said_lock = True
        if finished or time.monotonic() >= deadline:
            return finished
        if not (said_running or said_lock) and time.monotonic() >= notice:
            say("Waiting for the automatic load into DuckDB (Ctrl-C stops waiting here).")
            said_running = True
        time.sleep(0.1)


def _lock_wait(directory: Path) -> str | None:
    """The runner log's line about waiting for a locked database, if it wrote one."""
    from ._runner import LOCK_WAIT_LOG, RUNNER_LOG

    try:
        with open(directory / RUNNER_LOG, "rb") as stream:
            stream.seek(max(0, stream.seek(0, 2) - 16384))  # the last lines are enough
            tail = stream.read().decode("utf-8", "replace")
    except OSError:
        return None
    waits = [line for line in tail.splitlines() if LOCK_WAIT_LOG in line]
    return waits[-1].split(LOCK_WAIT_LOG, 1)[1] if waits else None
