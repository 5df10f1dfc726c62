"""The ``--json`` documents of the watching commands, built key by key.

Built here rather than dumped from the state dataclasses, so that they stay stable (and
documented in the README) while pidgin-state evolves. They keep the true values: JSON
escapes control characters itself, no ``safe_text`` here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pidgin_events import utc_now

from ._output import JSON_SCHEMA_VERSION
from ._render_text import iso
from ._render_words import age_anchor, load_state, ordered, run_progress

if TYPE_CHECKING:
    from pidgin_state import ConversationState, ErrorInfo, ExperimentState, TokenCount

__all__ = [
    "conversation_json",
    "detail_json",
    "error_json",
    "list_document",
    "summary_json",
]


def summary_json(state: ExperimentState, now: datetime | None = None) -> dict[str, Any]:
    """One run as ``experiment list --json`` shows it (documented in the README)."""
    now = now or utc_now()
    progress = state.progress
    timing = state.timing
    database = state.database
    anchor = age_anchor(state)
    return {
        "id": state.id,
        "name": state.name,
        "kind": state.kind,
        "status": state.status,
        "directory": str(state.directory),
        "progress": {
            "planned": progress.planned,
            "completed": progress.completed,
            "failed": progress.failed,
            "interrupted": progress.interrupted,
            "running": progress.running,
            "empty": progress.empty,
            "pending": progress.pending,
            "finished": progress.finished,
            "label": run_progress(state),
        },
        "created": iso(timing.created),
        "started": iso(timing.started),
        "last_event": iso(timing.last_event),
        "completed": iso(timing.completed),
        "age_seconds": None if anchor is None else round((now - anchor).total_seconds(), 3),
        "elapsed_seconds": _round(timing.elapsed(now)),
        "eta_seconds": _round(timing.eta(now)),
        "turns_completed": timing.turns_completed,
        "turns_planned": timing.turns_planned,
        "convergence": {"mean_of_latest": state.convergence.mean_of_latest},
        "tokens": state.tokens.total.total,
        "cost_usd": round(state.tokens.total.cost_usd, 6),
        "error_count": state.error_count,
        "load": {
            "state": load_state(state),
            "loaded_at": iso(database.loaded_at),
            "db_path": database.db_path,
            "failed_at": iso(database.failed_at),
            "reason": database.error,
            "stale": database.stale,
            "stale_reason": database.stale_reason,
        },
    }


def conversation_json(conversation: ConversationState) -> dict[str, Any]:
    """One conversation inside ``experiment status --json``."""
    return {
        "id": conversation.id,
        "status": conversation.status,
        "current_turn": conversation.current_turn,
        "turns_completed": conversation.turns_completed,
        "max_turns": conversation.max_turns,
        "agent_a_model": conversation.agent_a_model,
        "agent_b_model": conversation.agent_b_model,
        "agent_a_name": conversation.agent_a_name,
        "agent_b_name": conversation.agent_b_name,
        "convergence": {
            "latest": conversation.latest_convergence,
            "mean": conversation.mean_convergence,
            "trajectory": list(conversation.convergence),
            "warnings": [
                {"turn": warning.turn, "score": warning.score, "threshold": warning.threshold}
                for warning in conversation.convergence_warnings
            ],
        },
        "tokens": {
            agent: {"prompt": count.prompt, "completion": count.completion, "total": count.total}
            for agent, count in sorted(conversation.tokens.items())
        },
        "started": iso(conversation.started_at),
        "ended": iso(conversation.ended_at),
        "last_message_at": iso(conversation.last_message_at),
        "end_reason": conversation.end_reason,
        "error": conversation.error,
        "error_count": conversation.error_count,
        "log": str(conversation.log_path),
    }


def error_json(error: ErrorInfo, run: ExperimentState | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if run is not None:
        document["run_id"] = run.id
        document["run_name"] = run.name
    document.update(
        {
            "timestamp": iso(error.timestamp),
            "conversation_id": error.conversation_id,
            "event_type": error.event_type,
            "error_type": error.error_type,
            "message": error.message,
            "location": error.location,
        }
    )
    return document


def detail_json(state: ExperimentState, now: datetime | None = None) -> dict[str, Any]:
    """One run as ``experiment status --json`` shows it: the summary plus every detail."""
    document = summary_json(state, now)
    tokens = state.tokens
    document.update(
        {
            "format": state.format,
            "live": state.live,
            "end_reason": state.end_reason,
            "error": state.error,
            "convergence": {
                "mean_of_latest": state.convergence.mean_of_latest,
                "latest": dict(state.convergence.latest),
                "mean": dict(state.convergence.mean),
            },
            "tokens": {
                "total": _count_json(tokens.total),
                "by_agent": {k: _count_json(v) for k, v in sorted(tokens.by_agent.items())},
                "by_model": {k: _count_json(v) for k, v in sorted(tokens.by_model.items())},
            },
            "last_errors": [error_json(error) for error in state.last_errors],
            "problems": list(state.problems),
            "problem_count": state.problem_count,
            "notes": list(state.notes),
            "conversations": [conversation_json(c) for c in ordered(state)],
        }
    )
    return document


def list_document(
    states: Iterable[ExperimentState], root: str, now: datetime | None = None
) -> dict[str, Any]:
    now = now or utc_now()
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "output_root": root,
        "generated_at": now.isoformat(),
        "experiments": [summary_json(state, now) for state in states],
    }


def _count_json(count: TokenCount) -> dict[str, int | float]:
    return {
        "prompt": count.prompt,
        "completion": count.completion,
        "total": count.total,
        "messages": count.messages,
        "cost_usd": round(count.cost_usd, 6),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
