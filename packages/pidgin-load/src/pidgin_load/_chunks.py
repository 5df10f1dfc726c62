"""Cutting a big log into ranges of whole lines, so that DuckDB never reads it at once.

DuckDB's ``read_text`` reads a file whole, and parsing its lines takes many times its
size in memory: one statement must never see more than a bounded number of bytes. A log
bigger than that is cut at newlines into ranges of at most that size (a single line
longer than the limit is a range of its own), each copied to a private file just before
DuckDB reads it. Each range knows the number of its first line, so every event keeps the
line number it has in the log.

The file is scanned in blocks with ``bytes.rfind``/``bytes.count``: no line is ever held
whole in memory, however long it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._errors import LoadError

__all__ = ["BLOCK_BYTES", "LineRange", "copy_range", "line_ranges"]

BLOCK_BYTES = 1 << 20
"""Bytes read at a time while scanning or copying."""


@dataclass(frozen=True, slots=True)
class LineRange:
    """Bytes ``[start, end)`` of a file: whole lines, the first of them numbered ``first_line``."""

    start: int
    end: int
    first_line: int

    @property
    def size(self) -> int:
        return self.end - self.start


def line_ranges(path: str | Path, limit: int, block_size: int = BLOCK_BYTES) -> Iterator[LineRange]:
    """Cut a file into consecutive ranges that end just after a newline (but the last).

    Each range is as long as possible without exceeding ``limit`` bytes, unless its only
    line is longer than ``limit``. The ranges cover the file exactly, in order.
    """
    if limit < 1:
        raise ValueError(f"limit must be positive, not {limit}")
    start = 0  # where the current range starts
    first_line = 1  # the number of the line at ``start``
    newlines = 0  # newlines in [start, pos)
    last_end = -1  # just past the last newline in [start, pos); -1 if none
    oversized = False  # the current range is one line longer than the limit: cut at its end
    pos = 0  # file offset of ``data``
    with open(path, "rb") as stream:
        while data := stream.read(block_size):
            lo = 0  # data[:lo] belongs to ranges already cut
            while True:
                if oversized:
                    index = data.find(b"\n", lo)
                    if index < 0:
                        break
                    cut, count = pos + index + 1, 1
                else:
                    boundary = start + limit - pos  # a cut at data index <= boundary fits
                    if boundary >= len(data):
                        break  # every line ending in this block fits
                    index = data.rfind(b"\n", lo, boundary)
                    if index >= 0:
                        cut = pos + index + 1
                        count = newlines + data.count(b"\n", lo, index + 1)
                    elif last_end >= 0:
                        cut, count = last_end, newlines  # the last newline of an earlier block
                    else:
                        oversized = True  # no newline within the limit: one long line
                        continue
                yield LineRange(start, cut, first_line)
                first_line += count
                start = cut
                newlines, last_end, oversized = 0, -1, False
                lo = max(lo, cut - pos)
            index = data.rfind(b"\n", lo)
            if index >= 0:
                newlines += data.count(b"\n", lo)
                last_end = pos + index + 1
            pos += len(data)
    if pos > start:
        yield LineRange(start, pos, first_line)


def copy_range(source: str | Path, target: Path, line_range: LineRange) -> None:
    """Copy one range of ``source`` into a new file ``target``."""
    with open(source, "rb") as reader, open(target, "xb") as writer:
        reader.seek(line_range.start)
        remaining = line_range.size
        while remaining:
            block = reader.read(min(remaining, BLOCK_BYTES))
            if not block:
                raise LoadError(f"{source}: shrank while being loaded")
            writer.write(block)
            remaining -= len(block)
