"""What DuckDB reads for one run: its logs as sources, grouped into batches of bounded size.

DuckDB reads plain files in place. Python touches the bytes only in rare cases: a
``.gz``/``.zst`` log is decompressed to a private temporary directory first; a log bigger
than ``BATCH_BYTES`` is cut at newlines into ranges (``_chunks``), each copied to a
private file just before its statement; and a file with bytes that are not UTF-8 (which
DuckDB refuses to read as text) is copied with each such line blanked, the line being
kept as a ``BadLine`` for ``load_errors``.
"""

from __future__ import annotations

import codecs
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pidgin_events import open_log

from ._chunks import LineRange, copy_range, line_ranges
from ._errors import LoadError
from ._run_files import LogFile
from ._sql_events import EXCERPT_CHARS

__all__ = [
    "BATCH_BYTES",
    "LAST_LINE",
    "BadLine",
    "Source",
    "batches",
    "files_to_read",
    "readable_path",
    "scratch_directory",
    "sources_of",
]

BATCH_BYTES = 32 << 20
"""Logs are read in statements of at most this many bytes, so memory stays bounded.

Parsing lines takes up to ~15 times their size in DuckDB (long lines cost the most), so
32 MB stays well inside the default 1GB memory limit. A log bigger than this is read in
ranges of whole lines of at most this size; only a single longer line exceeds it.
"""

LAST_LINE = 1 << 62
"""A line number past the end of any log: "to the end of the file"."""

_COPIES = itertools.count()  # names the copies made in a scratch directory
_GLOB_CHARS = frozenset("*?[]{}")


@dataclass(frozen=True, slots=True)
class Source:
    """Lines of one of the run's logs that one statement reads: the whole file, or a range."""

    path: str
    """The log itself, or a private copy of it (decompressed, or under a plain name)."""
    log: LogFile
    lines: LineRange
    last_line: int
    """The number of the last line of ``lines`` (or more: the last range of a file)."""
    whole: bool
    """Whether ``lines`` is the whole file, which DuckDB then reads in place."""

    @property
    def size(self) -> int:
        return self.lines.size


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line found bad before DuckDB reads it (its bytes are not UTF-8), for ``load_errors``."""

    source_file: str
    line_number: int
    reason: str
    excerpt: str


def batches(sources: list[Source]) -> Iterator[list[Source]]:
    """Consecutive sources, grouped so that each group holds at most ``BATCH_BYTES``.

    A single source bigger than that (a line longer than a batch) is a group of its own.
    """
    batch: list[Source] = []
    size = 0
    for source in sources:
        if batch and size + source.size > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(source)
        size += source.size
    if batch:
        yield batch


@contextmanager
def scratch_directory() -> Iterator[Path]:
    """A private temporary directory (mode 0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="pidgin-load-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def readable_path(log: LogFile, scratch: Path, index: int) -> Path:
    """A path DuckDB can read as text: the log itself, or a decompressed or aliased copy."""
    path = log.path
    if path.suffix in (".gz", ".zst"):
        target = scratch / f"{index}.jsonl"
        try:
            with open_log(path) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        except (OSError, EOFError, RuntimeError) as exc:
            raise LoadError(f"{path}: cannot decompress: {exc}") from exc
        return target
    if _GLOB_CHARS.intersection(str(path)):
        # DuckDB expands glob patterns in file names; a link with a plain name avoids that.
        link = scratch / f"{index}.jsonl"
        os.symlink(path, link)
        return link
    return path


def sources_of(log: LogFile, path: Path) -> list[Source]:
    """The log as one source, or, if bigger than a batch, as ranges of whole lines."""
    size = path.stat().st_size
    if size > BATCH_BYTES:
        try:
            ranges = list(line_ranges(path, BATCH_BYTES))
        except OSError as exc:
            raise LoadError(f"{log.path}: cannot read: {exc}") from exc
        if len(ranges) > 1:
            last_lines = [lines.first_line - 1 for lines in ranges[1:]] + [LAST_LINE]
            return [
                Source(str(path), log, lines, last, whole=False)
                for lines, last in zip(ranges, last_lines, strict=True)
            ]
    return [Source(str(path), log, LineRange(0, size, 1), LAST_LINE, whole=True)]


def _is_utf8(path: str) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as stream:
            while block := stream.read(1 << 22):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _blank_non_utf8_lines(path: str, source: Source, target: Path, bad: list[BadLine]) -> None:
    """Copy a file, blanking each line that is not UTF-8 and noting it in ``bad``."""
    with open(path, "rb") as reader, open(target, "wb") as writer:
        for number, raw in enumerate(reader, start=source.lines.first_line):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                reason = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})"
                excerpt = raw[:EXCERPT_CHARS].decode("utf-8", "backslashreplace").rstrip("\n")
                bad.append(BadLine(source.log.name, number, reason, excerpt))
                writer.write(b"\n")  # keeps the numbers of the lines after it
            else:
                writer.write(raw)


@contextmanager
def files_to_read(
    batch: list[Source], scratch: Path, *, clean_utf8: bool, bad: list[BadLine]
) -> Iterator[list[str]]:
    """The file DuckDB reads for each source of a batch; copies made for it go afterwards.

    A range is copied to a file of its own (DuckDB reads files whole). With ``clean_utf8``,
    a file that is not all UTF-8 is replaced by a copy with such lines blanked, each
    blanked line appended to ``bad``.
    """
    made: list[Path] = []
    try:
        paths = []
        for source in batch:
            path = source.path
            if not source.whole:
                copy = scratch / f"range-{next(_COPIES)}.jsonl"
                made.append(copy)
                try:
                    copy_range(path, copy, source.lines)
                except OSError as exc:
                    raise LoadError(f"{source.log.path}: cannot read: {exc}") from exc
                path = str(copy)
            if clean_utf8 and not _is_utf8(path):
                cleaned = scratch / f"utf8-{next(_COPIES)}.jsonl"
                made.append(cleaned)
                _blank_non_utf8_lines(path, source, cleaned, bad)
                path = str(cleaned)
            paths.append(path)
        yield paths
    finally:
        for copy_path in made:
            copy_path.unlink(missing_ok=True)  # a big log's copies never pile up on disk
