"""Running a spec's grid: each cell its own experiment, or its own conversations.

``grid_mode: experiments`` runs ``pidgin run`` once per cell (each cell an experiment,
started in the background like any other, named NAME-1, NAME-2, ... when the spec names
it). ``grid_mode: conversations`` is one experiment whose conversations are the cells
times ``repetitions``, in cell order, sharing one runner, its pacers and its budget.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import click

from ._apply import command_line_keys, grid_cells, run_cell, spec_in_use
from ._record import run_record

__all__ = ["run_extras", "run_grid"]


def run_grid(ctx: click.Context, command: click.Command) -> bool:
    """Start one experiment per grid cell (``grid_mode: experiments``); False if no such grid."""
    grid = grid_cells(ctx)
    if grid is None or grid[0] != "experiments":
        return False
    spec = spec_in_use(ctx)
    assert spec is not None
    given_on_command_line = command_line_keys(ctx)
    params = dict(ctx.params)
    if params.get("name"):
        _check_names_free(ctx, [f"{params['name']}-{n + 1}" for n in range(len(grid[1]))])
    for index, (cell, written) in enumerate(zip(grid[1], spec.cells(), strict=True)):
        values = {**params, **cell, "detach": True}
        if params.get("name"):
            values["name"] = f"{params['name']}-{index + 1}"
        run_cell(ctx, written, given_on_command_line)
        ctx.invoke(command, **values)
    if not (params.get("quiet") or params.get("detach")):
        click.echo(
            f"Started {len(grid[1])} experiments, one per cell of the grid of {spec.path}; "
            "'pidgin monitor' follows them all."
        )
    return True


def _check_names_free(ctx: click.Context, names: list[str]) -> None:
    """Every cell's name is free before the first cell starts: no grid half started."""
    from .._output import resolve_output_root
    from .._resolve import scan_runs

    root = resolve_output_root(ctx, ctx.params.get("output"))
    taken = {ref.name for ref in scan_runs(root, ("experiment",))}
    used = [name for name in names if name in taken]
    if used:
        raise click.BadParameter(
            f"the grid's experiments are named {names[0]} to {names[-1]}, and "
            f"{', '.join(used)} {'is' if len(used) == 1 else 'are'} already used; "
            "choose another name",
            param_hint="'-n' / '--name'",
        )


def run_extras(ctx: click.Context, plan: Any, plan_builder: Callable[..., Any]) -> dict[str, Any]:
    """``ExperimentSpec`` arguments: the record of this run and its cells' plans, if any."""
    grid = grid_cells(ctx)  # here only grid_mode: conversations (or no grid)
    cell_plans: list[dict[str, Any]] = []
    grid_record = None
    if grid is not None:
        spec = spec_in_use(ctx)
        assert spec is not None
        wanted = inspect.signature(plan_builder).parameters
        base = {name: value for name, value in ctx.params.items() if name in wanted}
        cell_plans = [asdict(plan_builder(**{**base, **cell})) for cell in grid[1]]
        grid_record = {"mode": grid[0], "cells": spec.cells()}
    models = [plan.agent_a, plan.agent_b]
    for cell_plan in cell_plans:
        models += [cell_plan["agent_a"], cell_plan["agent_b"]]
    record = run_record(ctx, resolved={"seed": plan.seed}, models=models, grid=grid_record)
    return {"record": record, "cell_plans": cell_plans}
