"""The database schema, as forward migrations applied in order.

A database records the versions applied in ``schema_version``. Opening it applies the
missing migrations in one transaction; a database newer than this package is refused
rather than guessed at. Never edit a released migration: append a new one.

Every table has ``experiment_id`` as its first column, and a reload deletes an
experiment's rows from every table before inserting them again, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ._costs import COSTS_MIGRATION, COSTS_VERSION
from ._errors import LoadError
from ._schema_metrics import COMPRESSION_MIGRATION, METRICS_MIGRATION

if TYPE_CHECKING:
    import duckdb

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TABLES", "migrate"]

_V1 = """
CREATE TABLE experiments (
    experiment_id             VARCHAR PRIMARY KEY,
    name                      VARCHAR,
    kind                      VARCHAR NOT NULL,   -- 'experiment' or 'chat'
    source_format             VARCHAR NOT NULL,   -- 'pidgin' or 'pidgin-ai'
    directory                 VARCHAR NOT NULL,   -- the run directory's name
    run_dir                   VARCHAR NOT NULL,   -- its absolute path when loaded
    status                    VARCHAR,            -- completed, failed, interrupted, unfinished
    reason                    VARCHAR,
    error                     VARCHAR,
    planned_conversations     INTEGER,
    conversations             INTEGER NOT NULL,
    completed_conversations   INTEGER NOT NULL,
    failed_conversations      INTEGER NOT NULL,
    interrupted_conversations INTEGER NOT NULL,
    started_at                TIMESTAMPTZ,
    completed_at              TIMESTAMPTZ,
    config                    JSON,
    events                    BIGINT NOT NULL,
    bad_lines                 BIGINT NOT NULL,
    loaded_at                 TIMESTAMPTZ NOT NULL,
    fingerprint               VARCHAR NOT NULL
);

CREATE TABLE conversations (
    experiment_id         VARCHAR NOT NULL,
    conversation_id       VARCHAR NOT NULL,
    agent_a_model         VARCHAR,
    agent_b_model         VARCHAR,
    agent_a_display_name  VARCHAR,
    agent_b_display_name  VARCHAR,
    temperature_a         DOUBLE,
    temperature_b         DOUBLE,
    max_turns             INTEGER,
    initial_prompt        VARCHAR,
    config                JSON,
    status                VARCHAR NOT NULL,  -- end status, or 'unfinished' without an end event
    end_reason            VARCHAR,
    error                 VARCHAR,
    turns                 INTEGER NOT NULL,  -- completed turns (TurnCompleteEvents)
    reported_total_turns  INTEGER,           -- as the end event said (pidgin-ai 1.x: turns + 1)
    final_convergence     DOUBLE,
    mean_convergence      DOUBLE,
    messages              INTEGER NOT NULL,
    prompt_tokens         BIGINT NOT NULL,
    completion_tokens     BIGINT NOT NULL,
    total_tokens          BIGINT NOT NULL,
    errors                INTEGER NOT NULL,
    started_at            TIMESTAMPTZ,
    ended_at              TIMESTAMPTZ,
    duration_ms           BIGINT,
    events                BIGINT NOT NULL,
    PRIMARY KEY (experiment_id, conversation_id)
);

CREATE TABLE turns (
    experiment_id      VARCHAR NOT NULL,
    conversation_id    VARCHAR NOT NULL,
    turn_number        INTEGER NOT NULL,  -- from 0
    convergence_score  DOUBLE,
    agent_a_chars      INTEGER,
    agent_b_chars      INTEGER,
    agent_a_tokens     BIGINT,            -- completion tokens of agent_a's message
    agent_b_tokens     BIGINT,
    started_at         TIMESTAMPTZ,
    completed_at       TIMESTAMPTZ,
    duration_ms        BIGINT,
    PRIMARY KEY (experiment_id, conversation_id, turn_number)
);

CREATE TABLE messages (
    experiment_id       VARCHAR NOT NULL,
    conversation_id     VARCHAR,
    turn_number         INTEGER,
    agent_id            VARCHAR,
    role                VARCHAR,
    content             VARCHAR,
    chars               INTEGER,
    prompt_tokens       BIGINT,
    completion_tokens   BIGINT,
    total_tokens        BIGINT,
    cache_read_tokens   BIGINT,
    cache_write_tokens  BIGINT,
    duration_ms         BIGINT,
    timestamp           TIMESTAMPTZ,
    seq                 BIGINT,
    source_file         VARCHAR NOT NULL,
    line_number         BIGINT NOT NULL
);

