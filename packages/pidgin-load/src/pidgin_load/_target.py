"""Where a load goes: the local DuckDB file (the default) or a DuckLake with a PostgreSQL catalog.

A lake is named by a target string, ``ducklake:postgres:<libpq connection string>``, and
a data path (a directory every loader can write, or ``s3://...``) where its Parquet files
live. Both can come from the environment, so that the automatic load after each run goes
to the lake without any argument: ``$PIDGIN_LOAD_TARGET`` and ``$PIDGIN_LAKE_DATA_PATH``.

The target's label (the string with any password removed) is what markers, events and
summaries record as the place a run was loaded into.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ._errors import LoadError

__all__ = [
    "LAKE_DATA_PATH_ENV",
    "LAKE_PREFIX",
    "TARGET_ENV",
    "LakeTarget",
    "default_target",
    "lake_target",
    "same_target",
]

TARGET_ENV = "PIDGIN_LOAD_TARGET"
"""``ducklake:postgres:<connection string>``: load into that lake instead of the local file."""
LAKE_DATA_PATH_ENV = "PIDGIN_LAKE_DATA_PATH"
"""Where the lake's Parquet files are written (a shared directory or ``s3://bucket/prefix/``)."""
LAKE_PREFIX = "ducklake:postgres:"

_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+@", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LakeTarget:
    """A DuckLake: its PostgreSQL catalog (a libpq connection string) and its data path."""

    catalog: str
    data_path: str | None  # None: the path recorded in the catalog when it was created

    @property
    def label(self) -> str:
        """The target as markers record it: the connection string without its password."""
        return LAKE_PREFIX + self._hidden()

    def _hidden(self) -> str:
        return _URI_PASSWORD.sub(r"\1***@", _PASSWORD.sub(r"\1***", self.catalog))

    def scrub(self, message: str) -> str:
        """An error message (PostgreSQL's may quote the connection string) without the password."""
        return message.replace(self.catalog, self._hidden())


def _parse(spec: str, data_path: str | None, source: str) -> LakeTarget:
    if not spec.startswith(LAKE_PREFIX):
        raise LoadError(
            f"{source}: {spec!r} is not a lake target; expected "
            f"'{LAKE_PREFIX}dbname=... host=...' (PostgreSQL is the only catalog supported)"
        )
    catalog = spec[len(LAKE_PREFIX) :].strip()
    if not catalog:
        raise LoadError(f"{source}: {spec!r} names no PostgreSQL database (dbname=... host=...)")
    if data_path is not None and not data_path.strip():
        data_path = None
    if data_path is not None and "://" not in data_path:
        # DuckLake keeps the path as given; a relative one would differ from machine to machine
        data_path = str(Path(data_path).expanduser().absolute())
    if data_path is not None and not data_path.endswith("/"):
        data_path += "/"
    return LakeTarget(catalog, data_path)


def lake_target(target: str | None = None, data_path: str | None = None) -> LakeTarget | None:
    """The lake named by the arguments, else by the environment, else None (the local file).

    ``target`` wins over ``$PIDGIN_LOAD_TARGET``; ``data_path`` over
    ``$PIDGIN_LAKE_DATA_PATH``. A data path without a target is an error: it says the
    caller meant a lake and did not say which.
    """
    source = "--target"
    if target is None:
        target = os.environ.get(TARGET_ENV) or None
        source = f"${TARGET_ENV}"
    path_source = "--data-path"
    if data_path is None:
        data_path = os.environ.get(LAKE_DATA_PATH_ENV) or None
        path_source = f"${LAKE_DATA_PATH_ENV}"
    if target is None:
        if data_path is not None and path_source == "--data-path":
            raise LoadError(f"--data-path {data_path} needs a lake: give --target as well")
        return None
    return _parse(target, data_path, source)


def same_target(recorded: object, target: Path | LakeTarget) -> bool:
    """Whether a marker's ``db_path`` names this target (a file path or a lake label)."""
    if not isinstance(recorded, str):
        return False
    if isinstance(target, LakeTarget):
        return recorded == target.label
    if recorded.startswith(LAKE_PREFIX):
        return False
    try:
        return Path(recorded).resolve() == target.resolve()
    except OSError:
        return False


def default_target(run_dir: str | os.PathLike[str]) -> str:
    """Where a run loads when nothing is named: the environment's lake, else its file.

    For messages and failure markers; never raises (a malformed ``$PIDGIN_LOAD_TARGET``
    is returned as it is, and the load itself reports it).
    """
    from ._paths import default_db_path

    try:
        lake = lake_target()
    except LoadError:
        return os.environ.get(TARGET_ENV, "")
    return lake.label if lake is not None else str(default_db_path(run_dir))
