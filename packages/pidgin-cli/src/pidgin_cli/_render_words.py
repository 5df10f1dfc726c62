"""The words every screen uses for a run: progress, load state, turns, how it ended.

Taken from pidgin-state snapshots, so that ``experiment list``, ``status``, ``attach`` and
``monitor`` (plain, rich and JSON alike) say the same thing the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ._output import safe_text
from ._render_text import shorten

if TYPE_CHECKING:
    from pidgin_state import ConversationState, ExperimentState, Progress

__all__ = [
    "STATUS_STYLES",
    "age_anchor",
    "aware",
    "conversation_outcome",
    "conversation_turns",
    "load_label",
    "load_state",
    "ordered",
    "progress_label",
    "recent",
    "run_progress",
    "run_turns",
]

STATUS_STYLES = {
    "running": "bold cyan",
    "completed": "green",
    "failed": "bold red",
    "interrupted": "yellow",
    "empty": "dim",
    "unknown": "magenta",
}


def aware(moment: datetime | None) -> datetime | None:
    """``moment`` with a time zone (pidgin-ai wrote some naive local times)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.astimezone()


def recent(moment: datetime | None, at: datetime, window: timedelta) -> bool:
    """Whether ``moment`` falls within ``window`` before ``at``."""
    moment = aware(moment)
    return moment is not None and at - moment <= window


def progress_label(progress: Progress, *, running: bool = True) -> str:
    """``3/5 (1 failed, 1 running)``: finished over planned, then what is not plain success.

    Conversations planned but never started are called ``pending`` while the run goes on
    and ``not started`` once it has ended.
    """
    planned = progress.planned or progress.started
    details = [
        f"{count} {word}"
        for count, word in (
            (progress.failed, "failed"),
            (progress.interrupted, "interrupted"),
            (progress.empty, "empty"),
            (progress.unknown, "unknown"),
            (progress.running, "running"),
            (0 if running else progress.pending, "not started"),
        )
        if count
    ]
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{progress.finished}/{planned}{suffix}"


def run_progress(state: ExperimentState) -> str:
    """``progress_label`` of a run, knowing whether it still runs."""
    return progress_label(state.progress, running=state.status == "running")


def run_turns(state: ExperimentState) -> str:
    """Turns done of those still possible: ``87/940`` while running, ``87`` once ended.

    A run that ended (stopped, killed) will never run the turns of the conversations it
    did not start, so a denominator that counts them (``87/94087``) would be a promise
    nobody keeps.
    """
    timing = state.timing
    if state.status != "running":
        return str(timing.turns_completed)
    return f"{timing.turns_completed}/{timing.turns_planned or '?'}"


def conversation_turns(conversation: ConversationState) -> str:
    """``6/10``: the turns of one conversation over its maximum."""
    return f"{conversation.turns_completed}/{conversation.max_turns or '?'}"


def conversation_outcome(conversation: ConversationState) -> str:
    """The STATUS cell: ``completed (high_convergence)``, ``failed (error)``, ``running``.

    The end reason is what a researcher asks first (did it converge or run out of
    turns?); a running conversation that warned says at which turn.
    """
    text: str = conversation.status
    if conversation.end_reason:
        text += f" ({conversation.end_reason})"
    elif conversation.status == "running" and conversation.convergence_warnings:
        text += f" (warned at turn {conversation.convergence_warnings[-1].turn})"
    return safe_text(text)


def load_state(state: ExperimentState) -> str:
    """``loaded``, ``stale``, ``failed``, ``not_loaded`` or ``running`` (nothing to load yet)."""
    database = state.database
    if database.failed:
        return "failed"
    if database.loaded:
        return "stale" if database.stale else "loaded"
    if state.status == "running":
        return "running"
    return "not_loaded"


def load_label(state: ExperimentState) -> str:
    """The LOADED column: ``yes``, ``no``, ``stale``, ``failed: <short reason>``, ``-``.

    A table cell, so the reason is cut; ``experiment status`` shows it whole.
    """
    verdict = load_state(state)
    if verdict == "failed":
        return f"failed: {shorten(safe_text(state.database.error or 'unknown reason'), 40)}"
    return {"loaded": "yes", "stale": "stale", "not_loaded": "no", "running": "-"}[verdict]


def age_anchor(state: ExperimentState) -> datetime | None:
    timing = state.timing
    return timing.started or timing.created or timing.last_event


def ordered(state: ExperimentState) -> list[ConversationState]:
    """Conversations in the order they started (then by id): a stable reading order."""
    far_future = datetime.max.replace(tzinfo=UTC)
    return sorted(
        state.conversations.values(),
        key=lambda c: (aware(c.started_at) or far_future, c.id),
    )
