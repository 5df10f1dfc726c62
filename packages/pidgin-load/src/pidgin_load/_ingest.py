"""Loading one run's logs into an open database, set-based, inside the caller's transaction.

DuckDB reads the files (``read_text``), splits them into numbered lines and parses each
line once with explicit types (``from_json``), and ``INSERT ... SELECT`` writes them: no
row passes through Python. Reading whole lines rather than ``read_json`` rows is what
gives every event its exact file and line number, and lets a malformed line be recorded
in ``load_errors`` with its number instead of being skipped unseen.

The normalised tables are then filled from the ``events`` rows just written, parsing only
the payloads they need (pidgin-ai's history-laden ``MessageRequestEvent`` lines, 91% of
its bytes, are parsed once, in the first pass, and never again).

Memory stays bounded whatever the size of the logs: one statement reads at most
``BATCH_BYTES`` of them, and a log bigger than that is cut at newlines into ranges
(``_chunks``), each copied to a private file just before its statement and numbered from
the line it starts at.

Python touches the bytes only in rare cases: such big logs are cut and copied,
``.gz``/``.zst`` logs are decompressed to a private temporary directory first, and a file
with bytes that are not UTF-8 (which DuckDB refuses to read as text) is copied with each
such line blanked, the line being recorded in ``load_errors`` from Python.
"""

from __future__ import annotations

import codecs
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pidgin_events import ERROR_EVENT_TYPES, EVENT_TYPES, open_log

from ._chunks import LineRange, copy_range, line_ranges
from ._errors import LoadError
from ._metrics import compute_turn_metrics
from ._runs import LogFile, Run
from ._schema import TABLES

if TYPE_CHECKING:
    import duckdb

__all__ = ["BATCH_BYTES", "PAUSE_ENV", "IngestResult", "NotUtf8Error", "ingest_run"]

BATCH_BYTES = 32 << 20
"""Logs are read in statements of at most this many bytes, so memory stays bounded.

Parsing lines takes up to ~15 times their size in DuckDB (long lines cost the most), so
32 MB stays well inside the default 1GB memory limit. A log bigger than this is read in
ranges of whole lines of at most this size; only a single longer line exceeds it.
"""

PAUSE_ENV = "PIDGIN_LOAD_TEST_PAUSE_AFTER_INSERT"
"""Test hook: seconds to sleep inside the transaction after the inserts, before COMMIT."""

_VECTOR_ROWS = 2048
"""DuckDB processes rows in vectors of this many: one vector of long lines is all in memory."""
_LAST_LINE = 1 << 62
_EXCERPT_CHARS = 200
_COPIES = itertools.count()  # names the copies made in a scratch directory
_GLOB_CHARS = frozenset("*?[]{}")

# The envelope every event line shares; the rest of the line stays in ``payload``.
_ENVELOPE = (
    '{"event_type": "JSON", "timestamp": "TIMESTAMPTZ", "seq": "BIGINT", '
    '"event_id": "VARCHAR", "conversation_id": "VARCHAR"}'
)

_EVENTS_SQL = f"""
INSERT INTO events
    (experiment_id, conversation_id, seq, event_id, event_type, timestamp, source_file,
     line_number, payload)
WITH files AS (
    SELECT unnest($paths::VARCHAR[]) AS path,
           unnest($names::VARCHAR[]) AS source_file,
           unnest($conversations::VARCHAR[]) AS file_conversation_id,
           unnest($first_lines::BIGINT[]) - 1 AS lines_before
),
raw_lines AS (
    SELECT filename AS path, unnest(lines) AS line, generate_subscripts(lines, 1) AS line_number
    FROM (SELECT filename, string_split(content, chr(10)) AS lines FROM read_text($paths))
),
parsed AS (
    SELECT path, line_number, line,
        CASE WHEN json_valid(line) THEN from_json(line, '{_ENVELOPE}') END AS p
    FROM raw_lines
    -- blank lines are not events (a short line is trimmed to find out; long ones never are)
    WHERE CASE WHEN strlen(line) > 16 THEN true ELSE trim(line, e' \\t\\r\\f') <> '' END
),
typed AS (
    SELECT t.* EXCLUDE (line_number), t.line_number + f.lines_before AS line_number,
        f.source_file, f.file_conversation_id,
        CASE WHEN json_type(p.event_type) = 'VARCHAR' THEN nullif(p.event_type ->> '$', '') END
            AS event_type
    FROM parsed AS t JOIN files AS f USING (path)
),
checked AS (
    SELECT *,
        CASE
            WHEN event_type IS NULL THEN
                CASE
                    WHEN NOT json_valid(line) THEN 'not valid JSON'
                    WHEN json_type(line) <> 'OBJECT' THEN
                        'expected a JSON object, got ' || CASE json_type(line)
                            WHEN 'ARRAY' THEN 'an array' WHEN 'VARCHAR' THEN 'a string'
                            WHEN 'NULL' THEN 'null' WHEN 'BOOLEAN' THEN 'a boolean'
                            ELSE 'a number' END
                    WHEN json_type(line, '$.event_type') IS NULL THEN 'no ''event_type'' string'
                    ELSE '''event_type'' is not a non-empty string'
                END
        END AS problem
    FROM typed
)
SELECT
    $experiment_id,
    coalesce(p.conversation_id, file_conversation_id),
    coalesce(p.seq, line_number - 1),
    p.event_id,
    CASE WHEN problem IS NULL THEN event_type END,
    p.timestamp,
    source_file,
    line_number,
    -- A problem line stays here only until the end of this transaction: it is moved to
    -- load_errors (_BAD_LINES_SQL), its reason and excerpt kept in the payload meanwhile.
    CASE
        WHEN problem IS NULL THEN line
        ELSE json_object('reason', problem, 'excerpt', left(line, {_EXCERPT_CHARS}))
    END
FROM checked
"""

