"""After ``pidgin run`` (and ``pidgin demo``) started an experiment: follow it to its end,
then report its automatic load into DuckDB."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._output import command_hint, safe_text

if TYPE_CHECKING:
    from ._commands_watch import View

__all__ = ["follow_and_report"]


def follow_and_report(root: Path, experiment_id: str, view: View = "progress") -> int:
    """Follow the experiment to its end, then report its automatic load; the exit status.

    ``view``: as ``pidgin experiment attach`` shows it (``progress``), its conversation as
    a chat (``chat``: ``pidgin run`` of one conversation), or its raw events (``tail``).
    """
    from pidgin_events import EXPERIMENTS_DIR

    from ._background import attach, completion, database_load
    from ._load_wait import wait_for_load

    directory = root / EXPERIMENTS_DIR / experiment_id
    code = attach(root, experiment_id, view)
    say = functools.partial(click.echo, err=view == "tail")  # --tail: stdout is events only
    complete = completion(directory)
    if complete is None:
        return code  # detached: it is still running
    status = command_hint("experiment", "status", experiment_id, root=root)
    try:
        finished = wait_for_load(directory, say)
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
