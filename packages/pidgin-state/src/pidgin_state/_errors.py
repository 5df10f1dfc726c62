"""The one exception the state builder raises on purpose."""

from __future__ import annotations

import os

__all__ = ["NotAnExperimentError"]


class NotAnExperimentError(ValueError):
    """The path is not an experiment or chat directory (or does not exist).

    Everything wrong *inside* a run directory is recorded as a problem on the state
    instead; this is raised only when there is no run to describe at all.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: not an experiment or chat directory ({reason})")
