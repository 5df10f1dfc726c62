"""Batch-load finished Pidgin experiments and chats into DuckDB: set-based, atomic, idempotent.

::

    from pidgin_load import load_experiment, load_all

    summary = load_experiment("pidgin_output/experiments/exp_3f9a1c2b7d4e")
    summary = load_all("pidgin_output")          # everything not loaded yet, or stale
    print(summary.to_json())

DuckDB is imported only when a database is opened, so importing this package is cheap.
"""

from __future__ import annotations

from typing import Any

from ._connect import DEFAULT_LOCK_TIMEOUT, LOCK_TIMEOUT_ENV
from ._empty_root import empty_root_message
from ._errors import DatabaseLockedError, ExperimentRunningError, LoadError
from ._export import EXPORT_FORMATS, export_database
from ._lake import LAKE_PAUSE_ENV, connect_lake
from ._live import LiveDatabase, live_database, needs_metrics, query_live
from ._loader import LockWait, Progress, load_all, load_experiment
from ._markers import record_load_failure
from ._paths import CHATS_DB_ENV, chats_db, default_db_path, experiments_db
from ._read import ReadTarget, connect_read_only, read_target, target_label
from ._recompute import recompute_all_metrics, recompute_metrics
from ._schema import MIGRATIONS, SCHEMA_VERSION, TABLES
from ._summary import LoadSummary, RunOutcome
from ._target import (
    LAKE_DATA_PATH_ENV,
    LAKE_PREFIX,
    TARGET_ENV,
    LakeTarget,
    default_target,
    lake_target,
)

__all__ = [
    "CHATS_DB_ENV",
    "DEFAULT_LOCK_TIMEOUT",
    "EXPORT_FORMATS",
    "LAKE_DATA_PATH_ENV",
    "LAKE_PAUSE_ENV",
    "LAKE_PREFIX",
    "LOCK_TIMEOUT_ENV",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "TARGET_ENV",
    "DatabaseLockedError",
    "ExperimentRunningError",
    "LakeTarget",
    "LiveDatabase",
    "LoadError",
    "LoadSummary",
    "LockWait",
    "Progress",
    "ReadTarget",
    "RunOutcome",
    "chats_db",
    "connect_lake",
    "connect_read_only",
    "default_db_path",
    "default_target",
    "empty_root_message",
    "experiments_db",
    "export_database",
    "lake_target",
    "live_database",
    "load_all",
    "load_experiment",
    "needs_metrics",
    "query_live",
    "read_target",
    "recompute_all_metrics",
    "recompute_metrics",
    "record_load_failure",
    "target_label",
]


def __getattr__(name: str) -> Any:
    # importlib.metadata costs milliseconds; code that never asks does not pay them.
    if name == "__version__":
        from importlib.metadata import version

        return version("pidgin-load")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
