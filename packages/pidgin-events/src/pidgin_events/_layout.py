"""Where Pidgin keeps things on disk; every package finds files through these names.

"Run" means one thing on disk: a *run directory*, an experiment
(``<root>/experiments/<id>/``) or a chat (``<root>/chats/<stamp>_<id>/``), written by
Pidgin or by pidgin-ai 1.x. Its parts have their own names: the *recorder* writes it
(``Experiment``/``Chat``), the *runner* is the background process of ``pidgin run``,
the *state* is what pidgin-state rebuilds from it, and the loader's ``RunFiles`` is
what a load reads of it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ._ids import validate_id

__all__ = [
    "CHATS_DIR",
    "EVENT_LINE_PREFIX",
    "EXPERIMENTS_DIR",
    "EXPERIMENT_LOG",
    "LOADED_MARKER",
    "LOAD_FAILED_MARKER",
    "MANIFEST",
    "OUTPUT_ENV",
    "RUN_DIRS",
    "RUN_LOCK",
    "conversation_id_of_log",
    "conversation_log_path",
    "output_root",
    "run_kind_of",
]

TYPE_CHECKING = False  # typing costs agent code milliseconds at import
if TYPE_CHECKING:
    from ._vocabulary import RunKind

OUTPUT_ENV = "PIDGIN_OUTPUT"
"""Environment variable naming the output root when no ``-o`` is given."""
DEFAULT_OUTPUT_ROOT = "pidgin_output"
EXPERIMENTS_DIR = "experiments"
CHATS_DIR = "chats"
RUN_DIRS: dict[RunKind, str] = {"experiment": EXPERIMENTS_DIR, "chat": CHATS_DIR}
"""The folder under the output root that holds each kind of run directory."""
MANIFEST = "manifest.json"
"""pidgin-ai 1.x's experiment record, rewritten in place after every turn."""
EVENT_LINE_PREFIX = b'{"event_type":"'
"""How every line Pidgin writes begins: readers sniff the type without decoding the line.
pidgin-ai 1.x lines put ``event_type`` last; readers look there when this prefix is absent."""
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
    from_env = os.environ.get(OUTPUT_ENV)
    return Path(from_env) if from_env else Path(DEFAULT_OUTPUT_ROOT)


def run_kind_of(directory: str | os.PathLike[str]) -> RunKind:
    """A run directory's kind, from where it sits: a chat under ``chats/``, else an experiment."""
    parent = os.path.basename(os.path.dirname(os.path.abspath(directory)))
    return "chat" if parent == CHATS_DIR else "experiment"


def conversation_log_path(directory: Path, conversation_id: str) -> Path:
    """The event log of one conversation inside a run directory."""
    return directory / f"{validate_id(conversation_id, 'conversation id')}_events.jsonl"


def conversation_id_of_log(filename: str) -> str | None:
    """The conversation id a log file name stands for, or None if it is not a conversation log."""
    match = _LOG_NAME.fullmatch(filename)
    if match is None:
        return None
    return match["ours"] or match["legacy"]
