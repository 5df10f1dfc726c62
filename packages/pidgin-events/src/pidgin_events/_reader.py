"""Reading event logs from a byte offset, for tailers and batch readers alike."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ._codec import EventDecodeError, decode_event
from ._events import Event

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = [
    "ARCHIVE_BLOCK",
    "LOG_BLOCK",
    "BadLine",
    "LogReader",
    "ReadResult",
    "open_log",
    "read_events",
]

LOG_BLOCK = 1 << 22
"""Bytes read from a plain log at once."""
ARCHIVE_BLOCK = 1 << 16
"""Decompressed bytes read from an archive at once: small, so that a truncated archive
loses only what its last read held."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be read as an event, and why."""

    path: str
    line: int
    offset: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(slots=True)
class ReadResult:
    """What one read returned, and where the next read resumes."""

    events: list[Event] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)
    offset: int = 0
    line: int = 1


def open_log(
    source: str | os.PathLike[str] | int | BinaryIO, *, name: str | None = None
) -> BinaryIO:
    """Open a log for reading, decompressing ``.gz`` and ``.zst`` archives transparently.

    ``source`` is a path, or a descriptor or binary file already open (say by
    ``open_for_reading``, which never follows a symbolic link): the stream returned then
    owns it, and closing the stream closes it, whatever the compression. ``name`` is the
    file's name for an open source (its extension says how it is compressed; default: a
    file object's ``name``). Raises ``RuntimeError`` for a ``.zst`` log without the
    zstandard package.
    """
    if isinstance(source, int | str | os.PathLike):
        label = name or (os.fspath(source) if not isinstance(source, int) else "")
    else:
        label = name or str(getattr(source, "name", ""))
    if label.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            if isinstance(source, int):
                os.close(source)
            elif not isinstance(source, str | os.PathLike):
                source.close()
            raise RuntimeError(
                f"{label}: reading .zst logs needs the zstandard package "
                "(pip install 'pidgin-events[zstd]')"
            ) from None
        raw = _raw(source)
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
    if label.endswith(".gz"):
        import gzip

        raw = _raw(source)
        return _Owning(gzip.GzipFile(fileobj=raw, mode="rb"), raw)  # type: ignore[return-value]
    return _raw(source)


def _raw(source: str | os.PathLike[str] | int | BinaryIO) -> BinaryIO:
    if isinstance(source, int):
        return os.fdopen(source, "rb")
    if isinstance(source, str | os.PathLike):
        return open(source, "rb")
    return source


class _Owning(io.BufferedIOBase):
    """A decompressing stream that also closes the file under it (gzip leaves it open)."""

    def __init__(self, stream: io.BufferedIOBase, raw: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self._raw = raw

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        return self._stream.read(-1 if size is None else size)

    def read1(self, size: int = -1, /) -> bytes:
        return self._stream.read1(size)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._stream.close()
        finally:
            try:
                self._raw.close()
            finally:
                super().close()


class LogReader:
    """Follows one JSONL log: each pass yields the complete lines after ``offset``.

    A last line without its newline is a write in progress (or a crash's torn tail): it is
    not yielded, and ``offset`` stays at its start so the next pass picks it up whole.
    ``offset`` and ``line`` advance as lines are consumed, so stopping early loses nothing.
    Offsets in compressed archives count decompressed bytes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        offset: int = 0,
        line: int = 1,
        block_size: int = LOG_BLOCK,
    ) -> None:
        self.path = Path(path)
        self.offset = offset
        self.line = line
        self.pending = 0
        """Bytes after ``offset`` that do not yet end in a newline (seen on the last pass)."""
        self._block_size = block_size

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(line_number, bytes)`` for each complete, non-blank line appended since last."""
        archive = self.path.name.endswith((".gz", ".zst"))
        block_size = min(self._block_size, ARCHIVE_BLOCK) if archive else self._block_size
        with open_log(self.path) as stream:
            self._skip_to_offset(stream, archive)
            carry = b""
            while True:
                try:
                    block = stream.read(block_size)
                except EOFError:  # a truncated archive: what came before still counts
                    block = b""
                if not block:
                    break
                if carry:
                    block = carry + block
                cut = block.rfind(b"\n") + 1
                carry = block[cut:]
                if cut == 0:
                    continue
                offset, number = self.offset, self.line
                for raw in block[: cut - 1].split(b"\n"):
                    offset += len(raw) + 1
                    self.offset, self.line = offset, number + 1
                    if raw.strip():
                        yield number, raw
                    number += 1
            self.pending = len(carry)

    def events(self) -> Iterator[Event | BadLine]:
        """Yield each complete line as an event, or as a ``BadLine`` saying what is wrong."""
        where = str(self.path)
        for number, raw in self.lines():
            try:
                yield decode_event(raw)
            except EventDecodeError as exc:
                yield BadLine(where, number, self.offset - len(raw) - 1, str(exc))

    def _skip_to_offset(self, stream: BinaryIO, archive: bool) -> None:
        if self.offset == 0:
            return
        if not archive:
            stream.seek(self.offset)
            return
        remaining = self.offset
        while remaining > 0:
            chunk = stream.read(min(remaining, self._block_size))
            if not chunk:
                break
            remaining -= len(chunk)


def read_events(path: str | os.PathLike[str], offset: int = 0, line: int = 1) -> ReadResult:
    """Read every complete event after ``offset``; bad lines are reported, not raised."""
    reader = LogReader(path, offset=offset, line=line)
    result = ReadResult()
    for item in reader.events():
        if isinstance(item, BadLine):
            result.bad_lines.append(item)
        else:
            result.events.append(item)
    result.offset, result.line = reader.offset, reader.line
    return result
