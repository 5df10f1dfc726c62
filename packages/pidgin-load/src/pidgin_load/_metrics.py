"""Per-turn text metrics: computed set-based in DuckDB, in the caller's transaction.

A load fills ``turn_metrics`` right after ``turns`` and ``messages``; a database loaded
before a metric existed gets it from ``recompute_metrics``, which reads only the tables
already there (the logs need not exist any more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._compression import fill_compression_ratios
from ._metrics_sql import DROP_SQL, STEPS, TEXT_TABLE

if TYPE_CHECKING:
    import duckdb

__all__ = ["compute_turn_metrics"]

ROW_GROUP_ROWS = 122_880
"""DuckDB's row group: the unit its scans hand to threads."""


def compute_turn_metrics(con: duckdb.DuckDBPyConnection, experiment_id: str) -> int:
    """Replace one experiment's ``turn_metrics`` rows; return how many were written."""
    params = {"experiment_id": experiment_id}
    con.execute("DELETE FROM turn_metrics WHERE experiment_id = $experiment_id", params)
    threads = con.execute("SELECT current_setting('threads')").fetchone()
    try:
        con.execute(STEPS[0], params)
        replies = con.execute(f"SELECT count(*) FROM {TEXT_TABLE}").fetchone()
        if replies and replies[0] < ROW_GROUP_ROWS:
            # Tables this small are scanned by one thread whatever the setting; a second
            # one only adds the cost of combining partial results (measured: 15% more CPU).
            con.execute("SET threads = 1")
        for sql in STEPS[1:-1]:
            con.execute(sql, params if "$experiment_id" in sql else None)
        fill_compression_ratios(con, TEXT_TABLE)
        row = con.execute(STEPS[-1], params).fetchone()
    finally:
        for sql in DROP_SQL:
            con.execute(sql)
        if threads:
            con.execute(f"SET threads = {int(threads[0])}")
    return int(row[0]) if row else 0