CREATE TABLE token_usage (
    experiment_id             VARCHAR NOT NULL,
    conversation_id           VARCHAR,
    agent_id                  VARCHAR,
    model                     VARCHAR,
    provider                  VARCHAR,
    messages                  INTEGER NOT NULL,
    prompt_tokens             BIGINT NOT NULL,
    completion_tokens         BIGINT NOT NULL,
    total_tokens              BIGINT NOT NULL,
    cache_read_tokens         BIGINT NOT NULL,
    cache_write_tokens        BIGINT NOT NULL,
    provider_reports          INTEGER NOT NULL,
    provider_reported_tokens  BIGINT          -- sum of TokenUsageEvent.tokens_used, if any
);

CREATE TABLE errors (
    experiment_id    VARCHAR NOT NULL,
    conversation_id  VARCHAR,
    event_type       VARCHAR NOT NULL,
    error_type       VARCHAR,
    error_message    VARCHAR,
    context          VARCHAR,
    agent_id         VARCHAR,
    provider         VARCHAR,
    error_code       VARCHAR,
    retryable        BOOLEAN,
    retry_count      INTEGER,
    turn_number      INTEGER,
    timestamp        TIMESTAMPTZ,
    seq              BIGINT,
    source_file      VARCHAR NOT NULL,
    line_number      BIGINT NOT NULL
);

CREATE TABLE events (
    experiment_id    VARCHAR NOT NULL,
    conversation_id  VARCHAR,
    seq              BIGINT,
    event_id         VARCHAR,
    event_type       VARCHAR,      -- never NULL once a load has committed
    timestamp        TIMESTAMPTZ,
    source_file      VARCHAR NOT NULL,
    line_number      BIGINT NOT NULL,
    payload          JSON NOT NULL
);

CREATE TABLE load_errors (
    experiment_id  VARCHAR NOT NULL,
    source_file    VARCHAR NOT NULL,
    line_number    BIGINT NOT NULL,
    reason         VARCHAR NOT NULL,
    excerpt        VARCHAR
);

CREATE VIEW experiment_dashboard AS
SELECT
    e.experiment_id,
    e.name,
    e.kind,
    e.status,
    e.started_at,
    e.completed_at,
    count(c.conversation_id) AS conversations,
    count(c.conversation_id) FILTER (WHERE c.status = 'completed') AS completed,
    count(c.conversation_id) FILTER (WHERE c.status = 'failed') AS failed,
    count(c.conversation_id) FILTER (WHERE c.status NOT IN ('completed', 'failed'))
        AS other_status,
    coalesce(sum(c.turns), 0) AS turns,
    avg(c.final_convergence) AS mean_final_convergence,
    coalesce(sum(c.total_tokens), 0) AS total_tokens,
    date_diff('millisecond', e.started_at, e.completed_at) / 1000.0 AS duration_seconds
FROM experiments AS e
LEFT JOIN conversations AS c USING (experiment_id)
GROUP BY ALL;

CREATE VIEW convergence_by_turn AS
SELECT
    experiment_id,
    turn_number,
    count(convergence_score) AS conversations,
    avg(convergence_score) AS avg_convergence,
    min(convergence_score) AS min_convergence,
    max(convergence_score) AS max_convergence
FROM turns
GROUP BY experiment_id, turn_number;
"""

# Version 2: the database reads like the screens. ``turn`` is the 1-based turn users
# see (``turn_number`` stays as the events number it, from 0); ``messages.model`` is the
# model of the agent that spoke, and ``messages.role`` says which agent that was
# (``agent_a``/``agent_b``) instead of the provider's constant ``assistant``. Rows loaded
# under version 1 are brought to these meanings here, so no reload is needed.
_V2 = """
ALTER TABLE messages ADD COLUMN model VARCHAR;
ALTER TABLE messages ADD COLUMN turn INTEGER;
ALTER TABLE turns ADD COLUMN turn INTEGER;
ALTER TABLE errors ADD COLUMN turn INTEGER;

UPDATE messages SET turn = turn_number + 1, role = agent_id;
UPDATE messages SET model = CASE messages.agent_id
        WHEN 'agent_a' THEN c.agent_a_model WHEN 'agent_b' THEN c.agent_b_model END
FROM conversations AS c
WHERE c.experiment_id = messages.experiment_id
    AND c.conversation_id = messages.conversation_id;
UPDATE turns SET turn = turn_number + 1;
UPDATE errors SET turn = turn_number + 1;

CREATE OR REPLACE VIEW convergence_by_turn AS
SELECT
    experiment_id,
    turn_number,
    turn,
    count(convergence_score) AS conversations,
    avg(convergence_score) AS avg_convergence,
    min(convergence_score) AS min_convergence,
    max(convergence_score) AS max_convergence
