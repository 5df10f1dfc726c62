"""What ``experiment attach`` (and ``pidgin run`` following a run) shows, frame by frame.

Two displays behind one interface (``update``, ``close``, ``summary``): a rich ``Live``
redrawn from each snapshot on a terminal, and one plain line whenever a conversation moves
for pipes and logs. The loop that feeds them lives in ``_commands_watch``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import click

from pidgin_events import FINISHED_STATUSES, plural, utc_now

from ._output import command_hint, make_console, rich_text, safe_text
from ._render_text import format_cost, format_duration, format_score, format_tokens
from ._render_words import (
    STATUS_STYLES,
    aware,
    conversation_outcome,
    conversation_turns,
    run_progress,
    run_turns,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from pidgin_state import ConversationState, ExperimentState

__all__ = [
    "AttachDisplay",
    "LiveDisplay",
    "PlainFollower",
    "attach_frame",
    "detach_message",
    "summary_line",
]


class AttachDisplay(Protocol):
    @property
    def done(self) -> str | None:
        """The status of what the display follows, once it ended before the run did."""

    def update(self, state: ExperimentState) -> None: ...
    def close(self) -> None: ...
    def summary(self, state: ExperimentState) -> None: ...


def _root_of(directory: Path) -> Path:
    """The output root of a run directory (``ROOT/experiments/ID`` or ``ROOT/chats/ID``)."""
    return directory.parent.parent


def detach_message(directory: Path) -> str:
    """What Ctrl-C prints: how to come back, how to stop it, ``-o`` included when needed."""
    name, root = directory.name, _root_of(directory)
    attach = command_hint("experiment", "attach", name, root=root)
    stop = command_hint("experiment", "stop", name, root=root)
    return safe_text(
        f"\nDetached from {name}; it keeps running.\n  re-attach: {attach}\n  stop it:   {stop}",
        multiline=True,
    )


def summary_line(state: ExperimentState) -> str:
    """The line printed once a run ended (or on leaving): status, progress, time, next step."""
    elapsed = format_duration(state.timing.elapsed())
    line = f"{safe_text(state.id)} {state.status}: {run_progress(state)} in {elapsed}"
    if state.error:
        line += f" ({safe_text(state.error)})"
    if state.status in FINISHED_STATUSES:
        directory = state.directory
        hint = command_hint("experiment", "status", directory.name, root=_root_of(directory))
        line += f"\n  details: {safe_text(hint)}"
    return line


def _clock() -> str:
    return utc_now().astimezone().strftime("%H:%M:%S")


class PlainFollower:
    """Attach for pipes and logs: one line whenever a conversation moves, no escapes."""

    done: str | None = None

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, int, int]] = {}
        self._header = False

    def update(self, state: ExperimentState) -> None:
        if not self._header:
            click.echo(
                safe_text(
                    f"attached to {state.id} ({state.name}): {state.status}, {run_progress(state)}"
                )
            )
            self._header = True
        for conversation in state.conversations.values():
            warnings = conversation.convergence_warnings
            key = (conversation.status, conversation.turns_completed, len(warnings))
            seen = self._seen.get(conversation.id)
            if seen == key:
                continue
            self._seen[conversation.id] = key
            click.echo(
                f"{_clock()}  {safe_text(conversation.id)}  {conversation_outcome(conversation)}  "
                f"turns {conversation_turns(conversation)}  "
                f"convergence {format_score(conversation.latest_convergence)}"
            )
            for warning in warnings[seen[2] if seen else 0 :]:
                click.echo(
                    f"{_clock()}  {safe_text(conversation.id)}  warning: convergence "
                    f"{format_score(warning.score)} reached the threshold {warning.threshold:g} "
                    f"at turn {warning.turn}"
                )

    def close(self) -> None:
        sys.stdout.flush()

    def summary(self, state: ExperimentState) -> None:
        click.echo(summary_line(state))


class LiveDisplay:
    """Attach on a terminal: a rich ``Live`` redrawn from each new snapshot."""

    done: str | None = None

    def __init__(self) -> None:
        from rich.live import Live

        self.console = make_console()
        self._live = Live(console=self.console, auto_refresh=False, transient=False)
        self._live.start()

    def update(self, state: ExperimentState) -> None:
        frame = attach_frame(state, self.console, final=state.status in FINISHED_STATUSES)
        self._live.update(frame, refresh=True)

    def close(self) -> None:
        self._live.stop()

    def summary(self, state: ExperimentState) -> None:
        self.console.print(rich_text(summary_line(state), multiline=True))


def attach_frame(
    state: ExperimentState, console: Console, *, final: bool = False
) -> RenderableType:
    """One frame: a header, the overall turns bar, a row per conversation, warnings, errors."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    from ._render_tables import conversations_rich

    now = utc_now()
    timing = state.timing
    header = Text()
    header.append(f"{safe_text(state.name)} ", style="bold")
    header.append(f"({safe_text(state.id)})  ")
    header.append(state.status, style=STATUS_STYLES.get(state.status, ""))
    header.append(f"  conversations {run_progress(state)}")
    header.append(f"  elapsed {format_duration(timing.elapsed(now))}")
    eta = timing.eta(now)
    if eta is not None:
        header.append(f"  eta {format_duration(eta)}")
    header.append(f"  tokens {format_tokens(state.tokens.total.total)}")
    if state.tokens.total.cost_usd:
        header.append(f"  cost {format_cost(state.tokens.total.cost_usd)}")
    header.append(f"  convergence {format_score(state.convergence.mean_of_latest)}")
    overall = Table.grid(padding=(0, 1))
    overall.add_column(no_wrap=True)
    overall.add_column()
    overall.add_column(no_wrap=True)
    running = state.status == "running"
    planned_turns = (timing.turns_planned if running else None) or max(timing.turns_completed, 1)
    overall.add_row(
        "turns",
        ProgressBar(total=planned_turns, completed=timing.turns_completed, width=40),
        run_turns(state),
    )
    limit = max(3, console.size.height - 10)
    parts: list[RenderableType] = [
        header,
        overall,
        conversations_rich(_attach_order(state), bars=True, limit=limit),
    ]
    warnings = [
        (conversation.id, conversation.convergence_warnings[-1])
        for conversation in state.conversations.values()
        if conversation.convergence_warnings
    ]
    if warnings:
        conversation_id, last = max(warnings, key=lambda pair: pair[1].turn)
        parts.append(
            rich_text(
                f"convergence warning: {plural(len(warnings), 'conversation')} reached the "
                f"threshold {last.threshold:g}; latest {conversation_id} at turn {last.turn} "
                f"({format_score(last.score)})",
                "yellow",
            )
        )
    if state.last_errors:
        error = state.last_errors[-1]
        parts.append(
            rich_text(f"last error: {error.error_type or error.event_type}: {error.message}", "red")
        )
    if not final:
        parts.append(Text("Ctrl-C detaches; the experiment keeps running.", style="dim"))
    return Group(*parts)


def _attach_order(state: ExperimentState) -> list[ConversationState]:
    """Running conversations first, then the most recently active ones."""

    def key(conversation: ConversationState) -> tuple[int, float, str]:
        moment = aware(conversation.last_event_at)
        recency = -moment.timestamp() if moment is not None else 0.0
        return (0 if conversation.status == "running" else 1, recency, conversation.id)

    return sorted(state.conversations.values(), key=key)
