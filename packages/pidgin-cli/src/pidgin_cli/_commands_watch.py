"""The watching commands: ``experiment list|status|attach`` and ``monitor``.

All of them read the JSONL logs through pidgin-state and never open DuckDB, so they work
while a run writes and while another process holds the database. The live ones keep one
incremental ``StateBuilder`` for their whole life, so a refresh costs what was appended
since the previous one, not everything ever written.

rich and pidgin-state are imported inside the commands: ``--help`` stays cheap.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pidgin_events import EXPERIMENTS_DIR, FINISHED_STATUSES, RUN_STATUSES, run_kind_of

from ._output import (
    JSON_SCHEMA_VERSION,
    echo_json,
    fail,
    json_option,
    make_console,
    output_option,
    plain_table,
    resolve_output_root,
    rich_text,
    safe_text,
    use_rich,
)
from ._resolve import complete_run_id, resolve_run

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from pidgin_state import ConversationState, ExperimentState, StateBuilder

__all__ = [
    "attach_command",
    "attach_experiment",
    "list_command",
    "monitor_command",
    "status_command",
]

ATTACH_INTERVAL = 0.5
START_GRACE = 10.0
"""Seconds attach waits for a run that has not written its first events yet."""
RECENT_WINDOW = timedelta(hours=24)
MONITOR_ROWS = 10


def _now() -> datetime:
    return datetime.now(UTC)


def _build(path: Path, builder: StateBuilder | None = None) -> ExperimentState:
    """One run's state; a directory that is not a run is a clear failure (exit status 1)."""
    from pidgin_state import NotAnExperimentError, StateBuilder

    try:
        return _refresh(builder or StateBuilder(), path)
    except NotAnExperimentError as exc:
        raise fail(str(exc)) from None


def _refresh(builder: StateBuilder, path: Path) -> ExperimentState:
    """Refresh a run directory: a chat if it sits under ``chats/``, else an experiment."""
    if run_kind_of(path) == "chat":
        return builder.chat(path)
    return builder.experiment(path)


def _all_runs(root: Path, builder: StateBuilder | None = None) -> list[ExperimentState]:
    """Every run under ``root``, newest first; none (not an error) when there is no root."""
    from pidgin_state import StateBuilder

    if not root.exists():
        return []
    if not root.is_dir():
        raise fail(f"output root {root} is not a directory")
    if builder is not None:
        return builder.output_root(root)
    return StateBuilder.from_output_root(root)


# --- experiment list -------------------------------------------------------------------


@click.command("list")
@click.option("--all", "include_chats", is_flag=True, help="Include single chats.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(RUN_STATUSES),
    help="Only runs with this status (repeatable).",
)
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most N runs.")
@json_option
@output_option
@click.pass_context
def list_command(
    ctx: click.Context,
    *,
    include_chats: bool,
    statuses: tuple[str, ...],
    limit: int | None,
    as_json: bool,
    output: Path | None,
) -> None:
    """List experiments, newest first: status, progress, age and whether loaded into DuckDB.

    \b
    Examples:
      pidgin experiment list
      pidgin experiment list --all --status running
      pidgin experiment list --json | jq -r '.experiments[].id'
    """
    from ._render import list_document, list_plain, list_rich

    root = resolve_output_root(ctx, output)
    states = [
        state
        for state in _all_runs(root)
        if (include_chats or state.kind == "experiment")
        and (not statuses or state.status in statuses)
    ][:limit]
    now = _now()
    if as_json:
        echo_json(list_document(states, str(root), now))
        return
    if not states:
        what = "runs" if include_chats else "experiments"
        click.echo(f"No {what} under {root}.", err=True)
        return
    if use_rich():
        make_console().print(list_rich(states, now))
    else:
        click.echo(list_plain(states, now))


# --- experiment status -----------------------------------------------------------------


@click.command("status")
@click.argument("run_id", metavar="ID", shell_complete=complete_run_id)
@json_option
@output_option
@click.pass_context
def status_command(ctx: click.Context, run_id: str, as_json: bool, output: Path | None) -> None:
    """Show one experiment (or chat) in detail, its conversations included.

    ID is the full id, the name, or a unique prefix of either.

    \b
    Examples:
      pidgin experiment status greetings
      pidgin experiment status exp_3f9a --json | jq '.conversations[] | {id, status}'
    """
    from ._render import detail_json, detail_plain, detail_rich

    root = resolve_output_root(ctx, output)
    state = _build(resolve_run(root, run_id))
    now = _now()
    if as_json:
        echo_json({"schema_version": JSON_SCHEMA_VERSION, "experiment": detail_json(state, now)})
    elif use_rich():
        make_console().print(detail_rich(state, now))
    else:
        click.echo(detail_plain(state, now))


# --- experiment attach -----------------------------------------------------------------


