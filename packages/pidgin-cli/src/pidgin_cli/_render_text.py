"""Small text formatters shared by tables, live displays and plain output.

They take plain values (seconds, floats, datetimes), not state objects, so every screen
words the same quantity the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

__all__ = [
    "format_age",
    "format_agents",
    "format_duration",
    "format_score",
    "format_tokens",
    "iso",
    "shorten",
    "sparkline",
]

_BARS = "▁▂▃▄▅▆▇█"


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``, ``3d04h``: short and sortable by eye."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, e.g. ``5m03s ago``."""
    if moment is None:
        return "-"
    now = now or datetime.now(UTC)
    if moment.tzinfo is None:  # pidgin-ai wrote some naive local times
        moment = moment.astimezone()
    return f"{format_duration((now - moment).total_seconds())} ago"


def format_agents(
    models: tuple[str | None, str | None], names: tuple[str | None, str | None] = (None, None)
) -> str:
    """``local:drift / gpt-4o``, or with chosen names ``Nova (local:drift) / Wren (gpt-4o)``."""
    return " / ".join(
        f"{name} ({model or '?'})" if name else model or "?"
        for model, name in zip(models, names, strict=True)
    )


def format_score(score: float | None) -> str:
    return "-" if score is None else f"{score:.2f}"


def format_cost(usd: float, digits: int = 4) -> str:
    """``$0.0043`` at the catalogue's prices; ``-`` for none (models without prices)."""
    return f"${usd:.{digits}f}" if usd else "-"


def format_tokens(count: int | None) -> str:
    """``950``, ``12.3k``, ``4.1M``."""
    if count is None:
        return "-"
    if count < 10_000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def sparkline(values: Sequence[float | None], width: int = 24) -> str:
    """Convergence scores (0 to 1) as block characters, the latest ``width`` of them."""
    shown = list(values)[-width:]
    out = []
    for value in shown:
        if value is None:
            out.append(" ")
            continue
        clamped = min(1.0, max(0.0, value))
        out.append(_BARS[min(len(_BARS) - 1, int(clamped * len(_BARS)))])
    return "".join(out)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 for JSON documents; ``None`` stays ``null``."""
    return None if moment is None else moment.isoformat()


def shorten(text: str | None, width: int) -> str:
    """One line of at most ``width`` characters, ending in ``…`` when cut."""
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"
