"""Where the databases live by default, and how to point elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

from pidgin_events import EXPERIMENTS_DIR, output_root, run_kind_of

__all__ = [
    "CHATS_DB_ENV",
    "EXPERIMENTS_DB_NAME",
    "chats_db",
    "default_db_path",
    "experiments_db",
]

EXPERIMENTS_DB_NAME = "experiments.duckdb"
CHATS_DB_ENV = "PIDGIN_CHATS_DB"
"""Environment variable that moves the chats database away from ``~/.pidgin/chats.duckdb``."""


def experiments_db(root: str | os.PathLike[str] | None = None) -> Path:
    """``<root>/experiments/experiments.duckdb``; root as for ``pidgin_events.output_root``."""
    return output_root(root) / EXPERIMENTS_DIR / EXPERIMENTS_DB_NAME


def chats_db() -> Path:
    """``$PIDGIN_CHATS_DB``, else ``~/.pidgin/chats.duckdb``: one place for every chat."""
    from_env = os.environ.get(CHATS_DB_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path.home() / ".pidgin" / "chats.duckdb"


def default_db_path(run_dir: str | os.PathLike[str]) -> Path:
    """The database a run loads into when no path is given.

    Chats share ``chats_db()``; an experiment loads into ``experiments.duckdb`` beside its
    directory, which for ``<root>/experiments/<id>/`` is ``experiments_db(root)``.
    """
    if run_kind_of(run_dir) == "chat":
        return chats_db()
    return Path(run_dir).absolute().parent / EXPERIMENTS_DB_NAME
