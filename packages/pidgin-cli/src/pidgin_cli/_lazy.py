"""A click group whose subcommands are imported only when they are invoked.

``pidgin --help`` must answer in well under 150 ms, and the commands behind it import
rich, DuckDB and pidgin-state. So the group knows each subcommand by a ``"module:attr"``
string plus its one-line help, and imports a module only to run (or fully describe) the
command that lives there.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import NamedTuple

import click
from click.shell_completion import CompletionItem

__all__ = ["LazyCommand", "LazyGroup"]


class LazyCommand(NamedTuple):
    """Where a subcommand lives and what ``--help`` says about it without importing it."""

    target: str
    """``"package.module:attribute"`` naming a ``click.Command``."""
    short_help: str
    hidden: bool = False


class LazyGroup(click.Group):
    """A ``click.Group`` that also holds lazily imported subcommands."""

    def __init__(
        self,
        *args: object,
        lazy_subcommands: Mapping[str, LazyCommand] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_subcommands: dict[str, LazyCommand] = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        spec = self.lazy_subcommands.get(cmd_name)
        if spec is None:
            return None
        command = _load(cmd_name, spec)
        self.add_command(command, cmd_name)  # cached: later lookups skip the import machinery
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if self._known(name) or ctx.resilient_parsing or name.startswith("-"):
            return super().resolve_command(ctx, args)
        # click suggests close names from ``self.commands`` only, which lacks the lazy ones.
        raise click.exceptions.NoSuchCommand(name, possibilities=self._visible_names(ctx), ctx=ctx)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, help_text in self._describe(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        results = [
            CompletionItem(name, help=help_text)
            for name, help_text in self._describe(ctx)
            if name.startswith(incomplete)
        ]
        # Options of this group; skips click.Group's version, which imports every command.
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results

    def _known(self, name: str) -> bool:
        return name in self.commands or name in self.lazy_subcommands

    def _visible_names(self, ctx: click.Context) -> list[str]:
        return [name for name, _ in self._describe(ctx)]

    def _describe(self, ctx: click.Context) -> list[tuple[str, str]]:
        """``(name, short help)`` of every visible subcommand, importing none of the lazy ones."""
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            eager = self.commands.get(name)
            if eager is not None:
                if not eager.hidden:
                    rows.append((name, eager.get_short_help_str(limit=80)))
                continue
            spec = self.lazy_subcommands[name]
            if not spec.hidden:
                rows.append((name, spec.short_help))
        return rows


def _load(name: str, spec: LazyCommand) -> click.Command:
    module_name, _, attribute = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            # The module of the command itself is missing: an incomplete install, not a bug
            # inside the command. Anything else propagates with its traceback.
            raise click.ClickException(
                f"the '{name}' command is not available in this installation "
                f"({module_name} is missing)"
            ) from exc
        raise
    command = getattr(module, attribute, None)
    if not isinstance(command, click.Command):
        raise click.ClickException(
            f"the '{name}' command is not available: {spec.target} is not a click command"
        )
    if spec.hidden:
        command.hidden = True
    return command
