"""The HTML report of one experiment: one self-contained file, charts drawn by Plotly.

Built from the run's JSONL (read into memory by pidgin-load's ``live_database``), so a
run that is still going, or was never loaded, has a report too. plotly.js is embedded
once, inline: the file opens with no network. Every figure's data is in the page; a
click on a conversation's curve goes to that conversation's transcript further down.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._render_text import format_cost

if TYPE_CHECKING:
    import duckdb

__all__ = ["MOVED_METRICS", "ReportData", "build_report", "read_report_data", "write_report"]

MOVED_METRICS = 6
"""How many of the metrics that moved most get a chart."""

_KEYS = ("experiment_id", "conversation_id", "turn_number", "turn")


@dataclass(slots=True)
class ReportData:
    """What the report shows, read from the in-memory database of one run."""

    experiment: dict[str, Any]
    curves: dict[str, list[tuple[int, float]]]
    """Convergence per turn (from 1, as every screen shows it) of each conversation."""
    spread: list[tuple[int, float, float]]
    """Per turn: mean and sample standard deviation of convergence over conversations."""
    moved: list[tuple[str, float, list[tuple[int, float]]]]
    """The metrics that moved most: name, effect size, mean per turn."""
    tokens: list[tuple[str, int, int, float | None]]
    """Per conversation: prompt and completion tokens, and the cost of its messages in US
    dollars at the catalogue's prices when they were written (None when none was priced)."""
    transcripts: dict[str, list[tuple[int, str, str]]]
    """Per conversation: (turn, agent, text) in order."""


