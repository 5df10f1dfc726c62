"""Per-turn text metrics: computed set-based in DuckDB, in the caller's transaction.

A load fills ``turn_metrics`` right after ``turns`` and ``messages``; a database loaded
before a metric existed gets it from ``recompute_metrics``, which reads only the tables
already there (the logs need not exist any more).

Every measure stays within one conversation, so the run's conversations are measured in
batches, as many at once as DuckDB has threads. A batch's replies are read on the
caller's connection (only it sees the transaction's rows), measured on a connection of
its own, on a thread of its own, and its rows come back through a Parquet file in a
private scratch directory, to be inserted on the caller's connection. DuckDB scans a
table smaller than a row group (122,880 rows for a temporary table, so any batch of
replies) on one thread whatever its settings; batches side by side are what puts the
other cores to work.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._compression import compression_ratios
from ._metrics_sql import STEPS, TEXT_SQL, insert_from, result_to
from ._sources import scratch_directory

if TYPE_CHECKING:
    import duckdb

__all__ = ["MEASURING", "compute_turn_metrics"]

BATCH_TEXT_BYTES = 8_000_000
"""Reply text being measured at any one time. Tokens, n-grams and histograms of a reply
take some 30 times its size, so a whole run of 10 KB replies at once exhausts DuckDB's
memory limit; batches side by side share this budget."""


MEASURING = "while computing the per-turn metrics"
"""The note an error that escapes ``compute_turn_metrics`` carries: a load that runs out of
memory there can be done without them (``--no-metrics``)."""


SPLIT_TEXT_BYTES = 128_000
"""The least reply text worth a batch of its own. A batch costs some 80 ms whatever its
size (compiling its regexes, planning its statements), so a run is split to use more
cores only when each part still holds at least this much."""


def conversation_batches(
    con: duckdb.DuckDBPyConnection,
    experiment_id: str,
    budget: int = BATCH_TEXT_BYTES,
    at_least: int = 1,
) -> list[list[str]]:
    """The run's conversations, in order, in groups of about equal reply text: as few as
    keep each group within about ``budget`` characters, but up to ``at_least`` groups when
    each still holds ``SPLIT_TEXT_BYTES``. A conversation goes to the group that holds the
    middle of its text, so a group can exceed the budget by less than one conversation."""
    sizes = con.execute(
        "SELECT conversation_id, sum(length(content)) FROM messages "
        "WHERE experiment_id = $experiment_id GROUP BY ALL ORDER BY conversation_id",
        {"experiment_id": experiment_id},
    ).fetchall()
    total = sum(int(size or 0) for _, size in sizes)
    worth = min(at_least, total // SPLIT_TEXT_BYTES)
    groups = min(len(sizes), max(1, worth, math.ceil(total / max(budget, 1))))
    batches: list[list[str]] = [[] for _ in range(groups)]
    before = 0
    for conversation_id, size in sizes:
        # the group whose share of the text holds the middle of this conversation's
        middle = (before + int(size or 0) / 2) * groups / total if total else 0
        batches[min(groups - 1, int(middle))].append(conversation_id)
        before += int(size or 0)
    return [batch for batch in batches if batch]


def compute_turn_metrics(
    con: duckdb.DuckDBPyConnection, experiment_id: str, batch_text_bytes: int = BATCH_TEXT_BYTES
) -> int:
    """Replace one experiment's ``turn_metrics`` rows; return how many were written."""
    con.execute(
        "DELETE FROM turn_metrics WHERE experiment_id = $experiment_id",
        {"experiment_id": experiment_id},
    )
    threads = con.execute("SELECT current_setting('threads')").fetchone()
    workers = max(1, int(threads[0])) if threads else 1
    batches = conversation_batches(con, experiment_id, batch_text_bytes // workers, workers)
    written = 0
    # Each batch runs on one thread: a second per query only adds the cost of combining
    # partial results (measured: 15% more CPU), and the batches already use every core.
    con.execute("SET threads = 1")
    try:
        with scratch_directory() as scratch, ThreadPoolExecutor(workers) as pool:
            measuring: deque[tuple[list[str], Path, Future[None]]] = deque()
            for index, conversations in enumerate(batches):
                params = {"experiment_id": experiment_id, "conversations": conversations}
                rows = con.execute(TEXT_SQL, params).fetchall()
                path = scratch / f"batch-{index}.parquet"
                # a connection of its own, made here: the caller's is busy on this thread meanwhile
                measure = pool.submit(_measure, con.cursor(), rows, path)
                measuring.append((conversations, path, measure))
                if len(measuring) >= workers:  # bounds the replies held in memory
                    written += _insert(con, experiment_id, *measuring.popleft())
            while measuring:
                written += _insert(con, experiment_id, *measuring.popleft())
    except BaseException as exc:
        exc.add_note(MEASURING)
        raise
    finally:
        # A setting of the database, set from a connection of its own: the caller's may be
        # in a transaction an error has aborted, which would refuse it and hide that error.
        with con.cursor() as own:
            own.execute(f"SET threads = {workers}")
    return written


def _measure(own: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], path: Path) -> None:
    """Measure a batch's replies on the connection ``own`` (then closed); rows to ``path``."""
    columns = list(zip(*rows, strict=True)) or [(), (), (), ()]
    texts = list(columns[3])
    params = {
        "conversation_ids": list(columns[0]),
        "turn_numbers": list(columns[1]),
        "agents": list(columns[2]),
        "texts": texts,
        "compression_ratios": compression_ratios(texts),
    }
    with own:
        own.execute(STEPS[0], params)
        for sql in STEPS[1:]:
            own.execute(sql)
        own.execute(result_to(str(path)))


def _insert(
    con: duckdb.DuckDBPyConnection,
    experiment_id: str,
    conversations: list[str],
    path: Path,
    measured: Future[None],
) -> int:
    measured.result()
    params = {"experiment_id": experiment_id, "conversations": conversations}
    row = con.execute(insert_from(str(path)), params).fetchone()
    path.unlink()
    return int(row[0]) if row else 0
