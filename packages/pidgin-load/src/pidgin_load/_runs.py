"""Finding run directories and reading what the loader needs to know about one.

A run is an experiment (``<root>/experiments/<id>/``, written by pidgin-events or by
pidgin-ai 1.x) or a chat (``<root>/chats/<stamp>_<id>/``). Only small files are read
here (``experiment.jsonl``, ``manifest.json``); conversation logs are read by DuckDB.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from pidgin_events import (
    CHATS_DIR,
    EXPERIMENT_LOG,
    EXPERIMENTS_DIR,
    LogReader,
    conversation_id_of_log,
    is_running,
)

from ._errors import LoadError
from ._paths import is_chat_dir

__all__ = ["LogFile", "Run", "discover_runs", "inspect_run", "running_reason"]

MANIFEST = "manifest.json"
"""pidgin-ai 1.x keeps an experiment's status and counts here (rewritten after every turn)."""

_PIDGIN_AI_LIVE = frozenset({"created", "running"})
_TAIL_BYTES = 1 << 16
_COMPRESSED_RANK = {".jsonl": 0, ".gz": 1, ".zst": 2}


@dataclass(frozen=True, slots=True)
class LogFile:
    """One JSONL file of a run: its path, its name in the database, its conversation."""

    path: Path
    name: str
    conversation_id: str | None


@dataclass(slots=True)
class Run:
    """What the loader knows about a run directory before reading its logs."""

    path: Path
    kind: Literal["experiment", "chat"]
    source_format: Literal["pidgin", "pidgin-ai"]
    experiment_id: str
    name: str | None
    logs: list[LogFile]
    manifest: dict[str, Any] | None = None
    start: dict[str, Any] | None = None
    complete: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    """Files left out (symbolic links, second copies of a log), in words."""

    @property
    def experiment_log(self) -> Path | None:
        if self.source_format == "pidgin" and any(log.name == EXPERIMENT_LOG for log in self.logs):
            return self.path / EXPERIMENT_LOG
        return None

    @property
    def finished(self) -> bool:
        """Whether the run says it ended (completion event, or a final manifest status)."""
        if self.manifest is not None:
            return str(self.manifest.get("status")) not in _PIDGIN_AI_LIVE
        if self.kind == "chat":
            return all(_ends_with_end_event(log.path) for log in self.logs)
        return self.complete is not None

    def metadata(self) -> dict[str, Any]:
        """Experiment-level facts for the ``experiments`` row, from whichever record has them."""
        start, complete, manifest = self.start or {}, self.complete or {}, self.manifest or {}
        config = start.get("config") if self.start else manifest.get("config")
        planned = start.get("total_conversations") if self.start else None
        if planned is None:
            planned = manifest.get("total_conversations")
        if planned is None and self.kind == "chat":
            planned = 1
        return {
            "name": self.name,
            "status": complete.get("status") or manifest.get("status"),
            "reason": complete.get("reason"),
            "error": complete.get("error") or manifest.get("error"),
            "planned": planned if isinstance(planned, int) else None,
            "started_at": start.get("timestamp")
            or manifest.get("started_at")
            or manifest.get("created_at"),
            "completed_at": complete.get("timestamp") or manifest.get("completed_at"),
            "config": None if config is None else json.dumps(config),
        }


