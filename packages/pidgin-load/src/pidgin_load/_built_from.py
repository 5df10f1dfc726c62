"""Which table is built from which: what a live query must build to read a table right.

A live query (``live_database(for_sql=...)``) builds only the tables it reads and,
through ``BUILT_FROM``, those they are built from, so that a table it reads is never
built from an empty one. ``BUILT_FROM`` is the one statement of these dependencies:
a statement that reads a table must have it listed here (a test reads every statement
and checks), and a table of ``TABLES`` missing from it makes every live query build
everything rather than guess.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._schema import TABLES

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["BUILT_FROM", "NEEDS_STATE", "NOT_BUILT", "tables_to_build"]

BUILT_FROM: Mapping[str, frozenset[str]] = {
    "events": frozenset(),  # the logs themselves
    "load_errors": frozenset({"events"}),  # the lines of the logs that are not events
    "messages": frozenset({"events"}),
    "turns": frozenset({"events", "messages"}),
    "errors": frozenset({"events"}),
    # counts of turns, messages and errors; the status is the StateBuilder's (NEEDS_STATE)
    "conversations": frozenset({"events", "turns", "messages", "errors"}),
    "token_usage": frozenset({"events", "messages", "conversations"}),  # models from conversations
    "thinking": frozenset({"events", "conversations"}),  # the thinker's model
    "turn_metrics": frozenset({"messages", "turns"}),
    # counts of conversations by status, of events and of bad lines
    "experiments": frozenset({"events", "load_errors", "conversations"}),
}
"""Each table the logs fill, and the tables its statements read (``_sql_tables``,
``_schema_prompts``, ``_metrics_sql``)."""

NOT_BUILT = frozenset({"loads"})
"""Tables nothing in the logs fills: ``loads`` records the loads of a database, so a live
database has none."""

NEEDS_STATE = frozenset({"conversations", "experiments"})
"""Tables that take the StateBuilder's verdicts (statuses): the only ones that need it to
read the logs a second time, in Python."""


def tables_to_build(read: Iterable[str]) -> frozenset[str]:
    """The tables to fill for a query that reads ``read``: those, and what they are built from.

    A table this module does not know of makes it every table: better slow than wrong.
    """
    todo = list(read)
    if any(table not in BUILT_FROM and table not in NOT_BUILT for table in todo):
        todo = list(TABLES)
    built: set[str] = set()
    while todo:
        table = todo.pop()
        if table in BUILT_FROM and table not in built:
            built.add(table)
            todo.extend(BUILT_FROM[table])
    return frozenset(built)
