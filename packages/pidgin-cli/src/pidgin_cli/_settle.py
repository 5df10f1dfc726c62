"""How an experiment ended: its status from its conversations', recorded whatever happens.

``pidgin run`` and ``pidgin experiment resume`` end an experiment the same way, here.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from pidgin_events import Experiment

    from ._conductor import StopRequest
    from ._pool import Log
    from ._runner import RunSummary

__all__ = ["settle"]


def settle(
    experiment: Experiment,
    summary: RunSummary,
    stop: StopRequest,
    log: Log,
    run: Callable[[], list[str] | None],
    *,
    what: str,
) -> RunSummary:
    """Call ``run`` (the statuses its conversations ended with, or None when it recorded
    the experiment's end itself) and record how the experiment ended, whatever happens:
    an exception ends it ``failed`` with the traceback in the log (and a BaseException
    such as SystemExit still propagates)."""
    try:
        statuses = run()
        if statuses is None:
            return summary
        summary.status, summary.reason = outcome(statuses, stop)
    except BaseException as exc:
        summary.status, summary.reason = "failed", "exception"
        summary.error = f"{type(exc).__name__}: {exc}"
        log(f"the {what} failed: {summary.error}\n{traceback.format_exc()}")
        experiment.complete("failed", reason="exception", error=summary.error)
        if not isinstance(exc, Exception):
            raise
        return summary
    experiment.complete(summary.status, reason=summary.reason)
    log(
        f"completed {experiment.id}: {summary.status}"
        + (f" ({summary.reason})" if summary.reason else "")
    )
    return summary


def outcome(statuses: list[str], stop: StopRequest) -> tuple[str, str | None]:
    """The experiment's status: interrupted if stopped, failed if nothing but failures."""
    if stop.is_set():
        return "interrupted", stop.reason
    if statuses and "completed" not in statuses and "failed" in statuses:
        return "failed", "all_conversations_failed"
    return "completed", None
