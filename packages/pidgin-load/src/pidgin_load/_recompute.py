"""``recompute_metrics``: fill ``turn_metrics`` again for runs already in a database.

A metric added by a migration is empty for runs loaded before it; this computes every
metric again from the ``turns`` and ``messages`` rows the database already holds (the
logs need not exist any more), one experiment per transaction, so an interruption
leaves each experiment either as it was or complete.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from ._connect import lock_timeout_from_env
from ._errors import LoadError
from ._loader import _Database
from ._metrics import compute_turn_metrics

if TYPE_CHECKING:
    import os

__all__ = ["recompute_all_metrics", "recompute_metrics"]


def recompute_metrics(
    db_path: str | os.PathLike[str],
    experiment_ids: list[str] | None = None,
    *,
    lock_timeout: float | None = None,
) -> dict[str, int]:
    """Compute ``turn_metrics`` again for experiments in a database (all by default).

    Returns the rows written per experiment. Raises ``LoadError`` for a database that does
    not exist or cannot be opened, and ``DatabaseLockedError`` if another process holds it.
    """
    import duckdb

    path = Path(db_path)
    if not path.is_file():
        raise LoadError(f"no database at {path}")
    database = _Database(path, lock_timeout_from_env(lock_timeout))
    written: dict[str, int] = {}
    try:
        con = database.connection()
        rows = con.execute("SELECT experiment_id FROM experiments").fetchall()
        known = [str(row[0]) for row in rows]
        wanted = known if experiment_ids is None else [e for e in experiment_ids if e in known]
        for experiment_id in sorted(wanted):
            con.execute("BEGIN TRANSACTION")
            try:
                written[experiment_id] = compute_turn_metrics(con, experiment_id)
                con.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if isinstance(exc, duckdb.Error):
                    raise LoadError(
                        f"{path}: computing the metrics of {experiment_id} failed: {exc}"
                    ) from exc
                raise
    finally:
        database.close()
    return written


def recompute_all_metrics(
    root: str | os.PathLike[str] | None,
    db_path: str | os.PathLike[str] | None = None,
    *,
    include_chats: bool = True,
    lock_timeout: float | None = None,
) -> dict[str, dict[str, int]]:
    """``recompute_metrics`` over the databases ``load_all`` loads into; rows per database."""
    from pidgin_events import output_root

    from ._paths import chats_db, experiments_db

    if db_path is not None:
        targets = [Path(db_path)]
    else:
        targets = [experiments_db(output_root(root))]
        if include_chats:
            targets.append(chats_db())
    return {
        str(target): recompute_metrics(target, lock_timeout=lock_timeout)
        for target in targets
        if target.is_file()
    }
