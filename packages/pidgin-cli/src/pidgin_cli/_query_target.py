"""``pidgin query --target``: the SQL runs over loaded runs, in a DuckDB file or a DuckLake.

Without ``--target`` the query reads the live logs (``live_database``). With it, the
target's own tables and views answer: a lake holds every machine's loaded runs. The
target is opened read-only (``pidgin_load.connect_read_only``): a lake takes no lock, so
loaders never wait for a query; a file a loader holds is an error at once, not a wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._output import fail

if TYPE_CHECKING:
    import duckdb

__all__ = ["TARGET_HELP", "open_target"]

TARGET_HELP = (
    'Read the loaded runs of this DuckLake (ducklake:postgres:"dbname=... host=...") '
    "or DuckDB file, read-only, instead of the live logs (needs pidgin-load[lake] for a lake)."
)


def open_target(text: str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the named target; a clear error (exit 1) if it fails."""
    from pidgin_load import LoadError, connect_read_only, read_target

    try:
        target = read_target(text)
        assert target is not None  # a name was given
        return connect_read_only(target)
    except LoadError as exc:
        raise fail(str(exc)) from None
