"""``--like EXP_ID``: the options of an earlier run, read from its JSONL start event.

Never from the database: the first line of ``experiment.jsonl`` is the
``ExperimentStartEvent``, whose ``config`` holds every option as the run used it
(``options``, recorded since specs exist). Older runs, and pidgin-ai's key names in the
config, are read through the same alias table as spec files.
"""

from __future__ import annotations

from typing import Any

import click

from ._keys import PIDGIN_AI_ALIASES, expected, spec_keys
from ._load import SpecError, fits

__all__ = ["NOT_CARRIED", "options_of_run"]

NOT_CARRIED = frozenset({"name", "output"})
"""Never taken from the earlier run: a new run gets its own name, in today's output root."""


def options_of_run(ctx: click.Context, text: str) -> tuple[str, dict[str, Any]]:
    """The experiment ``text`` names and its recorded options (spec key -> value)."""
    from pidgin_events import EXPERIMENT_LOG

    from .._output import resolve_output_root
    from .._resolve import first_record, resolve_run

    assert ctx.command is not None
    directory = resolve_run(resolve_output_root(ctx, None), text, kinds=("experiment",))
    log = directory / EXPERIMENT_LOG
    start = first_record(log)
    if start is None or start.get("event_type") != "ExperimentStartEvent":
        raise SpecError(log, "its first line is not an ExperimentStartEvent: nothing to run like")
    config = start.get("config")
    if not isinstance(config, dict):
        raise SpecError(log, "its ExperimentStartEvent has no config")
    recorded = config.get("options")
    if not isinstance(recorded, dict):  # before options were recorded: the named keys
        recorded = {PIDGIN_AI_ALIASES.get(key, key): value for key, value in config.items()}
    keys = spec_keys(ctx.command)
    options: dict[str, Any] = {}
    for name, value in recorded.items():
        if name in NOT_CARRIED or value is None:
            continue
        if name not in keys:
            if "options" in config:  # an option this version of pidgin no longer has
                raise SpecError(
                    log, f"option {name!r} of {directory.name} is unknown to this pidgin"
                )
            continue  # a config entry that is no option (e.g. pidgin_version)
        option = keys[name].option
        if not fits(option, value):
            raise SpecError(
                log, f"option {name!r} of {directory.name}: expected {expected(option)}"
            )
        options[name] = value
    return directory.name, options
