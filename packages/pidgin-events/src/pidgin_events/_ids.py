"""Identifiers that are safe to use as path components and database keys."""

from __future__ import annotations

import os
import re

__all__ = ["new_id", "validate_id"]

# Letters, digits, "_", "-" and ".", starting with a letter or digit: no separators, no
# whitespace, no shell or SQL metacharacters, and nothing that a filesystem treats specially.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def validate_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it can be used as a path component, else raise ``ValueError``.

    IDs name directories and files, so anything that could escape the output root or
    confuse a shell is refused here, once, rather than escaped at every use.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    if not _SAFE_ID.fullmatch(value) or ".." in value:
        raise ValueError(
            f"invalid {what} {value!r}: use 1 to 128 characters from A-Z a-z 0-9 _ - . "
            "starting with a letter or digit, without '..'"
        )
    return value


def new_id(prefix: str) -> str:
    """A fresh random id such as ``conv_3f9a1c2b7d4e``: 48 random bits, collision-safe per run."""
    return f"{prefix}_{os.urandom(6).hex()}"
