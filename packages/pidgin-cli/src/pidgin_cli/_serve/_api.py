"""The GraphQL API, built with strawberry: the schema, its limits, and how it runs.

strawberry because its schema is plain typed Python classes (checked by mypy like the
rest of Pidgin, no schema file kept in step by hand), it is actively maintained, and it
ships the limits this API needs (query depth, tokens, aliases) as extensions; it runs a
query synchronously with no web framework, so the server stays the standard library's.

Live fields come from the logs through the catalog; ``history`` and
``Experiment.convergenceByTurn`` read DuckDB (finished runs only). Every list takes
``first`` (at most ``MAX_FIRST``) and each request has a budget of ``MAX_COST`` objects
returned in lists; a query beyond it, too deep or too long gets a GraphQL error.
"""

from __future__ import annotations

import sys
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from pidgin_state import ConversationState, ExperimentState

from . import _history
from ._catalog import SearchHit
from ._pages import conversation_url, experiment_url
from ._types import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_TOKENS,
    Agent,
    Context,
    Database,
    Info,
    Message,
    Progress,
    Tokens,
    Turn,
    first_count,
    message_of,
    offset_of,
    read_db,
    tokens_of,
)

if TYPE_CHECKING:
    from .._transcript import Transcript
    from ._catalog import Catalog

__all__ = ["SCHEMA", "execute"]


@strawberry.type
class Conversation:
    state: strawberry.Private[ConversationState]
    run_id: strawberry.Private[str]
    id: str
    status: str
    current_turn: int
    turns_completed: int
    max_turns: int | None
    convergence: list[float]
    latest_convergence: float | None
    mean_convergence: float | None
    tokens: Tokens
    message_count: int
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    error: str | None
    url: str

    def _transcript(self, info: Info) -> Transcript:
        return info.context.catalog.reader(self.state).refresh()

    @strawberry.field(description="The run this conversation belongs to.")
    def experiment(self, info: Info) -> Experiment | None:
        state = info.context.catalog.experiment(self.run_id)
        return None if state is None else _experiment(state)

    @strawberry.field(description="Agent A: display name and model (names from the log).")
    def agent_a(self, info: Info) -> Agent:
        transcript = self._transcript(info)
        return Agent(
            id="agent_a", name=transcript.name_of("agent_a"), model=self.state.agent_a_model
        )

    @strawberry.field(description="Agent B: display name and model (names from the log).")
    def agent_b(self, info: Info) -> Agent:
        transcript = self._transcript(info)
        return Agent(
            id="agent_b", name=transcript.name_of("agent_b"), model=self.state.agent_b_model
        )

    @strawberry.field(
        description="Messages in log order, from index `after` (those of discarded turns left out)."
    )
    def messages(self, info: Info, first: int = 100, after: int = 0) -> list[Message]:
        transcript = self._transcript(info)
        said = [m for m in transcript.messages if not m.discarded]
        chosen = said[max(0, after) : max(0, after) + first_count(first)]
        info.context.charge(len(chosen))
        return [message_of(m, transcript) for m in chosen]

    @strawberry.field(description="Turns (numbered from 1) with their convergence and messages.")
    def turns(self, info: Info, first: int = 100, after: int = 0) -> list[Turn]:
        transcript = self._transcript(info)
        numbers = sorted(n for n in transcript.turns if n > 0)[max(0, after) :][
            : first_count(first)
        ]
        by_turn: dict[int, list[Message]] = {n: [] for n in numbers}
        for m in transcript.messages:
            if m.turn in by_turn and not m.discarded:
                by_turn[m.turn].append(message_of(m, transcript))
        info.context.charge(len(numbers) + sum(len(v) for v in by_turn.values()))
        return [
            Turn(
                number=n,
                completed=transcript.turns[n].completed,
                convergence=transcript.turns[n].convergence,
                messages=by_turn[n],
            )
            for n in numbers
        ]


