"""Checking event lines and whole logs against the event schema (``SchemaValidator``).

``python -m pidgin_events validate`` and ``validate_file``/``validate_line`` report each
problem as ``file:line: reason``; a log of any size is read in blocks, and a line longer
than ``MAX_LINE_BYTES`` is reported rather than held.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache

import orjson

from ._codec import json_type, unreadable_reason
from ._validate import SchemaValidator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MAX_LINE_BYTES",
    "FileTally",
    "default_validator",
    "file_problems",
    "validate_file",
    "validate_line",
]

MAX_LINE_BYTES = 64 << 20
"""Longer lines are reported, not checked: validating never holds more than this in memory."""

_BLOCK = 1 << 20


@cache
def default_validator(legacy: bool = False) -> SchemaValidator:
    """The validator of ``json_schema(legacy=legacy)``, compiled once per process."""
    from ._schema import json_schema

    return SchemaValidator(json_schema(legacy=legacy))


def _validator(schema: Mapping[str, Any] | None, legacy: bool) -> SchemaValidator:
    return default_validator(legacy) if schema is None else SchemaValidator(schema)


def _line_problems(raw: bytes | str, validator: SchemaValidator) -> list[str]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return [unreadable_reason(raw, exc)]
    if not isinstance(value, dict):
        return [f"expected a JSON object, got {json_type(value)}"]
    return validator.errors(value)


def validate_line(
    line: bytes | str,
    schema: Mapping[str, Any] | None = None,
    *,
    legacy: bool = False,
) -> list[str]:
    """What is wrong with one log line (``$.path: reason`` each); [] if it is valid.

    ``schema`` defaults to ``json_schema(legacy=legacy)``.
    """
    return _line_problems(line, _validator(schema, legacy))


@dataclass(slots=True)
class FileTally:
    """What checking one file saw, for a summary."""

    lines: int = 0
    bad_lines: int = 0
    problems: int = 0


def validate_file(
    path: str | os.PathLike[str],
    schema: Mapping[str, Any] | None = None,
    *,
    legacy: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> list[str]:
    """Every problem in a JSONL event log, as ``file:line: reason``; [] if all is well.

    Never raises on what the file contains: lines that are not JSON, not UTF-8 or not
    objects, lines that break the schema, and a last line without its newline (a write in
    progress or a crash) are all reported. A file that cannot be read is one problem,
    ``file: reason``. Blank lines are skipped, as readers skip them. The file is streamed:
    memory stays within one line, and lines over ``max_line_bytes`` are reported unread.
    ``.gz`` and ``.zst`` logs are read transparently.
    """
    validator = _validator(schema, legacy)
    return list(file_problems(path, validator, max_line_bytes=max_line_bytes))


def file_problems(
    path: str | os.PathLike[str],
    validator: SchemaValidator,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    tally: FileTally | None = None,
    block_size: int = _BLOCK,
) -> Iterator[str]:
    """Yield each problem of one log as it is found (see ``validate_file``)."""
    from ._reader import open_log

    name = os.fspath(path)
    tally = FileTally() if tally is None else tally
    try:
        stream = open_log(name)
    except (OSError, RuntimeError) as exc:
        tally.problems += 1
        yield f"{name}: cannot read: {_os_reason(exc)}"
        return
    number = 1  # the line being assembled
    parts: list[bytes] = []
    size = 0
    too_long = False

    def report(reasons: list[str]) -> Iterator[str]:
        if reasons:
            tally.bad_lines += 1
            tally.problems += len(reasons)
        for reason in reasons:
            yield f"{name}:{number}: {reason}"

    with stream:
        while True:
            try:
                block = stream.read(block_size)
            except Exception as exc:  # a corrupt archive, an I/O error: report, never raise
                tally.problems += 1
                yield f"{name}:{number}: cannot read further: {_os_reason(exc)}"
                return
            if not block:
                break
            start = 0
            while True:
                end = block.find(b"\n", start)
                if end < 0:
                    if not too_long:
                        rest = block[start:]
                        size += len(rest)
                        if size > max_line_bytes:
                            too_long, parts = True, []
                        elif rest:
                            parts.append(rest)
                    break
                piece = block[start:end]
                if too_long or size + len(piece) > max_line_bytes:
                    tally.lines += 1
                    yield from report([f"line longer than {max_line_bytes} bytes, not checked"])
                else:
                    raw = b"".join((*parts, piece)) if parts else piece
                    if raw.strip():
                        tally.lines += 1
                        yield from report(_line_problems(raw, validator))
                number += 1
                parts, size, too_long = [], 0, False
                start = end + 1
    if too_long or any(part.strip() for part in parts):
        tally.lines += 1
        yield from report(
            [
                "last line has no trailing newline: a write in progress or cut short by a "
                "crash; readers skip it until it ends"
            ]
        )


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