@click.command("attach")
@click.argument("run_id", metavar="ID", shell_complete=complete_run_id)
@output_option
@click.pass_context
def attach_command(ctx: click.Context, run_id: str, output: Path | None) -> None:
    """Follow a running experiment live until it ends; Ctrl-C detaches, it keeps running.

    Shows a progress bar and the convergence of every conversation, refreshed twice a
    second. Exit status: 0 when the experiment completed (or you detached), 1 when it
    failed or was interrupted.

    \b
    Example:
      pidgin experiment attach greetings
    """
    root = resolve_output_root(ctx, output)
    directory = resolve_run(root, run_id)
    # The directory exists, so it has to be a run now; no grace for one still being made.
    ctx.exit(_attach(directory, grace=0.0))


def attach_experiment(root: Path, experiment_id: str) -> int:
    """Follow ``<root>/experiments/<experiment_id>`` live; the exit status for the caller.

    For ``pidgin run``: it may call this right after starting the background runner,
    before the directory exists; attach waits a few seconds for it to appear.
    """
    from pidgin_events import validate_id

    directory = root / EXPERIMENTS_DIR / validate_id(experiment_id, "experiment id")
    return _attach(directory)


def _attach(
    directory: Path,
    interval: float = ATTACH_INTERVAL,
    builder: StateBuilder | None = None,
    *,
    grace: float = START_GRACE,
) -> int:
    from pidgin_state import StateBuilder

    if builder is None:
        builder = StateBuilder()  # one for the whole session: each refresh reads what is new
    display = _LiveDisplay() if use_rich() else _PlainFollower()
    started = time.monotonic()
    state: ExperimentState | None = None
    try:
        while True:
            state = _poll(builder, directory, started, grace)
            if state is not None:
                display.update(state)
                if _ended(state, started, grace):
                    break
            time.sleep(interval)
    except KeyboardInterrupt:
        display.close()
        name = safe_text(directory.name)
        click.echo(
            f"\nDetached from {name}; it keeps running.\n"
            f"  re-attach: pidgin experiment attach {name}\n"
            f"  stop it:   pidgin experiment stop {name}",
            err=True,
        )
        return 0
    except BaseException:
        display.close()  # leave the terminal usable before the error is printed
        raise
    display.close()
    display.summary(state)
    return 0 if state.status == "completed" else 1


def _poll(
    builder: StateBuilder, directory: Path, started: float, grace: float
) -> ExperimentState | None:
    """The run's state now, or None while a just-started run has nothing on disk yet."""
    from pidgin_state import NotAnExperimentError

    try:
        return _refresh(builder, directory)
    except NotAnExperimentError as exc:
        if time.monotonic() - started < grace:
            return None
        raise fail(str(exc)) from None


def _ended(state: ExperimentState, started: float, grace: float) -> bool:
    if state.status in FINISHED_STATUSES:
        return True
    if state.status == "running":
        return False
    # empty/unknown: a run still setting up, or one that died before writing anything.
    return state.live is not True and time.monotonic() - started >= grace


