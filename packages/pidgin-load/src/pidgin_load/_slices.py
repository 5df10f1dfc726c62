"""Which events a statement that parses payloads reads at once, so its memory stays bounded.

DuckDB holds a vector of ``VECTOR_ROWS`` rows in memory whole, so a statement over many
long lines (a log of 2 MB messages) would need all of them at once. Such statements run
slice by slice: each slice is some lines of some logs, at most about a read batch.
Usually there is one slice, with no filter at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._sources import LAST_LINE, Source

__all__ = ["VECTOR_ROWS", "Slice", "slices"]

VECTOR_ROWS = 2048
"""DuckDB processes rows in vectors of this many: one vector of long lines is all in memory."""

# A slice's rows, in a form DuckDB filters inside its scan of ``events``, so that the
# payloads of the other rows are never fetched. (A line range per file, looked up in a
# list, is not: it would fetch every payload the other conditions select.)
_IN_SLICE = """
    AND list_contains($slice_files::VARCHAR[], source_file)
    AND line_number BETWEEN $slice_first AND $slice_last
"""


@dataclass(frozen=True, slots=True)
class Slice:
    """Events that a statement parsing their payloads reads at once: some lines of some logs.

    ``files=None`` is every event of the run: no filter at all.
    """

    files: tuple[str, ...] | None
    first: int = 1
    last: int = LAST_LINE

    def sql(self, template: str) -> str:
        """The statement, with its ``{in_slice}`` marker replaced by this slice's filter."""
        return template.replace("{in_slice}", "" if self.files is None else _IN_SLICE)

    def params(self) -> dict[str, Any]:
        if self.files is None:
            return {}
        return {"slice_files": list(self.files), "slice_first": self.first, "slice_last": self.last}


def _slices_of(sources: list[Source]) -> list[Slice]:
    """Some batches' sources as slices: their whole logs together, each range on its own."""
    whole = tuple(source.log.name for source in sources if source.whole)
    parts = [Slice(whole)] if whole else []
    for source in sources:
        if source.whole:
            continue
        previous = parts[-1] if parts else None
        if previous and previous.files == (source.log.name,) and previous.last < LAST_LINE:
            # the next range of the same log
            parts[-1] = Slice(previous.files, previous.first, source.last_line)
        else:
            parts.append(Slice((source.log.name,), source.lines.first_line, source.last_line))
    return parts


def slices(batches: list[tuple[list[Source], int]]) -> list[Slice]:
    """Slices covering the batches read (with their row counts); usually one, unfiltered.

    Batches of at least ``VECTOR_ROWS`` rows are read together: a vector then spans at
    most two of them. A batch of fewer rows, long ones, is read on its own.
    """
    groups: list[list[Source]] = []
    joinable = False  # whether the last group takes more batches
    for batch, rows in batches:
        many = rows >= VECTOR_ROWS
        if not (groups and joinable and many):
            groups.append([])
        joinable = many
        groups[-1].extend(batch)
    if len(groups) <= 1:
        return [Slice(None)]
    return [part for group in groups for part in _slices_of(group)]
