"""How a spec and ``--like`` reach ``pidgin run``: as the command's defaults.

Both are eager parameters (processed before every option) that fill the context's
``default_map``. Click then treats their values as it treats the options' own defaults:
converted by the option's type and callback, and overridden by whatever the command line
says. Layers, lowest first: the option's default, the run named by ``--like``, the spec,
the command line. Neither parameter reaches the command's function (``expose_value``
is off), so ``pidgin run``'s signature stays that of its options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ._keys import SpecKey, spec_keys
from ._load import Spec, SpecError, load_spec

__all__ = [
    "command_line_keys",
    "conversation_keys",
    "current_cell",
    "grid_cells",
    "like_option",
    "like_source",
    "run_cell",
    "spec_argument",
    "spec_in_use",
    "spec_option_values",
    "unknown_models",
]

F = TypeVar("F", bound=Callable[..., Any])

_SPEC = "pidgin.spec"
_LIKE = "pidgin.like"
_CELL = "pidgin.spec.cell"
_COMMAND_LINE = "pidgin.spec.command_line"
_BASE_DEFAULTS = "pidgin.spec.base_defaults"
EXPERIMENT_WIDE = frozenset({"base_url"})
"""Arguments of the plan builder that one runner applies to all its conversations."""


def conversation_keys(command: click.Command, plan_builder: Callable[..., Any]) -> list[str]:
    """The spec keys one conversation's plan is built from: a conversations grid varies these."""
    wanted = set(inspect.signature(plan_builder).parameters) - EXPERIMENT_WIDE
    return sorted(name for name, key in spec_keys(command).items() if key.param_name in wanted)


