"""``load_experiment`` and ``load_all``: decide what to load, load it atomically, mark it.

One run loads in one transaction (delete its rows everywhere, insert them again, commit),
so a crash or ``kill -9`` at any point leaves the database as it was before that run.
Markers are written only after the commit; a run whose marker is missing, stale or
accompanied by ``.load_failed`` is loaded again by the next ``load_all``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pidgin_events import LOAD_FAILED_MARKER, LOADED_MARKER, fingerprint, plural, read_marker
from pidgin_events import output_root as resolve_output_root

from ._connect import (
    MEMORY_LIMIT_ENV,
    PRIVATE_FILES,
    connect,
    lock_timeout_from_env,
    memory_limit_from_env,
)
from ._errors import ExperimentRunningError, LoadError
from ._ingest import NotUtf8Error, ingest_run
from ._lake import LakeDatabase
from ._markers import file_stats, record_load_success, stale_reason
from ._metrics import MEASURING
from ._origin import record_origin
from ._paths import chats_db, experiments_db
from ._run_files import RunFiles, discover_runs, inspect_run, running_reason
from ._schema import SCHEMA_VERSION, stored_fingerprints
from ._summary import LoadSummary, RunOutcome
from ._target import LakeTarget, lake_target, same_target

if TYPE_CHECKING:
    import os

    import duckdb

__all__ = ["LockWait", "Progress", "load_all", "load_experiment"]

Progress = Callable[[int, int, str], None]
"""``progress(done, total, label)``: called after each run is handled."""
LockWait = Callable[[str], None]
"""``on_lock_wait(message)``: called once when a database is held by another process and
the load starts waiting for it (the message names the file or the lake, and the longest
wait); for a lake, once per wait for its publish (or catalog) lock."""


class _Database:
    """One database file, opened on first need and kept open for every run loaded into it."""

    def __init__(self, path: Path, lock_timeout: float, on_wait: LockWait | None = None) -> None:
        self.path = path.absolute()
        self._lock_timeout = lock_timeout
        self._on_wait = on_wait
        self._con: duckdb.DuckDBPyConnection | None = None

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            import duckdb

            PRIVATE_FILES.acquire()
            try:
                self._con = connect(
                    self.path, lock_timeout=self._lock_timeout, on_wait=self._on_wait
                )
            except BaseException as exc:
                PRIVATE_FILES.release()
                if isinstance(exc, duckdb.Error):
                    raise LoadError(f"cannot prepare database {self.path}: {exc}") from exc
                raise
        return self._con

    def fingerprints(self, experiment_ids: list[str]) -> dict[str, str]:
        return stored_fingerprints(self.connection(), experiment_ids)

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            try:
                con.close()
            finally:
                PRIVATE_FILES.release()

    def publish(self, experiment_id: str) -> None:
        """The rows were written in place, by the transaction itself: nothing to do.

        A lake (``LakeDatabase.publish``) copies the committed rows from its staging
        database here, in the lake's own transaction.
        """


# --- lake targets (issue 16): where a run goes, and the database object for it --------
Target = Path | LakeTarget


def _label(db: Target) -> str:
    return db.label if isinstance(db, LakeTarget) else str(db)


def _open_target(
    db: Target, lock_timeout: float, on_lock_wait: LockWait | None
) -> _Database | LakeDatabase:
    if isinstance(db, LakeTarget):
        return LakeDatabase(db, lock_timeout, memory_limit_from_env(), on_lock_wait)
    return _Database(db, lock_timeout, on_lock_wait)


def _resolve_target(
    db_path: str | os.PathLike[str] | None, target: str | None, data_path: str | None
) -> LakeTarget | None:
    """A lake if ``target`` names one, or if no ``db_path`` is given and the environment does."""
    if target is None and db_path is not None:
        return None
    return lake_target(target, data_path)


# ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """A run the loader met, and what it decided to do about it."""

    run: RunFiles
    db: Target
    prior_fingerprint: str | None  # from a marker for this database
    stale: str | None = None  # why a prior load is out of date
    skip: str | None = None  # why nothing needs doing


def _plan(run: RunFiles, db: Target, *, force: bool, allow_running: bool) -> _Plan:
    """Skip a run unchanged since its load into ``db``; else load it, unless it is running.

    The marker is checked first: it costs a ``stat`` per file, where telling whether a run
    is running costs building its state (which its load needs anyway).
    """
    marker = read_marker(run.path / LOADED_MARKER)
    if marker is not None and not same_target(marker.get("db_path"), db):
        marker = None  # loaded elsewhere; this database has not seen it
    plan = _Plan(run, db, None)
    if marker is not None:
        plan.prior_fingerprint = str(marker.get("fingerprint"))
        plan.stale = stale_reason(run, marker)
        if (
            plan.stale is None
            and not force
            and not (run.path / LOAD_FAILED_MARKER).exists()  # a later load failed
            and (isinstance(db, LakeTarget) or db.exists())
        ):
            plan.skip = f"unchanged since its load at {marker.get('loaded_at')}"
            return plan
    _refuse_if_running(run, allow_running)
    return plan


def _refuse_if_running(run: RunFiles, allow_running: bool) -> None:
    why_running = None if allow_running else running_reason(run)
    if why_running:
        raise ExperimentRunningError(str(run.path), why_running)


def _out_of_memory(exc: BaseException) -> bool:
    """Whether DuckDB ran out of memory; at COMMIT it says so only in words."""
    import duckdb

    if isinstance(exc, duckdb.OutOfMemoryException):
        return True
    return isinstance(exc, duckdb.Error) and (
        "failed to pin block" in str(exc) or "failed to allocate" in str(exc)
    )


def _load(
    plan: _Plan,
    database: _Database | LakeDatabase,
    summary: LoadSummary,
    *,
    force: bool,
    metrics: bool = True,
) -> None:
    """Load one planned run in one transaction, then write its markers."""
    import duckdb

    run = plan.run
    started = time.monotonic()
    stats = file_stats(run)  # before reading: an append during the load makes it stale later
    fp = fingerprint(stats)
    con = database.connection()
    clean_utf8 = False
    while True:
        con.execute("BEGIN TRANSACTION")
        try:
            result = ingest_run(
                con,
                run,
                loaded_at=datetime.now(UTC),
                fingerprint=fp,
                clean_utf8=clean_utf8,
                metrics=metrics,
            )
            result.rows["loads"] = record_origin(con, run.experiment_id, target=str(database.path))
            con.execute("COMMIT")
            break
        except NotUtf8Error:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            if clean_utf8:
                raise LoadError(f"{run.path}: a log is not UTF-8 even after cleaning") from None
            clean_utf8 = True  # start again, reading the files with bad bytes from clean copies
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            measuring = MEASURING in getattr(exc, "__notes__", ())
            failed = f"{run.path}: loading into {database.path} failed" + (
                f" {MEASURING}" if measuring else ""
            )
            if _out_of_memory(exc):
                # DuckDB's own advice (SET memory_limit) is out of the user's reach here
                instead = ", or load without per-turn metrics: --no-metrics" if measuring else ""
                raise LoadError(
                    f"{failed}: {str(exc).splitlines()[0]} (the memory limit is "
                    f"{memory_limit_from_env()}; raise it with ${MEMORY_LIMIT_ENV}{instead})"
                ) from exc
            if isinstance(exc, duckdb.Error):
                raise LoadError(f"{failed}: {exc}") from exc
            raise
    database.publish(run.experiment_id)  # a lake's own transaction; nothing for a file
    duration_ms = int((time.monotonic() - started) * 1000)
    try:
        record_load_success(
            run,
            db_path=database.path,
            schema_version=SCHEMA_VERSION,
            stats=stats,
            rows=result.rows,
            duration_ms=duration_ms,
        )
    except OSError as exc:
        summary.warnings.append(
            f"{run.path}: loaded, but its marker could not be written ({exc}); "
            "the next load will load it again"
        )
    summary.add_rows(result.rows)
    summary.bad_lines += result.bad_lines
    summary.unknown_events += result.unknown_events
    what = (
        f"{plural(result.rows.get('events', 0), 'event')}, "
        f"{plural(result.rows.get('conversations', 0), 'conversation')}, "
        f"{plural(result.bad_lines, 'bad line')} in {duration_ms / 1000:.2f} s"
    )
    if plan.stale:
        reason = f"reloaded ({plan.stale}): {what}"
        summary.stale.append(
            RunOutcome(str(run.path), run.experiment_id, str(database.path), plan.stale)
        )
    elif force and plan.prior_fingerprint is not None:
        reason = f"reloaded (forced): {what}"
    else:
        reason = f"loaded: {what}"
    summary.warnings.extend(f"{run.path}: {note}" for note in run.notes)
    summary.loaded.append(RunOutcome(str(run.path), run.experiment_id, str(database.path), reason))


def _verify_skips(plans: list[_Plan], database: _Database | LakeDatabase) -> None:
    """Once the database is open anyway, do not trust a marker the database contradicts."""
    skipped = [plan for plan in plans if plan.skip]
    if not skipped:
        return
    known = database.fingerprints([plan.run.experiment_id for plan in skipped])
    for plan in skipped:
        if known.get(plan.run.experiment_id) != plan.prior_fingerprint:
            plan.prior_fingerprint = None
            try:
                _refuse_if_running(plan.run, allow_running=False)
            except ExperimentRunningError as exc:
                plan.skip = str(exc)
            else:
                plan.skip = None


def load_experiment(
    exp_dir: str | os.PathLike[str],
    db_path: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    allow_running: bool = False,
    lock_timeout: float | None = None,
    target: str | None = None,
    data_path: str | None = None,
    metrics: bool = True,
    on_lock_wait: LockWait | None = None,
) -> LoadSummary:
    """Load one experiment or chat directory into DuckDB.

    ``db_path`` defaults to ``default_db_path(exp_dir)``. An unchanged run already loaded
    into that database is skipped; a changed one is reloaded and listed as stale; ``force``
    reloads anyway and also loads a run that is still being written (as does
    ``allow_running``). ``metrics=False`` leaves ``turn_metrics`` empty for this run
    (``recompute_metrics`` fills it in later). Raises ``ExperimentRunningError``,
    ``DatabaseLockedError`` (after
    waiting up to ``lock_timeout`` seconds, default ``$PIDGIN_LOAD_LOCK_TIMEOUT`` or 10) or
    another ``LoadError``; the caller decides whether to ``record_load_failure``.

    ``target`` (``ducklake:postgres:<connection string>``) and ``data_path`` load into a
    DuckLake instead; without ``db_path`` and ``target``, ``$PIDGIN_LOAD_TARGET`` and
    ``$PIDGIN_LAKE_DATA_PATH`` can name one.
    ``on_lock_wait(message)`` is called as soon as a wait for the database begins.
    """
    from ._paths import default_db_path

    started = time.monotonic()
    run = inspect_run(exp_dir)
    lake = _resolve_target(db_path, target, data_path)
    db: Target
    if lake is not None:
        db = lake
    else:
        db = Path(db_path).absolute() if db_path is not None else default_db_path(run.path)
    plan = _plan(run, db, force=force, allow_running=allow_running or force)
    summary = LoadSummary()
    database = _open_target(db, lock_timeout_from_env(lock_timeout), on_lock_wait)
    try:
        # A marker matching an existing database is trusted here: checking the database
        # would cost its lock. load_all checks skips against a database it opens anyway.
        if plan.skip:
            summary.skipped.append(
                RunOutcome(str(run.path), run.experiment_id, _label(db), plan.skip)
            )
        else:
            _load(plan, database, summary, force=force, metrics=metrics)
    finally:
        database.close()
    summary.seconds = time.monotonic() - started
    return summary


def load_all(
    output_root: str | os.PathLike[str] | None = None,
    db_path: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    include_chats: bool = True,
    progress: Progress | None = None,
    lock_timeout: float | None = None,
    target: str | None = None,
    data_path: str | None = None,
    on_lock_wait: LockWait | None = None,
    metrics: bool = True,
) -> LoadSummary:
    """Load every finished run under an output root that is not loaded, stale or failed.

    Experiments go to ``experiments_db(root)`` and chats to ``chats_db()`` unless
    ``db_path`` sends everything to one database, or a lake (``target``, else
    ``$PIDGIN_LOAD_TARGET`` when no ``db_path`` is given) takes everything. Runs still
    being written are skipped (listed in ``skipped``); failures are listed in ``failed``
    rather than raised, so one bad run does not stop the rest. ``progress(done, total,
    label)`` is called after each run, ``on_lock_wait(message)`` as soon as a wait for a
    database another process holds begins. ``metrics=False`` leaves ``turn_metrics`` to
    ``recompute_all_metrics`` (they cost most of a load of long replies).
    """
    started = time.monotonic()
    root = resolve_output_root(output_root)
    summary = LoadSummary()
    timeout = lock_timeout_from_env(lock_timeout)
    lake = _resolve_target(db_path, target, data_path)
    dirs = discover_runs(root, include_chats=include_chats)
    total = len(dirs)
    done = 0

    def tick(label: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, label)

    by_db: dict[Target, list[_Plan]] = {}
    for run_dir in dirs:
        try:
            run = inspect_run(run_dir)
            db = lake if lake is not None else _target_db(run, root, db_path)
            plan = _plan(run, db, force=force, allow_running=False)
        except ExperimentRunningError as exc:
            summary.skipped.append(RunOutcome(str(run_dir), None, None, str(exc)))
            tick(run_dir.name)
            continue
        except LoadError as exc:
            summary.failed.append(RunOutcome(str(run_dir), None, None, str(exc)))
            tick(run_dir.name)
            continue
        by_db.setdefault(db, []).append(plan)
    for db, plans in by_db.items():
        database = _open_target(db, timeout, on_lock_wait)
        _load_into(database, plans, summary, force=force, tick=tick, metrics=metrics)
    summary.seconds = time.monotonic() - started
    return summary


def _target_db(run: RunFiles, root: Path, db_path: str | os.PathLike[str] | None) -> Path:
    if db_path is not None:
        return Path(db_path).absolute()
    return (chats_db() if run.kind == "chat" else experiments_db(root)).absolute()


def _load_into(
    database: _Database | LakeDatabase,
    plans: list[_Plan],
    summary: LoadSummary,
    *,
    force: bool,
    tick: Callable[[str], None],
    metrics: bool = True,
) -> None:
    db = str(database.path)  # a file, or a lake's label
    try:
        if any(not plan.skip for plan in plans):
            try:
                database.connection()  # once: a locked database fails every run at once
                _verify_skips(plans, database)
            except LoadError as exc:
                _fail_all((plan for plan in plans if not plan.skip), db, exc, summary, tick)
                _skip_all((plan for plan in plans if plan.skip), db, summary, tick)
                return
        for plan in plans:
            run = plan.run
            if plan.skip:
                summary.skipped.append(RunOutcome(str(run.path), run.experiment_id, db, plan.skip))
            else:
                try:
                    _load(plan, database, summary, force=force, metrics=metrics)
                except LoadError as exc:
                    summary.failed.append(
                        RunOutcome(str(run.path), run.experiment_id, db, str(exc))
                    )
            tick(run.experiment_id)
    finally:
        database.close()


def _fail_all(
    plans: Iterable[_Plan],
    db: str,
    exc: LoadError,
    summary: LoadSummary,
    tick: Callable[[str], None],
) -> None:
    for plan in plans:
        summary.failed.append(RunOutcome(str(plan.run.path), plan.run.experiment_id, db, str(exc)))
        tick(plan.run.experiment_id)


def _skip_all(
    plans: Iterable[_Plan], db: str, summary: LoadSummary, tick: Callable[[str], None]
) -> None:
    for plan in plans:
        summary.skipped.append(
            RunOutcome(str(plan.run.path), plan.run.experiment_id, db, plan.skip or "")
        )
        tick(plan.run.experiment_id)
