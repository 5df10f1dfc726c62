"""Where output goes and in what form: rich on a terminal, plain text in a pipe, JSON on request.

Every command decides the form through these helpers, so that "piped output has no ANSI
escapes", "``NO_COLOR`` is honoured" and "``-o`` means the output root everywhere" hold
for all of them at once.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = [
    "JSON_SCHEMA_VERSION",
    "OUTPUT_META_KEY",
    "command_hint",
    "conversation_option",
    "echo_json",
    "fail",
    "json_option",
    "make_console",
    "no_color",
    "output_option",
    "plain_table",
    "program",
    "resolve_output_root",
    "rich_text",
    "safe_text",
    "tail_option",
    "use_rich",
    "write_file",
]

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_META_KEY = "pidgin.output"
"""``ctx.meta`` key under which the root group keeps its ``-o/--output`` value."""

JSON_SCHEMA_VERSION = 1
"""Version of every ``--json`` document; bumped only when a key changes meaning or goes away."""

_OUTPUT_HELP = (
    "Output root holding experiments/ and chats/ [default: $PIDGIN_OUTPUT or ./pidgin_output]."
)


def output_option(function: F) -> F:
    """``-o/--output DIR`` on a subcommand; it wins over the root group's ``-o``."""
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=_OUTPUT_HELP,
    )(function)


