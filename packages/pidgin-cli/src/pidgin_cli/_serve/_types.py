"""The leaf types of the GraphQL API, the per-request context and its limits.

``_api`` builds the schema from these and from the types that hold live state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError

from .._output import safe_text
from . import _history
from ._catalog import SearchHit

if TYPE_CHECKING:
    from .._transcript import ChatMessage, Transcript
    from ._catalog import Catalog

__all__ = [
    "MAX_ALIASES",
    "MAX_COST",
    "MAX_DEPTH",
    "MAX_FIRST",
    "MAX_TOKENS",
    "Agent",
    "Context",
    "Database",
    "HistoryEntry",
    "Info",
    "Message",
    "Progress",
    "SearchResult",
    "Tokens",
    "Turn",
    "TurnAggregate",
    "first_count",
    "message_of",
    "offset_of",
    "read_db",
    "sanitized_message",
    "tokens_of",
]

MAX_FIRST = 500
MAX_COST = 20_000
MAX_DEPTH = 8
MAX_TOKENS = 2_000
MAX_ALIASES = 20


def sanitized_message(value: str) -> str:
    """Text for a browser script: control characters shown as escapes, lines kept."""
    return safe_text(value, multiline=True)


@dataclass
class Context:
    catalog: Catalog
    spent: int = 0
    notes: list[str] = field(default_factory=list)

    def charge(self, count: int) -> None:
        self.spent += count
        if self.spent > MAX_COST:
            raise GraphQLError(
                f"query too costly: it would return over {MAX_COST} objects; ask for fewer"
                " (smaller `first`, fewer nested lists)"
            )


Info = strawberry.Info[Context, None]


def first_count(value: int) -> int:
    if not 1 <= value <= MAX_FIRST:
        raise GraphQLError(f"`first` must be between 1 and {MAX_FIRST}, not {value}")
    return value


def offset_of(after: str | None) -> int:
    if after is None:
        return 0
    if not after.isdigit():
        raise GraphQLError(f"`after` must be a cursor from `endCursor`, not {after!r}")
    return int(after)


@strawberry.type
class Tokens:
    prompt: int
    completion: int
    total: int
    messages: int
    cost_usd: float = strawberry.field(
        description="The messages' cost in US dollars at the catalogue's prices (0 without)."
    )


@strawberry.type
class Progress:
    planned: int
    completed: int
    failed: int
    interrupted: int
    running: int
    pending: int
    finished: int
    fraction: float


@strawberry.type
class Database:
    """Whether the run was loaded into DuckDB (from the loader's markers, not the database)."""

    loaded: bool
    failed: bool
    stale: bool
    error: str | None
    loaded_at: datetime | None


@strawberry.type
class Agent:
    id: str
    name: str
    model: str | None


@strawberry.type
class Message:
    index: int
    turn: int
    agent_id: str
    agent_name: str
    role: str
    content: str
    timestamp: datetime | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    duration_ms: int
    thinking: str | None
    thinking_tokens: int | None


def message_of(message: ChatMessage, transcript: Transcript) -> Message:
    return Message(
        index=message.index,
        turn=message.turn,
        agent_id=message.agent_id,
        agent_name=transcript.name_of(message.agent_id),
        role=message.role,
        content=message.content,
        timestamp=message.timestamp,
        prompt_tokens=message.prompt_tokens,
        completion_tokens=message.completion_tokens,
        total_tokens=message.total_tokens,
        duration_ms=message.duration_ms,
        thinking=message.thinking,
        thinking_tokens=message.thinking_tokens,
    )


@strawberry.type
class Turn:
    number: int
    completed: bool
    convergence: float | None
    messages: list[Message]


def tokens_of(count: Any) -> Tokens:
    return Tokens(
        prompt=count.prompt,
        completion=count.completion,
        total=count.total,
        messages=count.messages,
        cost_usd=count.cost_usd,
    )


TurnAggregate = strawberry.type(
    _history.TurnAggregate,
    description="Convergence at one turn over an experiment's loaded conversations (DuckDB).",
)
HistoryEntry = strawberry.type(
    _history.HistoryRow,
    name="HistoryEntry",
    description="A loaded run, as the experiment_dashboard view of DuckDB has it.",
)
"""The records ``_history`` reads, published as they are (strawberry marks the classes)."""


def read_db(read: Any) -> Any:
    try:
        return read()
    except _history.DatabaseUnavailableError as exc:
        raise GraphQLError(str(exc)) from None


SearchResult = strawberry.type(
    SearchHit, name="SearchResult", description="A message that contains the searched text."
)