# A log whose events name more than one conversation: the log belongs to the conversation
# its ConversationStartEvent names (else the one its file name names), and an event of
# another conversation in it is reported rather than loaded. Foreign writers may name a
# log differently from the id its lines carry, so a mismatch of name alone is no error.
_MIXED_LOGS_SQL = """
SELECT list(source_file) FROM (
    SELECT source_file FROM events
    WHERE experiment_id = $experiment_id AND conversation_id IS NOT NULL
        AND event_type IS NOT NULL
    GROUP BY source_file HAVING count(DISTINCT conversation_id) > 1
)
"""

_MISPLACED_SQL = f"""
UPDATE events SET
    event_type = NULL,
    payload = json_object(
        'reason', 'an event of conversation ' || events.conversation_id || ' in the log of '
            || o.owner,
        'excerpt', left(events.payload::VARCHAR, {_EXCERPT_CHARS}))
FROM (
    SELECT f.source_file, coalesce(s.conversation_id, f.file_conversation_id) AS owner
    FROM (
        SELECT unnest($names::VARCHAR[]) AS source_file,
               unnest($conversations::VARCHAR[]) AS file_conversation_id
    ) AS f
    LEFT JOIN (
        SELECT source_file, arg_min(conversation_id, line_number) AS conversation_id
        FROM events
        WHERE experiment_id = $experiment_id AND event_type = 'ConversationStartEvent'
        GROUP BY source_file
    ) AS s USING (source_file)
    WHERE list_contains($mixed::VARCHAR[], f.source_file)
) AS o
WHERE events.experiment_id = $experiment_id AND events.source_file = o.source_file
    AND events.event_type IS NOT NULL AND events.conversation_id <> o.owner
"""

# A line repeated whole in one log (same event_id) is loaded once; each later copy is
# reported. Writers draw a random event-id prefix each, so only a replayed line repeats.
_REPEATED_IDS_SQL = """
SELECT count(*) FROM (
    SELECT 1 FROM events
    WHERE experiment_id = $experiment_id AND event_id IS NOT NULL AND event_type IS NOT NULL
    GROUP BY source_file, event_id HAVING count(*) > 1
)
"""

_DUPLICATES_SQL = f"""
UPDATE events SET
    event_type = NULL,
    payload = json_object(
        'reason', 'a repeat of line ' || d.first_line || ' (event_id ' || d.event_id || ')',
        'excerpt', left(events.payload::VARCHAR, {_EXCERPT_CHARS}))
FROM (
    SELECT source_file, line_number, event_id, first_line FROM (
        SELECT e.source_file, e.line_number, e.event_id,
            min(e.line_number) OVER (PARTITION BY e.source_file, e.event_id) AS first_line
        FROM events AS e
        JOIN (
            SELECT source_file, event_id FROM events
            WHERE experiment_id = $experiment_id AND event_id IS NOT NULL
                AND event_type IS NOT NULL
            GROUP BY source_file, event_id HAVING count(*) > 1
        ) AS repeated USING (source_file, event_id)
        WHERE e.experiment_id = $experiment_id AND e.event_type IS NOT NULL
    )
    WHERE line_number > first_line
) AS d
WHERE events.experiment_id = $experiment_id
    AND events.source_file = d.source_file AND events.line_number = d.line_number
"""