FROM turns
GROUP BY experiment_id, turn_number, turn;
"""


# Version 4: where each experiment's rows came from: with a lake, loads arrive from many machines.
_V4_LOADS = """
CREATE TABLE loads (
    experiment_id   VARCHAR PRIMARY KEY,
    loaded_at       TIMESTAMPTZ NOT NULL,
    host            VARCHAR NOT NULL,   -- the loading machine's host name
    pidgin_version  VARCHAR NOT NULL,   -- pidgin-load's version (the four packages share it)
    duckdb_version  VARCHAR NOT NULL,
    target          VARCHAR NOT NULL    -- the database file, or the lake's label
);
"""


# Version 7: branches (``pidgin branch``). A branch conversation names its parent and the
# turn it branched at (its ConversationBranchedEvent); ``branch_alignment`` puts each of a
# branch's messages beside the parent's message of the same turn and agent.
_V7_BRANCHES = """
ALTER TABLE conversations ADD COLUMN parent_conversation_id VARCHAR;
ALTER TABLE conversations ADD COLUMN branch_turn INTEGER;
CREATE VIEW branch_alignment AS
SELECT
    b.experiment_id,
    b.conversation_id,
    b.parent_conversation_id,
    b.branch_turn,
    m.turn_number,
    m.turn,
    m.agent_id,
    m.turn_number < b.branch_turn AS replayed,
    m.content AS content,
    p.content AS parent_content,
    m.content IS NOT DISTINCT FROM p.content AS same_as_parent
FROM conversations AS b
JOIN messages AS m ON m.experiment_id = b.experiment_id AND m.conversation_id = b.conversation_id
LEFT JOIN messages AS p
    ON p.conversation_id = b.parent_conversation_id
    AND p.turn_number = m.turn_number AND p.agent_id = m.agent_id
WHERE b.parent_conversation_id IS NOT NULL;
"""


MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, _V1),
    (2, _V2),
    (COSTS_VERSION, COSTS_MIGRATION),
    (4, _V4_LOADS),
    (5, METRICS_MIGRATION),
    (7, _V7_BRANCHES),  # 6 is another branch's, renumbered at merge
    (8, COMPRESSION_MIGRATION),
)
"""``(version, SQL)`` pairs, applied in order to bring a database up to ``SCHEMA_VERSION``."""

SCHEMA_VERSION = MIGRATIONS[-1][0]

TABLES = (
    "experiments",
    "conversations",
    "turns",
    "messages",
    "token_usage",
    "errors",
    "events",
    "load_errors",
    "loads",
    "turn_metrics",
)
"""Every table holding an experiment's rows; a reload empties all of them first."""

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
)
"""


def stored_fingerprints(
    con: duckdb.DuckDBPyConnection, experiment_ids: list[str], *, catalog: str | None = None
) -> dict[str, str]:
    """The fingerprint each of these experiments was loaded with, if loaded."""
    table = "experiments" if catalog is None else f"{catalog}.main.experiments"
    rows = con.execute(
        f"SELECT experiment_id, fingerprint FROM {table} "
        "WHERE list_contains($ids::VARCHAR[], experiment_id)",
        {"ids": experiment_ids},
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of an open database (0 for a new, empty one)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = 'main' "
        "AND table_name = 'schema_version'"
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _unchanged(sql: str) -> str:
    return sql


def migrate(
    con: duckdb.DuckDBPyConnection,
    db_path: str,
    *,
    up_to: int = SCHEMA_VERSION,
    adapt: Callable[[str], str] = _unchanged,
) -> int:
    """Bring the database up to ``up_to`` in one transaction; return the version.

    A crash half-way leaves the database as it was, since DuckDB's DDL is transactional.
    ``up_to`` below ``SCHEMA_VERSION`` is for tests: a database as an older release left it.
    ``adapt`` rewrites each statement for a store that lacks some features (a DuckLake).
    """
    version = current_version(con)
    if version > SCHEMA_VERSION:
        raise LoadError(
            f"database {db_path} has schema version {version}, newer than the {SCHEMA_VERSION} "
            "this pidgin-load knows; upgrade pidgin-load to load into it"
        )
    if version >= up_to:
        return version
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(adapt(_BOOTSTRAP))
        for number, sql in MIGRATIONS:
            if version < number <= up_to:
                con.execute(adapt(sql))
                con.execute(
                    "INSERT INTO schema_version (version, applied_at) "
                    "VALUES (?, current_timestamp)",
                    [number],
                )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return up_to
