"""UTC timestamps: every timestamp Pidgin writes carries an explicit offset."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_timestamp", "utc_now"]


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp, keeping naive ones naive.

    pidgin-ai 1.x wrote naive local times inside messages; their zone is unknown, so
    guessing one would silently shift them. Callers decide what a naive time means.
    """
    return datetime.fromisoformat(value)