_BAD_LINES_SQL = """
INSERT INTO load_errors
SELECT experiment_id, source_file, line_number, payload ->> 'reason', payload ->> 'excerpt'
FROM events WHERE experiment_id = $experiment_id AND event_type IS NULL
"""

_DROP_BAD_LINES_SQL = (
    "DELETE FROM events WHERE experiment_id = $experiment_id AND event_type IS NULL"
)

_PYTHON_BAD_LINES_SQL = """
INSERT INTO load_errors
SELECT $experiment_id, unnest($names::VARCHAR[]), unnest($lines::BIGINT[]),
       unnest($reasons::VARCHAR[]), unnest($excerpts::VARCHAR[])
"""

_MESSAGES_SQL = """
INSERT INTO messages
SELECT
    $experiment_id, conversation_id, p.turn_number,
    coalesce(p.agent_id, p.message.agent_id),
    p.message.role, p.message.content, length(p.message.content),
    p.prompt_tokens, p.completion_tokens, p.total_tokens,
    p.cache_read_tokens, p.cache_write_tokens, p.duration_ms,
    timestamp, seq, source_file, line_number
FROM (
    SELECT conversation_id, seq, source_file, line_number, timestamp,
        from_json(payload, '{"agent_id": "VARCHAR", "turn_number": "INTEGER",
            "prompt_tokens": "BIGINT", "completion_tokens": "BIGINT", "total_tokens": "BIGINT",
            "duration_ms": "BIGINT", "cache_read_tokens": "BIGINT",
            "cache_write_tokens": "BIGINT",
            "message": {"role": "VARCHAR", "content": "VARCHAR", "agent_id": "VARCHAR"}}') AS p
    FROM events
    WHERE experiment_id = $experiment_id AND event_type = 'MessageCompleteEvent' {in_slice}
)
"""

_UNNUMBERED_MESSAGES_SQL = """
SELECT count(*) FROM messages WHERE experiment_id = $experiment_id AND turn_number IS NULL
"""

# pidgin-ai 1.x messages carry no turn number: their turn is the last one started before
# them in their log. Only those messages pay for the as-of join.
_MESSAGE_TURNS_SQL = """
UPDATE messages SET turn_number = found.turn_number
FROM (
    SELECT m.source_file, m.line_number, t.turn_number
    FROM (
        SELECT source_file, line_number FROM messages
        WHERE experiment_id = $experiment_id AND turn_number IS NULL
    ) AS m
    ASOF JOIN (
        SELECT source_file, line_number,
            TRY_CAST(json_extract_string(payload, '$.turn_number') AS INTEGER) AS turn_number
        FROM events WHERE experiment_id = $experiment_id AND event_type = 'TurnStartEvent'
    ) AS t
        ON m.source_file = t.source_file AND m.line_number >= t.line_number
) AS found
WHERE messages.experiment_id = $experiment_id
    AND messages.source_file = found.source_file AND messages.line_number = found.line_number
"""

# What the turns need from each TurnCompleteEvent, kept apart so that the payloads (in
# pidgin-ai's, the whole turn) are parsed slice by slice, like the messages.
_TURN_ENDS_TABLE_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_load_turn_ends (
    conversation_id VARCHAR, timestamp TIMESTAMPTZ, source_file VARCHAR, line_number BIGINT,
    turn_number INTEGER, convergence_score DOUBLE, agent_a_chars BIGINT, agent_b_chars BIGINT
)
"""

_TURN_ENDS_SQL = """
INSERT INTO pidgin_load_turn_ends
SELECT conversation_id, timestamp, source_file, line_number, p.turn_number,
    p.convergence_score, length(p.turn.agent_a_message.content),
    length(p.turn.agent_b_message.content)
