"""Where Pidgin keeps things on disk; every package finds files through these names."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ._ids import validate_id

__all__ = [
    "CHATS_DIR",
    "EXPERIMENTS_DIR",
    "EXPERIMENT_LOG",
    "LOADED_MARKER",
    "LOAD_FAILED_MARKER",
    "RUN_LOCK",
    "conversation_id_of_log",
    "conversation_log_path",
    "output_root",
]

EXPERIMENTS_DIR = "experiments"
CHATS_DIR = "chats"
EXPERIMENT_LOG = "experiment.jsonl"
"""Experiment-level events (start, complete, post-processing, database load), append-only."""
RUN_LOCK = ".pidgin.lock"
"""Held (``flock``) by every live writer of a run; a crash releases it."""
LOADED_MARKER = ".loaded_to_db"
"""Written by the loader after its commit: what was loaded, when, and its fingerprint."""
LOAD_FAILED_MARKER = ".load_failed"
"""Written when an automatic load failed: why, so that a later ``load --all`` retries."""

# ``<id>_events.jsonl`` (ours) or ``events_<id>.jsonl`` (pidgin-ai 1.x), optionally compressed.
_LOG_NAME = re.compile(
    r"(?:(?P<ours>[A-Za-z0-9][A-Za-z0-9_.-]*)_events|events_(?P<legacy>[A-Za-z0-9][A-Za-z0-9_.-]*))"
    r"\.jsonl(?:\.gz|\.zst)?"
)


def output_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The output root: the argument, else ``$PIDGIN_OUTPUT``, else ``./pidgin_output``."""
    if root is not None and str(root) != "":
        return Path(root)
    from_env = os.environ.get("PIDGIN_OUTPUT")
    return Path(from_env) if from_env else Path("pidgin_output")


def conversation_log_path(directory: Path, conversation_id: str) -> Path:
    """The event log of one conversation inside a run directory."""
    return directory / f"{validate_id(conversation_id, 'conversation id')}_events.jsonl"


def conversation_id_of_log(filename: str) -> str | None:
    """The conversation id a log file name stands for, or None if it is not a conversation log."""
    match = _LOG_NAME.fullmatch(filename)
    if match is None:
        return None
    return match["ours"] or match["legacy"]
