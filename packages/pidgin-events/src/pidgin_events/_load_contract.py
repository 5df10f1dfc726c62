"""The load contract: what a load of a run directory reads, and how to tell it changed since.

pidgin-load writes ``.loaded_to_db`` after its commit; pidgin-state reads it to say whether
a loaded run is stale; both decide with the functions here, so that "stale" on a screen
means "the next load reloads it". The rules:

* The files a load reads (``files_a_load_reads``): each conversation log
  (``<id>_events.jsonl`` or ``events_<id>.jsonl``; one per conversation, the plain log
  before its ``.gz`` before its ``.zst``), pidgin-ai's ``manifest.json``, and
  ``experiment.jsonl`` when there is no manifest. Regular files only: a symbolic link is
  never loaded.
* Bookkeeping events (``BOOKKEEPING_EVENTS``) are about loading a run, not part of it:
  the loader and the runner append them to ``experiment.jsonl`` around each load. A load
  leaves them out of the database, and they never make a run stale.
* The marker lists each file read with its size and ``mtime_ns`` (``FileStat``) and a
  fingerprint of that list; ``experiment.jsonl`` is listed by size alone (``mtime_ns``
  null), since bookkeeping lines are appended to it after the load.
* A run changed since its load (``changes_since_load``) when a file read is new, gone,
  of another size or (except ``experiment.jsonl``) another ``mtime_ns``, or when
  ``experiment.jsonl`` grew by anything but whole bookkeeping lines. A rewrite keeping
  both size and mtime is not seen; ``--force`` reloads then.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._fileio import FILE_MODE, open_for_reading
from ._layout import (
    EVENT_LINE_PREFIX,
    EXPERIMENT_LOG,
    LOADED_MARKER,
    MANIFEST,
    conversation_id_of_log,
)

__all__ = [
    "BOOKKEEPING_EVENTS",
    "BOOKKEEPING_PREFIXES",
    "FileStat",
    "LoadedMarker",
    "changes_since_load",
    "choose_logs",
    "files_a_load_reads",
    "fingerprint",
    "only_bookkeeping_after",
    "read_marker",
    "stat_files",
    "write_json_atomic",
    "write_loaded_marker",
]

BOOKKEEPING_EVENTS = (
    "DatabaseLoadEvent",
    "PostProcessingStartEvent",
    "PostProcessingCompleteEvent",
)
"""Events about loading a run, appended to experiment.jsonl around each load."""
BOOKKEEPING_PREFIXES = tuple(EVENT_LINE_PREFIX + f'{name}"'.encode() for name in BOOKKEEPING_EVENTS)
"""How a bookkeeping line begins (every line Pidgin writes starts with its type)."""
_ARCHIVE_RANK = {".gz": 1, ".zst": 2}
_BLOCK = 1 << 16
_MAX_BOOKKEEPING_LINE = 1 << 16
"""A line longer than this is no bookkeeping event (they are a few hundred bytes)."""
_MAX_MARKER = 16 << 20


@dataclass(frozen=True, slots=True)
class FileStat:
    """What the marker records of one file a load read."""

    name: str
    size: int
    mtime_ns: int | None
    """None for experiment.jsonl, which bookkeeping lines are appended to after a load."""

    @classmethod
    def of(cls, name: str, size: int, mtime_ns: int) -> FileStat:
        return cls(name, size, None if name == EXPERIMENT_LOG else mtime_ns)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}


def choose_logs(names: Iterable[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """One log per conversation among file ``names``: ``{conversation_id: name}``, and each
    ``(ignored, kept)`` pair of a second copy (an archive being made beside its log)."""
    chosen: dict[str, str] = {}
    ignored: list[tuple[str, str]] = []
    for name in sorted(names):
        conversation_id = conversation_id_of_log(name)
        if conversation_id is None:
            continue
        previous = chosen.get(conversation_id)
        if previous is None:
            chosen[conversation_id] = name
        elif _rank(name) < _rank(previous):
            chosen[conversation_id] = name
            ignored.append((previous, name))
        else:
            ignored.append((name, previous))
    return chosen, ignored


def files_a_load_reads(names: Iterable[str]) -> list[str]:
    """The names among a run directory's regular files that a load reads, sorted."""
    present = set(names)
    chosen, _ = choose_logs(present)
    read = list(chosen.values())
    if MANIFEST in present:
        read.append(MANIFEST)
    elif EXPERIMENT_LOG in present:
        read.append(EXPERIMENT_LOG)
    return sorted(read)