FROM (
    SELECT conversation_id, timestamp, source_file, line_number,
        from_json(payload, '{"turn_number": "INTEGER", "convergence_score": "DOUBLE",
            "turn": {"agent_a_message": {"content": "VARCHAR"},
                     "agent_b_message": {"content": "VARCHAR"}}}') AS p
    FROM events
    WHERE experiment_id = $experiment_id AND event_type = 'TurnCompleteEvent'
        AND conversation_id IS NOT NULL {in_slice}
)
WHERE p.turn_number IS NOT NULL
"""

_DROP_TURN_ENDS_SQL = "DROP TABLE pidgin_load_turn_ends"

_TURNS_SQL = """
INSERT INTO turns
WITH last_done AS (
    SELECT * FROM pidgin_load_turn_ends
    QUALIFY row_number() OVER (
        PARTITION BY conversation_id, turn_number ORDER BY source_file DESC, line_number DESC
    ) = 1
),
started AS (
    SELECT conversation_id,
        TRY_CAST(json_extract_string(payload, '$.turn_number') AS INTEGER) AS turn_number,
        min(timestamp) AS started_at
    FROM events WHERE experiment_id = $experiment_id AND event_type = 'TurnStartEvent'
    GROUP BY ALL
),
said AS (
    SELECT conversation_id, turn_number,
        arg_max(chars, line_number) FILTER (WHERE agent_id = 'agent_a') AS a_chars,
        arg_max(completion_tokens, line_number) FILTER (WHERE agent_id = 'agent_a') AS a_tokens,
        arg_max(chars, line_number) FILTER (WHERE agent_id = 'agent_b') AS b_chars,
        arg_max(completion_tokens, line_number) FILTER (WHERE agent_id = 'agent_b') AS b_tokens
    FROM messages WHERE experiment_id = $experiment_id AND turn_number IS NOT NULL
    GROUP BY ALL
)
SELECT
    $experiment_id, d.conversation_id, d.turn_number, d.convergence_score,
    coalesce(s.a_chars, d.agent_a_chars), coalesce(s.b_chars, d.agent_b_chars),
    s.a_tokens, s.b_tokens,
    st.started_at, d.timestamp, date_diff('millisecond', st.started_at, d.timestamp)
FROM last_done AS d
LEFT JOIN started AS st USING (conversation_id, turn_number)
LEFT JOIN said AS s USING (conversation_id, turn_number)
"""

_ERRORS_SQL = """
INSERT INTO errors
SELECT
    $experiment_id, conversation_id, event_type, coalesce(p.error_type, event_type),
    p.error_message, p.context, p.agent_id, p.provider, p.error_code, p.retryable,
    p.retry_count, p.turn_number, timestamp, seq, source_file, line_number
FROM (
    SELECT *, from_json(payload, '{"error_type": "VARCHAR", "error_message": "VARCHAR",
        "context": "VARCHAR", "agent_id": "VARCHAR", "provider": "VARCHAR",
        "error_code": "VARCHAR", "retryable": "BOOLEAN", "retry_count": "INTEGER",
        "turn_number": "INTEGER"}') AS p
    FROM events
    WHERE experiment_id = $experiment_id AND list_contains($error_types::VARCHAR[], event_type)
        {in_slice}
)
"""

_AGENT = '{"model": "VARCHAR", "display_name": "VARCHAR", "temperature": "DOUBLE"}'

_CONVERSATIONS_SQL = f"""
INSERT INTO conversations
WITH conv AS (
    SELECT conversation_id, min(timestamp) AS first_at, max(timestamp) AS last_at,
        count(*) AS events
    FROM events WHERE experiment_id = $experiment_id AND conversation_id IS NOT NULL
    GROUP BY ALL
),
st AS (
    SELECT conversation_id, timestamp,
        from_json(payload, '{{"agent_a": {_AGENT}, "agent_b": {_AGENT},
            "agent_a_model": "VARCHAR", "agent_b_model": "VARCHAR",
            "agent_a_display_name": "VARCHAR", "agent_b_display_name": "VARCHAR",
            "temperature_a": "DOUBLE", "temperature_b": "DOUBLE", "max_turns": "INTEGER",
            "initial_prompt": "VARCHAR", "config": "JSON"}}') AS p
    FROM events
    WHERE experiment_id = $experiment_id AND event_type = 'ConversationStartEvent'
        AND conversation_id IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY conversation_id ORDER BY source_file, line_number) = 1
),
en AS (
    SELECT conversation_id, timestamp,
        from_json(payload, '{{"status": "VARCHAR", "reason": "VARCHAR", "error": "VARCHAR",
            "total_turns": "INTEGER", "duration_ms": "BIGINT"}}') AS p
    FROM events
    WHERE experiment_id = $experiment_id AND event_type = 'ConversationEndEvent'
        AND conversation_id IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY conversation_id ORDER BY source_file DESC, line_number DESC) = 1
),
tu AS (
    SELECT conversation_id, count(*) AS turns,
        max_by(convergence_score, turn_number) AS final_convergence,
        avg(convergence_score) AS mean_convergence
    FROM turns WHERE experiment_id = $experiment_id GROUP BY ALL
),
me AS (
    SELECT conversation_id, count(*) AS messages,
        coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        coalesce(sum(total_tokens), 0) AS total_tokens
    FROM messages WHERE experiment_id = $experiment_id GROUP BY ALL
),
er AS (
    SELECT conversation_id, count(*) AS errors
    FROM errors WHERE experiment_id = $experiment_id GROUP BY ALL
)
SELECT
    $experiment_id, c.conversation_id,
    coalesce(st.p.agent_a_model, st.p.agent_a.model),
    coalesce(st.p.agent_b_model, st.p.agent_b.model),
    coalesce(st.p.agent_a_display_name, st.p.agent_a.display_name),
    coalesce(st.p.agent_b_display_name, st.p.agent_b.display_name),
    coalesce(st.p.temperature_a, st.p.agent_a.temperature),
    coalesce(st.p.temperature_b, st.p.agent_b.temperature),
    st.p.max_turns, st.p.initial_prompt, st.p.config,
    coalesce(en.p.status, 'unfinished'), en.p.reason, en.p.error,
    coalesce(tu.turns, 0), en.p.total_turns, tu.final_convergence, tu.mean_convergence,
    coalesce(me.messages, 0), coalesce(me.prompt_tokens, 0),
    coalesce(me.completion_tokens, 0), coalesce(me.total_tokens, 0),
    coalesce(er.errors, 0),
    coalesce(st.timestamp, c.first_at), en.timestamp,
    coalesce(en.p.duration_ms, date_diff('millisecond', c.first_at, c.last_at)),
    c.events
