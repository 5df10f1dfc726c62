"""The HTML pages, rendered on the server with every value from logs escaped as text.

Model output, names, ids and errors are hostile input: each goes through ``text`` (control
characters made visible, then HTML-escaped) and nothing from a log is ever put in an
attribute that a browser acts on (no ``href`` or ``src`` from logs: links are built from
ids, percent-encoded). Live updates are done by ``static/app.js`` (no inline script).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from .._output import safe_text
from .._render_text import format_cost, format_duration, format_score, format_tokens
from . import _svg

if TYPE_CHECKING:
    from pidgin_state import ConversationState, ExperimentState

    from .._transcript import ChatMessage, Transcript
    from ._catalog import SearchHit
    from ._history import HistoryRow

__all__ = [
    "PAGE_SIZE",
    "conversation_page",
    "conversation_url",
    "experiment_page",
    "experiment_url",
    "experiments_page",
    "history_page",
    "not_found_page",
    "search_page",
    "text",
]

PAGE_SIZE = 50


def text(value: object, *, multiline: bool = False) -> str:
    """A value from a log as HTML text: control characters shown, markup escaped."""
    if value is None:
        return ""
    return escape(safe_text(value, multiline=multiline), quote=True)


def experiment_url(run_id: str) -> str:
    return f"/experiments/{quote(run_id, safe='')}"


def conversation_url(run_id: str, conversation_id: str) -> str:
    return f"{experiment_url(run_id)}/conversations/{quote(conversation_id, safe='')}"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{escape(moment.isoformat())}">{stamp}</time>'


def _layout(title: str, body: str, *, live: bool = False, search: str = "") -> str:
    refresh = ' data-refresh="2000"' if live else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)} · pidgin</title>"
        '<link rel="stylesheet" href="/static/app.css">'
        '<script src="/static/app.js" defer></script></head><body>'
        '<header><a class="home" href="/">pidgin</a> <a href="/history">history</a>'
        '<form class="search" action="/search" method="get" role="search">'
        f'<input type="search" name="q" value="{text(search)}" placeholder="Search messages"'
        ' aria-label="Search messages"><button type="submit">Search</button></form></header>'
        f'<main id="main"{refresh}>{body}</main></body></html>\n'
    )


def _status(status: str) -> str:
    return f'<span class="status status-{escape(status)}">{escape(status)}</span>'


def _progress(state: ExperimentState) -> str:
    p = state.progress
    planned = max(p.planned, p.started)
    return (
        f'<progress value="{p.finished}" max="{max(1, planned)}"></progress> '
        f'<span class="count">{p.finished}/{planned}</span>'
    )


def experiments_page(runs: Sequence[ExperimentState], *, page: int, total: int) -> str:
    """The list of every run, newest first, ``PAGE_SIZE`` a page."""
    rows = []
    for state in runs:
        rows.append(
            f'<tr data-id="{text(state.id)}">'
            f'<td><a href="{experiment_url(state.id)}">{text(state.name)}</a>'
            f'<div class="sub">{text(state.id)}</div></td>'
            f"<td>{escape(state.kind)}</td><td>{_status(state.status)}</td>"
            f"<td>{_progress(state)}</td>"
            f"<td>{format_score(state.convergence.mean_of_latest)}</td>"
            f"<td>{format_tokens(state.tokens.total.total)}</td>"
            f"<td>{format_cost(state.tokens.total.cost_usd)}</td>"
            f"<td>{_when(state.timing.started or state.timing.created)}</td>"
            f"<td>{format_duration(state.timing.elapsed())}</td>"
            f"<td>{_database(state)}</td></tr>"
        )
    pages = max(1, -(-total // PAGE_SIZE))
    nav = []
    if page > 1:
        nav.append(f'<a rel="prev" href="/?page={page - 1}">newer</a>')
    nav.append(f"<span>page {page} of {pages} · {total} runs</span>")
    if page < pages:
        nav.append(f'<a rel="next" href="/?page={page + 1}">older</a>')
    body = (
        "<h1>Experiments</h1>"
        '<table id="experiments"><thead><tr><th>name</th><th>kind</th><th>status</th>'
        "<th>progress</th><th>convergence</th><th>tokens</th><th>cost</th><th>started</th>"
        "<th>elapsed</th><th>database</th></tr></thead><tbody>"
        + ("".join(rows) or '<tr><td colspan="10">No runs under this output root yet.</td></tr>')
        + f'</tbody></table><nav class="pages">{" ".join(nav)}</nav>'
    )
    return _layout("Experiments", body, live=True)


def _database(state: ExperimentState) -> str:
    db = state.database
    if db.failed:
        return f'<span class="bad" title="{text(db.error)}">load failed</span>'
    if db.loaded:
        return "stale" if db.stale else "loaded"
    return "-"


def experiment_page(state: ExperimentState) -> str:
    """One run: its conversations with their sparklines, and every convergence curve."""
    run_id = state.id
    rows = []
    for conversation in sorted(state.conversations.values(), key=_started):
        tokens = sum(t.total for t in conversation.tokens.values())
        rows.append(
            f'<tr data-conversation="{text(conversation.id)}">'
            f'<td><a href="{conversation_url(run_id, conversation.id)}">'
            f"{text(conversation.id)}</a></td>"
            f"<td>{_status(conversation.status)}</td>"
            f"<td>{text(conversation.agent_a_model)} ↔ {text(conversation.agent_b_model)}</td>"
            f"<td>{conversation.turns_completed}/{conversation.max_turns or '?'}</td>"
            f"<td>{_svg.sparkline(conversation.convergence)}</td>"
            f"<td>{format_score(conversation.latest_convergence)}</td>"
            f"<td>{format_score(conversation.mean_convergence)}</td>"
            f"<td>{format_tokens(tokens)}</td></tr>"
        )
    errors = "".join(
        f"<li><code>{text(e.location)}</code> {text(e.message)}</li>" for e in state.last_errors
    )
    body = (
        f"<h1>{text(state.name)}</h1>"
        f'<p class="meta">{_status(state.status)} <code>{text(run_id)}</code> · '
        f"{_progress(state)} · convergence {format_score(state.convergence.mean_of_latest)}"
        f" · tokens {format_tokens(state.tokens.total.total)}"
        f" · cost {format_cost(state.tokens.total.cost_usd)}"
        f" · elapsed {format_duration(state.timing.elapsed())}</p>"
        + (f'<p class="error">{text(state.error, multiline=True)}</p>' if state.error else "")
        + "<h2>Convergence by turn</h2>"
        + _svg.curves(state.convergence.trajectories)
        + '<h2>Conversations</h2><table id="conversations"><thead><tr><th>conversation</th>'
        "<th>status</th><th>agents</th><th>turns</th><th>convergence</th><th>latest</th>"
        "<th>mean</th><th>tokens</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + (f'<h2>Recent errors</h2><ul class="errors">{errors}</ul>' if errors else "")
        + f'<p><a href="/search?{urlencode({"experiment": run_id})}">Search this run</a></p>'
    )
    return _layout(state.name, body, live=state.status == "running")


def _started(conversation: ConversationState) -> tuple[bool, float, str]:
    started = conversation.started_at
    return (started is None, started.timestamp() if started else 0.0, conversation.id)


def _message(message: ChatMessage, transcript: Transcript) -> str:
    side = "a" if message.agent_id == "agent_a" else "b" if message.agent_id == "agent_b" else "x"
    thinking = ""
    if message.thinking:
        tokens = f" ({message.thinking_tokens} tokens)" if message.thinking_tokens else ""
        thinking = (
            f"<details class='thinking'><summary>Thinking{tokens}</summary>"
            f'<div class="text">{text(message.thinking, multiline=True)}</div></details>'
        )
    return (
        f'<article class="msg side-{side}" id="m{message.index}" data-index="{message.index}">'
        f'<div class="who"><span class="name">{text(transcript.name_of(message.agent_id))}</span>'
        f' <span class="turnno">turn {message.turn}</span>'
        f' <span class="tokens">{message.prompt_tokens} in · {message.completion_tokens} out'
        f"</span></div>{thinking}"
        f'<div class="text">{text(message.content, multiline=True)}</div></article>'
    )


def _turn_header(number: int, convergence: float | None, completed: bool) -> str:
    score = format_score(convergence) if completed else "…"
    return (
        f'<h3 class="turn" id="t{number}" data-turn="{number}">Turn {number}'
        f' <span class="conv">convergence {score}</span></h3>'
    )


def conversation_page(
    state: ExperimentState, conversation: ConversationState, transcript: Transcript
) -> str:
    """The transcript as a chat; ``app.js`` appends new turns from the event stream."""
    parts = []
    current = -1
    for message in transcript.messages:
        if message.discarded:  # a half-done turn that a resume ran again
            continue
        if message.turn != current:
            current = message.turn
            info = transcript.turns.get(current)
            if current > 0:
                parts.append(
                    _turn_header(
                        current, info.convergence if info else None, bool(info and info.completed)
                    )
                )
        parts.append(_message(message, transcript))
    names = " ↔ ".join(
        f'<span class="name">{text(transcript.name_of(a))}</span>'
        f' <span class="sub">{text(transcript.agent_models.get(a))}</span>'
        for a in ("agent_a", "agent_b")
    )
    stream = f"{conversation_url(state.id, conversation.id)}/events"
    prompt = (
        f'<p class="prompt">Prompt: {text(transcript.initial_prompt, multiline=True)}</p>'
        if transcript.initial_prompt
        else ""
    )
    body = (
        f'<p class="crumbs"><a href="{experiment_url(state.id)}">{text(state.name)}</a></p>'
        f"<h1>{text(conversation.id)}</h1>"
        f'<p class="meta">{names} · <span id="conv-status">{_status(conversation.status)}</span>'
        f' · <span id="turns-done">{transcript.turns_completed()}</span>/'
        f"{conversation.max_turns or '?'} turns · mean convergence "
        f"{format_score(conversation.mean_convergence)}</p>"
        f"{prompt}"
        f'<div id="transcript" data-stream="{escape(stream)}"'
        f' data-after="{len(transcript.messages)}" data-ended="{str(transcript.ended).lower()}">'
        + "".join(parts)
        + "</div>"
    )
    return _layout(conversation.id, body)


def search_page(query: str, run_id: str | None, hits: Sequence[SearchHit], limit: int) -> str:
    items = []
    for hit in hits:
        items.append(
            f'<li class="hit"><a href="{escape(hit.url)}">{text(hit.experiment_name)} · '
            f"{text(hit.conversation_id)} · turn {hit.turn}</a>"
            f' <span class="name">{text(hit.agent_name)}</span>'
            f'<div class="text">{text(hit.content, multiline=True)}</div></li>'
        )
    scope = f" in <code>{text(run_id)}</code>" if run_id else ""
    if not query.strip():
        summary = "<p>Type words to find in messages.</p>"
    else:
        more = f" (the first {limit})" if len(hits) >= limit else ""
        summary = f"<p>{len(hits)} messages{more} contain “{text(query)}”{scope}.</p>"
    body = f'<h1>Search</h1>{summary}<ol id="results">{"".join(items)}</ol>'
    return _layout(f"Search {query}", body, search=query)


def history_page(
    rows: Sequence[HistoryRow],
    *,
    source: str,
    known: Container[str],
    page: int,
    more: bool,
    error: str | None = None,
) -> str:
    """Finished runs as loaded (``experiment_dashboard``), from a database or a lake.

    A lake holds other machines' runs too: only runs under this output root link to a page.
    """
    items = []
    for row in rows:
        name = text(row.name or row.experiment_id)
        if row.experiment_id in known:
            name = f'<a href="{experiment_url(row.experiment_id)}">{name}</a>'
        items.append(
            f'<tr data-id="{text(row.experiment_id)}"><td>{name}'
            f'<div class="sub">{text(row.experiment_id)}</div></td>'
            f"<td>{text(row.kind)}</td><td>{_status(row.status or 'unknown')}</td>"
            f"<td>{row.completed}/{row.conversations}</td><td>{row.turns}</td>"
            f"<td>{format_score(row.mean_final_convergence)}</td>"
            f"<td>{format_tokens(row.total_tokens)}</td>"
            f"<td>{_when(row.started_at)}</td>"
            f"<td>{format_duration(row.duration_seconds)}</td></tr>"
        )
    nav = []
    if page > 1:
        nav.append(f'<a rel="prev" href="/history?page={page - 1}">newer</a>')
    nav.append(f"<span>page {page}</span>")
    if more:
        nav.append(f'<a rel="next" href="/history?page={page + 1}">older</a>')
    empty = "Nothing loaded yet." if error is None else "Not available now."
    body = (
        f'<h1>History</h1><p class="meta">Finished runs as loaded, from <code>{text(source)}'
        "</code> (read-only).</p>"
        + (f'<p class="error" id="history-error">{text(error)}</p>' if error else "")
        + '<table id="history"><thead><tr><th>name</th><th>kind</th><th>status</th>'
        "<th>completed</th><th>turns</th><th>final convergence</th><th>tokens</th>"
        "<th>started</th><th>duration</th></tr></thead><tbody>"
        + ("".join(items) or f'<tr><td colspan="9">{empty}</td></tr>')
        + f'</tbody></table><nav class="pages">{" ".join(nav)}</nav>'
    )
    return _layout("History", body)


def not_found_page(what: str) -> str:
    return _layout("Not found", f"<h1>Not found</h1><p>{text(what)}</p>")
