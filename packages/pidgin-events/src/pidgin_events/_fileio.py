"""Low-level appends that never tear a line between processes."""

from __future__ import annotations

import os

__all__ = ["DIR_MODE", "FILE_MODE", "append_line", "make_private_dir", "open_for_reading"]

FILE_MODE = 0o600
"""Logs hold conversation content: readable by their owner only."""
DIR_MODE = 0o700


def make_private_dir(path: os.PathLike[str] | str) -> None:
    """Create a directory, and each missing parent, that other users cannot list or read.

    ``os.makedirs`` gives its mode to the last directory only; the parents it creates
    would get the umask's mode, and anyone could then swap a directory inside them.
    """
    missing: list[str] = []
    current = os.path.abspath(os.fspath(path))
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise


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


def open_for_reading(path: os.PathLike[str] | str) -> int:
    """A read-only descriptor of ``path`` that never follows a symbolic link nor blocks.

    A link named like a log could point anywhere (``/etc/passwd``, another run), and a FIFO
    named like one would hang an open without ``O_NONBLOCK``. Check ``os.fstat`` for a
    regular file before reading. Raises ``OSError`` (``ELOOP`` for a link).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    return os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
