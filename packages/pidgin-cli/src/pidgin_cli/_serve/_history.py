"""Finished runs' history and aggregates, from DuckDB or a DuckLake: read-only, never waited on.

The database is written by loads after runs complete. A read-only connection to a local
file takes a shared lock that would make a load wait, so each query opens the database,
reads, and closes it at once. If a load holds it, DuckDB refuses to open it: that is
reported to the client as "locked" right away instead of waiting (the loader owns the
lock; a viewer must never slow it down). A lake (``pidgin serve --target``) is attached
read-only per query too: it takes no lock, and an unreachable catalog is an error for
that query only. Nothing live is read from here: the views over running runs come from
the logs (``_catalog``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from pidgin_load import ReadTarget

__all__ = ["DatabaseUnavailableError", "HistoryRow", "TurnAggregate", "history", "turn_aggregates"]


class DatabaseUnavailableError(Exception):
    """The database cannot be read now (a load holds it, or it is unreadable): why."""


@dataclass(frozen=True, slots=True)
class HistoryRow:
    experiment_id: str
    name: str | None
    kind: str
    status: str | None
    started_at: datetime | None
    completed_at: datetime | None
    conversations: int
    completed: int
    failed: int
    turns: int
    mean_final_convergence: float | None
    total_tokens: int
    duration_seconds: float | None


@dataclass(frozen=True, slots=True)
class TurnAggregate:
    turn: int
    """1-based, like every turn number the server shows."""
    conversations: int
    mean: float | None
    minimum: float | None
    maximum: float | None


@contextmanager
def _read_only(source: ReadTarget) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A read-only connection, or None when there is no local database yet."""
    if isinstance(source, Path) and not source.is_file():
        yield None
        return
    import duckdb

    from pidgin_load import LoadError, connect_read_only, target_label

    try:
        con = connect_read_only(source)
    except LoadError as exc:
        raise DatabaseUnavailableError(str(exc)) from None
    try:
        yield con
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(source, Path):
            where = source.name
        else:  # PostgreSQL's errors may quote the connection string
            where, first = target_label(source), source.scrub(first)
        raise DatabaseUnavailableError(f"cannot read database {where}: {first}") from None
    finally:
        con.close()


def history(source: ReadTarget, *, first: int, offset: int = 0) -> list[HistoryRow]:
    """Loaded runs, newest first, from the ``experiment_dashboard`` view."""
    with _read_only(source) as con:
        if con is None:
            return []
        # Times as naive UTC, made aware here: DuckDB before 2.0 needs pytz for TIMESTAMPTZ
        # values (the lake extra pins DuckDB 1.5), and UTC needs no time zone database.
        rows: list[tuple[Any, ...]] = con.execute(
            "SELECT experiment_id, name, kind, status, timezone('UTC', started_at),"
            " timezone('UTC', completed_at), conversations, completed, failed, turns,"
            " mean_final_convergence, total_tokens, duration_seconds"
            " FROM experiment_dashboard ORDER BY started_at DESC NULLS LAST, experiment_id"
            " LIMIT ? OFFSET ?",
            [first, offset],
        ).fetchall()
    return [_aware(HistoryRow(*row)) for row in rows]


def _aware(row: HistoryRow) -> HistoryRow:
    return replace(row, started_at=_utc(row.started_at), completed_at=_utc(row.completed_at))


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


def turn_aggregates(source: ReadTarget, experiment_id: str) -> list[TurnAggregate]:
    """Convergence by turn over an experiment's loaded conversations (``convergence_by_turn``)."""
    with _read_only(source) as con:
        if con is None:
            return []
        rows = con.execute(
            "SELECT turn_number, conversations, avg_convergence, min_convergence,"
            " max_convergence FROM convergence_by_turn WHERE experiment_id = ?"
            " ORDER BY turn_number",
            [experiment_id],
        ).fetchall()
    return [TurnAggregate(int(r[0]) + 1, int(r[1]), r[2], r[3], r[4]) for r in rows]
