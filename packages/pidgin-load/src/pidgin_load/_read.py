"""Reading what loads wrote, from a local DuckDB file or a DuckLake, read-only.

One rule for every reader (``pidgin query --target``, ``pidgin serve``): a target is a
lake (``ducklake:postgres:...``) or a DuckDB file's path. A lake is attached read-only
and takes no lock, so loaders never wait for a reader. A file opened read-only takes
DuckDB's shared lock, which would make a loader wait; so a reader opens it briefly and,
when a loader holds it, fails at once rather than waiting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import LoadError
from ._target import LAKE_PREFIX, TARGET_ENV, LakeTarget, lake_target

if TYPE_CHECKING:
    import duckdb

__all__ = ["ReadTarget", "connect_read_only", "read_target", "target_label"]

ReadTarget = Path | LakeTarget
"""A DuckDB file or a lake: where loaded runs are read from."""

_DUCKLAKE = "ducklake:"


def read_target(
    target: str | os.PathLike[str] | None, *, environment: bool = True
) -> ReadTarget | None:
    """The target named by ``target``, else (``environment``) by ``$PIDGIN_LOAD_TARGET``.

    None when neither names one: the caller's default (its local database, or the logs).
    A path must name an existing file; a ``ducklake:`` target must be a PostgreSQL one.
    """
    if target is None:
        return lake_target() if environment and os.environ.get(TARGET_ENV) else None
    text = os.fspath(target)
    if text.startswith(_DUCKLAKE):
        return lake_target(text)
    path = Path(text).expanduser().absolute()
    if not path.is_file():
        raise LoadError(
            f"--target {text}: no such database file; give a DuckDB file "
            f"or a lake ({LAKE_PREFIX}dbname=... host=...)"
        )
    return path


def target_label(target: ReadTarget) -> str:
    """The target as messages show it (a lake without its password)."""
    return target.label if isinstance(target, LakeTarget) else str(target)


def connect_read_only(target: ReadTarget) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the target, with its tables and views as the default catalog.

    Raises ``LoadError`` naming the target: a lake that cannot be reached (or whose
    extensions are missing: the message says what to install), a file a loader holds.
    """
    if isinstance(target, LakeTarget):
        from ._lake import attach_lake

        return attach_lake(target, read_only=True)
    import duckdb

    try:
        con = duckdb.connect(str(target), read_only=True)
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "lock" in first.lower():
            raise LoadError(
                f"database {target.name} is locked by a load in progress; try again shortly"
            ) from None
        raise LoadError(f"cannot read database {target.name}: {first}") from None
    con.execute("SET TimeZone = 'UTC'")
    return con