def spec_argument(plan_builder: Callable[..., Any]) -> Callable[[F], F]:
    """The optional ``SPEC.yaml`` argument of ``pidgin run``."""

    def load(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
        if value is None or ctx.resilient_parsing:
            return
        assert ctx.command is not None
        keys = spec_keys(ctx.command)
        spec = load_spec(
            value,
            keys,
            ctx,
            per_conversation=conversation_keys(ctx.command, plan_builder),
            checks=[lambda spec: unknown_models(spec, keys)],
        )
        ctx.meta[_SPEC] = spec
        _fill_defaults(ctx)

    return click.argument(
        "spec_file",
        required=False,
        metavar="[SPEC.yaml]",
        type=click.Path(dir_okay=False, path_type=Path),
        is_eager=True,
        expose_value=False,
        callback=load,
    )


def unknown_models(spec: Spec, keys: Mapping[str, SpecKey]) -> list[SpecError]:
    """A problem for each model the spec names (options whose metavar is MODEL) that is
    not known."""
    from .._models import MODELS, UnknownModelError

    problems = []
    for name, key in keys.items():
        if key.option.metavar != "MODEL":
            continue
        given: list[tuple[int | None, Any]] = []
        if name in spec.values:
            given.append((None, spec.values[name]))
        given += list(enumerate(spec.grid.get(name, [])))
        for index, model in given:
            try:
                MODELS.resolve(model)
            except UnknownModelError as exc:
                problems.append(spec.error(name, f"key {name!r}: {exc}", index))
    return problems


def like_option(function: F) -> F:
    """``--like EXP_ID``: the options of an earlier run, read from its start event."""

    def like(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is None or ctx.resilient_parsing:
            return
        from ._like import options_of_run

        ctx.meta[_LIKE] = options_of_run(ctx, value)
        _fill_defaults(ctx)

    return click.option(
        "--like",
        metavar="EXP_ID",
        is_eager=True,
        expose_value=False,
        callback=like,
        help="Run again with the options recorded in experiment EXP_ID's start event "
        "(its seed and grid included); other options given override them. EXP_ID is "
        "looked up under 'pidgin -o DIR' or $PIDGIN_OUTPUT.",
    )(function)


def spec_in_use(ctx: click.Context) -> Spec | None:
    """The spec file given, else the grid of the run ``--like`` names (if it had one)."""
    spec = ctx.meta.get(_SPEC)
    if isinstance(spec, Spec):
        return spec
    like = like_source(ctx)
    return like[2] if like is not None else None


def like_source(ctx: click.Context) -> tuple[str, dict[str, Any], Spec | None] | None:
    """The experiment ``--like`` named, the options read from it, and its grid."""
    like = ctx.meta.get(_LIKE)
    return like if isinstance(like, tuple) else None


def current_cell(ctx: click.Context) -> dict[str, Any] | None:
    cell = ctx.meta.get(_CELL)
    return cell if isinstance(cell, dict) else None


def grid_cells(ctx: click.Context) -> tuple[str, list[dict[str, Any]]] | None:
    """The grid mode and its cells as the command's keyword values; None without a grid.

    A key the grid varies cannot also be given on the command line (exit status 2).
    """
    spec = spec_in_use(ctx)
    if spec is None or not spec.grid or current_cell(ctx) is not None:
        return None
    assert ctx.command is not None
    keys = spec_keys(ctx.command)
    for name in spec.grid:
        if ctx.get_parameter_source(keys[name].param_name) is ParameterSource.COMMANDLINE:
            raise SpecError(
                spec.path,
                f"grid key {name!r} is varied by the spec; it cannot also be given on the "
                f"command line ({keys[name].flag})",
            )
    cells = [
        {keys[name].param_name: _processed(ctx, keys[name], value) for name, value in cell.items()}
        for cell in spec.cells()
    ]
    return spec.grid_mode, cells


def run_cell(ctx: click.Context, cell: Mapping[str, Any], command_line: list[str]) -> None:
    """Mark that the command now runs one grid cell (experiments mode), and what the
    command line gave (the cell's own context, made by ``invoke``, does not know)."""
    ctx.meta[_CELL] = dict(cell)
    ctx.meta[_COMMAND_LINE] = list(command_line)


def _processed(ctx: click.Context, key: SpecKey, value: Any) -> Any:
    return key.option.process_value(ctx, list(value) if key.option.multiple else value)


def _fill_defaults(ctx: click.Context) -> None:
    """The merged default values: ``--like``'s, then the spec's, then the first grid cell's."""
    assert ctx.command is not None
    keys = spec_keys(ctx.command)
    if _BASE_DEFAULTS not in ctx.meta:  # whichever of --like and SPEC comes first
        ctx.meta[_BASE_DEFAULTS] = dict(ctx.default_map or {})
    defaults: dict[str, Any] = dict(ctx.meta[_BASE_DEFAULTS])
    like = like_source(ctx)
    if like is not None:
        for name, value in like[1].items():
            if name in keys:
                defaults[keys[name].param_name] = value
    spec = spec_in_use(ctx)
    if spec is not None:
        first = spec.cells()[0] if spec.grid else {}
        for name, value in {**spec.values, **first}.items():
            defaults[keys[name].param_name] = value
    ctx.default_map = defaults


def spec_option_values(
    ctx: click.Context, *, resolved: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every spec key with the value this run uses, in the spec's own form (JSON-able)."""
    assert ctx.command is not None
    values: dict[str, Any] = {}
    for name, key in spec_keys(ctx.command).items():
        value = ctx.params.get(key.param_name)
        if resolved is not None and key.param_name in resolved:
            value = resolved[key.param_name]
        values[name] = _spec_form(key, value)
    return values


def command_line_keys(ctx: click.Context) -> list[str]:
    """The spec keys given on the command line (they override spec and ``--like``)."""
    given = ctx.meta.get(_COMMAND_LINE)
    if isinstance(given, list):
        return given
    assert ctx.command is not None
    return sorted(
        name
        for name, key in spec_keys(ctx.command).items()
        if ctx.get_parameter_source(key.param_name) is ParameterSource.COMMANDLINE
    )


def _limits_as_written(limits: Mapping[str, Mapping[str, int]]) -> list[str]:
    """``--limit``'s parsed mapping back as the ``PROVIDER.KEY=N`` strings it came from."""
    from .._run_options import LIMIT_KEYS

    short = {long: key for key, long in LIMIT_KEYS.items()}
    return [
        f"{provider}.{short[name]}={number}"
        for provider, settings in limits.items()
        for name, number in settings.items()
    ]


SPEC_FORMS: Mapping[str, Callable[[Any], Any]] = {"provider_limits": _limits_as_written}
"""Options whose callback changes the value's shape, and how to write the value back."""


def _spec_form(key: SpecKey, value: Any) -> Any:
    if key.param_name in SPEC_FORMS and value is not None:
        return SPEC_FORMS[key.param_name](value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_spec_form(key, item) for item in value]
    return value
