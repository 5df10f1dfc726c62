"""Whether a loaded run changed since its load, by the loader's own rule, from ``stat`` only.

pidgin-load's ``.loaded_to_db`` marker lists every file its load read (``files``: name,
size, ``mtime_ns``) and fingerprints that list; it calls a run stale when the list made
from the files on disk now differs. The same comparison is made here, entry by entry, with
the sizes and times the state builder's directory scan already has: no file is hashed.
pidgin-state does not import pidgin-load; what must match it is spelled out here:

* The files a load reads: each conversation log (``<id>_events.jsonl``,
  ``events_<id>.jsonl``; one per conversation, the plain log before its ``.gz`` before
  its ``.zst``), pidgin-ai's ``manifest.json``, and ``experiment.jsonl`` when there is
  no manifest. Only regular files: a symbolic link is never loaded.
* ``experiment.jsonl`` is recorded by size alone (``mtime_ns`` null): the loader and the
  runner append bookkeeping events to it after a load (``BOOKKEEPING_EVENTS``). It has
  changed only if it shrank or something other than such lines was appended, which
  costs reading what was appended after the load, once per change.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pidgin_events import EXPERIMENT_LOG, conversation_id_of_log

__all__ = [
    "BOOKKEEPING_EVENTS",
    "DiskFile",
    "changes_since_load",
    "files_a_load_reads",
    "only_bookkeeping_after",
]

MANIFEST = "manifest.json"
BOOKKEEPING_EVENTS = (
    "DatabaseLoadEvent",
    "PostProcessingStartEvent",
    "PostProcessingCompleteEvent",
)
"""Events appended to experiment.jsonl about a run's loading; they never make it stale."""
_BOOKKEEPING_PREFIXES = tuple(f'{{"event_type":"{name}"'.encode() for name in BOOKKEEPING_EVENTS)
_LOG_RANK = {".gz": 1, ".zst": 2}
_BLOCK = 1 << 16
_MAX_BOOKKEEPING_LINE = 1 << 16
"""A line longer than this is no bookkeeping event (they are a few hundred bytes)."""


DiskFile = tuple[int, int]
"""``(size, mtime_ns)`` of one regular file (never a symbolic link) as the directory scan saw
it: a plain tuple, since a refresh makes one per file and compares them all."""


def files_a_load_reads(disk: Mapping[str, DiskFile]) -> dict[str, DiskFile]:
    """The files among ``disk`` (name -> stat) that a load would read now, by name."""
    chosen: dict[str, tuple[int, str]] = {}
    for name in sorted(disk):
        conversation_id = conversation_id_of_log(name)
        if conversation_id is None:
            continue
        rank = _LOG_RANK.get(os.path.splitext(name)[1], 0)
        previous = chosen.get(conversation_id)
        if previous is None or rank < previous[0]:
            chosen[conversation_id] = (rank, name)
    names = [name for _, name in chosen.values()]
    if MANIFEST in disk:
        names.append(MANIFEST)
    elif EXPERIMENT_LOG in disk:
        names.append(EXPERIMENT_LOG)
    return {name: disk[name] for name in names}


def changes_since_load(
    recorded: Any,
    now: Mapping[str, DiskFile],
    bookkeeping_only_after: Callable[[int], bool],
) -> list[str] | None:
    """How the files differ from the marker's ``files`` list, in words (none: unchanged).

    ``recorded`` is the marker's ``files`` value as read (None when it has no usable
    list: then nobody can tell, and None is returned). ``now`` is ``files_a_load_reads``.
    ``bookkeeping_only_after(size)`` tells whether experiment.jsonl holds nothing but
    bookkeeping lines after ``size`` bytes.
    """
    if not isinstance(recorded, list):
        return None
    before: dict[str, dict[str, Any]] = {}
    for entry in recorded:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            before[entry["name"]] = entry
    if recorded and not before:
        return None
    changes = [f"{name} is new" for name in sorted(now.keys() - before.keys())]
    changes += [f"{name} was removed" for name in sorted(before.keys() - now.keys())]
    for name in sorted(now.keys() & before.keys()):
        old = before[name]
        old_size = old.get("size")
        size, mtime_ns = now[name]
        if name == EXPERIMENT_LOG:
            if isinstance(old_size, int) and size > old_size:
                if not bookkeeping_only_after(old_size):
                    changes.append(f"{name} has new events (not the loader's own)")
                continue
            if old_size != size:
                changes.append(f"{name} changed size from {old_size} to {size} bytes")
            continue
        if old_size != size:
            changes.append(f"{name} changed size from {old_size} to {size} bytes")
        elif "mtime_ns" in old and old["mtime_ns"] != mtime_ns:
            changes.append(f"{name} was modified")
    return changes


def only_bookkeeping_after(path: str, offset: int, size: int) -> bool:
    """Whether bytes ``[offset, size)`` of ``path`` are whole bookkeeping lines only.

    Blank lines are allowed; a line without its newline yet is not (the loader counts
    it as a change). Stops at the first line that is something else.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        return _all_bookkeeping(_blocks(fd, offset, size))
    except OSError:
        return False
    finally:
        os.close(fd)


def _blocks(fd: int, offset: int, size: int) -> Iterable[bytes]:
    while offset < size:
        block = os.pread(fd, min(_BLOCK, size - offset), offset)
        if not block:
            return
        offset += len(block)
        yield block


def _all_bookkeeping(blocks: Iterable[bytes]) -> bool:
    rest = b""
    for block in blocks:
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.strip() and not line.startswith(_BOOKKEEPING_PREFIXES):
                return False
        if len(rest) > _MAX_BOOKKEEPING_LINE:
            return False
    return rest == b""