FROM conv AS c
LEFT JOIN st USING (conversation_id)
LEFT JOIN en USING (conversation_id)
LEFT JOIN tu USING (conversation_id)
LEFT JOIN me USING (conversation_id)
LEFT JOIN er USING (conversation_id)
"""

_TOKEN_USAGE_SQL = """
INSERT INTO token_usage
WITH mu AS (
    SELECT conversation_id, agent_id, count(*) AS messages,
        coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        coalesce(sum(total_tokens), 0) AS total_tokens,
        coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
        coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens
    FROM messages WHERE experiment_id = $experiment_id GROUP BY ALL
),
pu AS (
    SELECT conversation_id, p.agent_id AS agent_id, count(*) AS reports,
        sum(p.tokens_used) AS tokens, any_value(p.model) AS reported_model,
        any_value(p.provider) AS provider
    FROM (
        SELECT conversation_id, from_json(payload, '{"agent_id": "VARCHAR",
            "model": "VARCHAR", "provider": "VARCHAR", "tokens_used": "BIGINT"}') AS p
        FROM events WHERE experiment_id = $experiment_id AND event_type = 'TokenUsageEvent'
    )
    GROUP BY ALL
),
models AS (
    SELECT conversation_id, 'agent_a' AS agent_id, agent_a_model AS model
    FROM conversations WHERE experiment_id = $experiment_id
    UNION ALL
    SELECT conversation_id, 'agent_b' AS agent_id, agent_b_model AS model
    FROM conversations WHERE experiment_id = $experiment_id
)
SELECT
    $experiment_id, u.conversation_id, u.agent_id, coalesce(models.model, u.reported_model),
    u.provider, coalesce(u.messages, 0), coalesce(u.prompt_tokens, 0),
    coalesce(u.completion_tokens, 0), coalesce(u.total_tokens, 0),
    coalesce(u.cache_read_tokens, 0), coalesce(u.cache_write_tokens, 0),
    coalesce(u.reports, 0), u.tokens