def _conversation(run_id: str, c: ConversationState) -> Conversation:
    total = sum(t.total for t in c.tokens.values())
    prompt = sum(t.prompt for t in c.tokens.values())
    completion = sum(t.completion for t in c.tokens.values())
    messages = sum(t.messages for t in c.tokens.values())
    cost = sum(t.cost_usd for t in c.tokens.values())
    return Conversation(
        state=c,
        run_id=run_id,
        id=c.id,
        status=c.status,
        current_turn=c.current_turn,
        turns_completed=c.turns_completed,
        max_turns=c.max_turns,
        convergence=list(c.convergence),
        latest_convergence=c.latest_convergence,
        mean_convergence=c.mean_convergence,
        tokens=Tokens(
            prompt=prompt, completion=completion, total=total, messages=messages, cost_usd=cost
        ),
        message_count=c.message_count,
        started_at=c.started_at,
        ended_at=c.ended_at,
        end_reason=c.end_reason,
        error=c.error,
        url=conversation_url(run_id, c.id),
    )


@strawberry.type
class Experiment:
    state: strawberry.Private[ExperimentState]
    id: str
    name: str
    kind: str
    status: str
    live: bool | None
    directory: str
    progress: Progress
    mean_convergence: float | None
    tokens: Tokens
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    elapsed_seconds: float | None
    conversation_count: int
    error_count: int
    error: str | None
    end_reason: str | None
    database: Database
    url: str

    @strawberry.field(description="Conversations, oldest first; optionally only one status.")
    def conversations(
        self, info: Info, first: int = 100, after: int = 0, status: str | None = None
    ) -> list[Conversation]:
        chosen = sorted(
            self.state.conversations.values(),
            key=lambda c: (
                c.started_at is None,
                c.started_at.timestamp() if c.started_at else 0,
                c.id,
            ),
        )
        if status is not None:
            chosen = [c for c in chosen if c.status == status]
        chosen = chosen[max(0, after) : max(0, after) + first_count(first)]
        info.context.charge(len(chosen))
        return [_conversation(self.id, c) for c in chosen]

    @strawberry.field(
        description="Convergence by turn from DuckDB, for a finished run that was loaded."
    )
    def convergence_by_turn(self, info: Info) -> list[_history.TurnAggregate]:
        if self.state.status == "running" or self.state.live:
            raise GraphQLError(
                "the run is live: its convergence comes from the logs (conversations.convergence);"
                " the database is read for finished runs only"
            )
        rows: list[_history.TurnAggregate] = read_db(
            lambda: _history.turn_aggregates(_db_path(info, self.state), self.id)
        )
        info.context.charge(len(rows))
        return rows


def _db_path(info: Info, state: ExperimentState) -> Any:
    from pidgin_load import default_db_path

    return info.context.catalog.history or default_db_path(state.directory)


def _experiment(state: ExperimentState) -> Experiment:
    p = state.progress
    db = state.database
    timing = state.timing
    return Experiment(
        state=state,
        id=state.id,
        name=state.name,
        kind=state.kind,
        status=state.status,
        live=state.live,
        directory=state.directory.name,
        progress=Progress(
            planned=p.planned, completed=p.completed, failed=p.failed, interrupted=p.interrupted,
            running=p.running, pending=p.pending, finished=p.finished, fraction=p.fraction,
        ),
        mean_convergence=state.convergence.mean_of_latest,
        tokens=tokens_of(state.tokens.total),
        created_at=timing.created,
        started_at=timing.started,
        completed_at=timing.completed,
        elapsed_seconds=timing.elapsed(),
        conversation_count=len(state.conversations),
        error_count=state.error_count,
        error=state.error,
        end_reason=state.end_reason,
        database=Database(
            loaded=db.loaded, failed=db.failed, stale=db.stale, error=db.error,
            loaded_at=db.loaded_at,
        ),
        url=experiment_url(state.id),
    )  # fmt: skip


@strawberry.enum
class ExperimentSort(Enum):
    NEWEST = "newest"
    OLDEST = "oldest"
    NAME = "name"


