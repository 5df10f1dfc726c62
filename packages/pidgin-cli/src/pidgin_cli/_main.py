"""The ``pidgin`` command group: cheap to start, every subcommand imported on demand.

Only click is imported here. rich, DuckDB, pidgin-state and pidgin-load are imported by
the modules of the commands that use them, so ``pidgin --help`` (and shell completion)
never pays for them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ._lazy import LazyCommand, LazyGroup
from ._output import OUTPUT_META_KEY

__all__ = ["cli", "main"]

_RUN = "pidgin_cli._commands_run"
_WATCH = "pidgin_cli._commands_watch"

ROOT_COMMANDS = {
    "run": LazyCommand(f"{_RUN}:run_command", "Run a conversation or an experiment."),
    "chat": LazyCommand(
        "pidgin_cli._commands_chat:chat_command", "Chat between two agents in the foreground."
    ),
    "branch": LazyCommand(
        "pidgin_cli._commands_branch:branch_command",
        "Branch a conversation at a turn and go on differently.",
    ),
    "demo": LazyCommand("pidgin_cli._demo:demo_command", "Run a demo experiment end to end."),
    "models": LazyCommand(
        "pidgin_cli._commands_models:models_command",
        "List models and which providers are usable now.",
    ),
    "monitor": LazyCommand(
        f"{_WATCH}:monitor_command", "Live system-wide view: running, errors, finished."
    ),
    "query": LazyCommand(
        "pidgin_cli._commands_analysis:query_command",
        "SQL over every run, running ones included, straight from the logs.",
    ),
    "export": LazyCommand(
        "pidgin_cli._commands_analysis:export_command",
        "Export loaded experiments as Hive-partitioned Parquet or CSV.",
    ),
    "transcript": LazyCommand(
        "pidgin_cli._commands_transcript:transcript_command",
        "Print what was said, as Markdown, one HTML file or JSON.",
    ),
    "stop": LazyCommand(
        "pidgin_cli._commands_stop:stop_command",
        "Stop a running experiment cleanly (as 'experiment stop').",
    ),
    "report": LazyCommand(
        "pidgin_cli._commands_report:report_command",
        "Write a self-contained HTML report of an experiment.",
    ),
    "serve": LazyCommand(
        "pidgin_cli._serve._command:serve_command",
        "Web view and GraphQL API of the output root (extra: serve).",
    ),
    "spec": LazyCommand(
        "pidgin_cli._spec._commands:spec_group",
        "Experiment spec files: JSON Schema, check, example.",
    ),
    "load-db": LazyCommand(
        "pidgin_cli._commands_load:load_db_command",
        "Load experiments into DuckDB (automatic after a run).",
    ),
    "import": LazyCommand(  # pidgin-ai's name for it
        "pidgin_cli._commands_load:load_db_command",
        "Load experiments into DuckDB (as 'load-db').",
        hidden=True,
    ),
}

EXPERIMENT_COMMANDS = {
    "list": LazyCommand(f"{_WATCH}:list_command", "List experiments, newest first."),
    "status": LazyCommand(f"{_WATCH}:status_command", "Show one experiment in detail."),
    "attach": LazyCommand(f"{_WATCH}:attach_command", "Follow a running experiment live."),
    "stop": LazyCommand(
        "pidgin_cli._commands_stop:stop_command", "Stop a running experiment cleanly."
    ),
    "resume": LazyCommand(
        "pidgin_cli._commands_resume:resume_command",
        "Go on with a stopped, killed or crashed experiment.",
    ),
}


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"pidgin {package_version()}")
    ctx.exit()


def package_version() -> str:
    """The installed version of pidgin-cli; from the source tree when it is not installed.

    Running from a checkout with only ``PYTHONPATH`` set has no distribution metadata, and
    ``--version`` must still tell the truth rather than fail.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pidgin-cli")
    except PackageNotFoundError:
        pass
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        with pyproject.open("rb") as stream:
            project = tomllib.load(stream).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return "unknown (not installed)"
    if project.get("name") == "pidgin-cli" and isinstance(project.get("version"), str):
        return str(project["version"])
    return "unknown (not installed)"


def _remember_output(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[OUTPUT_META_KEY] = value


@click.group(
    cls=LazyGroup,
    lazy_subcommands=ROOT_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Run 'pidgin COMMAND --help' for the options of a command.",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the version and exit.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    expose_value=False,
    is_eager=True,
    callback=_remember_output,
    help="Output root for every command [default: $PIDGIN_OUTPUT or ./pidgin_output].",
)
def cli() -> None:
    """Run conversations between AI agents, watch them live, analyse them in DuckDB.

    Everything a run does is written to append-only JSONL logs under the output root;
    the watching commands read those logs, never the database.
    """


@cli.group(
    cls=LazyGroup,
    lazy_subcommands=EXPERIMENT_COMMANDS,
    short_help="List, inspect, follow and stop experiments.",
)
def experiment() -> None:
    """List, inspect, follow and stop experiments.

    ID arguments accept the full id, the experiment name, or a unique prefix of either.
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pidgin`` console script and of ``python -m pidgin_cli``.

    A reader that went away (``pidgin ... | head``) stops every command quietly with
    status 1: click does so for what commands print; output still buffered at exit (a
    command writing to ``sys.stdout`` itself) is flushed here, where the same holds.
    """
    try:
        cli.main(args=argv, prog_name="pidgin")
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            # to /dev/null, so that the interpreter's own last flush does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
