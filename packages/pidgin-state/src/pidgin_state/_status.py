"""How a run and its conversations stand: the one rule every screen and the database use.

The words are ``pidgin_events``' (``RunStatus``); this module decides which applies.
pidgin-load loads a run with the statuses the StateBuilder gives, so a killed run is
``interrupted`` on every screen and in every table.

Whether a writer is still at work, from every signal there is (``writer_alive``):

* a recorded end of the run (an ``ExperimentCompleteEvent``, or pidgin-ai's
  ``manifest.json`` with a final status, which it writes with ``completed_at``): nobody
  writes any more;
* Pidgin's own run lock (``.pidgin.lock``), held while a writer lives and dropped by the
  kernel when it dies, ``kill -9`` included;
* pidgin-ai's pid file (``$XDG_CACHE_HOME/pidgin/active_experiments/<id>.pid``), which
  its daemon removes on a clean exit and a kill leaves behind: a live pidgin process
  there means running, a dead one means not.

When none of them can tell (a pidgin-ai run started in the foreground, a lock that cannot
be probed), a conversation without an end event is ``running`` only while it is *fresh*:
its log was written within ``stale_after`` seconds **and** its newest event says so by
its own timestamp. A copy or a restored backup has fresh file times but old events, so it
is never shown as running.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pidgin_events import FINISHED_STATUSES, ConversationStatus, RunStatus

from ._model import Progress

__all__ = [
    "DEFAULT_STALE_AFTER",
    "PIDGIN_AI_LIVE_STATUSES",
    "Writer",
    "aggregate_status",
    "conversation_status",
    "end_status",
    "is_fresh",
    "manifest_disagrees",
    "pidgin_ai_pid_alive",
    "run_status",
    "writer_alive",
]

DEFAULT_STALE_AFTER = 600.0
"""Seconds without a write after which a conversation nobody is known to write is
interrupted: longer than pidgin-ai's provider timeout with its retries."""
PIDGIN_AI_LIVE_STATUSES = frozenset({"created", "running"})
"""pidgin-ai manifest statuses of a run that has not recorded its end."""
_END_STATUSES = frozenset({*FINISHED_STATUSES, "empty"})
# pidgin-ai's status_for_end_reason, for end events without a usable status.
_COMPLETED_REASONS = frozenset(
    {"max_turns", "max_turns_reached", "high_convergence", "convergence_threshold"}
)
_FAILED_REASONS = frozenset({"error", "api_error", "exception"})
_PID_DIR = ("pidgin", "active_experiments")


@dataclass(frozen=True, slots=True)
class Writer:
    """The verdict on a run's writer, and the signal it rests on (in words)."""

    alive: bool | None
    """None: no signal tells; each log's freshness decides."""
    why: str
    recorded_end: bool = False
    """Whether the run recorded its own end (not inferred from a dead writer)."""


def writer_alive(*, recorded_end: str | None, lock: bool | None, pid_alive: bool | None) -> Writer:
    """Whether a writer of the run is at work, from the strongest signal there is.

    ``recorded_end`` says in words where the run recorded its end (None: it did not).
    ``lock`` is None for pidgin-ai runs (they have none) and where it cannot be probed;
    ``pid_alive`` is None where there is no pid file (and for Pidgin's own runs).
    """
    if recorded_end is not None:
        return Writer(False, recorded_end, recorded_end=True)
    if lock is not None:
        return Writer(lock, "a live writer holds the run lock" if lock else "no live writer")
    if pid_alive is not None:
        return Writer(
            pid_alive,
            "pidgin-ai's process is alive" if pid_alive else "pidgin-ai's process is gone",
        )
    return Writer(None, "nothing tells whether a writer is at work")


def is_fresh(
    mtime: float | None, last_event: datetime | None, now: float, stale_after: float
) -> bool:
    """Whether a log counts as being written: a recent write, and a recent newest event."""
    if mtime is None or now - mtime > stale_after:
        return False
    return last_event is None or now - last_event.timestamp() <= stale_after


def conversation_status(
    *,
    ended: bool,
    status: str | None,
    reason: str | None,
    has_events: bool,
    unreadable: bool,
    writer: Writer,
    fresh: bool,
    stale_after: float,
) -> tuple[ConversationStatus, str | None]:
    """A conversation's status and end reason: its end event's, else inferred (with why)."""
    if ended:
        return end_status(status, reason), reason
    if not has_events and unreadable:
        return "unknown", None
    if writer.alive or (writer.alive is None and fresh):
        return "running", None
    if writer.alive is False:
        why = f"no end event and {writer.why}"
    else:
        why = f"no end event and no write for over {stale_after:g} s"
    return ("interrupted", why) if has_events else ("empty", None)


def run_status(
    *,
    progress: Progress,
    writer: Writer,
    recently_written: bool,
    legacy: bool,
    has_experiment_log: bool,
) -> RunStatus:
    """A run's status when it recorded no end of its own (no ``ExperimentCompleteEvent``).

    Running only while a writer is at work, or, when no signal tells, while something
    was written lately (pidgin-ai starts its next conversation in a moment).
    """
    may_run = writer.alive is True or (writer.alive is None and recently_written)
    if legacy or (not has_experiment_log and progress.started):
        status = aggregate_status(progress)
        return "running" if status != "running" and progress.pending and may_run else status
    if has_experiment_log:
        return "running" if may_run else "interrupted"
    return "running" if may_run else "empty"


def end_status(status: str | None, reason: str | None) -> ConversationStatus:
    """A conversation's status from its end event (pidgin-ai's reasons where status is odd)."""
    if status in _END_STATUSES:
        return status
    if reason in _COMPLETED_REASONS:
        return "completed"
    if reason in _FAILED_REASONS:
        return "failed"
    return "interrupted"


def aggregate_status(progress: Progress) -> RunStatus:
    """A run's status from its conversations' (no run-level end event to go by)."""
    if progress.running:
        return "running"
    started = progress.started
    if started == 0:
        return "empty"
    if progress.unknown:
        return "unknown"
    if progress.interrupted or progress.pending:
        return "interrupted"
    if progress.failed == started:
        return "failed"
    if progress.empty == started:
        return "empty"
    return "completed"


def manifest_disagrees(manifest_status: str, status: RunStatus) -> bool:
    """Whether pidgin-ai's manifest says something else than the events (worth a note)."""
    if manifest_status == status:
        return False
    return not (manifest_status == "completed_with_failures" and status == "completed")


def pidgin_ai_pid_alive(experiment_id: str | None) -> bool | None:
    """What pidgin-ai's pid file of ``experiment_id`` says: its daemon alive, dead, or
    None without a pid file (a clean exit removed it, or the run never had a daemon)."""
    if not experiment_id or "/" in experiment_id or experiment_id.startswith("."):
        return None
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    path = os.path.join(cache, *_PID_DIR, f"{experiment_id}.pid")
    try:
        with open(path, "rb") as stream:
            text = stream.read(32).strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    return _is_pidgin_process(int(text))


def _is_pidgin_process(pid: int) -> bool:
    """Whether ``pid`` is alive and (where ``/proc`` says) a pidgin process, not a reuse."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            return b"pidgin" in stream.read()
    except FileNotFoundError:
        return not os.path.isdir("/proc")  # no /proc on this system: believe the pid
    except OSError:
        return True
