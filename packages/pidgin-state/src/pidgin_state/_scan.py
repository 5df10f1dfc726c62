"""Following one event log: read only what was appended, decode only what state needs.

Why not ``pidgin_events.LogReader``: it turns every line into its own ``bytes`` object
and the caller would then decode it. In a pidgin-ai 1.x log about 91% of the bytes are
``MessageRequestEvent`` lines that repeat the whole history and that state never needs.
Here lines are found with ``bytes.find`` on the raw block, the event type is sniffed in
place (at the start of our lines, near the end of pidgin-ai's), and only the lines of
the types a sink handles are sliced out and decoded with orjson. The other lines get a
structural check (they start with ``{`` and end with ``}``) and are not copied at all.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any, Generic

import orjson

from pidgin_events import ARCHIVE_BLOCK, LOG_BLOCK, open_for_reading, open_log, unreadable_reason

from ._lines import (
    CLOSE_BRACE,
    KEY,
    KEY_LEN,
    OPEN_BRACE,
    OURS,
    OURS_LEN,
    FieldError,
    LineJudge,
    LongLine,
    Report,
    S,
    sniff_timestamp,
)
from ._time import parse_time

__all__ = ["LogCursor"]

_ANCHOR = 128
"""Bytes kept from the start of the file and from just before the resume offset, to prove
on the next read that the file was only appended to (not rewritten in place)."""
_MISSING: Any = object()


class LogCursor(LineJudge, Generic[S]):
    """Where one log was read up to, and the sink holding what it said.

    ``sync`` is called with the file's current ``stat``; it reads only the bytes appended
    since the last call, starts over when the file shrank, was replaced (another inode)
    or no longer ends with the bytes seen last time, and leaves a torn last line (no
    newline yet) for the next call. Compressed archives are read whole on any change.
    """

    def __init__(self, path: str, display: str, make_sink: Callable[[Report], S]) -> None:
        self.path = path
        """What is opened (a symlink's target inside the run directory)."""
        self.display = display
        """How problems name the file."""
        self.compressed = path.endswith((".gz", ".zst"))
        self._make_sink = make_sink
        self.sink = make_sink(self._problem_at)
        self.identity: tuple[int, int, int, int, int] | None = None
        """``(dev, ino, size, mtime_ns, ctime_ns)`` of the file as last read."""
        self.offset = 0
        """Bytes consumed: up to and including the last newline (decompressed bytes)."""
        self.line = 1
        """Number of the next line."""
        self.pending = 0
        """Bytes after ``offset`` without a newline yet (a write in progress, or a torn tail)."""
        self.anchor = b""
        self.head = b""
        self.last_event_ts: str | None = None
        """Raw timestamp of the last event line read (log order, not clock order)."""
        self.problems: list[str] = []
        self.problem_count = 0
        self.read_error: str | None = None
        self.event_lines = 0
        """Lines read as events, decoded or not."""
        self.bytes_read = 0
        self.version = 0
        """Bumped whenever what this cursor knows changes (snapshots are cached on it)."""
        self.restarts = 0
        self.snapshot: tuple[tuple[object, ...], Any] | None = None
        """The last snapshot built from this cursor, with the key it was built for."""

    @property
    def mtime(self) -> float | None:
        return None if self.identity is None else self.identity[3] / 1e9

    def sync(self, st: os.stat_result) -> bool:
        """Catch up with the file whose ``stat`` is ``st``; True if it changed (its bytes or
        only its ``stat``)."""
        seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if seen == self.identity:
            return False
        return self._read()

    # --- reading -----------------------------------------------------------------------

    def _read(self) -> bool:
        try:
            fd = open_for_reading(self.path)  # a FIFO named like a log must not hang us
        except OSError as exc:
            return self._fail(f"{self.display}: cannot read: {exc.strerror or exc}")
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):
                return self._fail(f"{self.display}: not a regular file; not read")
            identity = (fst.st_dev, fst.st_ino, fst.st_size, fst.st_mtime_ns, fst.st_ctime_ns)
            old = self.identity
            restart = (
                old is None
                or old[:2] != identity[:2]
                or self.compressed
                or fst.st_size < self.offset
            )
            if self.compressed:
                self._restart()
                archive_fd, fd = fd, -1  # the archive stream owns it now
                changed = self._read_archive(archive_fd)
            else:
                if not restart and self.offset and not self._anchor_holds(fd):
                    restart = True
                if restart:
                    self._restart()
                changed = self._read_plain(fd, fst.st_size) or restart
            # A new stat is a change even when no byte is new (a touch): a load sees it.
            changed = changed or identity != old
            self.identity = identity
            if self.read_error is not None:
                self.read_error = None
                changed = True
        except OSError as exc:
            return self._fail(f"{self.display}: cannot read: {exc.strerror or exc}")
        finally:
            if fd >= 0:
                os.close(fd)
        if changed:
            self.version += 1
        return changed

    def _fail(self, reason: str) -> bool:
        # Keep what was read before: a file that became unreadable still said it.
        if reason == self.read_error:
            return False
        self.read_error = reason
        self.version += 1
        return True

    def _restart(self) -> None:
        if self.identity is None and not (self.offset or self.problem_count or self.pending):
            return  # nothing read yet: nothing to forget
        if self.identity is not None:
            self.restarts += 1
        self.sink = self._make_sink(self._problem_at)
        self.offset = 0
        self.line = 1
        self.pending = 0
        self.anchor = b""
        self.head = b""
        self.last_event_ts = None
        self.event_lines = 0
        self.problems = []
        self.problem_count = 0

    def _anchor_holds(self, fd: int) -> bool:
        size = len(self.anchor)
        if os.pread(fd, size, self.offset - size) != self.anchor:
            return False
        return os.pread(fd, len(self.head), 0) == self.head

    def _read_plain(self, fd: int, limit: int) -> bool:
        """Read ``[offset, limit)``: up to the size seen now, so a fast writer cannot hold us."""
        position = self.offset
        os.lseek(fd, position, os.SEEK_SET)

        def read(_size: int) -> bytes:
            nonlocal position
            want = min(LOG_BLOCK, limit - position)
            if want <= 0:
                return b""
            block = os.read(fd, want)
            position += len(block)
            return block

        before = (self.offset, self.pending)
        self._scan(read)
        if self.offset != before[0]:
            size = min(_ANCHOR, self.offset)
            self.anchor = os.pread(fd, size, self.offset - size)
            if len(self.head) < _ANCHOR:
                self.head = os.pread(fd, size, 0)
        return (self.offset, self.pending) != before

    def _read_archive(self, fd: int) -> bool:
        try:
            stream = open_log(fd, name=self.path)  # owns the descriptor from here on
        except RuntimeError as exc:  # .zst without the zstandard package
            self._problem(f"{self.display}: {exc}; not read")
            return True
        with stream:

            def read(size: int) -> bytes:
                data: bytes = stream.read1(size)  # type: ignore[attr-defined]
                return data  # one decompression step: nothing lost on an error

            try:
                self._scan(read)
            except (EOFError, OSError, ValueError) as exc:
                # A truncated or damaged archive: what came before it still counts.
                self._problem_at(self.line, f"archive damaged after this line: {exc}")
            except Exception as exc:  # zstandard.ZstdError and zlib.error are not OSErrors
                self._problem_at(self.line, f"archive damaged after this line: {exc}")
        return True

    # --- lines -------------------------------------------------------------------------

    def _scan(self, read: Callable[[int], bytes]) -> None:
        """Consume every complete line ``read`` returns; the torn tail stays pending."""
        block_size = ARCHIVE_BLOCK if self.compressed else LOG_BLOCK
        first_line = line_no = self.line
        not_events = 0  # blank and bad lines; every other line is an event
        consumed = self.offset  # absolute offset just after the last newline
        long_line: LongLine | None = None
        last_buf = b""
        last_start = last_end = 0
        sink = self.sink
        get_handler = sink.handlers.get
        get_marker = sink.skip.get
        loads = orjson.loads
        missing = _MISSING
        try:
            while True:
                block = read(block_size)
                if not block:
                    break
                self.bytes_read += len(block)
                pos = 0
                if long_line is not None:
                    nl = block.find(b"\n")
                    if nl < 0:
                        long_line.add(block)
                        continue
                    long_line.add(block[:nl])
                    is_event, whole = self._finish_long_line(long_line, line_no)
                    if not is_event:
                        not_events += 1
                    elif whole is not None:
                        last_buf, last_start, last_end = whole, 0, len(whole)
                    consumed += long_line.length + 1
                    long_line = None
                    line_no += 1
                    pos = nl + 1
                find = block.find
                rfind = block.rfind
                startswith = block.startswith
                start = pos
                # The hot loop, run once per line of every log: keep it to a few operations.
                # Types come from the raw bytes (``_line`` is the readable version of this).
                while True:
                    nl = find(b"\n", pos)
                    if nl < 0:
                        break
                    if startswith(OURS, pos):
                        type_start = pos + OURS_LEN
                    else:
                        type_start = rfind(KEY, pos, nl) + KEY_LEN
                        if type_start < KEY_LEN or block[pos] != OPEN_BRACE:
                            type_start = -1
                    # Never slice with a -1 end: a hostile file of unterminated types would
                    # copy the rest of the block once per line.
                    type_end = find(b'"', type_start, nl) if type_start > 0 else -1
                    if type_end < 0:
                        if not self._odd_line(block[pos:nl], line_no):
                            not_events += 1
                        line_no += 1
                        pos = nl + 1
                        continue
                    sniffed = block[type_start:type_end]
                    marker = get_marker(sniffed, missing)
                    if marker is None:  # the most common case: a line state never needs
                        if block[nl - 1] != CLOSE_BRACE and not self._odd_line(
                            block[pos:nl], line_no
                        ):
                            not_events += 1
                    elif marker is missing:
                        entry = get_handler(sniffed)
                        if entry is None:
                            if not self._odd_line(block[pos:nl], line_no):
                                not_events += 1
                        else:
                            try:
                                data = loads(block[pos:nl])
                            except orjson.JSONDecodeError as exc:
                                self._problem_at(line_no, unreadable_reason(block[pos:nl], exc))
                                not_events += 1
                            else:
                                if type(data) is dict and data.get("event_type") == entry[0]:
                                    try:
                                        entry[1](sink, data, line_no)
                                    except FieldError as exc:
                                        self._problem_at(line_no, f"{entry[0]}: {exc}")
                                elif not self._decoded_odd(data, line_no):
                                    not_events += 1
                    elif block[nl - 1] == CLOSE_BRACE:
                        marker(sink, line_no)
                    elif not self._odd_line(block[pos:nl], line_no):
                        not_events += 1
                    line_no += 1
                    pos = nl + 1
                consumed += pos - start
                if pos > start:
                    last_start = block.rfind(b"\n", start, pos - 1) + 1 or start
                    last_buf, last_end = block, pos - 1
                if pos < len(block):
                    long_line = LongLine(block[pos:])
        finally:  # an archive may fail mid-way: keep what was consumed
            self.line = line_no
            self.event_lines += line_no - first_line - not_events
            self.offset = consumed
            self.pending = 0 if long_line is None else long_line.length
            if last_end > last_start:
                ts = sniff_timestamp(last_buf, last_start, last_end)
                if ts is not None and parse_time(ts) is not None:  # a bad last line keeps the old
                    self.last_event_ts = ts
