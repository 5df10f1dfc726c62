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


def compute_turn_metrics(con: duckdb.DuckDBPyConnection, experiment_id: str) -> int:
    """Replace one experiment's ``turn_metrics`` rows; return how many were written."""
    params = {"experiment_id": experiment_id}
    con.execute("DELETE FROM turn_metrics WHERE experiment_id = $experiment_id", params)
    try:
        for sql in STEPS[:-1]:
            con.execute(sql, params if "$experiment_id" in sql else None)
        fill_compression_ratios(con, TEXT_TABLE)
        row = con.execute(STEPS[-1], params).fetchone()
    finally:
        for sql in DROP_SQL:
            con.execute(sql)
    return int(row[0]) if row else 0
