"""The statements that read a run's logs into ``events`` and move its bad lines out again.

``EVENTS_SQL`` reads whole lines (``read_text``), numbers them, and parses each once with
explicit types (``from_json``). A line that is not an event stays in ``events`` only
until the end of the transaction, with a NULL ``event_type`` and its reason and excerpt
in the payload; the checks below mark misplaced and repeated events the same way, and
``BAD_LINES_SQL``/``DROP_BAD_LINES_SQL`` then move all of them to ``load_errors``.
Bookkeeping events (``pidgin_events.BOOKKEEPING_EVENTS``) are not loaded at all.

Every ``INSERT`` names its columns, so that a migration adding a column cannot shift data.
"""

from __future__ import annotations

__all__ = [
    "BAD_LINES_SQL",
    "DROP_BAD_LINES_SQL",
    "DUPLICATES_SQL",
    "EVENTS_SQL",
    "EXCERPT_CHARS",
    "MISPLACED_SQL",
    "MIXED_LOGS_SQL",
    "PYTHON_BAD_LINES_SQL",
    "REPEATED_IDS_SQL",
    "UNKNOWN_SQL",
]

EXCERPT_CHARS = 200
"""How much of a bad line ``load_errors.excerpt`` keeps."""

# The envelope every event line shares; the rest of the line stays in ``payload``.
_ENVELOPE = (
    '{"event_type": "JSON", "timestamp": "TIMESTAMPTZ", "seq": "BIGINT", '
    '"event_id": "VARCHAR", "conversation_id": "VARCHAR"}'
)

EVENTS_SQL = f"""
INSERT INTO events BY NAME
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
    -- NULL for a line that is not JSON: parsed once (a json_valid guard parsed it twice)
    SELECT path, line_number, line, try(from_json(line, '{_ENVELOPE}')) AS p
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
    $experiment_id AS experiment_id,
    coalesce(p.conversation_id, file_conversation_id) AS conversation_id,
    coalesce(p.seq, line_number - 1) AS seq,
    p.event_id AS event_id,
    CASE WHEN problem IS NULL THEN event_type END AS event_type,
    p.timestamp AS timestamp,
    source_file,
    line_number,
    -- A problem line stays here only until the end of this transaction: it is moved to
    -- load_errors (BAD_LINES_SQL), its reason and excerpt kept in the payload meanwhile.
    CASE
        WHEN problem IS NULL THEN line
        ELSE json_object('reason', problem, 'excerpt', left(line, {EXCERPT_CHARS}))
    END AS payload
FROM checked
-- Bookkeeping events (a load's own DatabaseLoadEvent, the runner's post-processing) are
-- about loading the run, not part of it: a reload of unchanged logs writes the same rows.
WHERE problem IS NOT NULL OR NOT list_contains($bookkeeping::VARCHAR[], event_type)
"""

# A log whose events name more than one conversation: the log belongs to the conversation
# its ConversationStartEvent names (else the one its file name names), and an event of
# another conversation in it is reported rather than loaded. Foreign writers may name a
# log differently from the id its lines carry, so a mismatch of name alone is no error.
MIXED_LOGS_SQL = """
SELECT list(source_file) FROM (
    SELECT source_file FROM events
    WHERE experiment_id = $experiment_id AND conversation_id IS NOT NULL
        AND event_type IS NOT NULL
    GROUP BY source_file HAVING count(DISTINCT conversation_id) > 1
)
"""

MISPLACED_SQL = f"""
UPDATE events SET
    event_type = NULL,
    payload = json_object(
        'reason', 'an event of conversation ' || events.conversation_id || ' in the log of '
            || o.owner,
        'excerpt', left(events.payload::VARCHAR, {EXCERPT_CHARS}))
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
REPEATED_IDS_SQL = """
SELECT count(*) FROM (
    SELECT 1 FROM events
    WHERE experiment_id = $experiment_id AND event_id IS NOT NULL AND event_type IS NOT NULL
    GROUP BY source_file, event_id HAVING count(*) > 1
)
"""

DUPLICATES_SQL = f"""
UPDATE events SET
    event_type = NULL,
    payload = json_object(
        'reason', 'a repeat of line ' || d.first_line || ' (event_id ' || d.event_id || ')',
        'excerpt', left(events.payload::VARCHAR, {EXCERPT_CHARS}))
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

BAD_LINES_SQL = """
INSERT INTO load_errors BY NAME
SELECT experiment_id, source_file, line_number, payload ->> 'reason' AS reason,
    payload ->> 'excerpt' AS excerpt
FROM events WHERE experiment_id = $experiment_id AND event_type IS NULL
"""

DROP_BAD_LINES_SQL = (
    "DELETE FROM events WHERE experiment_id = $experiment_id AND event_type IS NULL"
)

PYTHON_BAD_LINES_SQL = """
INSERT INTO load_errors BY NAME
SELECT $experiment_id AS experiment_id, unnest($names::VARCHAR[]) AS source_file,
    unnest($lines::BIGINT[]) AS line_number, unnest($reasons::VARCHAR[]) AS reason,
    unnest($excerpts::VARCHAR[]) AS excerpt
"""

UNKNOWN_SQL = """
SELECT count(*) FROM events
WHERE experiment_id = $experiment_id AND NOT list_contains($known::VARCHAR[], event_type)
"""