FROM (SELECT * FROM mu FULL OUTER JOIN pu USING (conversation_id, agent_id)) AS u
LEFT JOIN models USING (conversation_id, agent_id)
"""

_EXPERIMENT_SQL = """
INSERT INTO experiments
WITH c AS (
    SELECT count(*) AS n,
        count(*) FILTER (WHERE status = 'completed') AS completed,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        count(*) FILTER (WHERE status = 'interrupted') AS interrupted,
        any_value(status) AS only_status,
        max(ended_at) AS last_end
    FROM conversations WHERE experiment_id = $experiment_id
),
e AS (
    SELECT count(*) AS events, min(timestamp) AS first_at
    FROM events WHERE experiment_id = $experiment_id
),
b AS (SELECT count(*) AS bad FROM load_errors WHERE experiment_id = $experiment_id)
SELECT
    $experiment_id, $name::VARCHAR, $kind::VARCHAR, $source_format::VARCHAR,
    $directory::VARCHAR, $run_dir::VARCHAR,
    coalesce($status::VARCHAR,
             CASE WHEN $kind::VARCHAR = 'chat' AND c.n = 1 THEN c.only_status END,
             'unfinished'),
    $reason::VARCHAR, $error::VARCHAR, $planned::INTEGER,
    c.n, c.completed, c.failed, c.interrupted,
    coalesce(TRY_CAST($started_at::VARCHAR AS TIMESTAMPTZ), e.first_at),
    coalesce(TRY_CAST($completed_at::VARCHAR AS TIMESTAMPTZ),
             CASE WHEN $kind::VARCHAR = 'chat' THEN c.last_end END),
    TRY_CAST($config::VARCHAR AS JSON),
    e.events, b.bad, $loaded_at::TIMESTAMPTZ, $fingerprint::VARCHAR
FROM c, e, b
"""

_UNKNOWN_SQL = """
SELECT count(*) FROM events
WHERE experiment_id = $experiment_id AND NOT list_contains($known::VARCHAR[], event_type)
"""


@dataclass(slots=True)
class IngestResult:
    """Rows written per table, and what was wrong with the input."""

    rows: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0
    unknown_events: int = 0


@dataclass(frozen=True, slots=True)
class _Source:
    """Lines of one of the run's logs that one statement reads: the whole file, or a range."""

    path: str
    """The log itself, or a private copy of it (decompressed, or under a plain name)."""
    log: LogFile
    lines: LineRange
    last_line: int
    """The number of the last line of ``lines`` (or more: the last range of a file)."""
    whole: bool
    """Whether ``lines`` is the whole file, which DuckDB then reads in place."""

    @property
    def size(self) -> int:
        return self.lines.size


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> int:
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _batches(sources: list[_Source]) -> Iterator[list[_Source]]:
    batch: list[_Source] = []
    size = 0
    for source in sources:
        if batch and size + source.size > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(source)
        size += source.size
    if batch:
        yield batch


@contextmanager
def _scratch() -> Iterator[Path]:
    """A private temporary directory (mode 0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="pidgin-load-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _readable_path(log: LogFile, scratch: Path, index: int) -> Path:
    """A path DuckDB can read as text: the log itself, or a decompressed or aliased copy."""
    path = log.path
    if path.suffix in (".gz", ".zst"):
        target = scratch / f"{index}.jsonl"
        try:
            with open_log(path) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        except (OSError, EOFError, RuntimeError) as exc:
            raise LoadError(f"{path}: cannot decompress: {exc}") from exc
        return target
    if _GLOB_CHARS.intersection(str(path)):
        # DuckDB expands glob patterns in file names; a link with a plain name avoids that.
        link = scratch / f"{index}.jsonl"
        os.symlink(path, link)
        return link
    return path


def _sources_of(log: LogFile, path: Path) -> list[_Source]:
    """The log as one source, or, if bigger than a batch, as ranges of whole lines."""
    size = path.stat().st_size
    if size > BATCH_BYTES:
        try:
            ranges = list(line_ranges(path, BATCH_BYTES))
        except OSError as exc:
            raise LoadError(f"{log.path}: cannot read: {exc}") from exc
        if len(ranges) > 1:
            last_lines = [lines.first_line - 1 for lines in ranges[1:]] + [_LAST_LINE]
            return [
                _Source(str(path), log, lines, last, whole=False)
                for lines, last in zip(ranges, last_lines, strict=True)
            ]
    return [_Source(str(path), log, LineRange(0, size, 1), _LAST_LINE, whole=True)]


def _is_utf8(path: str) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as stream:
            while block := stream.read(1 << 22):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _blank_non_utf8_lines(
    path: str, source: _Source, target: Path, bad: dict[str, list[Any]]
) -> None:
    """Copy a file, blanking each line that is not UTF-8 and noting it for load_errors."""
    with open(path, "rb") as reader, open(target, "wb") as writer:
        for number, raw in enumerate(reader, start=source.lines.first_line):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad["names"].append(source.log.name)
                bad["lines"].append(number)
                bad["reasons"].append(
                    f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})"
                )
                bad["excerpts"].append(
                    raw[:_EXCERPT_CHARS].decode("utf-8", "backslashreplace").rstrip("\n")
                )
                writer.write(b"\n")  # keeps the numbers of the lines after it
            else:
                writer.write(raw)


class NotUtf8Error(Exception):
    """DuckDB refused a file as text; the transaction is aborted and must be started again."""


@contextmanager
def _files_to_read(
    batch: list[_Source], scratch: Path, *, clean_utf8: bool, bad: dict[str, list[Any]]
) -> Iterator[list[str]]:
    """The file DuckDB reads for each source of a batch; copies made for it go afterwards.

    A range is copied to a file of its own (DuckDB reads files whole). With ``clean_utf8``,
    a file that is not all UTF-8 is replaced by a copy with such lines blanked.
    """
    made: list[Path] = []
    try:
        paths = []
        for source in batch:
            path = source.path
            if not source.whole:
                copy = scratch / f"range-{next(_COPIES)}.jsonl"
                made.append(copy)
                try:
                    copy_range(path, copy, source.lines)
                except OSError as exc:
                    raise LoadError(f"{source.log.path}: cannot read: {exc}") from exc
                path = str(copy)
            if clean_utf8 and not _is_utf8(path):
                cleaned = scratch / f"utf8-{next(_COPIES)}.jsonl"
                made.append(cleaned)
                _blank_non_utf8_lines(path, source, cleaned, bad)
                path = str(cleaned)
            paths.append(path)
        yield paths
    finally:
        for copy_path in made:
            copy_path.unlink(missing_ok=True)  # a big log's copies never pile up on disk


def _insert_events(
    con: duckdb.DuckDBPyConnection, experiment_id: str, batch: list[_Source], paths: list[str]
) -> int:
    import duckdb

    try:
        return _count(
            con,
            _EVENTS_SQL,
            {
                "experiment_id": experiment_id,
                "paths": paths,
                "names": [source.log.name for source in batch],
                "conversations": [source.log.conversation_id for source in batch],
                "first_lines": [source.lines.first_line for source in batch],
            },
        )
    except duckdb.InvalidInputException as exc:
        if "UTF-8" in str(exc):
            raise NotUtf8Error(str(exc)) from exc
        raise


# A slice's rows, in a form DuckDB filters inside its scan of ``events``, so that the
# payloads of the other rows are never fetched. (A line range per file, looked up in a
# list, is not: it would fetch every payload the other conditions select.)
_IN_SLICE = """
    AND list_contains($slice_files::VARCHAR[], source_file)
    AND line_number BETWEEN $slice_first AND $slice_last
