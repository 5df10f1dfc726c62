"""Waiting, after a followed run ended, for its automatic load into DuckDB.

``pidgin run`` follows an experiment to its end and then says how its load went; a load
that waits for a database another process holds is told at once (the runner logs it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click

from ._background import wait_until_loaded
from ._output import safe_text
from ._runner import LOCK_WAIT_LOG, RUNNER_LOG

__all__ = ["LOAD_NOTICE", "LOAD_WAIT", "lock_wait", "wait_for_load"]

LOAD_WAIT = 60.0
"""How long ``run`` waits, after the experiment completed, for the automatic load."""
LOAD_NOTICE = 0.5
"""After this many seconds without the load's end, ``run`` says what it is waiting for."""


def wait_for_load(directory: Path, say: Callable[[str], None] = click.echo) -> bool:
    """Wait for the runner's automatic load to end, saying at once what it waits for.

    The runner logs a wait for a database another process holds the moment it begins
    (``LOCK_WAIT_LOG``); that line is repeated here as soon as it appears. A load still
    going after ``LOAD_NOTICE`` seconds without such a line is said to be running.
    ``say`` prints it (``pidgin run --tail`` keeps standard output for the events).
    """

    def loaded() -> bool:  # the runner's post-processing (its load) recorded as complete
        return wait_until_loaded(directory, 0.0)

    deadline = time.monotonic() + LOAD_WAIT
    notice = time.monotonic() + LOAD_NOTICE
    said_running = said_lock = False
    while True:
        finished = loaded()
        if not said_lock:
            reason = lock_wait(directory)  # read after the event: a wait it ended is still told
            if reason is not None:
                say(safe_text(f"Waiting for the automatic load into DuckDB: {reason}."))
                said_lock = True
        if finished or time.monotonic() >= deadline:
            return finished
        if not (said_running or said_lock) and time.monotonic() >= notice:
            say("Waiting for the automatic load into DuckDB (Ctrl-C stops waiting here).")
            said_running = True
        time.sleep(0.1)


def lock_wait(directory: Path) -> str | None:
    """The runner log's line about waiting for a locked database, if it wrote one."""
    try:
        with open(directory / RUNNER_LOG, "rb") as stream:
            stream.seek(max(0, stream.seek(0, 2) - 16384))  # the last lines are enough
            tail = stream.read().decode("utf-8", "replace")
    except OSError:
        return None
    waits = [line for line in tail.splitlines() if LOCK_WAIT_LOG in line]
    return waits[-1].split(LOCK_WAIT_LOG, 1)[1] if waits else None
