"""Per-turn text metrics: computed set-based in DuckDB, in the caller's transaction.

A load fills ``turn_metrics`` right after ``turns`` and ``messages``; a database loaded
before a metric existed gets it from ``recompute_metrics``, which reads only the tables
already there (the logs need not exist any more).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._compression import fill_compression_ratios
from ._metrics_sql import DROP_SQL, STEPS, TEXT_TABLE

if TYPE_CHECKING:
    import duckdb

__all__ = ["compute_turn_metrics"]

ROW_GROUP_ROWS = 122_880
"""DuckDB's row group: the unit its scans hand to threads."""

BATCH_TEXT_BYTES = 8_000_000
"""Reply text measured at once. Tokens, n-grams and histograms of a reply take some 30
times its size, so a whole run of 10 KB replies at once exhausts DuckDB's memory limit;
every measure stays within one conversation, so conversations go in batches of about
this much text (a run of short replies is one batch)."""


def conversation_batches(
    con: duckdb.DuckDBPyConnection, experiment_id: str, budget: int = BATCH_TEXT_BYTES
) -> list[list[str]]:
    """The run's conversations, in order, grouped so that each group's replies hold about
    ``budget`` characters (a conversation bigger than that is a group of its own)."""
    sizes = con.execute(
        "SELECT conversation_id, sum(length(content)) FROM messages "
        "WHERE experiment_id = $experiment_id GROUP BY ALL ORDER BY conversation_id",
        {"experiment_id": experiment_id},
    ).fetchall()
    batches: list[list[str]] = []
    filled = budget
    for conversation_id, size in sizes:
        if filled + int(size or 0) > budget and filled:
            batches.append([])
            filled = 0
        batches[-1].append(conversation_id)
        filled += int(size or 0)
    return batches


def compute_turn_metrics(
    con: duckdb.DuckDBPyConnection, experiment_id: str, batch_text_bytes: int = BATCH_TEXT_BYTES
) -> int:
    """Replace one experiment's ``turn_metrics`` rows; return how many were written."""
    con.execute(
        "DELETE FROM turn_metrics WHERE experiment_id = $experiment_id",
        {"experiment_id": experiment_id},
    )
    threads = con.execute("SELECT current_setting('threads')").fetchone()
    written = 0
    try:
        for conversations in conversation_batches(con, experiment_id, batch_text_bytes):
            written += _compute_batch(con, experiment_id, conversations)
    finally:
        for sql in DROP_SQL:
            con.execute(sql)
        if threads:
            con.execute(f"SET threads = {int(threads[0])}")
    return written


def _compute_batch(
    con: duckdb.DuckDBPyConnection, experiment_id: str, conversations: list[str]
) -> int:
    params = {"experiment_id": experiment_id, "conversations": conversations}
    con.execute(STEPS[0], params)
    replies = con.execute(f"SELECT count(*) FROM {TEXT_TABLE}").fetchone()
    if replies and replies[0] < ROW_GROUP_ROWS:
        # Tables this small are scanned by one thread whatever the setting; a second
        # one only adds the cost of combining partial results (measured: 15% more CPU).
        con.execute("SET threads = 1")
    for sql in STEPS[1:-1]:
        con.execute(sql, _params_of(sql, params))
    fill_compression_ratios(con, TEXT_TABLE)
    row = con.execute(STEPS[-1], params).fetchone()
    return int(row[0]) if row else 0


def _params_of(sql: str, params: Mapping[str, object]) -> dict[str, object] | None:
    """The parameters a statement names (DuckDB refuses unused ones)."""
    used = {name: value for name, value in params.items() if f"${name}" in sql}
    return used or None
