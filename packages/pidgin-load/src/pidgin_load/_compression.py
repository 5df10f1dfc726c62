"""``compression_ratio``: deflate size over UTF-8 size, the one metric DuckDB cannot compute.

DuckDB has no deflate function, and a Python UDF needs NumPy or PyArrow, which pidgin-load
does not depend on. So this is the one Python loop over replies: they are streamed out of
the metrics' text table in batches, each compressed by ``zlib`` (the time is zlib's, not
the loop's), and only the ratios go back, as two list parameters of one statement. Memory
stays bounded by a batch of replies; ``docs/metrics.md`` has the definition and the cost.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["COMPRESSION_TABLE", "compression_ratio", "fill_compression_ratios"]

COMPRESSION_TABLE = "pidgin_metrics_compression"
_BATCH = 4096
_CAP = 2.0
"""pidgin-ai caps the ratio: zlib's 11 bytes of framing make short replies exceed 1."""


def compression_ratio(text: str) -> float:
    """zlib-compressed size (default level) over UTF-8 size, at most 2; 0 for an empty reply."""
    data = text.encode("utf-8")
    if not data:
        return 0.0
    return min(len(zlib.compress(data)) / len(data), _CAP)


def fill_compression_ratios(con: duckdb.DuckDBPyConnection, text_table: str) -> None:
    """Create ``COMPRESSION_TABLE`` (``message_index``, ``compression_ratio``) for every
    row of ``text_table`` (``message_index``, ``text``)."""
    con.execute(f"SELECT message_index, text FROM {text_table}")
    indexes: list[int] = []
    ratios: list[float] = []
    while batch := con.fetchmany(_BATCH):
        for index, text in batch:
            indexes.append(index)
            ratios.append(compression_ratio(text))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {COMPRESSION_TABLE} AS "
        "SELECT unnest($indexes::BIGINT[]) AS message_index, "
        "unnest($ratios::DOUBLE[]) AS compression_ratio",
        {"indexes": indexes, "ratios": ratios},
    )
