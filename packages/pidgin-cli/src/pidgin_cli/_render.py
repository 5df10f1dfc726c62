"""From pidgin-state snapshots to what the watching commands show: JSON, plain text, rich.

The ``--json`` documents are built here, key by key, rather than dumped from the state
dataclasses, so that they stay stable (and documented in the README) while pidgin-state
evolves. Plain text and rich renderables are built from the same words, in which every
string read from a log or a run directory has been through ``safe_text``: the JSON keeps
the true values, the screens never pass a control character to the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._output import JSON_SCHEMA_VERSION, plain_table, rich_text, safe_text
from ._render_text import (
    format_age,
    format_duration,
    format_score,
    format_tokens,
    iso,
    shorten,
    sparkline,
)

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from pidgin_state import ConversationState, ErrorInfo, ExperimentState, Progress, TokenCount

__all__ = [
    "CONVERSATION_HEADERS",
    "LIST_HEADERS",
    "STATUS_STYLES",
    "conversation_json",
    "conversations_rich",
    "detail_json",
    "detail_plain",
    "detail_rich",
    "error_json",
    "list_document",
    "list_plain",
    "list_rich",
    "list_rows",
    "load_label",
    "load_state",
    "progress_label",
    "recent",
    "run_progress",
    "summary_json",
]

STATUS_STYLES = {
    "running": "bold cyan",
    "completed": "green",
    "failed": "bold red",
    "interrupted": "yellow",
    "empty": "dim",
    "unknown": "magenta",
}

LIST_HEADERS = ("ID", "NAME", "STATUS", "PROGRESS", "AGE", "LOADED")


def _now() -> datetime:
    return datetime.now(UTC)


# --- words ---------------------------------------------------------------------------


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
    """The LOADED column: ``yes``, ``no``, ``stale``, ``failed: <short reason>``, ``-``."""
    verdict = load_state(state)
    if verdict == "failed":
        return f"failed: {shorten(safe_text(state.database.error or 'unknown reason'), 40)}"
    return {"loaded": "yes", "stale": "stale", "not_loaded": "no", "running": "-"}[verdict]


def _age_anchor(state: ExperimentState) -> datetime | None:
    timing = state.timing
    return timing.started or timing.created or timing.last_event


# --- JSON ----------------------------------------------------------------------------


def summary_json(state: ExperimentState, now: datetime | None = None) -> dict[str, Any]:
    """One run as ``experiment list --json`` shows it (documented in the README)."""
    now = now or _now()
    progress = state.progress
    timing = state.timing
    database = state.database
    anchor = _age_anchor(state)
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
        "convergence": {
            "latest": conversation.latest_convergence,
            "mean": conversation.mean_convergence,
            "trajectory": list(conversation.convergence),
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
            "conversations": [conversation_json(c) for c in _ordered(state)],
        }
    )
    return document


def list_document(
    states: Iterable[ExperimentState], root: str, now: datetime | None = None
) -> dict[str, Any]:
    now = now or _now()
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


def _ordered(state: ExperimentState) -> list[ConversationState]:
    """Conversations in the order they started (then by id): a stable reading order."""
    far_future = datetime.max.replace(tzinfo=UTC)
    return sorted(
        state.conversations.values(),
        key=lambda c: (_aware(c.started_at) or far_future, c.id),
    )


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.astimezone()


# --- plain text ------------------------------------------------------------------------


def list_rows(states: Iterable[ExperimentState], now: datetime | None = None) -> list[list[str]]:
    now = now or _now()
    return [
        [
            safe_text(state.id),
            safe_text(state.name),
            state.status,
            run_progress(state),
            format_age(_age_anchor(state), now),
            load_label(state),
        ]
        for state in states
    ]


def list_plain(states: Sequence[ExperimentState], now: datetime | None = None) -> str:
    return plain_table(LIST_HEADERS, list_rows(states, now))


CONVERSATION_HEADERS = ("CONVERSATION", "STATUS", "TURNS", "MODELS", "CONV", "MEAN", "TOKENS")


def _conversation_row(conversation: ConversationState) -> list[str]:
    turns = f"{conversation.turns_completed}/{conversation.max_turns or '?'}"
    models = f"{conversation.agent_a_model or '?'} / {conversation.agent_b_model or '?'}"
    tokens = sum(count.total for count in conversation.tokens.values())
    return [
        safe_text(conversation.id),
        conversation.status,
        turns,
        safe_text(models),
        format_score(conversation.latest_convergence),
        format_score(conversation.mean_convergence),
        format_tokens(tokens),
    ]


def _facts(state: ExperimentState, now: datetime) -> list[tuple[str, str]]:
    timing = state.timing
    database = state.database
    facts = [
        ("id", state.id),
        ("name", state.name),
        ("kind", state.kind),
        ("status", state.status + (f" ({state.end_reason})" if state.end_reason else "")),
        ("directory", str(state.directory)),
        ("progress", run_progress(state)),
        ("started", _when(timing.started, now)),
    ]
    if timing.completed is not None:
        facts.append(("completed", _when(timing.completed, now)))
    else:
        facts.append(("last event", _when(timing.last_event, now)))
    facts.append(("elapsed", format_duration(timing.elapsed(now))))
    eta = timing.eta(now)
    if eta is not None:
        facts.append(("eta", format_duration(eta)))
    total = state.tokens.total
    facts.append(
        ("tokens", f"{total.total} ({total.prompt} prompt, {total.completion} completion)")
    )
    if total.cost_usd:
        facts.append(("cost", f"${total.cost_usd:.4f} (catalogue prices)"))
    facts.append(("convergence", format_score(state.convergence.mean_of_latest) + " (mean latest)"))
    facts.append(("errors", str(state.error_count)))
    if state.error:
        facts.append(("error", shorten(state.error, 200)))
    verdict = load_state(state)
    if verdict in ("loaded", "stale"):
        loaded = f"{verdict} {_when(database.loaded_at, now)}"
        facts.append(
            ("database", loaded + (f" into {database.db_path}" if database.db_path else ""))
        )
        if verdict == "stale":
            facts.append(("", shorten(database.stale_reason, 200) or "changed since its load"))
            facts.append(("", "reload with: pidgin load-db " + state.directory.name))
    elif verdict == "failed":
        facts.append(("database", f"load failed: {shorten(database.error, 200) or 'unknown'}"))
        facts.append(("", "retry with: pidgin load-db " + state.directory.name))
    else:
        facts.append(("database", "not loaded" if verdict == "not_loaded" else "not yet (running)"))
    return [(key, safe_text(value)) for key, value in facts]


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    return f"{moment.isoformat(timespec='seconds')} ({format_age(moment, now)})"


def detail_plain(state: ExperimentState, now: datetime | None = None) -> str:
    now = now or _now()
    facts = _facts(state, now)
    width = max(len(key) for key, _ in facts)
    lines = [f"{key.ljust(width)}  {value}".rstrip() for key, value in facts]
    conversations = _ordered(state)
    if conversations:
        lines += [
            "",
            plain_table(CONVERSATION_HEADERS, [_conversation_row(c) for c in conversations]),
        ]
    if state.last_errors:
        lines += ["", "recent errors:"]
        lines += [f"  {_error_line(error)}" for error in state.last_errors]
    if state.problems:
        lines += ["", f"problems ({state.problem_count}):"]
        lines += [f"  {safe_text(problem)}" for problem in state.problems]
    for note in state.notes:
        lines.append(f"note: {safe_text(note)}")
    return "\n".join(lines)


def _error_line(error: ErrorInfo) -> str:
    when = error.timestamp.isoformat(timespec="seconds") if error.timestamp else "-"
    kind = error.error_type or error.event_type
    where = error.conversation_id or "-"
    return safe_text(f"{when}  {where}  {kind}: {shorten(error.message, 160)}")


# --- rich ------------------------------------------------------------------------------


def _status_text(status: str) -> Any:
    return rich_text(status, style=STATUS_STYLES.get(status, ""))


def list_rich(states: Sequence[ExperimentState], now: datetime | None = None) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in LIST_HEADERS:
        table.add_column(header, no_wrap=header != "NAME")
    for state, row in zip(states, list_rows(states, now), strict=True):
        cells: list[Any] = [rich_text(cell) for cell in row]
        cells[2] = _status_text(state.status)
        table.add_row(*cells)
    return table


def conversations_rich(
    conversations: Sequence[ConversationState], *, bars: bool, limit: int | None = None
) -> Table:
    """One row per conversation: status, turns (a bar when live), convergence sparkline."""
    from rich import box
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("CONVERSATION", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    if bars:
        table.add_column("PROGRESS", width=24, no_wrap=True)
    table.add_column("TURNS", justify="right", no_wrap=True)
    table.add_column("MODELS", no_wrap=True)
    table.add_column("CONVERGENCE", no_wrap=True)
    table.add_column("LATEST", justify="right", no_wrap=True)
    table.add_column("MEAN", justify="right", no_wrap=True)
    table.add_column("TOKENS", justify="right", no_wrap=True)
    shown = conversations if limit is None else conversations[:limit]
    for conversation in shown:
        row = [rich_text(cell) for cell in _conversation_row(conversation)]
        cells: list[Any] = [row[0], _status_text(conversation.status)]
        if bars:
            total = conversation.max_turns or max(conversation.turns_completed, 1)
            cells.append(ProgressBar(total=total, completed=conversation.turns_completed, width=24))
        cells += [
            row[2],
            row[3],
            rich_text(sparkline(conversation.convergence)),
            row[4],
            row[5],
            row[6],
        ]
        table.add_row(*cells)
    if limit is not None and len(conversations) > limit:
        table.caption = f"... and {len(conversations) - limit} more conversations"
    return table


def detail_rich(state: ExperimentState, now: datetime | None = None) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    now = now or _now()
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    for key, value in _facts(state, now):
        facts.add_row(key, _status_text(value) if key == "status" else rich_text(value))
    parts: list[RenderableType] = [facts]
    conversations = _ordered(state)
    if conversations:
        parts.append(conversations_rich(conversations, bars=False))
    if state.last_errors:
        parts.append(Text("recent errors", style="bold red"))
        parts.extend(rich_text(f"  {_error_line(error)}") for error in state.last_errors)
    if state.problems:
        parts.append(Text(f"problems ({state.problem_count})", style="bold yellow"))
        parts.extend(rich_text(f"  {problem}") for problem in state.problems)
    parts.extend(rich_text(f"note: {note}", style="dim") for note in state.notes)
    return Group(*parts)


def recent(moment: datetime | None, now: datetime, window: timedelta) -> bool:
    """Whether ``moment`` falls within ``window`` before ``now``."""
    moment = _aware(moment)
    return moment is not None and now - moment <= window
