"""What ``pidgin monitor`` shows: one picture of a whole output root.

Runs in progress, the latest errors of running and recently finished runs, and the runs
finished in the last 24 hours, as plain text, rich tables or a JSON document.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pidgin_events import utc_now

from ._output import JSON_SCHEMA_VERSION, plain_table, rich_text, safe_text
from ._render_json import conversation_json, error_json, summary_json
from ._render_text import format_age, format_cost, format_duration, format_score, shorten
from ._render_words import aware, load_label, recent, run_progress

if TYPE_CHECKING:
    from rich.console import RenderableType

    from pidgin_state import ExperimentState

__all__ = ["RECENT_WINDOW", "MonitorFrame"]

RECENT_WINDOW = timedelta(hours=24)
MONITOR_ROWS = 10


class MonitorFrame:
    """One picture of the output root: running runs, recent errors, recently finished."""

    def __init__(self, states: list[ExperimentState], root: Path) -> None:
        self.root = root
        self.now = utc_now()
        self.running = [s for s in states if s.status == "running"]
        finished = [
            s
            for s in states
            if s.status != "running"
            and recent(s.timing.completed or s.timing.last_event, self.now, RECENT_WINDOW)
        ]
        self.finished = finished[:MONITOR_ROWS]
        self.finished_count = len(finished)
        errors = [
            (state, error) for state in [*self.running, *finished] for error in state.last_errors
        ]
        epoch = datetime.min.replace(tzinfo=UTC)
        errors.sort(key=lambda pair: aware(pair[1].timestamp) or epoch, reverse=True)
        self.errors = errors[:MONITOR_ROWS]

    def to_json(self) -> dict[str, Any]:
        running = []
        for state in self.running:
            document = summary_json(state, self.now)
            document["active_conversations"] = [
                conversation_json(c) for c in state.active_conversations
            ]
            running.append(document)
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "output_root": str(self.root),
            "generated_at": self.now.isoformat(),
            "running": running,
            "recent_errors": [error_json(error, state) for state, error in self.errors],
            "recently_finished": [summary_json(state, self.now) for state in self.finished],
        }

    def _running_rows(self) -> list[list[str]]:
        return [
            [
                safe_text(state.id),
                safe_text(state.name),
                run_progress(state),
                str(len(state.active_conversations)),
                format_score(state.convergence.mean_of_latest),
                format_duration(state.timing.elapsed(self.now)),
                format_duration(state.timing.eta(self.now)),
                format_cost(state.tokens.total.cost_usd, digits=2),
                str(state.error_count),
            ]
            for state in self.running
        ]

    def _error_rows(self) -> list[list[str]]:
        return [
            [
                format_age(error.timestamp, self.now),
                safe_text(state.id),
                safe_text(error.conversation_id or "-"),
                safe_text(error.error_type or error.event_type),
                shorten(safe_text(error.message), 80),
            ]
            for state, error in self.errors
        ]

    def _finished_rows(self) -> list[list[str]]:
        return [
            [
                safe_text(state.id),
                safe_text(state.name),
                state.status,
                run_progress(state),
                format_age(state.timing.completed or state.timing.last_event, self.now),
                load_label(state),
            ]
            for state in self.finished
        ]

    RUNNING_HEADERS = (
        "ID", "NAME", "PROGRESS", "ACTIVE", "CONV", "ELAPSED", "ETA", "COST", "ERRORS",
    )  # fmt: skip
    ERROR_HEADERS = ("WHEN", "RUN", "CONVERSATION", "TYPE", "MESSAGE")
    FINISHED_HEADERS = ("ID", "NAME", "STATUS", "PROGRESS", "ENDED", "LOADED")

    def _title(self) -> str:
        stamp = self.now.astimezone().isoformat(timespec="seconds")
        return (
            f"pidgin monitor  {safe_text(self.root)}  {stamp}  {len(self.running)} running, "
            f"{self.finished_count} finished in 24h"
        )

    def plain(self) -> str:
        sections = [self._title()]
        for title, headers, rows in (
            ("RUNNING", self.RUNNING_HEADERS, self._running_rows()),
            ("RECENT ERRORS", self.ERROR_HEADERS, self._error_rows()),
            ("RECENTLY FINISHED", self.FINISHED_HEADERS, self._finished_rows()),
        ):
            body = plain_table(headers, rows) if rows else "(none)"
            sections.append(f"{title}\n{body}")
        return "\n\n".join(sections)

    def rich(self) -> RenderableType:
        from rich import box
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        def table(title: str, headers: tuple[str, ...], rows: list[list[str]]) -> RenderableType:
            if not rows:
                return Text(f"{title}: none", style="dim")
            result = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
            for header in headers:
                result.add_column(header, no_wrap=header not in ("NAME", "MESSAGE"))
            for row in rows:
                result.add_row(*(rich_text(cell) for cell in row))
            return result

        return Group(
            Text(self._title(), style="bold"),
            table("Running", self.RUNNING_HEADERS, self._running_rows()),
            table("Recent errors", self.ERROR_HEADERS, self._error_rows()),
            table("Recently finished", self.FINISHED_HEADERS, self._finished_rows()),
        )
