"""Errors a load can end with; each message says what to do next."""

from __future__ import annotations

__all__ = ["DatabaseLockedError", "ExperimentRunningError", "LoadError"]


class LoadError(Exception):
    """A run could not be loaded; nothing of it was written to the database."""


class DatabaseLockedError(LoadError):
    """Another process holds the database file: DuckDB allows a single writer."""

    def __init__(self, db_path: str, detail: str, waited: float) -> None:
        self.db_path = db_path
        self.detail = detail
        self.waited = waited
        super().__init__(
            f"database {db_path} is locked by another process (waited {waited:.1f} s: {detail}); "
            "nothing was loaded. Close the other program, then load later with "
            "`pidgin-load --all ROOT` or `pidgin load-db --all`."
        )


class ExperimentRunningError(LoadError):
    """The run is still being written; loading it now would load half of it."""

    def __init__(self, run_dir: str, why: str) -> None:
        self.run_dir = run_dir
        super().__init__(
            f"{run_dir} is still running ({why}); load it after it finishes, "
            "or pass force/--force to load what is there now"
        )