def stat_files(directory: str | os.PathLike[str], names: Iterable[str]) -> dict[str, FileStat]:
    """``FileStat`` of each name in ``directory`` (``lstat``: a link is not its target)."""
    found = {}
    for name in names:
        info = os.stat(os.path.join(directory, name), follow_symlinks=False)
        found[name] = FileStat.of(name, info.st_size, info.st_mtime_ns)
    return found


def fingerprint(stats: Iterable[FileStat]) -> str:
    """A digest of the files a load read: equal lists, equal fingerprints."""
    digest = hashlib.sha256()
    for entry in sorted(stats, key=lambda entry: entry.name):
        digest.update(f"{entry.name}\0{entry.size}\0{entry.mtime_ns}\n".encode())
    return "stat-v1:" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class LoadedMarker:
    """The fields of ``.loaded_to_db``, written after the loader's commit."""

    loaded_at: str
    """ISO 8601, UTC."""
    db_path: str
    schema_version: int
    experiment_id: str
    files: tuple[FileStat, ...]
    rows: Mapping[str, int]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "loaded_at": self.loaded_at,
            "db_path": self.db_path,
            "schema_version": self.schema_version,
            "experiment_id": self.experiment_id,
            "files": [entry.to_dict() for entry in sorted(self.files, key=lambda f: f.name)],
            "fingerprint": self.fingerprint,
            "rows": dict(self.rows),
        }


def write_loaded_marker(directory: str | os.PathLike[str], marker: LoadedMarker) -> None:
    """Write ``.loaded_to_db`` atomically: readers see the old marker or the new, never half."""
    write_json_atomic(Path(directory) / LOADED_MARKER, marker.to_dict())


def write_json_atomic(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new, never half."""
    target = Path(path)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, sort_keys=True)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_marker(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A marker's JSON object, or None if it is absent, a link, too big or not an object."""
    try:
        fd = open_for_reading(path)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_MARKER:
            return None
        raw = os.read(fd, info.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def changes_since_load(
    recorded: Any,
    now: Mapping[str, FileStat],
    bookkeeping_only_after: Callable[[int], bool],
) -> list[str] | None:
    """How the files differ from the marker's ``files`` list, in words (empty: unchanged).

    ``recorded`` is the marker's ``files`` value as read; None is returned when it is no
    usable list (then nobody can tell). ``now`` is the ``FileStat`` of each file a load
    would read now (``files_a_load_reads``). ``bookkeeping_only_after(size)`` says whether
    experiment.jsonl holds nothing but bookkeeping lines after ``size`` bytes.
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
        old_size, current = before[name].get("size"), now[name]
        if name == EXPERIMENT_LOG and isinstance(old_size, int) and current.size > old_size:
            if not bookkeeping_only_after(old_size):
                changes.append(f"{name} has new events (not the loader's own)")
        elif old_size != current.size:
            changes.append(f"{name} changed size from {old_size} to {current.size} bytes")
        elif before[name].get("mtime_ns") != current.mtime_ns:
            changes.append(f"{name} was modified")
    return changes


def only_bookkeeping_after(path: str | os.PathLike[str], offset: int, size: int) -> bool:
    """Whether bytes ``[offset, size)`` of ``path`` are whole bookkeeping lines only.

    Blank lines are allowed; a line without its newline yet is not (a change in progress).
    Stops at the first line that is something else.
    """
    try:
        fd = open_for_reading(path)
    except OSError:
        return False
    try:
        return _all_bookkeeping(_blocks(fd, offset, size))
    except OSError:
        return False
    finally:
        os.close(fd)


def _rank(name: str) -> int:
    return _ARCHIVE_RANK.get(os.path.splitext(name)[1], 0)


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
            if line.strip() and not line.startswith(BOOKKEEPING_PREFIXES):
                return False
        if len(rest) > _MAX_BOOKKEEPING_LINE:
            return False
    return rest == b""
