"""Loading one run's logs into an open database, set-based, inside the caller's transaction.

DuckDB reads the files (``read_text``), splits them into numbered lines and parses each
line once with explicit types (``from_json``), and ``INSERT ... SELECT`` writes them: no
row passes through Python. Reading whole lines rather than ``read_json`` rows is what
gives every event its exact file and line number, and lets a malformed line be recorded
in ``load_errors`` with its number instead of being skipped unseen.

The normalised tables are then filled from the ``events`` rows just written, parsing only
the payloads they need (pidgin-ai's history-laden ``MessageRequestEvent`` lines, 91% of
its bytes, are parsed once, in the first pass, and never again).

The parts, each in its own module: the statements (``_sql_events``, ``_sql_tables``),
what DuckDB reads and in which batches (``_sources``, with ``_chunks`` cutting big logs),
and the slices that statements re-parsing payloads read at once (``_slices``). This
module runs them in order and counts the rows.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pidgin_events import BOOKKEEPING_EVENTS, ERROR_EVENT_TYPES, EVENT_TYPES

from . import _sql_events as sql_events
from . import _sql_tables as sql_tables
from ._built_from import BUILT_FROM, NEEDS_STATE
from ._metrics import compute_turn_metrics
from ._run_files import RunFiles
from ._schema import TABLES
from ._schema_prompts import CHOSEN_NAMES_SQL, THINKING_SQL
from ._slices import Slice, slices
from ._sources import (
    BadLine,
    Source,
    batches,
    files_to_read,
    readable_path,
    scratch_directory,
    sources_of,
)

if TYPE_CHECKING:
    import duckdb

__all__ = ["PAUSE_ENV", "IngestResult", "NotUtf8Error", "ingest_run"]

PAUSE_ENV = "PIDGIN_LOAD_TEST_PAUSE_AFTER_INSERT"
"""Test hook: seconds to sleep inside the transaction after the inserts, before COMMIT."""


@dataclass(slots=True)
class IngestResult:
    """Rows written per table, and what was wrong with the input."""

    rows: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0
    unknown_events: int = 0


class NotUtf8Error(Exception):
    """DuckDB refused a file as text; the transaction is aborted and must be started again."""


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> int:
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _count_sliced(
    con: duckdb.DuckDBPyConnection, template: str, params: dict[str, Any], parts: list[Slice]
) -> int:
    return sum(_count(con, part.sql(template), {**params, **part.params()}) for part in parts)


def _insert_events(
    con: duckdb.DuckDBPyConnection, experiment_id: str, batch: list[Source], paths: list[str]
) -> int:
    import duckdb

    try:
        return _count(
            con,
            sql_events.EVENTS_SQL,
            {
                "experiment_id": experiment_id,
                "paths": paths,
                "names": [source.log.name for source in batch],
                "conversations": [source.log.conversation_id for source in batch],
                "first_lines": [source.lines.first_line for source in batch],
                "bookkeeping": list(BOOKKEEPING_EVENTS),
            },
        )
    except duckdb.InvalidInputException as exc:
        if "UTF-8" in str(exc):
            raise NotUtf8Error(str(exc)) from exc
        raise


def _insert_bad_lines(
    con: duckdb.DuckDBPyConnection, params: dict[str, Any], bad: list[BadLine]
) -> None:
    con.execute(
        sql_events.PYTHON_BAD_LINES_SQL,
        {
            **params,
            "names": [line.source_file for line in bad],
            "lines": [line.line_number for line in bad],
            "reasons": [line.reason for line in bad],
            "excerpts": [line.excerpt for line in bad],
        },
    )


def _pause_for_tests() -> None:
    seconds = os.environ.get(PAUSE_ENV)
    if not seconds:
        return
    print(
        f"pidgin-load: pausing {seconds} s inside the transaction ({PAUSE_ENV})",
        file=sys.stderr,
        flush=True,
    )
    time.sleep(float(seconds))


def ingest_run(
    con: duckdb.DuckDBPyConnection,
    run: RunFiles,
    *,
    loaded_at: Any,
    fingerprint: str,
    clean_utf8: bool = False,
    metrics: bool = True,
    build: frozenset[str] = frozenset(BUILT_FROM),
) -> IngestResult:
    """Replace the run's rows in every table. The caller holds the transaction.

    Raises ``NotUtf8Error`` when a file holds bytes that are not UTF-8: DuckDB has then
    aborted the transaction, and the caller starts again with ``clean_utf8=True``, which
    reads such files from copies whose bad lines are blanked (and recorded). Checking
    first would cost a pass over every byte of every load for a case that is rare.
    ``build`` names the tables to fill (a live query's, closed over ``BUILT_FROM``); the
    others stay empty. ``events`` and ``load_errors`` are always filled.
    """
    params: dict[str, Any] = {"experiment_id": run.experiment_id}
    for table in TABLES:
        con.execute(f"DELETE FROM {table} WHERE experiment_id = $experiment_id", params)
    result = IngestResult()
    bad: list[BadLine] = []
    read: list[tuple[list[Source], int]] = []
    # The StateBuilder (the conversations' statuses) reads the logs in Python meanwhile,
    # when a table to build needs it: DuckDB lets go of the interpreter while it reads them too.
    with ThreadPoolExecutor(1, thread_name_prefix="pidgin-load-state") as pool:
        state = pool.submit(run.state) if build & NEEDS_STATE else None
        with scratch_directory() as scratch:
            sources = []
            for index, log in enumerate(run.logs):
                sources.extend(sources_of(log, readable_path(log, scratch, index)))
            for batch in batches(sources):
                with files_to_read(batch, scratch, clean_utf8=clean_utf8, bad=bad) as paths:
                    read.append((batch, _insert_events(con, run.experiment_id, batch, paths)))
        if state is not None:
            state.result()  # its error, if any, is the load's
    events = sum(rows for _, rows in read)
    _mark_misplaced_and_repeated(con, run, params)
    bad_in_sql = _count(con, sql_events.BAD_LINES_SQL, params)
    if bad_in_sql:
        con.execute(sql_events.DROP_BAD_LINES_SQL, params)
    if bad:
        _insert_bad_lines(con, params, bad)
    result.bad_lines = bad_in_sql + len(bad)
    result.rows["events"] = events - bad_in_sql
    result.rows["load_errors"] = result.bad_lines
    result.rows.update(_fill_tables(con, run, params, slices(read), build))
    if metrics and "turn_metrics" in build:
        result.rows["turn_metrics"] = compute_turn_metrics(con, run.experiment_id)
    if "experiments" in build:
        result.rows["experiments"] = _count(
            con,
            sql_tables.EXPERIMENT_SQL,
            {
                **params,
                **run.metadata(),
                "kind": run.kind,
                "source_format": run.source_format,
                "directory": run.path.name,
                "run_dir": str(run.path),
                "loaded_at": loaded_at,
                "fingerprint": fingerprint,
            },
        )
    result.unknown_events = _count(
        con, sql_events.UNKNOWN_SQL, {**params, "known": sorted(EVENT_TYPES)}
    )
    _pause_for_tests()
    return result


def _mark_misplaced_and_repeated(
    con: duckdb.DuckDBPyConnection, run: RunFiles, params: dict[str, Any]
) -> None:
    """Turn events in another conversation's log, and repeated lines, into bad lines."""
    mixed = con.execute(sql_events.MIXED_LOGS_SQL, params).fetchone()
    if mixed and mixed[0]:
        con.execute(
            sql_events.MISPLACED_SQL,
            {
                **params,
                "mixed": mixed[0],
                "names": [log.name for log in run.logs],
                "conversations": [log.conversation_id for log in run.logs],
            },
        )
    if _count(con, sql_events.REPEATED_IDS_SQL, params):
        con.execute(sql_events.DUPLICATES_SQL, params)


def _fill_tables(
    con: duckdb.DuckDBPyConnection,
    run: RunFiles,
    params: dict[str, Any],
    parts: list[Slice],
    build: frozenset[str],
) -> dict[str, int]:
    """Fill the normalised tables of ``build`` but ``experiments`` from the events.

    In the order of ``BUILT_FROM``: each after the tables it reads. Rows per table.
    """
    rows: dict[str, int] = {}
    outlined = bool(build & {"messages", "turns", "conversations"})  # the outline's readers
    if outlined:
        con.execute(sql_tables.OUTLINE_TABLE_SQL, params)
    if "messages" in build:
        rows["messages"] = _count_sliced(con, sql_tables.MESSAGES_SQL, params, parts)
        if _count(con, sql_tables.UNNUMBERED_MESSAGES_SQL, params):
            con.execute(sql_tables.MESSAGE_TURNS_SQL, params)
    if "turns" in build:
        con.execute(sql_tables.TURN_ENDS_TABLE_SQL)
        _count_sliced(con, sql_tables.TURN_ENDS_SQL, params, parts)
        rows["turns"] = _count(con, sql_tables.TURNS_SQL, params)
        con.execute(sql_tables.DROP_TURN_ENDS_SQL)
    if "errors" in build:
        rows["errors"] = _count_sliced(
            con, sql_tables.ERRORS_SQL, {**params, "error_types": sorted(ERROR_EVENT_TYPES)}, parts
        )
    if "conversations" in build:
        statuses = run.conversation_statuses()  # the StateBuilder's, by log file
        rows["conversations"] = _count(
            con,
            sql_tables.CONVERSATIONS_SQL,
            {**params, "status_files": list(statuses), "statuses": list(statuses.values())},
        )
        con.execute(CHOSEN_NAMES_SQL, params)
    if "token_usage" in build:
        rows["token_usage"] = _count(con, sql_tables.TOKEN_USAGE_SQL, params)
    if "thinking" in build:
        rows["thinking"] = _count(con, THINKING_SQL, params)
    if outlined:
        con.execute(sql_tables.DROP_OUTLINE_SQL)
    return rows