"""


@dataclass(frozen=True, slots=True)
class _Slice:
    """Events that a statement parsing their payloads reads at once: some lines of some logs.

    DuckDB holds a vector of ``_VECTOR_ROWS`` rows in memory whole, so a statement over
    many long lines (a log of 2 MB messages) would need all of them at once; sliced, it
    needs at most a batch. ``files=None`` is every event of the run: no filter at all.
    """

    files: tuple[str, ...] | None
    first: int = 1
    last: int = _LAST_LINE

    def sql(self, template: str) -> str:
        return template.replace("{in_slice}", "" if self.files is None else _IN_SLICE)

    def params(self) -> dict[str, Any]:
        if self.files is None:
            return {}
        return {"slice_files": list(self.files), "slice_first": self.first, "slice_last": self.last}


def _slices_of(sources: list[_Source]) -> list[_Slice]:
    """Some batches' sources as slices: their whole logs together, each range on its own."""
    whole = tuple(source.log.name for source in sources if source.whole)
    slices = [_Slice(whole)] if whole else []
    for source in sources:
        if source.whole:
            continue
        previous = slices[-1] if slices else None
        if previous and previous.files == (source.log.name,) and previous.last < _LAST_LINE:
            # the next range of the same log
            slices[-1] = _Slice(previous.files, previous.first, source.last_line)
        else:
            slices.append(_Slice((source.log.name,), source.lines.first_line, source.last_line))
    return slices


def _slices(batches: list[tuple[list[_Source], int]]) -> list[_Slice]:
    """Slices covering the batches read (with their row counts); usually one, unfiltered.

    Batches of at least ``_VECTOR_ROWS`` rows are read together: a vector then spans at
    most two of them. A batch of fewer rows, long ones, is read on its own.
    """
    groups: list[list[_Source]] = []
    joinable = False  # whether the last group takes more batches
    for batch, rows in batches:
        many = rows >= _VECTOR_ROWS
        if not (groups and joinable and many):
            groups.append([])
        joinable = many
        groups[-1].extend(batch)
    if len(groups) <= 1:
        return [_Slice(None)]
    return [part for group in groups for part in _slices_of(group)]


