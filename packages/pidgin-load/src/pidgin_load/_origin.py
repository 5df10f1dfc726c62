"""The ``loads`` row: which machine and which Pidgin loaded an experiment, and where to.

With a lake, experiments arrive from many machines; a lake user tells them apart by this
row (experiment ids are random, so they do not collide across machines).
"""

from __future__ import annotations

import functools
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["record_origin"]

_INSERT = """
INSERT INTO loads (experiment_id, loaded_at, host, pidgin_version, duckdb_version, target)
SELECT $experiment_id, loaded_at, $host, $pidgin_version, $duckdb_version, $target
FROM experiments WHERE experiment_id = $experiment_id
"""


@functools.cache
def _versions() -> tuple[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import duckdb

    try:
        ours = version("pidgin-load")
    except PackageNotFoundError:  # run from a source tree without installing
        ours = "unknown"
    return ours, duckdb.__version__


def record_origin(con: duckdb.DuckDBPyConnection, experiment_id: str, *, target: str) -> int:
    """Insert the experiment's ``loads`` row, inside the caller's transaction; returns 1.

    Its ``loaded_at`` is the experiments row's, just written by the same transaction.
    """
    pidgin_version, duckdb_version = _versions()
    row = con.execute(
        _INSERT,
        {
            "experiment_id": experiment_id,
            "host": socket.gethostname(),
            "pidgin_version": pidgin_version,
            "duckdb_version": duckdb_version,
            "target": target,
        },
    ).fetchone()
    return int(row[0]) if row else 0
