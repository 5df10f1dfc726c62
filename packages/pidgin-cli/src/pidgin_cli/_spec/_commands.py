"""``pidgin spec``: the JSON Schema of spec files, checking one, and an example.

All three read the keys from ``pidgin run`` itself, so they describe exactly the
options of the installed version.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._apply import conversation_keys, unknown_models
from ._keys import GRID_MODES, spec_keys
from ._load import load_spec
from ._schema import spec_schema_text

__all__ = ["spec_group"]

EXAMPLE = "example.yaml"


def _run() -> tuple[click.Command, list[str]]:
    from .._commands_run import _plan, run_command

    return run_command, conversation_keys(run_command, _plan)


@click.group("spec", short_help="Experiment spec files: schema, check, example.")
def spec_group() -> None:
    """Experiments as files: 'pidgin run SPEC.yaml' runs one.

    A spec is a YAML mapping whose keys are the long options of 'pidgin run' (with '_'
    for '-'), pidgin-ai's names included, plus 'grid' and 'grid_mode'.
    """


@spec_group.command("schema")
def schema_command() -> None:
    """Print the JSON Schema (draft 2020-12) of spec files.

    \b
    Example:
      pidgin spec schema > spec.schema.json
    """
    command, per_conversation = _run()
    click.echo(spec_schema_text(spec_keys(command), per_conversation), nl=False)


@spec_group.command("check")
@click.argument("spec_file", metavar="SPEC.yaml", type=click.Path(path_type=Path))
@click.pass_context
def check_command(ctx: click.Context, spec_file: Path) -> None:
    """Check a spec without running it: exit status 2 and every problem, each with its line.

    \b
    Example:
      pidgin spec example > study.yaml && pidgin spec check study.yaml
    """
    from pidgin_events import plural

    command, per_conversation = _run()
    keys = spec_keys(command)
    run_ctx = click.Context(command, info_name="run", parent=ctx)
    spec = load_spec(
        spec_file,
        keys,
        run_ctx,
        per_conversation=per_conversation,
        checks=[lambda spec: unknown_models(spec, keys)],
    )
    cells = spec.cells()
    repetitions = int(spec.values.get("repetitions", keys["repetitions"].default or 1))
    if not spec.grid:
        shape = f"one experiment of {plural(repetitions, 'conversation')}"
    elif spec.grid_mode == GRID_MODES[0]:
        shape = (
            f"{plural(len(cells), 'experiment')} (one per grid cell) of "
            f"{plural(repetitions, 'conversation')} each"
        )
    else:
        shape = (
            f"one experiment of {plural(len(cells) * repetitions, 'conversation')} "
            f"({plural(len(cells), 'grid cell')} x {repetitions})"
        )
    click.echo(f"{spec_file}: valid: {shape}.")
    given = set(spec.values) | set(spec.grid)
    missing = [
        keys[name].flag for name in sorted(keys) if keys[name].option.required and name not in given
    ]
    if missing:
        click.echo(f"Not set in the file, so to be given when running: {', '.join(missing)}.")


@spec_group.command("example")
def example_command() -> None:
    """Print a commented example spec (a grid of local models that runs offline).

    \b
    Example:
      pidgin spec example > study.yaml && pidgin run study.yaml -t 2
    """
    from importlib.resources import files

    example = files(__package__ or "pidgin_cli._spec").joinpath(EXAMPLE)
    click.echo(example.read_text("utf-8"), nl=False)