def json_option(function: F) -> F:
    """``--json``: a documented, stable JSON document on stdout instead of a table."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print a JSON document (see the README)."
    )(function)


def conversation_option(help_text: str) -> Callable[[F], F]:
    """``-c/--conversation C``: one conversation of the run, by id or unique prefix."""
    return click.option(
        "-c", "--conversation", metavar="CONVERSATION", default=None, help=help_text
    )


def tail_option(function: F) -> F:
    """``--tail``: the raw events, printed as they are appended (pidgin-ai's ``--tail``)."""
    return click.option(
        "--tail",
        is_flag=True,
        help="Print the raw event lines as they are appended, instead of the live view.",
    )(function)


def resolve_output_root(ctx: click.Context | None, value: Path | None) -> Path:
    """The output root: the command's ``-o``, else the root's ``-o``, else ``$PIDGIN_OUTPUT``.

    The environment variable is read here rather than by click so that an explicit ``-o``
    on the root group still beats it.
    """
    from pidgin_events import output_root

    if value is not None:
        return value
    if ctx is not None:
        from_root = ctx.meta.get(OUTPUT_META_KEY)
        if from_root is not None:
            return Path(from_root)
    return output_root()


def _default_output_root() -> Path:
    """The root a command given no ``-o`` uses: ``$PIDGIN_OUTPUT``, else ``./pidgin_output``."""
    return resolve_output_root(None, None)


HINT_PATH_ENV = "PIDGIN_HINT_PATH"
"""The ``PATH`` of the shell a user pastes hints into, set by wrappers that change ``PATH``
(``tools/dev.py`` runs Pidgin through hatch, which puts ``.venv/bin`` first)."""


def program(name: str) -> str:
    """``name`` as a hint should spell it: a script installed beside the running interpreter.

    The bare name when the user's shell finds that very script on its ``PATH``
    (``$PIDGIN_HINT_PATH``, else ours); else its absolute path (after ``tools/dev.py demo``,
    ``pidgin`` and ``python3`` live in ``.venv/bin``, which is not on the user's ``PATH``).
    Computed from ``sys.executable`` at run time.
    """
    import shlex
    import shutil

    bin_dir = os.path.abspath(os.path.dirname(sys.executable))
    found = shutil.which(name, path=os.environ.get(HINT_PATH_ENV))
    if found is not None and os.path.dirname(os.path.abspath(found)) == bin_dir:
        return name
    beside = os.path.join(bin_dir, name)
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return shlex.quote(beside)
    if name == "pidgin":  # not installed as a script: run the package
        return f"{shlex.quote(sys.executable)} -m pidgin_cli"
    return name


def command_hint(*args: str, root: Path | None = None) -> str:
    """A ``pidgin`` command line to print as a hint, working when copy-pasted.

    It names the output root (``-o DIR``) when ``root`` is not the one a bare ``pidgin``
    would use in this shell (``$PIDGIN_OUTPUT`` or ``./pidgin_output``), and spells
    ``pidgin`` as ``program`` does.
    """
    import shlex

    words = [program("pidgin")]
    if root is not None and root.absolute() != _default_output_root().absolute():
        words += ["-o", shlex.quote(str(root))]
    words += [shlex.quote(arg) for arg in args]
    return " ".join(words)


def no_color() -> bool:
    """Whether ``NO_COLOR`` (https://no-color.org) asks for output without colour."""
    return bool(os.environ.get("NO_COLOR"))


def use_rich(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` is a terminal able to show tables and live displays."""
    stream = sys.stdout if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM") != "dumb"


def make_console(*, stderr: bool = False) -> Console:
    """A rich console for a terminal; under ``NO_COLOR`` it writes no escape codes at all."""
    from rich.console import Console

    return Console(
        stderr=stderr,
        color_system=None if no_color() else "auto",
        highlight=False,
        emoji=False,
    )


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def echo_json(document: object) -> None:
    """Write ``document`` as indented JSON (dates in ISO 8601) and a newline to stdout."""
    import json

    text = json.dumps(document, indent=2, ensure_ascii=False, default=_json_default)
    click.echo(text)


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns separated by at least two spaces: stable for ``grep``, readable in ``less``.

    Cells never contain two spaces in a row or a newline (they are squeezed), so splitting
    a line on ``'  +'`` always gives the columns back.
    """
    table = [[_cell(text) for text in headers], *([_cell(text) for text in row] for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        padded = [text.ljust(width) for text, width in zip(row, widths, strict=True)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _cell(text: str) -> str:
    text = " ".join(safe_text(text).split())
    return text if text else "-"


# --- text from logs on a terminal -------------------------------------------------------

_LINE_BREAKS = re.compile("\r\n|[\t\n\r\v\f\x85\u2028\u2029]")
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0 and C1 controls, DEL: ESC starts every escape sequence
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi controls reorder what is shown
    "\ud800-\udfff]"  # lone surrogates (undecodable file names): the encoder would fail
)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escaped_but_lines(match: re.Match[str]) -> str:
    return match.group() if match.group() in "\t\n" else _escaped(match)


def safe_text(text: object, *, multiline: bool = False) -> str:
    """``text`` made harmless for a terminal: every control character shown, not obeyed.

    Names, ids, models, error messages and file names come from logs and run directories
    that providers, models and other programs wrote: an ESC in them would set the
    terminal's title or clear it, a bidi override would reorder what is shown. Each such
    character becomes a visible escape (``\\x1b``, ``\\u202e``). Line breaks and tabs
    become spaces, so that a value cannot forge lines of a table, or stay (newline and
    tab only) with ``multiline``. Every command prints what it read through this (or
    ``rich_text``); ``--json`` keeps the true values, JSON escapes control characters.
    """
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():  # the usual case costs one scan in C
        return text
    if multiline:
        return _UNSAFE.sub(_escaped_but_lines, text.replace("\r\n", "\n"))
    return _UNSAFE.sub(_escaped, _LINE_BREAKS.sub(" ", text))


def rich_text(text: object, style: str = "", *, multiline: bool = False) -> Text:
    """``safe_text`` as a rich ``Text``: never parsed as markup, so ``[red]`` stays literal.

    A plain ``str`` given to rich (a table cell, ``Console.print``) is read as markup:
    brackets in a name would restyle the output or, unbalanced, abort it.
    """
    from rich.text import Text

    return Text(safe_text(text, multiline=multiline), style=style)


def fail(message: str) -> click.ClickException:
    """A failure (exit status 1) whose message is printed on stderr as ``Error: ...``.

    The message goes through ``safe_text`` (lines kept): failures name runs, files and
    what logs say, and click prints its messages as they are.
    """
    return click.ClickException(safe_text(message, multiline=True))


def write_file(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` whole or not at all, or fail in one line naming it.

    Every ``--to FILE`` goes through here: a file left half-written would look like a
    whole transcript, report or query result, and a missing directory or a read-only
    place is an ordinary mistake, not a traceback.
    """
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise fail(f"cannot write {safe_text(target)}: {exc.strerror or exc}") from None
