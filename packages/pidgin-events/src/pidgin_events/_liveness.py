"""A liveness signal that cannot go stale: a shared ``flock`` held while a run writes.

The kernel drops the lock when the holding process exits for any reason, ``kill -9``
included, so "nobody holds the lock" reliably means "nobody is writing".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ._fileio import FILE_MODE
from ._layout import RUN_LOCK

if sys.platform != "win32":
    import fcntl

__all__ = ["RunLock", "is_running"]


class RunLock:
    """Held by every process that writes to a run directory, for as long as it writes."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory) / RUN_LOCK
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self._fd: int | None = os.open(self.path, flags, FILE_MODE)
        if sys.platform != "win32":
            # Shared: several writer processes may hold it at once. Blocking: a reader's
            # momentary exclusive probe (``is_running``) only delays us by microseconds.
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_running(directory: str | os.PathLike[str]) -> bool | None:
    """Whether a live process holds the run lock of ``directory``.

    ``None`` when it cannot be told: no ``fcntl`` on this platform, or the lock file is
    not readable by this user.
    """
    if sys.platform == "win32":  # no flock: liveness is unknown there
        return None
    path = Path(directory) / RUN_LOCK
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