def _count_sliced(
    con: duckdb.DuckDBPyConnection, template: str, params: dict[str, Any], slices: list[_Slice]
) -> int:
    return sum(_count(con, part.sql(template), {**params, **part.params()}) for part in slices)


def _pause_for_tests() -> None:
    seconds = os.environ.get(PAUSE_ENV)
    if not seconds:
        return
    print(
        f"pidgin-load: pausing {seconds} s inside the transaction ({PAUSE_ENV})",
        file=sys.stderr,
        flush=True,
    )
    time.sleep(float(seconds))


def ingest_run(
    con: duckdb.DuckDBPyConnection,
    run: Run,
    *,
    loaded_at: Any,
    fingerprint: str,
    clean_utf8: bool = False,
    metrics: bool = True,
) -> IngestResult:
    """Replace the run's rows in every table. The caller holds the transaction.

    Raises ``NotUtf8Error`` when a file holds bytes that are not UTF-8: DuckDB has then
    aborted the transaction, and the caller starts again with ``clean_utf8=True``, which
    reads such files from copies whose bad lines are blanked (and recorded). Checking
    first would cost a pass over every byte of every load for a case that is rare.
    """
    params: dict[str, Any] = {"experiment_id": run.experiment_id}
    for table in TABLES:
        con.execute(f"DELETE FROM {table} WHERE experiment_id = $experiment_id", params)
    result = IngestResult()
    bad: dict[str, list[Any]] = {"names": [], "lines": [], "reasons": [], "excerpts": []}
    read: list[tuple[list[_Source], int]] = []
    with _scratch() as scratch:
        sources = []
        for index, log in enumerate(run.logs):
            sources.extend(_sources_of(log, _readable_path(log, scratch, index)))
        for batch in _batches(sources):
            with _files_to_read(batch, scratch, clean_utf8=clean_utf8, bad=bad) as paths:
                read.append((batch, _insert_events(con, run.experiment_id, batch, paths)))
    events = sum(rows for _, rows in read)
    slices = _slices(read)
    mixed = con.execute(_MIXED_LOGS_SQL, params).fetchone()
    if mixed and mixed[0]:
        con.execute(
            _MISPLACED_SQL,
            {
                **params,
                "mixed": mixed[0],
                "names": [log.name for log in run.logs],
                "conversations": [log.conversation_id for log in run.logs],
            },
        )
    if _count(con, _REPEATED_IDS_SQL, params):
        con.execute(_DUPLICATES_SQL, params)
    bad_in_sql = _count(con, _BAD_LINES_SQL, params)
    if bad_in_sql:
        con.execute(_DROP_BAD_LINES_SQL, params)
    if bad["lines"]:
        con.execute(_PYTHON_BAD_LINES_SQL, {**params, **bad})
    result.bad_lines = bad_in_sql + len(bad["lines"])
    result.rows["events"] = events - bad_in_sql
    result.rows["load_errors"] = result.bad_lines
    result.rows["messages"] = _count_sliced(con, _MESSAGES_SQL, params, slices)
    if _count(con, _UNNUMBERED_MESSAGES_SQL, params):
        con.execute(_MESSAGE_TURNS_SQL, params)
    con.execute(_TURN_ENDS_TABLE_SQL)
    _count_sliced(con, _TURN_ENDS_SQL, params, slices)
    result.rows["turns"] = _count(con, _TURNS_SQL, params)
    con.execute(_DROP_TURN_ENDS_SQL)
    if metrics:
        result.rows["turn_metrics"] = compute_turn_metrics(con, run.experiment_id)
    result.rows["errors"] = _count_sliced(
        con, _ERRORS_SQL, {**params, "error_types": sorted(ERROR_EVENT_TYPES)}, slices
    )
    result.rows["conversations"] = _count(con, _CONVERSATIONS_SQL, params)
    result.rows["token_usage"] = _count(con, _TOKEN_USAGE_SQL, params)
    meta = run.metadata()
    result.rows["experiments"] = _count(
        con,
        _EXPERIMENT_SQL,
        {
            **params,
            **meta,
            "kind": run.kind,
            "source_format": run.source_format,
            "directory": run.path.name,
            "run_dir": str(run.path),
            "loaded_at": loaded_at,
            "fingerprint": fingerprint,
        },
    )
    result.unknown_events = _count(con, _UNKNOWN_SQL, {**params, "known": sorted(EVENT_TYPES)})
    _pause_for_tests()
    return result