@strawberry.type
class ExperimentPage:
    total_count: int
    items: list[Experiment]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class Query:
    @strawberry.field(description="Runs under the output root, live from their logs.")
    def experiments(
        self,
        info: Info,
        *,
        first: int = 50,
        after: str | None = None,
        status: list[str] | None = None,
        kind: str | None = None,
        name_contains: str | None = None,
        sort: ExperimentSort = ExperimentSort.NEWEST,
    ) -> ExperimentPage:
        count = first_count(first)
        start = offset_of(after)
        runs = info.context.catalog.runs()
        if status:
            runs = [s for s in runs if s.status in status]
        if kind:
            runs = [s for s in runs if s.kind == kind]
        if name_contains:
            wanted = name_contains.casefold()
            runs = [s for s in runs if wanted in s.name.casefold() or wanted in s.id.casefold()]
        if sort is ExperimentSort.OLDEST:
            runs = runs[::-1]
        elif sort is ExperimentSort.NAME:
            runs = sorted(runs, key=lambda s: (s.name.casefold(), s.id))
        chosen = runs[start : start + count]
        info.context.charge(len(chosen))
        end = start + len(chosen)
        return ExperimentPage(
            total_count=len(runs),
            items=[_experiment(s) for s in chosen],
            end_cursor=str(end) if chosen else None,
            has_next_page=end < len(runs),
        )

    @strawberry.field(description="One run by id, name of its directory; refreshed now.")
    def experiment(self, info: Info, id: str) -> Experiment | None:
        state = info.context.catalog.experiment(id)
        return None if state is None else _experiment(state)

    @strawberry.field(description="One conversation of a run, refreshed now.")
    def conversation(self, info: Info, experiment_id: str, id: str) -> Conversation | None:
        found = info.context.catalog.conversation(experiment_id, id)
        return None if found is None else _conversation(found[0].id, found[1])

    @strawberry.field(
        description="Messages containing `text` (case-insensitive), newest runs first."
    )
    def search(
        self, info: Info, text: str, experiment_id: str | None = None, first: int = 20
    ) -> list[SearchHit]:
        hits = info.context.catalog.search(text, run_id=experiment_id, first=first_count(first))
        info.context.charge(len(hits))
        return hits

    @strawberry.field(
        description="Finished runs loaded into DuckDB (or the lake of `pidgin serve --target`),"
        " newest first (read-only; a database locked by a load in progress, or a lake that"
        " cannot be reached, is an error, not a wait)."
    )
    def history(self, info: Info, first: int = 50, offset: int = 0) -> list[_history.HistoryRow]:
        from pidgin_load import experiments_db

        catalog = info.context.catalog
        db = catalog.history or experiments_db(catalog.root)
        rows: list[_history.HistoryRow] = read_db(
            lambda: _history.history(db, first=first_count(first), offset=max(0, offset))
        )
        info.context.charge(len(rows))
        return rows


class _Schema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """One line per error on stderr: no traceback, in the log or to the client."""
        for error in errors:
            if error.original_error is not None and not isinstance(
                error.original_error, GraphQLError
            ):
                sys.stderr.write(f"pidgin serve: graphql: {error.original_error!r}\n")


_LIMITS: list[Any] = [  # instances, as strawberry documents (its stubs say classes)
    QueryDepthLimiter(max_depth=MAX_DEPTH),
    MaxTokensLimiter(max_token_count=MAX_TOKENS),
    MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
]
SCHEMA = _Schema(query=Query, extensions=_LIMITS)


def execute(
    catalog: Catalog,
    query: str,
    variables: dict[str, Any] | None,
    operation: str | None,
) -> tuple[int, dict[str, Any]]:
    """Run one query; the HTTP status and the JSON response (errors as GraphQL errors)."""
    result = SCHEMA.execute_sync(
        query,
        variable_values=variables,
        operation_name=operation,
        context_value=Context(catalog),
    )
    document: dict[str, Any] = {"data": result.data}
    if result.errors:
        document["errors"] = [_formatted(e) for e in result.errors]
    return 200, document


def _formatted(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if original is not None and not isinstance(original, GraphQLError):
        formatted["message"] = f"internal error: {type(original).__name__}: {original}"
    return formatted
