"""Lines of an event log judged one at a time: the slow path beside ``_scan``'s hot loop.

What a sink is (``Sink``: handlers of decoded events, and the types it skips), and what a
cursor does with a line the hot loop could not place: a line spanning blocks, one whose
type is unknown or misplaced, one that is not JSON. Each ends as a counted event or as a
problem ``file:line: reason``, never as an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import orjson

from pidgin_events import EVENT_LINE_PREFIX, EVENT_TYPES, json_type, unreadable_reason

__all__ = [
    "CLOSE_BRACE",
    "KEY",
    "KEY_LEN",
    "MAX_LINE",
    "MAX_PROBLEMS_PER_FILE",
    "OPEN_BRACE",
    "OURS",
    "OURS_LEN",
    "FieldError",
    "Handler",
    "LineJudge",
    "LongLine",
    "Presence",
    "Report",
    "S",
    "Sink",
    "sniff_timestamp",
]

MAX_LINE = 1 << 26
"""Lines longer than this (64 MiB) are never held whole: judged by their head and tail only."""
_TAIL_KEEP = 1 << 16
MAX_PROBLEMS_PER_FILE = 20

OURS = EVENT_LINE_PREFIX
OURS_LEN = len(OURS)
KEY = EVENT_LINE_PREFIX[1:]  # pidgin-ai's lines carry it last, after a comma
KEY_LEN = len(KEY)
_TIMESTAMP_KEY = b'"timestamp":"'
OPEN_BRACE = 0x7B
CLOSE_BRACE = 0x7D
_KNOWN_TYPES = frozenset(EVENT_TYPES)


class FieldError(ValueError):
    """A handled event has a field of the wrong type; the line is reported and ignored."""


Handler = Callable[[Any, dict[str, Any], int], None]
"""Called as ``handler(sink, decoded_object, line_number)``."""
Presence = Callable[[Any, int], None]
"""Called as ``presence(sink, line_number)`` for an event whose content is not needed."""


class Sink(Protocol):
    """Aggregates the events of one log (a conversation, or the experiment log)."""

    @property
    def handlers(self) -> Mapping[bytes, tuple[str, Handler]]:
        """Sniffed type name -> (type name, handler of the decoded object and line number)."""

    @property
    def skip(self) -> Mapping[bytes, Presence | None]:
        """Types that belong in this log whose content state never needs: not decoded.

        A ``Presence`` is called with the line number when only the event's presence matters.
        """


S = TypeVar("S", bound=Sink)
Report = Callable[[int, str], None]
"""Records a problem at a line of the log being read."""


class LongLine:
    """A line that spans blocks; whole up to ``MAX_LINE``, then only its head and tail."""

    __slots__ = ("chunks", "head", "length", "tail")

    def __init__(self, first: bytes) -> None:
        self.chunks: list[bytes] | None = [first]
        self.head = first[:256]
        self.tail = b""
        self.length = len(first)

    def add(self, chunk: bytes) -> None:
        self.length += len(chunk)
        if self.chunks is not None:
            self.chunks.append(chunk)
            if self.length > MAX_LINE:  # stop holding it: memory must not grow with a line
                self.tail = b"".join(self.chunks)[-_TAIL_KEEP:]
                self.chunks = None
        else:
            self.tail = (self.tail + chunk)[-_TAIL_KEEP:]


class LineJudge:
    """The slow path of a log cursor: lines judged one by one, and problems counted."""

    sink: Any
    display: str
    problems: list[str]
    problem_count: int

    def _line(self, buf: bytes, start: int, end: int, line_no: int) -> bool:
        """Handle one non-empty line; True if it was an event (for the last-event time)."""
        sink = self.sink
        if buf.startswith(OURS, start):
            type_start = start + OURS_LEN
        else:
            key = buf.rfind(KEY, start, end)
            if key < 0:
                return self._odd_line(buf[start:end], line_no)
            type_start = key + KEY_LEN
        type_end = buf.find(b'"', type_start, end)
        if type_end < 0:
            return self._odd_line(buf[start:end], line_no)
        sniffed = buf[type_start:type_end]
        entry = sink.handlers.get(sniffed)
        if entry is not None:
            return self._decode(buf[start:end], entry, line_no)
        if sniffed in sink.skip and buf[start] == OPEN_BRACE and buf[end - 1] == CLOSE_BRACE:
            marker = sink.skip[sniffed]
            if marker is not None:
                marker(sink, line_no)
            return True
        return self._odd_line(buf[start:end], line_no)

    def _decode(self, raw: bytes, entry: tuple[str, Handler], line_no: int) -> bool:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self._problem_at(line_no, unreadable_reason(raw, exc))
            return False
        name, handler = entry
        if type(data) is not dict or data.get("event_type") != name:
            return self._decoded_odd(data, line_no)
        try:
            handler(self.sink, data, line_no)
        except FieldError as exc:
            self._problem_at(line_no, f"{name}: {exc}")
        return True

    def _decoded_odd(self, data: Any, line_no: int) -> bool:
        """A decoded line whose sniffed type was wrong (a nested key) or that is no object."""
        if type(data) is not dict:
            self._problem_at(line_no, f"expected a JSON object, got {json_type(data)}")
            return False
        return self._decoded(data, line_no)

    def _odd_line(self, raw: bytes, line_no: int) -> bool:
        """A line the fast path could not place: decode it to say exactly what it is."""
        stripped = raw.strip()
        if not stripped:
            return False  # blank lines are allowed, as in pidgin_events
        if stripped is not raw and stripped[:1] == b"{":
            raw = stripped
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self._problem_at(line_no, unreadable_reason(raw, exc))
            return False
        return self._decoded_odd(data, line_no)

    def _decoded(self, data: dict[str, Any], line_no: int) -> bool:
        event_type = data.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            self._problem_at(line_no, "no 'event_type' string")
            return False
        key = event_type.encode()
        entry = self.sink.handlers.get(key)
        if entry is not None:
            try:
                entry[1](self.sink, data, line_no)
            except FieldError as exc:
                self._problem_at(line_no, f"{event_type}: {exc}")
            return True
        if key in self.sink.skip:
            marker = self.sink.skip[key]
            if marker is not None:
                marker(self.sink, line_no)
            return True
        if event_type in _KNOWN_TYPES:
            self._problem_at(line_no, f"{event_type} does not belong in this log; ignored")
        else:
            self._problem_at(line_no, f"unknown event type {event_type!r}; ignored")
        return True

    def _finish_long_line(self, long_line: LongLine, line_no: int) -> tuple[bool, bytes | None]:
        """Handle a line that spanned blocks: (was it an event, its bytes if still held)."""
        if long_line.chunks is not None:
            whole = b"".join(long_line.chunks)
            return self._line(whole, 0, len(whole), line_no), whole
        head, tail = long_line.head.lstrip(), long_line.tail.rstrip()
        if head.startswith(OURS):
            sniffed = head[OURS_LEN:].partition(b'"')[0]
        else:
            key = tail.rfind(KEY)
            sniffed = tail[key + KEY_LEN :].partition(b'"')[0] if key >= 0 else b""
        if sniffed in self.sink.skip and head[:1] == b"{" and tail[-1:] == b"}":
            marker = self.sink.skip[sniffed]
            if marker is not None:
                marker(self.sink, line_no)
            return True, None
        size = long_line.length
        if not head.startswith(b"{"):
            self._problem_at(line_no, f"not a JSON object ({size} bytes without a newline)")
        else:
            what = f" ({sniffed.decode(errors='replace')})" if sniffed else ""
            self._problem_at(
                line_no, f"line of {size} bytes{what} is longer than {MAX_LINE}; not read"
            )
        return False, None

    # --- problems ----------------------------------------------------------------------

    def _problem_at(self, line_no: int, reason: str) -> None:
        self._problem(f"{self.display}:{line_no}: {reason}")

    def _problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_PER_FILE:
            self.problems.append(text)


def sniff_timestamp(buf: bytes, start: int, end: int) -> str | None:
    """The top-level ``timestamp`` of an event line, found without decoding it."""
    if buf.startswith(OURS, start):
        key = buf.find(_TIMESTAMP_KEY, start, min(end, start + 200))
    else:
        key = buf.rfind(_TIMESTAMP_KEY, start, end)  # pidgin-ai: the last one is top-level
    if key < 0:
        return None
    value_start = key + len(_TIMESTAMP_KEY)
    value_end = buf.find(b'"', value_start, min(end, value_start + 64))
    if value_end < 0:
        return None
    try:
        return buf[value_start:value_end].decode("ascii")
    except UnicodeDecodeError:
        return None
