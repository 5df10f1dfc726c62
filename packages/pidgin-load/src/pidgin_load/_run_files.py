"""Finding run directories, and what a load reads of one (``RunFiles``).

A run directory is an experiment (``<root>/experiments/<id>/``, written by pidgin-events
or by pidgin-ai 1.x) or a chat (``<root>/chats/<stamp>_<id>/``). Which of its files a load
reads is the load contract's rule (``pidgin_events.files_a_load_reads``); how the run and
each conversation stand is the StateBuilder's (``RunFiles.state``), so that the database
says what every screen says. Only small files are read here (``experiment.jsonl``,
``manifest.json``); conversation logs are read by DuckDB, and by the StateBuilder's scan.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pidgin_events import (
    EXPERIMENT_LOG,
    MANIFEST,
    RUN_DIRS,
    RUN_LOCK,
    LogReader,
    RunKind,
    choose_logs,
    conversation_id_of_log,
    files_a_load_reads,
    run_kind_of,
)

from ._errors import LoadError

if TYPE_CHECKING:
    from pidgin_state import ExperimentState

__all__ = ["LogFile", "RunFiles", "discover_runs", "inspect_run", "running_reason"]


@dataclass(frozen=True, slots=True)
class LogFile:
    """One JSONL file of a run: its path, its name in the database, its conversation."""

    path: Path
    name: str
    conversation_id: str | None


@dataclass(slots=True)
class RunFiles:
    """What the loader knows about a run directory before DuckDB reads its logs."""

    path: Path
    kind: RunKind
    source_format: str
    """``pidgin`` or ``pidgin-ai`` (the database's spelling)."""
    experiment_id: str
    name: str | None
    logs: list[LogFile]
    """What DuckDB reads: each conversation's log, and experiment.jsonl (ours)."""
    files: list[str]
    """Every file the load reads, by the load contract (``files_a_load_reads``): the logs,
    and pidgin-ai's manifest.json. The marker records their ``FileStat``."""
    manifest: dict[str, Any] | None = None
    start: dict[str, Any] | None = None
    complete: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    """Files left out (symbolic links, second copies of a log), in words."""
    _state: ExperimentState | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def experiment_log(self) -> Path | None:
        if self.source_format == "pidgin" and any(log.name == EXPERIMENT_LOG for log in self.logs):
            return self.path / EXPERIMENT_LOG
        return None

    def state(self) -> ExperimentState:
        """The run as the StateBuilder sees it now: the statuses the database records.

        Built once, on first need: a run skipped as unchanged never pays for it.
        """
        if self._state is None:
            from pidgin_state import NotAnExperimentError, StateBuilder

            builder = StateBuilder()
            try:
                if self.kind == "chat":
                    self._state = builder.chat(self.path)
                else:
                    self._state = builder.experiment(self.path)
            except NotAnExperimentError as exc:
                raise LoadError(str(exc)) from exc
        return self._state

    def metadata(self) -> dict[str, Any]:
        """Experiment-level facts for the ``experiments`` row, from whichever record has them.

        Status and completion time are the StateBuilder's: when the events say the run
        ended, not when post-processing wrote a timestamp.
        """
        start, complete, manifest = self.start or {}, self.complete or {}, self.manifest or {}
        state = self.state()
        config = start.get("config") if self.start else manifest.get("config")
        planned = start.get("total_conversations") if self.start else None
        if planned is None:
            planned = manifest.get("total_conversations")
        if planned is None and self.kind == "chat":
            planned = 1
        completed = state.timing.completed
        return {
            "name": self.name,
            "status": state.status,
            "reason": complete.get("reason"),
            "error": complete.get("error") or manifest.get("error"),
            "planned": planned if isinstance(planned, int) else None,
            "started_at": start.get("timestamp")
            or manifest.get("started_at")
            or manifest.get("created_at"),
            "completed_at": None if completed is None else completed.isoformat(),
            "config": None if config is None else json.dumps(config),
        }

    def conversation_statuses(self) -> dict[str, str]:
        """Each conversation log's status, by file name, as the StateBuilder says."""
        return {c.log_path.name: c.status for c in self.state().conversations.values()}


def _scan(directory: Path) -> tuple[set[str], list[str]]:
    """The run's regular files, and notes on what a load leaves out.

    Symbolic links are never followed: a log linked to a file elsewhere (another run, or
    ``/etc/passwd``) would copy outside data into the database; each is reported instead.
    When a log exists both plain and compressed (an archive being made), the plain one is
    read and the other is reported, so that no event is loaded twice.
    """
    notes: list[str] = []
    regular: set[str] = set()
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        if entry.is_symlink():
            if conversation_id_of_log(entry.name) or entry.name in (EXPERIMENT_LOG, MANIFEST):
                notes.append(f"{entry.name} is a symbolic link: not followed, not loaded")
            continue
        if entry.is_file(follow_symlinks=False):
            regular.add(entry.name)
    _, ignored = choose_logs(regular)
    notes += [f"{name} ignored: {kept} holds the same conversation" for name, kept in ignored]
    return regular, notes


def _experiment_records(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The first ExperimentStartEvent and the last ExperimentCompleteEvent, as dicts.

    A completion followed by an ``ExperimentResumedEvent`` no longer holds: the resumed
    run completes again (or, killed, has no completion).
    """
    start: dict[str, Any] | None = None
    complete: dict[str, Any] | None = None
    for _, raw in LogReader(path).lines():
        # Our lines start with their event type, so most lines are not parsed at all.
        head = raw[:48]
        if not any(name in head for name in _EXPERIMENT_RECORDS):
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
        elif record.get("event_type") == "ExperimentResumedEvent":
            complete = None
    return start, complete


_EXPERIMENT_RECORDS = (
    b"ExperimentStartEvent",
    b"ExperimentCompleteEvent",
    b"ExperimentResumedEvent",
)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise LoadError(f"{path}: cannot read pidgin-ai manifest: {exc}") from exc
    if not isinstance(data, dict):
        raise LoadError(f"{path}: pidgin-ai manifest is not a JSON object")
    return data


def inspect_run(run_dir: str | os.PathLike[str]) -> RunFiles:
    """Describe a run directory; ``LoadError`` if it holds no event log at all."""
    path = Path(run_dir).absolute()
    if not path.is_dir():
        raise LoadError(f"{path}: not a directory")
    regular, notes = _scan(path)
    files = files_a_load_reads(regular)
    logs = [
        LogFile(path / name, name, conversation_id_of_log(name))
        for name in files
        if conversation_id_of_log(name)
    ]
    manifest = _read_manifest(path / MANIFEST) if MANIFEST in files else None
    start = complete = None
    if EXPERIMENT_LOG in files:
        start, complete = _experiment_records(path / EXPERIMENT_LOG)
        logs.append(LogFile(path / EXPERIMENT_LOG, EXPERIMENT_LOG, None))
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
    return RunFiles(
        path=path,
        kind=run_kind_of(path),
        source_format="pidgin" if manifest is None else "pidgin-ai",
        experiment_id=experiment_id,
        name=name if isinstance(name, str) else path.name,
        logs=logs,
        files=files,
        manifest=manifest,
        start=start,
        complete=complete,
        notes=notes,
    )


def running_reason(run: RunFiles) -> str | None:
    """Why the run is still being written, in words, or None if it is safe to load.

    The StateBuilder decides (``status == "running"``), from every signal the run has:
    its recorded end, the run lock, pidgin-ai's pid file, the age of its writes and of
    its newest events. A run that crashed or was killed is loaded as it is.
    """
    state = run.state()
    if state.status != "running":
        return None
    if state.live:
        if run.source_format == "pidgin":
            return f"its run lock {RUN_LOCK} is held by a live process"
        return "pidgin-ai's process that writes it is alive"
    if run.manifest is not None:
        return (
            f"its manifest.json says status {run.manifest.get('status')!r} and its logs "
            "were written lately"
        )
    return (
        f"it has not recorded its end, its logs were written lately and {RUN_LOCK} "
        "cannot be checked"
    )


def discover_runs(root: str | os.PathLike[str], *, include_chats: bool = True) -> list[Path]:
    """Every run directory under an output root: experiments first, then chats."""
    base = Path(root)
    found: list[Path] = []
    for kind, sub in RUN_DIRS.items():
        directory = base / sub
        if (kind == "chat" and not include_chats) or not directory.is_dir():
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
