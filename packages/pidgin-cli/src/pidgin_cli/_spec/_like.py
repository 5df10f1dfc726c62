"""``--like EXP_ID``: the options of an earlier run, read from its JSONL start event.

Never from the database: the first line of ``experiment.jsonl`` is the
``ExperimentStartEvent``, whose ``config`` holds every option as the run used it
(``options``, recorded since specs exist). Older runs, and pidgin-ai's key names in the
config, are read through the same alias table as spec files; so is a pidgin-ai 1.x
experiment's ``manifest.json`` (it has no ``experiment.jsonl``), whose ``config`` is
the same dictionary.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ._keys import GRID_MODES, PIDGIN_AI_ALIASES, expected, spec_keys
from ._load import Spec, SpecError, fits

__all__ = ["NOT_CARRIED", "options_of_run"]

NOT_CARRIED = frozenset({"name", "output"})
"""Never taken from the earlier run: a new run gets its own name, in today's output root."""


def options_of_run(ctx: click.Context, text: str) -> tuple[str, dict[str, Any], Spec | None]:
    """The experiment ``text`` names, its recorded options (spec key -> value), and its
    grid as a spec when it was one experiment of a grid's conversations."""
    from pidgin_events import EXPERIMENT_LOG, MANIFEST

    from .._output import resolve_output_root
    from .._resolve import first_record, resolve_run

    assert ctx.command is not None
    directory = resolve_run(resolve_output_root(ctx, None), text, kinds=("experiment",))
    log = directory / EXPERIMENT_LOG
    if not log.is_file() and (directory / MANIFEST).is_file():
        log, config = _pidgin_ai_config(directory / MANIFEST)
    else:
        start = first_record(log)
        if start is None or start.get("event_type") != "ExperimentStartEvent":
            raise SpecError(
                log, "its first line is not an ExperimentStartEvent: nothing to run like"
            )
        started = start.get("config")
        if not isinstance(started, dict):
            raise SpecError(log, "its ExperimentStartEvent has no config")
        config = started
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
    return directory.name, options, _grid_spec(log, config, keys)


def _pidgin_ai_config(manifest: Path) -> tuple[Path, dict[str, Any]]:
    """A pidgin-ai 1.x experiment's options: its ``manifest.json`` keeps them as ``config``,
    under pidgin-ai's key names (mapped like a start event's). Its keys without a Pidgin
    option (``prompt_tag``, ``display_mode``, ...) are left out, as a spec's are reported."""
    from .._resolve import read_json

    data = read_json(manifest)
    config = data.get("config") if data is not None else None
    if not isinstance(config, dict):
        raise SpecError(manifest, "has no config object (not a pidgin-ai 1.x manifest)")
    parent = config.get("branch_from_conversation")
    if parent is not None:
        raise SpecError(
            manifest,
            f"this pidgin-ai experiment branched conversation {parent!r}; "
            "--like runs whole experiments only (see 'pidgin branch')",
        )
    return manifest, config


def _grid_spec(log: Path, config: Mapping[str, Any], keys: Mapping[str, Any]) -> Spec | None:
    """The recorded grid (``grid_mode: conversations``) as a spec of only that grid."""
    grid = config.get("grid")
    if not isinstance(grid, dict) or grid.get("mode") not in GRID_MODES:
        return None
    cells = grid.get("cells")
    if not isinstance(cells, list) or not cells or not all(isinstance(c, dict) for c in cells):
        raise SpecError(log, "its config's grid has no cells")
    lists: dict[str, list[Any]] = {}
    for cell in cells:  # a cartesian product's lists are its values in order of appearance
        for name, value in cell.items():
            if name not in keys or not fits(keys[name].option, value):
                raise SpecError(log, f"its grid key {name!r} is not an option of this pidgin")
            if value not in lists.setdefault(name, []):
                lists[name].append(value)
    recorded = config.get("spec")
    given = recorded.get("given") if isinstance(recorded, dict) else None
    sha256 = recorded.get("sha256") if isinstance(recorded, dict) else None
    return Spec(
        path=log,
        sha256=sha256 if isinstance(sha256, str) else "",
        given=given if isinstance(given, dict) else {},
        grid=lists,
        grid_mode=str(grid["mode"]),
    )
