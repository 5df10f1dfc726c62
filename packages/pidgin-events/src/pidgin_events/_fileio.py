"""Low-level appends that never tear a line between processes."""

from __future__ import annotations

import os

__all__ = ["DIR_MODE", "FILE_MODE", "append_line", "make_private_dir"]

FILE_MODE = 0o600
"""Logs hold conversation content: readable by their owner only."""
DIR_MODE = 0o700


def make_private_dir(path: os.PathLike[str] | str) -> None:
    """Create a directory (and parents) that other users cannot list or read."""
    os.makedirs(path, mode=DIR_MODE, exist_ok=True)


def append_line(fd: int, data: bytes) -> None:
    """Write all of ``data`` to an ``O_APPEND`` descriptor.

    One ``os.write`` carries the whole line, so concurrent appenders on a local filesystem
    never interleave; the loop only runs on a short write (a signal, a full disk).
    """
    written = os.write(fd, data)
    if written == len(data):
        return
    view = memoryview(data)
    while written < len(data):
        written += os.write(fd, view[written:])
