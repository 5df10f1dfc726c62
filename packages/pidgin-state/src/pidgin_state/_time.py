"""Timestamps as logs write them, turned into aware datetimes only when shown."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_time"]


def parse_time(value: str | None) -> datetime | None:
    """An aware datetime, or None for a missing or unreadable timestamp.

    Event timestamps are UTC (pidgin-ai 1.x wrote them with an offset too); a naive one
    is taken as UTC so that times from different logs can be compared at all.
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