class _PlainFollower:
    """Attach for pipes and logs: one line whenever a conversation moves, no escapes."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, int]] = {}
        self._header = False

    def update(self, state: ExperimentState) -> None:
        from ._render import run_progress
        from ._render_text import format_score

        if not self._header:
            click.echo(
                safe_text(
                    f"attached to {state.id} ({state.name}): {state.status}, {run_progress(state)}"
                )
            )
            self._header = True
        for conversation in state.conversations.values():
            key = (conversation.status, conversation.turns_completed)
            if self._seen.get(conversation.id) == key:
                continue
            self._seen[conversation.id] = key
            turns = f"{conversation.turns_completed}/{conversation.max_turns or '?'}"
            click.echo(
                f"{_clock()}  {safe_text(conversation.id)}  {conversation.status}  turns {turns}  "
                f"convergence {format_score(conversation.latest_convergence)}"
            )

    def close(self) -> None:
        sys.stdout.flush()

    def summary(self, state: ExperimentState) -> None:
        click.echo(_summary_line(state))


class _LiveDisplay:
    """Attach on a terminal: a rich ``Live`` redrawn from each new snapshot."""

    def __init__(self) -> None:
        from rich.live import Live

        self.console = make_console()
        self._live = Live(console=self.console, auto_refresh=False, transient=False)
        self._live.start()

    def update(self, state: ExperimentState) -> None:
        frame = _attach_frame(state, self.console, final=state.status in FINISHED_STATUSES)
        self._live.update(frame, refresh=True)

    def close(self) -> None:
        self._live.stop()

    def summary(self, state: ExperimentState) -> None:
        self.console.print(rich_text(_summary_line(state), multiline=True))


def _clock() -> str:
    return _now().astimezone().strftime("%H:%M:%S")


def _summary_line(state: ExperimentState) -> str:
    from ._render import run_progress
    from ._render_text import format_duration

    elapsed = format_duration(state.timing.elapsed())
    line = f"{safe_text(state.id)} {state.status}: {run_progress(state)} in {elapsed}"
    if state.error:
        line += f" ({safe_text(state.error)})"
    if state.status in FINISHED_STATUSES:
        line += f"\n  details: pidgin experiment status {safe_text(state.directory.name)}"
    return line


def _attach_frame(
    state: ExperimentState, console: Console, *, final: bool = False
) -> RenderableType:
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    from ._render import STATUS_STYLES, conversations_rich, run_progress
    from ._render_text import format_duration, format_score, format_tokens

    now = _now()
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
    header.append(f"  convergence {format_score(state.convergence.mean_of_latest)}")
    overall = Table.grid(padding=(0, 1))
    overall.add_column(no_wrap=True)
    overall.add_column()
    overall.add_column(no_wrap=True)
    planned_turns = timing.turns_planned or max(timing.turns_completed, 1)
    overall.add_row(
        "turns",
        ProgressBar(total=planned_turns, completed=timing.turns_completed, width=40),
        f"{timing.turns_completed}/{timing.turns_planned or '?'}",
    )
    limit = max(3, console.size.height - 10)
    conversations = _attach_order(state)
    parts: list[RenderableType] = [
        header,
        overall,
        conversations_rich(conversations, bars=True, limit=limit),
    ]
    if state.last_errors:
        last = state.last_errors[-1]
        parts.append(
            rich_text(f"last error: {last.error_type or last.event_type}: {last.message}", "red")
        )
    if not final:
        parts.append(Text("Ctrl-C detaches; the experiment keeps running.", style="dim"))
    return Group(*parts)


def _attach_order(state: ExperimentState) -> list[ConversationState]:
    """Running conversations first, then the most recently active ones."""

    def key(conversation: ConversationState) -> tuple[int, float, str]:
        moment = _aware(conversation.last_event_at)
        recency = -moment.timestamp() if moment is not None else 0.0
        return (0 if conversation.status == "running" else 1, recency, conversation.id)

    return sorted(state.conversations.values(), key=key)


# --- monitor ---------------------------------------------------------------------------


@click.command("monitor")
@click.option("--once", is_flag=True, help="Print one frame and exit (for scripts).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@json_option
@output_option
@click.pass_context
def monitor_command(
    ctx: click.Context, *, once: bool, interval: float, as_json: bool, output: Path | None
) -> None:
    """A live system-wide view: what is running, recent errors, what finished recently.

    \b
    Examples:
      pidgin monitor
      pidgin monitor --once
      pidgin monitor --once --json | jq '.running[].id'
    """
    if as_json and not once:
        raise click.UsageError("--json needs --once (a live view has no single document)")
    from pidgin_state import StateBuilder

    root = resolve_output_root(ctx, output)
    builder = StateBuilder()
    if once:
        frame = _MonitorFrame(_all_runs(root, builder), root)
        if as_json:
            echo_json(frame.to_json())
        elif use_rich():
            make_console().print(frame.rich())
        else:
            click.echo(frame.plain())
        return
    try:
        if use_rich():
            _monitor_live(builder, root, interval)
        else:
            while True:
                frame = _MonitorFrame(_all_runs(root, builder), root)
                click.echo(frame.plain() + "\n")
                time.sleep(interval)
    except KeyboardInterrupt:
        return


def _monitor_live(builder: StateBuilder, root: Path, interval: float) -> None:
    from rich.live import Live

    console = make_console()
    with Live(console=console, auto_refresh=False, screen=False) as live:
        while True:
            frame = _MonitorFrame(_all_runs(root, builder), root)
            live.update(frame.rich(), refresh=True)
            time.sleep(interval)


class _MonitorFrame:
    """One picture of the output root: running runs, recent errors, recently finished."""

    def __init__(self, states: list[ExperimentState], root: Path) -> None:
        from ._render import recent

        self.root = root
        self.now = _now()
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
        errors.sort(key=lambda pair: _aware(pair[1].timestamp) or epoch, reverse=True)
        self.errors = errors[:MONITOR_ROWS]

    def to_json(self) -> dict[str, Any]:
        from ._render import conversation_json, error_json, summary_json

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
        from ._render import run_progress
        from ._render_text import format_duration, format_score

        return [
            [
                safe_text(state.id),
                safe_text(state.name),
                run_progress(state),
                str(len(state.active_conversations)),
                format_score(state.convergence.mean_of_latest),
                format_duration(state.timing.elapsed(self.now)),
                format_duration(state.timing.eta(self.now)),
                str(state.error_count),
            ]
            for state in self.running
        ]

    def _error_rows(self) -> list[list[str]]:
        from ._render_text import format_age, shorten

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
        from ._render import load_label, run_progress
        from ._render_text import format_age

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

    RUNNING_HEADERS = ("ID", "NAME", "PROGRESS", "ACTIVE", "CONV", "ELAPSED", "ETA", "ERRORS")
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


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.astimezone()
