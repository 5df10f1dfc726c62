"""SQL over live runs: the loaded database's tables, built from the JSONL in memory.

The design note's streaming analytics: every run under an output root, running ones
included, is read from its logs into a private in-memory DuckDB with the same schema and
the same load code as the analytics database. The analytics database is never opened,
so nothing waits for its lock and no writer waits for us: the logs are only read, and
what a writer appends after the read is simply not seen until the next query.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._built_from import BUILT_FROM, tables_to_build
from ._errors import LoadError
from ._ingest import NotUtf8Error, ingest_run
from ._run_files import discover_runs, inspect_run
from ._schema import TABLES, migrate

if TYPE_CHECKING:
    import os

    import duckdb

__all__ = ["LiveDatabase", "live_database", "query_live"]

_NEEDS_METRICS = re.compile(
    r"\b(turn_metrics|conversation_turns|convergence_trends|vocabulary_analysis)\b", re.I
)


_VIEW_HEAD = re.compile(r"^\s*CREATE\b.*?\bVIEW\b.*?\bAS\b\s*", re.I | re.S)
"""``CREATE [OR REPLACE] VIEW name AS``: what precedes a view's query in its stored SQL."""


@dataclass(slots=True)
class LiveDatabase:
    """An in-memory database of the runs under a root, and the runs it could not read."""

    connection: duckdb.DuckDBPyConnection
    runs: int = 0
    skipped: list[str] = field(default_factory=list)
    """``"<run dir>: <reason>"`` for each run whose logs could not be read."""


def needs_metrics(sql: str) -> bool:
    """Whether a query names a relation built from ``turn_metrics``."""
    return bool(_NEEDS_METRICS.search(sql))


def tables_read_by(con: duckdb.DuckDBPyConnection, sql: str) -> frozenset[str]:
    """The tables ``sql`` may read: those it names, and those the views it names read.

    From DuckDB's parse tree (``json_serialize_sql``), not by binding. A query that does
    not parse, or calls a table function (which could read any table), may read them all.
    """
    views = {
        str(name).lower(): _VIEW_HEAD.sub("", str(text)).rstrip().rstrip(";")
        for name, text in con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
    }
    seen: set[str] = set()
    todo = [sql]
    while todo:
        named = _relations_named(con, todo.pop())
        if named is None:
            return frozenset(TABLES)
        for name in named - seen:
            seen.add(name)
            if name in views:
                todo.append(views[name])
    return frozenset(seen & set(TABLES))


def _relations_named(con: duckdb.DuckDBPyConnection, sql: str) -> set[str] | None:
    """Table and view names in ``sql``'s parse tree; None if it could read anything."""
    # fetchall, not fetchone: a result left unfinished would refuse the caller's next query
    rows = con.execute("SELECT json_serialize_sql($sql)", {"sql": sql}).fetchall()
    tree = json.loads(rows[0][0]) if rows else {"error": True}
    if tree.get("error"):
        return None
    names: set[str] = set()
    nodes: list[Any] = [tree]
    while nodes:
        node = nodes.pop()
        if isinstance(node, dict):
            if node.get("type") == "TABLE_FUNCTION":
                return None
            if node.get("type") == "BASE_TABLE":
                names.add(str(node.get("table_name", "")).lower())
            nodes.extend(node.values())
        elif isinstance(node, list):
            nodes.extend(node)
    return names


def live_database(
    output_root: str | os.PathLike[str] | None = None,
    *,
    include_chats: bool = True,
    metrics: bool = True,
    runs: list[str | os.PathLike[str]] | None = None,
    for_sql: str | None = None,
) -> LiveDatabase:
    """Read every run under ``output_root`` (default ``$PIDGIN_OUTPUT``) into memory.

    ``runs`` reads those run directories instead. ``metrics=False`` skips
    ``turn_metrics`` (and leaves the views over it empty), which is most of the cost of a
    small query. ``for_sql`` builds only what that query may read: the tables it names,
    directly or through a view, and those they are built from (``BUILT_FROM``); the others
    stay empty, and a query that reads no table reads no log.
    """
    import duckdb

    from pidgin_events import output_root as resolve_output_root

    root = resolve_output_root(output_root)
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")  # the caller's output is no place for it
    migrate(con, ":memory:")
    read = frozenset(BUILT_FROM) if for_sql is None else tables_read_by(con, for_sql)
    build = tables_to_build(read)
    live = LiveDatabase(con)
    if not build:
        return live
    loaded_at = datetime.now(UTC)
    directories = (
        discover_runs(root, include_chats=include_chats)
        if runs is None
        else [Path(run) for run in runs]
    )
    for run_dir in directories:
        try:
            run = inspect_run(run_dir)
        except LoadError as exc:
            live.skipped.append(f"{run_dir}: {exc}")
            continue
        for clean_utf8 in (False, True):
            con.execute("BEGIN TRANSACTION")
            try:
                ingest_run(
                    con,
                    run,
                    loaded_at=loaded_at,
                    fingerprint="live",
                    clean_utf8=clean_utf8,
                    metrics=metrics,
                    build=build,
                )
                con.execute("COMMIT")
                live.runs += 1
                break
            except NotUtf8Error:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
            except (LoadError, duckdb.Error) as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                live.skipped.append(f"{run_dir}: {exc}")
                break
    return live


def query_live(
    sql: str,
    output_root: str | os.PathLike[str] | None = None,
    *,
    include_chats: bool = True,
    metrics: bool | None = None,
) -> duckdb.DuckDBPyRelation:
    """A DuckDB relation for ``sql`` over the live runs under ``output_root``.

    Use it as any relation: ``.df()``, ``.pl()``, ``.arrow()``, ``.fetchall()``, or
    further ``.filter()``/``.aggregate()``. ``metrics=None`` computes ``turn_metrics`` only
    when the query names it or a view over it; the tables the query cannot read are not
    built at all (see ``live_database``'s ``for_sql``). Raises ``duckdb.Error`` for bad SQL and
    ``ValueError`` for a statement that is not a query.
    """
    wanted = needs_metrics(sql) if metrics is None else metrics
    live = live_database(output_root, include_chats=include_chats, metrics=wanted, for_sql=sql)
    relation = live.connection.sql(sql)
    if relation is None:
        raise ValueError(f"not a query (it returns no rows): {sql[:80]!r}")
    return relation
