"""``python -m pidgin_events``: the JSON Schema of a log line, a log validator, an example.

Works wherever pidgin-events alone is installed (agent code, CI jobs), without pidgin-cli.
"""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["main"]

_PROG = "python -m pidgin_events"
_EPILOG = f"""examples:
  {_PROG} schema --output pidgin-event.schema.json
  {_PROG} validate pidgin_output/experiments/exp_1a2b3c4d5e6f
  {_PROG} validate --legacy old_output/experiments/*/events_*.jsonl
  {_PROG} example --root /tmp/pidgin-demo --turns 5

exit status: 0 all valid, 1 problems found or an error, 2 bad usage"""


def _count(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Pidgin event logs: the JSON Schema of a line, a validator, an example run.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema (draft 2020-12) of one event log line",
        description="Print the JSON Schema (draft 2020-12) of one line of a Pidgin event log.",
    )
    schema.add_argument(
        "--legacy", action="store_true", help="the variant that also accepts pidgin-ai 1.x logs"
    )
    schema.add_argument(
        "--output", "-o", metavar="FILE", help="write the schema to FILE instead of stdout"
    )

    validate = commands.add_parser(
        "validate",
        help="check event logs against the schema; prints file:line: reason per problem",
        description=(
            "Check JSONL event logs against the schema. Each problem is printed to stdout as "
            "file:line: reason, a summary to stderr. A directory stands for every event log "
            "under it."
        ),
    )
    validate.add_argument("paths", nargs="+", metavar="FILE", help="a log, or a run directory")
    validate.add_argument(
        "--legacy",
        action="store_true",
        help="accept pidgin-ai 1.x logs (no seq, event_id, schema_version; naive message times)",
    )

    example = commands.add_parser(
        "example",
        help="write a small example experiment with canned replies",
        description=(
            "Write a small experiment through the public API: two canned agents whose replies "
            "drift together, scored by word overlap. No model, network or API key needed."
        ),
    )
    example.add_argument(
        "--root", metavar="DIR", help="output root (default: $PIDGIN_OUTPUT or ./pidgin_output)"
    )
    example.add_argument(
        "--conversations",
        type=lambda text: _count(text, 1),
        default=2,
        metavar="N",
        help="conversations to write (default: 2)",
    )
    example.add_argument(
        "--turns",
        type=lambda text: _count(text, 1),
        default=4,
        metavar="N",
        help="turns per conversation (default: 4)",
    )
    example.add_argument(
        "--delay",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="pause after each turn, to watch the logs grow (default: 0)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status (argparse exits with 2 on bad usage)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "schema":
            return _schema(legacy=args.legacy, output=args.output)
        if args.command == "validate":
            return _validate(args.paths, legacy=args.legacy)
        return _example(args.root, args.conversations, args.turns, args.delay)
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _schema(*, legacy: bool, output: str | None) -> int:
    import orjson

    from ._schema import json_schema

    text = orjson.dumps(json_schema(legacy=legacy), option=orjson.OPT_INDENT_2) + b"\n"
    if output is None:
        sys.stdout.write(text.decode())
        return 0
    try:
        with open(output, "wb") as file:
            file.write(text)
    except OSError as exc:
        print(f"{output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _validate(paths: Sequence[str], *, legacy: bool) -> int:
    from ._validate_log import FileTally, default_validator, file_problems

    validator = default_validator(legacy)
    files = bad_files = lines = bad_lines = problems = 0
    for path, found in _expand(paths):
        if found is None:
            print(path)  # already "file: reason"
            problems += 1
            bad_files += 1
            continue
        tally = FileTally()
        for problem in file_problems(found, validator, tally=tally):
            print(problem)
        files += 1
        lines += tally.lines
        bad_lines += tally.bad_lines
        problems += tally.problems
        bad_files += tally.problems > 0
    sys.stdout.flush()
    checked = f"{files} file{'s' if files != 1 else ''}, {lines} line{'s' if lines != 1 else ''}"
    variant = " (legacy schema)" if legacy else ""
    if problems:
        print(
            f"invalid{variant}: {problems} problem{'s' if problems != 1 else ''} "
            f"({bad_lines} bad line{'s' if bad_lines != 1 else ''}, "
            f"{bad_files} file{'s' if bad_files != 1 else ''} with problems); checked {checked}",
            file=sys.stderr,
        )
        return 1
    print(f"valid{variant}: checked {checked}", file=sys.stderr)
    return 0


def _expand(paths: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """Each file to check; a directory yields its event logs, or one problem if it has none.

    Yields ``(path, path)`` for a file to check and ``(problem, None)`` for a path that
    cannot be checked. Files named explicitly are checked whatever their name.
    """
    from ._layout import EXPERIMENT_LOG, conversation_id_of_log

    for path in paths:
        if not os.path.isdir(path):
            if os.path.exists(path) or os.path.islink(path):
                yield path, path
            else:
                yield f"{path}: cannot read: No such file or directory", None
            continue
        logs: list[str] = []
        for directory, subdirectories, names in os.walk(path):
            subdirectories.sort()
            logs.extend(
                os.path.join(directory, name)
                for name in sorted(names)
                if name == EXPERIMENT_LOG or conversation_id_of_log(name) is not None
            )
        if not logs:
            yield (
                f"{path}: no event logs in this directory "
                f"(*_events.jsonl, events_*.jsonl or {EXPERIMENT_LOG})",
                None,
            )
        for log in logs:
            yield log, log


def _example(root: str | None, conversations: int, turns: int, delay: float) -> int:
    from ._example import run_example

    try:
        run_example(root, conversations=conversations, turns=turns, delay=delay, out=sys.stdout)
    except (OSError, ValueError) as exc:
        print(f"{_PROG} example: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{_PROG} example: interrupted; the logs say so", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
