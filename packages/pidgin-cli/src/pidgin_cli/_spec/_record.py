"""What ``ExperimentStartEvent.config`` records so that a run can be run again exactly.

Beside pidgin-ai's keys (written by the runner), a run records every option as it used
it (``options``: spec keys, seed resolved), which of them the command line gave, the spec
file as written and its grid cell, the run it was made ``--like``, the models as the
catalogue describes them, and Pidgin's version, Python's and the host's name.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from typing import Any

import click

from ._apply import command_line_keys, current_cell, like_source, spec_in_use, spec_option_values
from ._keys import GRID_KEY, spec_keys

__all__ = ["run_record"]

_CATALOGUE_FIELDS = (
    "display_name",
    "context_window",
    "input_per_million",
    "output_per_million",
    "prices_checked",
    "capabilities",
)


def run_record(
    ctx: click.Context,
    *,
    resolved: Mapping[str, Any],
    models: Sequence[str],
    grid: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance entries of the config; ``resolved`` are values decided at run time."""
    from .._main import package_version

    assert ctx.command is not None
    urls = [name for name, key in spec_keys(ctx.command).items() if key.option.metavar == "URL"]
    record: dict[str, Any] = {
        "options": _without_passwords(spec_option_values(ctx, resolved=resolved), urls),
        "command_line": command_line_keys(ctx),
        "models": {name: _model(name) for name in dict.fromkeys(models)},
        "pidgin_version": package_version(),
        "python_version": platform.python_version(),
        "host": platform.node(),
    }
    spec = spec_in_use(ctx)
    if spec is not None:
        given = _without_passwords(spec.given, urls)
        record["spec"] = {"file": str(spec.path), "sha256": spec.sha256, "given": given}
        cell = current_cell(ctx)
        if cell is not None:
            record["spec"]["cell"] = _without_passwords(cell, urls)
    if grid is not None:
        record["grid"] = dict(grid)
    like = like_source(ctx)
    if like is not None:
        record["like"] = like[0]
    return record


def _without_passwords(values: Mapping[str, Any], urls: Sequence[str]) -> dict[str, Any]:
    """``values`` with every URL (options whose metavar is URL) stripped of user:password;
    a grid's lists of URLs too."""
    from .._providers import describe_url

    cleaned = dict(values)
    for name in urls:
        value = cleaned.get(name)
        if isinstance(value, str):
            cleaned[name] = describe_url(value)
    grid = cleaned.get(GRID_KEY)
    if isinstance(grid, dict):
        cleaned[GRID_KEY] = {
            key: [describe_url(item) if isinstance(item, str) else item for item in items]
            if key in urls and isinstance(items, list)
            else items
            for key, items in grid.items()
        }
    return cleaned


def _model(name: str) -> dict[str, Any]:
    """The model as the catalogue knows it: its version is the id after the provider."""
    from .._providers import catalogue

    provider, _, model_id = name.partition(":")
    described: dict[str, Any] = {"provider": provider, "model_id": model_id}
    entry = catalogue().model(name)
    if entry is not None:
        for field in _CATALOGUE_FIELDS:
            value = getattr(entry, field)
            described[field] = list(value) if isinstance(value, tuple) else value
    return described