def _ends_with_end_event(path: Path) -> bool:
    """Whether a conversation log's last line is its ConversationEndEvent (archives: yes)."""
    if path.suffix != ".jsonl":
        return True  # logs are compressed only after their run ended
    try:
        with open(path, "rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - _TAIL_BYTES))
            tail = stream.read()
    except OSError:
        return False
    lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
    return b'"event_type":"ConversationEndEvent"' in lines[-1].replace(b" ", b"")


def _scan(directory: Path) -> tuple[list[LogFile], set[str], list[str]]:
    """The run's conversation logs (one per conversation), its other regular files, and notes.

    Symbolic links are never followed: a log linked to a file elsewhere (another run, or
    ``/etc/passwd``) would copy outside data into the database; each is reported instead.
    When a log exists both plain and compressed (an archive being made), the plain one is
    read and the other is reported, so that no event is loaded twice.
    """
    chosen: dict[str, tuple[int, Path]] = {}
    notes: list[str] = []
    regular: set[str] = set()
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        name = entry.name
        conversation_id = conversation_id_of_log(name)
        wanted = conversation_id is not None or name in (EXPERIMENT_LOG, MANIFEST)
        if entry.is_symlink():
            if wanted:
                notes.append(f"{name} is a symbolic link: not followed, not loaded")
            continue
        if not entry.is_file(follow_symlinks=False):
            continue
        regular.add(name)
        if conversation_id is None:
            continue
        rank = _COMPRESSED_RANK[Path(name).suffix]
        previous = chosen.get(conversation_id)
        if previous is None or rank < previous[0]:
            if previous is not None:
                notes.append(f"{previous[1].name} ignored: {name} holds the same conversation")
            chosen[conversation_id] = (rank, directory / name)
        else:
            notes.append(
                f"{name} ignored: {chosen[conversation_id][1].name} holds the same conversation"
            )
    logs = [
        LogFile(path, path.name, conversation_id)
        for conversation_id, (_, path) in sorted(chosen.items(), key=lambda item: item[1][1].name)
    ]
    return logs, regular, notes


def _experiment_records(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The first ExperimentStartEvent and the last ExperimentCompleteEvent, as dicts."""
    start: dict[str, Any] | None = None
    complete: dict[str, Any] | None = None
    for _, raw in LogReader(path).lines():
        # Our lines start with their event type, so most lines are not parsed at all.
        head = raw[:48]
        if b"ExperimentStartEvent" not in head and b"ExperimentCompleteEvent" not in head:
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # the database load records it in load_errors
        if not isinstance(record, dict):
            continue
        if record.get("event_type") == "ExperimentStartEvent" and start is None:
            start = record
        elif record.get("event_type") == "ExperimentCompleteEvent":
            complete = record
    return start, complete


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise LoadError(f"{path}: cannot read pidgin-ai manifest: {exc}") from exc
    if not isinstance(data, dict):
        raise LoadError(f"{path}: pidgin-ai manifest is not a JSON object")
    return data


def inspect_run(run_dir: str | os.PathLike[str]) -> Run:
    """Describe a run directory; ``LoadError`` if it holds no event log at all."""
    path = Path(run_dir).absolute()
    if not path.is_dir():
        raise LoadError(f"{path}: not a directory")
    logs, regular, notes = _scan(path)
    experiment_log = path / EXPERIMENT_LOG
    manifest = _read_manifest(path / MANIFEST) if MANIFEST in regular else None
    kind: Literal["experiment", "chat"] = "chat" if is_chat_dir(path) else "experiment"
    start = complete = None
    if manifest is None and EXPERIMENT_LOG in regular:
        start, complete = _experiment_records(experiment_log)
        logs.append(LogFile(experiment_log, EXPERIMENT_LOG, None))
    if not logs:
        raise LoadError(
            f"{path}: not a Pidgin run directory (no {EXPERIMENT_LOG} and no "
            "<conversation_id>_events.jsonl or events_<conversation_id>.jsonl logs)"
        )
    if manifest is not None:
        experiment_id = str(manifest.get("experiment_id") or path.name)
        name = manifest.get("name")
    elif start is not None and isinstance(start.get("experiment_id"), str):
        experiment_id = start["experiment_id"]
        name = start.get("name")
    else:
        experiment_id, name = path.name, None
    return Run(
        path=path,
        kind=kind,
        source_format="pidgin" if manifest is None else "pidgin-ai",
        experiment_id=experiment_id,
        name=name if isinstance(name, str) else path.name,
        logs=logs,
        manifest=manifest,
        start=start,
        complete=complete,
        notes=notes,
    )


def running_reason(run: Run) -> str | None:
    """Why the run looks like it is still being written, or None if it is safe to load.

    The run lock is authoritative: a crashed run released it, so it is loaded as it is.
    Where the lock cannot be probed, a run without its completion record counts as live.
    pidgin-ai 1.x holds no lock, so its manifest's status is believed.
    """
    live = is_running(run.path)
    if live:
        return "its run lock .pidgin.lock is held by a live process"
    if run.manifest is not None and not run.finished:
        return f"its manifest.json says status {run.manifest.get('status')!r}"
    if live is None and not run.finished:
        return "it has no completion event and its lock cannot be checked here"
    return None


def discover_runs(root: str | os.PathLike[str], *, include_chats: bool = True) -> list[Path]:
    """Every run directory under an output root: experiments first, then chats."""
    base = Path(root)
    found: list[Path] = []
    for sub in (EXPERIMENTS_DIR, CHATS_DIR) if include_chats else (EXPERIMENTS_DIR,):
        directory = base / sub
        if not directory.is_dir():
            continue
        with os.scandir(directory) as entries:
            candidates = sorted(
                entry.name for entry in entries if entry.is_dir() and not entry.name.startswith(".")
            )
        for name in candidates:
            candidate = directory / name
            if (
                (candidate / EXPERIMENT_LOG).is_file()
                or (candidate / MANIFEST).is_file()
                or any(conversation_id_of_log(p.name) for p in candidate.iterdir())
            ):
                found.append(candidate)
    return found
