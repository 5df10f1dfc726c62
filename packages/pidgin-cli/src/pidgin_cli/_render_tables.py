"""The screens of ``experiment list`` and ``experiment status``: plain text and rich.

Both forms are built from the same rows, in which every string read from a log or a run
directory has been through ``safe_text``: the screens never pass a control character to
the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pidgin_events import plural, utc_now

from ._output import command_hint, plain_table, rich_text, safe_text
from ._render_text import (
    format_age,
    format_agents,
    format_cost,
    format_duration,
    format_score,
    format_tokens,
    shorten,
    sparkline,
)
from ._render_words import (
    STATUS_STYLES,
    age_anchor,
    conversation_outcome,
    conversation_turns,
    load_label,
    load_state,
    ordered,
    run_progress,
)

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from pidgin_state import ConversationState, ErrorInfo, ExperimentState

__all__ = [
    "CONVERSATION_HEADERS",
    "LIST_HEADERS",
    "conversations_rich",
    "detail_plain",
    "detail_rich",
    "list_plain",
    "list_rich",
    "list_rows",
]

LIST_HEADERS = ("ID", "NAME", "STATUS", "PROGRESS", "AGE", "LOADED")
CONVERSATION_HEADERS = ("CONVERSATION", "STATUS", "TURNS", "MODELS", "CONV", "MEAN", "TOKENS")


# --- experiment list -------------------------------------------------------------------


def list_rows(states: Iterable[ExperimentState], now: datetime | None = None) -> list[list[str]]:
    now = now or utc_now()
    return [
        [
            safe_text(state.id),
            safe_text(state.name),
            state.status,
            run_progress(state),
            format_age(age_anchor(state), now),
            load_label(state),
        ]
        for state in states
    ]


def list_plain(states: Sequence[ExperimentState], now: datetime | None = None) -> str:
    return plain_table(LIST_HEADERS, list_rows(states, now))


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


# --- experiment status -----------------------------------------------------------------


def _conversation_row(conversation: ConversationState) -> list[str]:
    models = format_agents(
        (conversation.agent_a_model, conversation.agent_b_model),
        (conversation.agent_a_name, conversation.agent_b_name),
    )
    tokens = sum(count.total for count in conversation.tokens.values())
    return [
        safe_text(conversation.id),
        conversation_outcome(conversation),
        conversation_turns(conversation),
        safe_text(models),
        format_score(conversation.latest_convergence),
        format_score(conversation.mean_convergence),
        format_tokens(tokens),
    ]


def _facts(state: ExperimentState, now: datetime) -> list[tuple[str, str]]:
    timing = state.timing
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
        facts.append(("cost", f"{format_cost(total.cost_usd)} (catalogue prices)"))
    facts.append(("convergence", format_score(state.convergence.mean_of_latest) + " (mean latest)"))
    warned = sum(bool(c.convergence_warnings) for c in state.conversations.values())
    if warned:
        reached = f"convergence threshold reached in {plural(warned, 'conversation')}"
        facts.append(("warnings", reached))
    facts.append(("errors", str(state.error_count)))
    if state.error:
        facts.append(("error", state.error))
    facts += _database_facts(state, now)
    return [(key, safe_text(value)) for key, value in facts]


def _database_facts(state: ExperimentState, now: datetime) -> list[tuple[str, str]]:
    """Where the run stands in DuckDB; reasons whole (the list's LOADED column cuts them)."""
    database = state.database
    verdict = load_state(state)
    # The run's own root: a hint that names it works from any shell (-o when needed).
    load_again = command_hint("load-db", state.directory.name, root=state.directory.parent.parent)
    if verdict in ("loaded", "stale"):
        loaded = f"{verdict} {_when(database.loaded_at, now)}"
        facts = [("database", loaded + (f" into {database.db_path}" if database.db_path else ""))]
        if verdict == "stale":
            facts.append(("", database.stale_reason or "changed since its load"))
            facts.append(("", f"reload with: {load_again}"))
        return facts
    if verdict == "failed":
        return [
            ("database", f"load failed: {database.error or 'unknown reason'}"),
            ("", f"retry with: {load_again}"),
        ]
    return [("database", "not loaded" if verdict == "not_loaded" else "not yet (running)")]


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    return f"{moment.isoformat(timespec='seconds')} ({format_age(moment, now)})"


def detail_plain(state: ExperimentState, now: datetime | None = None) -> str:
    now = now or utc_now()
    facts = _facts(state, now)
    width = max(len(key) for key, _ in facts)
    lines = [f"{key.ljust(width)}  {value}".rstrip() for key, value in facts]
    conversations = ordered(state)
    if conversations:
        lines += [
            "",
            plain_table(CONVERSATION_HEADERS, [_conversation_row(c) for c in conversations]),
        ]
    warnings = _warning_lines(conversations)
    if warnings:
        lines += ["", "convergence warnings:", *(f"  {line}" for line in warnings)]
    if state.last_errors:
        lines += ["", "recent errors:"]
        lines += [f"  {_error_line(error)}" for error in state.last_errors]
    if state.problems:
        lines += ["", f"problems ({state.problem_count}):"]
        lines += [f"  {safe_text(problem)}" for problem in state.problems]
    for note in state.notes:
        lines.append(f"note: {safe_text(note)}")
    return "\n".join(lines)


def _warning_lines(conversations: Sequence[ConversationState]) -> list[str]:
    return [
        safe_text(
            f"{conversation.id}  turn {warning.turn}: convergence {format_score(warning.score)} "
            f"reached the threshold {warning.threshold:g}"
        )
        for conversation in conversations
        for warning in conversation.convergence_warnings
    ]


def _error_line(error: ErrorInfo) -> str:
    when = error.timestamp.isoformat(timespec="seconds") if error.timestamp else "-"
    kind = error.error_type or error.event_type
    where = error.conversation_id or "-"
    return safe_text(f"{when}  {where}  {kind}: {shorten(error.message, 160)}")


def _status_text(status: str) -> Any:
    return rich_text(status, style=STATUS_STYLES.get(status, ""))


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
        cells: list[Any] = [
            row[0],
            rich_text(row[1].plain, style=STATUS_STYLES.get(conversation.status, "")),
        ]
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
        table.caption = f"... and {plural(len(conversations) - limit, 'more conversation')}"
    return table


def detail_rich(state: ExperimentState, now: datetime | None = None) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    now = now or utc_now()
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    for key, value in _facts(state, now):
        style = STATUS_STYLES.get(state.status, "") if key == "status" else ""
        facts.add_row(key, rich_text(value, style))
    parts: list[RenderableType] = [facts]
    conversations = ordered(state)
    if conversations:
        parts.append(conversations_rich(conversations, bars=False))
    warnings = _warning_lines(conversations)
    if warnings:
        parts.append(Text("convergence warnings", style="bold yellow"))
        parts.extend(rich_text(f"  {line}") for line in warnings)
    if state.last_errors:
        parts.append(Text("recent errors", style="bold red"))
        parts.extend(rich_text(f"  {_error_line(error)}") for error in state.last_errors)
    if state.problems:
        parts.append(Text(f"problems ({state.problem_count})", style="bold yellow"))
        parts.extend(rich_text(f"  {problem}") for problem in state.problems)
    parts.extend(rich_text(f"note: {note}", style="dim") for note in state.notes)
    return Group(*parts)
