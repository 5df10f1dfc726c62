"""Convergence drawn as inline SVG on the server: no chart library, no script needed.

Colours are SVG presentation attributes, not ``style`` attributes, so the page's
Content-Security-Policy (no inline style) allows them. Scores are clamped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["PALETTE", "curves", "sparkline"]

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def _scores(values: Sequence[float | None]) -> list[float]:
    return [min(1.0, max(0.0, v)) for v in values if v is not None]


def _points(scores: Sequence[float], width: float, height: float, turns: int, pad: float) -> str:
    step = (width - 2 * pad) / max(1, turns - 1)
    return " ".join(
        f"{pad + i * step:.1f},{pad + (1 - s) * (height - 2 * pad):.1f}"
        for i, s in enumerate(scores)
    )


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 24) -> str:
    """A small line of a conversation's convergence per turn ('' when it has none)."""
    scores = _scores(values)
    if not scores:
        return ""
    points = _points(scores, width, height, len(scores), 2)
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="convergence per turn">'
        f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="1.5"/></svg>'
    )


def curves(
    trajectories: Mapping[str, Sequence[float | None]], *, width: int = 720, height: int = 260
) -> str:
    """One line per conversation (turn on x, convergence on y), with a 0 to 1 axis."""
    series = {cid: _scores(values) for cid, values in trajectories.items()}
    series = {cid: scores for cid, scores in series.items() if scores}
    turns = max((len(s) for s in series.values()), default=1)
    pad = 28
    parts = [
        f'<svg id="curves" class="curves" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="convergence by turn">',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}"'
        ' stroke="#999"/>',
        f'<text x="4" y="{pad + 4}" font-size="10">1.0</text>',
        f'<text x="4" y="{height - pad + 4}" font-size="10">0.0</text>',
        f'<text x="{width - pad - 40}" y="{height - 8}" font-size="10">turn {turns}</text>',
    ]
    for number, (cid, scores) in enumerate(sorted(series.items())):
        colour = PALETTE[number % len(PALETTE)]
        points = _points(scores, width, height, turns, pad)
        parts.append(
            f'<polyline class="curve" data-conversation="{escape(cid)}" points="{points}"'
            f' fill="none" stroke="{colour}" stroke-width="1.5"><title>{escape(cid)}</title>'
            "</polyline>"
        )
    parts.append("</svg>")
    return "".join(parts)