def read_report_data(con: duckdb.DuckDBPyConnection) -> ReportData:
    """Everything the report needs, from a database holding one experiment."""
    row = con.execute(
        "SELECT experiment_id, name, status, conversations, completed_conversations, "
        "started_at, completed_at FROM experiments"
    ).fetchone()
    if row is None:
        raise ValueError("the run has no experiment record")
    names = (
        "experiment_id",
        "name",
        "status",
        "conversations",
        "completed",
        "started_at",
        "completed_at",
    )
    experiment = dict(zip(names, row, strict=True))
    totals = con.execute(
        "SELECT coalesce(sum(turns), 0), coalesce(sum(total_tokens), 0) FROM conversations"
    ).fetchone()
    experiment["turns"], experiment["tokens"] = totals if totals else (0, 0)
    # The messages' own recorded costs, summed: what status, attach and serve show.
    cost = con.execute("SELECT sum(cost_usd) FROM experiment_costs").fetchone()
    experiment["cost_usd"] = float(cost[0]) if cost and cost[0] is not None else None
    curves: dict[str, list[tuple[int, float]]] = {}
    for conversation, turn, score in con.execute(
        "SELECT conversation_id, turn_number + 1, convergence_score FROM turns "
        "WHERE convergence_score IS NOT NULL ORDER BY conversation_id, turn_number"
    ).fetchall():
        curves.setdefault(str(conversation), []).append((int(turn), float(score)))
    spread = [
        (int(turn), float(mean), float(std or 0.0))
        for turn, mean, std in con.execute(
            "SELECT turn_number + 1, avg(convergence_score), stddev_samp(convergence_score) "
            "FROM turns WHERE convergence_score IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    ]
    tokens = [
        (str(c), int(p), int(o), None if usd is None else float(usd))
        for c, p, o, usd in con.execute(
            "SELECT c.conversation_id, c.prompt_tokens, c.completion_tokens, k.cost_usd "
            "FROM conversations AS c LEFT JOIN conversation_costs AS k "
            "USING (experiment_id, conversation_id) ORDER BY c.conversation_id"
        ).fetchall()
    ]
    transcripts: dict[str, list[tuple[int, str, str]]] = {}
    for conversation, turn, agent, text in con.execute(
        "SELECT conversation_id, turn_number + 1, agent_id, coalesce(content, '') FROM messages "
        "WHERE conversation_id IS NOT NULL ORDER BY conversation_id, source_file, line_number"
    ).fetchall():
        transcripts.setdefault(str(conversation), []).append(
            (int(turn) if turn is not None else 0, str(agent), str(text))
        )
    return ReportData(experiment, curves, spread, _moved(con), tokens, transcripts)


def _moved(con: duckdb.DuckDBPyConnection) -> list[tuple[str, float, list[tuple[int, float]]]]:
    """Numeric metrics ranked by how far their mean moved from the first to the last turn.

    The effect is ``|mean at the last turn - mean at the first| / standard deviation`` over
    all turns: a shift measured in the metric's own spread, so counts and ratios compare.
    """
    numeric = [
        str(name)
        for name, kind, *_ in con.execute("DESCRIBE turn_metrics").fetchall()
        if str(name) not in _KEYS and str(kind) in ("INTEGER", "DOUBLE", "BIGINT")
    ]
    if not numeric:
        return []
    columns = ", ".join(f'"{name}"::DOUBLE AS "{name}"' for name in numeric)
    rows = con.execute(
        f"""
        WITH long AS (
            UNPIVOT (SELECT turn_number + 1 AS turn_number, {columns} FROM turn_metrics)
            ON COLUMNS(* EXCLUDE (turn_number)) INTO NAME metric VALUE value
        ),
        per_turn AS (
            SELECT metric, turn_number, avg(value) AS mean FROM long GROUP BY ALL
        ),
        spread AS (SELECT metric, stddev_samp(value) AS sd FROM long GROUP BY metric),
        ends AS (
            SELECT metric, arg_min(mean, turn_number) AS first, arg_max(mean, turn_number) AS last,
                list(struct_pack(turn := turn_number, mean := mean) ORDER BY turn_number) AS series
            FROM per_turn GROUP BY metric
        )
        SELECT metric, abs(last - first) / sd AS effect, series
        FROM ends JOIN spread USING (metric)
        WHERE sd > 0
        ORDER BY effect DESC, metric
        LIMIT {MOVED_METRICS}
        """
    ).fetchall()
    return [
        (str(metric), float(effect), [(int(p["turn"]), float(p["mean"])) for p in series])
        for metric, effect, series in rows
    ]


def _figures(data: ReportData) -> list[tuple[str, str, Any]]:
    """``(div id, title, figure)`` for each chart."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    convergence = go.Figure()
    for conversation, points in data.curves.items():
        convergence.add_trace(
            go.Scatter(
                x=[turn for turn, _ in points],
                y=[score for _, score in points],
                mode="lines",
                name=conversation,
                line={"width": 1},
                opacity=0.45,
                customdata=[conversation] * len(points),
                hovertemplate="%{customdata} turn %{x}: %{y:.3f}<extra>click: transcript</extra>",
            )
        )
    turns = [turn for turn, _, _ in data.spread]
    means = [mean for _, mean, _ in data.spread]
    convergence.add_trace(
        go.Scatter(
            x=turns,
            y=[m + s for _, m, s in data.spread],
            mode="lines",
            line={"width": 0},
            name="mean + 1 sd",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    convergence.add_trace(
        go.Scatter(
            x=turns,
            y=[m - s for _, m, s in data.spread],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(31,119,180,0.2)",
            name="mean ± 1 sd",
            hoverinfo="skip",
        )
    )
    convergence.add_trace(
        go.Scatter(x=turns, y=means, mode="lines", name="mean", line={"width": 3, "color": "black"})
    )
    convergence.update_layout(xaxis_title="turn", yaxis_title="convergence score", height=480)

    rows = max(1, (len(data.moved) + 2) // 3)
    moved = make_subplots(
        rows=rows,
        cols=3,
        subplot_titles=[f"{name} (moved {effect:.2f} sd)" for name, effect, _ in data.moved],
    )
    for index, (name, _, series) in enumerate(data.moved):
        moved.add_trace(
            go.Scatter(
                x=[t for t, _ in series],
                y=[m for _, m in series],
                mode="lines",
                name=name,
                showlegend=False,
            ),
            row=index // 3 + 1,
            col=index % 3 + 1,
        )
    moved.update_layout(height=300 * rows)

    conversations = [c for c, _, _, _ in data.tokens]
    tokens = go.Figure(
        [
            go.Bar(x=conversations, y=[p for _, p, _, _ in data.tokens], name="prompt tokens"),
            go.Bar(x=conversations, y=[o for _, _, o, _ in data.tokens], name="completion tokens"),
        ]
    )
    priced = any(usd is not None for _, _, _, usd in data.tokens)
    if priced:
        tokens.add_trace(
            go.Scatter(
                x=conversations,
                y=[usd for _, _, _, usd in data.tokens],
                name="cost (US dollars)",
                mode="markers",
                yaxis="y2",
                text=[format_cost(usd or 0.0) for _, _, _, usd in data.tokens],
                hovertemplate="%{x}: %{text}<extra></extra>",
            )
        )
        tokens.update_layout(
            yaxis2={"title": "cost (US dollars)", "overlaying": "y", "side": "right"}
        )
    tokens.update_layout(
        barmode="stack", xaxis_title="conversation", yaxis_title="tokens", height=420
    )
    tokens_heading = (
        "Tokens and cost per conversation (cost at the catalogue's prices when the run was made)"
        if priced
        else "Tokens per conversation (no cost: these models have no prices in the catalogue)"
    )
    return [
        (
            "convergence",
            "Convergence per turn: every conversation, the mean and its spread",
            convergence,
        ),
        ("metrics", "The text metrics that moved most (mean over conversations per turn)", moved),
        ("tokens", tokens_heading, tokens),
    ]


_CLICK_TO_TRANSCRIPT = """
<script>
window.addEventListener("load", function () {
  var plot = document.getElementById("convergence");
  plot.on("plotly_click", function (event) {
    var id = event.points[0].customdata;
    if (id) { window.location.hash = "transcript-" + id; }
  });
});
</script>
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table.facts td { padding: 0.1em 1em 0.1em 0; }
section.transcript { border-top: 1px solid #ddd; padding-top: 0.5em; }
.agent_a { color: #1f4e9c; } .agent_b { color: #9c4e1f; }
p.message { white-space: pre-wrap; margin: 0.2em 0 0.6em 1em; }
"""


def build_report(data: ReportData) -> str:
    """The whole HTML document."""
    from plotly.offline import get_plotlyjs

    e = data.experiment
    title = f"Pidgin report: {e['name'] or e['experiment_id']}"
    facts = [
        ("experiment", e["experiment_id"]),
        ("name", e["name"]),
        ("status", e["status"]),
        ("conversations", f"{e['conversations']} ({e['completed']} completed)"),
        ("turns", e["turns"]),
        ("tokens", e["tokens"]),
        (
            "cost",
            "-"
            if e["cost_usd"] is None
            else f"{format_cost(e['cost_usd'])} (catalogue prices when the run was made)",
        ),
        ("started", e["started_at"]),
        ("completed", e["completed_at"]),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>",
        f"<script>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        '<table class="facts">',
        *(f"<tr><td>{k}</td><td>{html.escape(str(v))}</td></tr>" for k, v in facts),
        "</table>",
    ]
    for div_id, heading, figure in _figures(data):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(
            figure.to_html(
                full_html=False,
                include_plotlyjs=False,
                div_id=div_id,
                config={"displaylogo": False, "responsive": True},
            )
        )
    parts.append(_CLICK_TO_TRANSCRIPT)
    parts.append("<h2>Transcripts</h2><ul>")
    parts.extend(
        f'<li><a href="#transcript-{html.escape(c)}">{html.escape(c)}</a></li>'
        for c in data.transcripts
    )
    parts.append("</ul>")
    for conversation, messages in data.transcripts.items():
        parts.append(
            f'<section class="transcript" id="transcript-{html.escape(conversation)}">'
            f"<h3>{html.escape(conversation)}</h3>"
        )
        for turn, agent, text in messages:
            parts.append(
                f'<div class="{html.escape(agent)}"><b>turn {turn}, {html.escape(agent)}</b>'
                f'<p class="message">{html.escape(text)}</p></div>'
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(data: ReportData, target: Path) -> int:
    """Write the report; its size in bytes."""
    from ._output import write_file

    text = build_report(data)
    write_file(target, text)
    return len(text.encode())
