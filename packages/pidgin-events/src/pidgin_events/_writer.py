"""Appending events to a JSONL file: one ``os.write`` per line, torn tails sealed on open."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import orjson

from ._codec import event_encoder
from ._events import Event
from ._fileio import FILE_MODE, append_line

__all__ = ["EventWriteError", "EventWriter", "FsyncPolicy"]

TYPE_CHECKING = False  # typing costs agent code milliseconds at import
if TYPE_CHECKING:
    from typing import BinaryIO, Literal, TypeAlias

    FsyncPolicy: TypeAlias = Literal["close", "always", "never"]
else:
    FsyncPolicy = str  # the precise type above is for type checkers

_TAIL_BLOCK = 65536


class EventWriteError(OSError):
    """An event could not be appended; the message names the file and what is on disk."""


class EventWriter:
    """Appends events to one JSONL file and numbers them with ``seq``.

    Each event is visible to readers as soon as ``emit`` returns. ``fsync`` decides
    durability: ``"close"`` (default) syncs once when the writer closes, ``"always"``
    after every event, ``"never"`` leaves it to the operating system.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        experiment_id: str | None = None,
        fsync: FsyncPolicy = "close",
    ) -> None:
        if fsync not in ("close", "always", "never"):
            raise ValueError(f"fsync must be 'close', 'always' or 'never', not {fsync!r}")
        self.path = Path(path)
        self.experiment_id = experiment_id
        self._fsync = fsync
        self._sync_each = fsync == "always"
        self._lock = threading.Lock()
        self._id_prefix = os.urandom(6).hex() + "-"
        self._needs_seal = False
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self._fd: int | None = os.open(self.path, flags, FILE_MODE)
        try:
            self._next_seq = self._seal_and_resume()
        except BaseException:
            os.close(self._fd)
            self._fd = None
            raise

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next event will get."""
        return self._next_seq

    @property
    def closed(self) -> bool:
        return self._fd is None

    def emit(self, event: Event) -> int:
        """Append ``event`` as one line and return the ``seq`` it was given."""
        with self._lock:
            fd = self._fd
            if fd is None:
                raise ValueError(f"{self.path}: writer is closed")
            seq = self._next_seq
            encode = event_encoder(type(event))
            line = encode(event, seq, self._id_prefix + str(seq), self.experiment_id)
            try:
                if self._needs_seal:
                    self._seal(fd)
                written = os.write(fd, line)  # append_line inlined: this is the hot path
                if written != len(line):
                    append_line(fd, line[written:])
            except OSError as exc:
                self._needs_seal = True
                self._try_seal(fd)
                raise EventWriteError(
                    exc.errno,
                    f"{self.path}: could not append event seq={seq} "
                    f"({event.event_type}): {exc.strerror or exc}; earlier events are intact",
                ) from exc
            self._next_seq = seq + 1
            if self._sync_each:
                os.fsync(fd)
            return seq

    def sync(self) -> None:
        """Flush everything written so far to stable storage."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        """Close the file, syncing it first unless the policy is ``"never"``."""
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            try:
                if self._fsync != "never":
                    os.fsync(fd)
            finally:
                os.close(fd)

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else f"next_seq={self._next_seq}"
        return f"EventWriter({str(self.path)!r}, {state})"

    # --- reopening a file a crash left behind ---------------------------------------------

    def _seal_and_resume(self) -> int:
        """Seal a torn last line and return the seq that follows the last complete event."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size == 0:
            return 0
        with open(self.path, "rb") as reader:
            reader.seek(size - 1)
            if reader.read(1) != b"\n":
                # A crash mid-write left a partial line. Keep its bytes (they are evidence)
                # and end them, so the next event starts on a line of its own.
                self._seal(self._fd)
            return _seq_after_last_event(reader, size)

    def _seal(self, fd: int) -> None:
        append_line(fd, b"\n")
        self._needs_seal = False

    def _try_seal(self, fd: int) -> None:
        # If the disk is still full, the next emit or the next open seals it.
        with contextlib.suppress(OSError):
            self._seal(fd)


def _seq_after_last_event(reader: BinaryIO, size: int) -> int:
    """Find the last line with an integer ``seq`` by reading backwards in blocks."""
    end = size
    carry = b""
    newlines = 0
    while end > 0:
        start = max(0, end - _TAIL_BLOCK)
        reader.seek(start)
        block = reader.read(end - start) + carry
        lines = block.split(b"\n")
        carry = lines[0] if start > 0 else b""
        complete = lines[1:] if start > 0 else lines
        for line in reversed(complete):
            if not line.strip():
                continue
            newlines += 1
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            seq = value.get("seq") if isinstance(value, dict) else None
            if isinstance(seq, int) and not isinstance(seq, bool):
                return seq + 1
        end = start
    # No line carries a seq (a pidgin-ai 1.x log): continue from the number of lines.
    return newlines
