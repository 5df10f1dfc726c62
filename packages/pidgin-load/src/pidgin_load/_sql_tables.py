"""The statements that fill the normalised tables from the ``events`` rows of one run.

Each reads only the events it needs and parses only the payload fields it keeps
(pidgin-ai's history-laden ``MessageRequestEvent`` payloads are never parsed again); the
few events that outline the conversations are copied once (``OUTLINE_TABLE_SQL``). The
statements marked ``{in_slice}`` parse payloads of every row they select, so they are run
slice by slice (``_slices``) when a run's logs have long lines.

Every ``INSERT`` is ``BY NAME``: each value says which column it fills, so a migration
that adds or reorders columns cannot shift data into the wrong one.
"""

from __future__ import annotations

__all__ = [
    "CONVERSATIONS_SQL",
    "DROP_OUTLINE_SQL",
    "DROP_TURN_ENDS_SQL",
    "ERRORS_SQL",
    "EXPERIMENT_SQL",
    "MESSAGES_SQL",
    "MESSAGE_TURNS_SQL",
    "OUTLINE_TABLE_SQL",
    "TOKEN_USAGE_SQL",
    "TURNS_SQL",
    "TURN_ENDS_SQL",
    "TURN_ENDS_TABLE_SQL",
    "UNNUMBERED_MESSAGES_SQL",
]

# The few events that give each conversation its shape, copied once from ``events`` with
# their payloads and turn numbers for the statements below. Each scan of ``events`` for
# them decompresses nearly every payload (each vector of rows holds one or two), about a
# second per GB.
OUTLINE_TABLE_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_load_outline AS
SELECT conversation_id, event_type, timestamp, source_file, line_number, payload,
    TRY_CAST(json_extract_string(payload, '$.turn_number') AS INTEGER) AS turn_number
FROM events
WHERE experiment_id = $experiment_id AND event_type IN (
    'ConversationStartEvent', 'ConversationEndEvent', 'ConversationBranchedEvent',
    'TurnStartEvent', 'TurnDiscardedEvent')
"""

DROP_OUTLINE_SQL = "DROP TABLE pidgin_load_outline"

_AGENT = '{"model": "VARCHAR", "display_name": "VARCHAR", "temperature": "DOUBLE"}'

# Each conversation's first start event, parsed once per statement. It names the models:
# ours nest them under ``agent_a``/``agent_b``, pidgin-ai's say ``agent_a_model``/....
_STARTS = f"""
starts AS (
    SELECT conversation_id, timestamp, p,
        coalesce(p.agent_a_model, p.agent_a.model) AS agent_a_model,
        coalesce(p.agent_b_model, p.agent_b.model) AS agent_b_model
    FROM (
        SELECT conversation_id, timestamp, source_file, line_number,
            from_json(payload, '{{"agent_a": {_AGENT}, "agent_b": {_AGENT},
                "agent_a_model": "VARCHAR", "agent_b_model": "VARCHAR",
                "agent_a_display_name": "VARCHAR", "agent_b_display_name": "VARCHAR",
                "temperature_a": "DOUBLE", "temperature_b": "DOUBLE", "max_turns": "INTEGER",
                "initial_prompt": "VARCHAR", "config": "JSON"}}') AS p
        FROM pidgin_load_outline
        WHERE event_type = 'ConversationStartEvent' AND conversation_id IS NOT NULL
    )
    QUALIFY row_number() OVER (
        PARTITION BY conversation_id ORDER BY source_file, line_number) = 1
)"""

# ``role`` is which agent spoke (the provider's role is always ``assistant``, and stays in
# the payload), ``model`` the model that agent runs, ``turn`` the 1-based turn users see.
MESSAGES_SQL = f"""
INSERT INTO messages BY NAME
WITH {_STARTS},
said AS (
    SELECT *, coalesce(m.agent_id, m.message.agent_id) AS speaker
    FROM (
        SELECT conversation_id, seq, source_file, line_number, timestamp,
            from_json(payload, '{{"agent_id": "VARCHAR", "turn_number": "INTEGER",
                "prompt_tokens": "BIGINT", "completion_tokens": "BIGINT",
                "total_tokens": "BIGINT", "duration_ms": "BIGINT", "cache_read_tokens": "BIGINT",
                "cache_write_tokens": "BIGINT",
                "message": {{"content": "VARCHAR", "agent_id": "VARCHAR"}}}}') AS m
        FROM events
        WHERE experiment_id = $experiment_id AND event_type = 'MessageCompleteEvent' {{in_slice}}
    )
),
-- A message of a turn discarded later in its log (left half done, run again on resume)
-- stays in events but is no message of the conversation: the last discard of each turn
-- of each log, few or none, joined (a correlated NOT EXISTS cost 6 s per 100,000 messages).
discards AS (
    SELECT source_file, turn_number, max(line_number) AS last_line
    FROM pidgin_load_outline WHERE event_type = 'TurnDiscardedEvent'
    GROUP BY ALL
)
SELECT
    $experiment_id AS experiment_id, said.conversation_id,
    m.turn_number AS turn_number, m.turn_number + 1 AS turn, speaker AS agent_id,
    speaker AS role,
    CASE speaker WHEN 'agent_a' THEN starts.agent_a_model
        WHEN 'agent_b' THEN starts.agent_b_model END AS model,
    m.message.content AS content, length(m.message.content) AS chars,
    m.prompt_tokens AS prompt_tokens, m.completion_tokens AS completion_tokens,
    m.total_tokens AS total_tokens, m.cache_read_tokens AS cache_read_tokens,
    m.cache_write_tokens AS cache_write_tokens, m.duration_ms AS duration_ms,
    said.timestamp, said.seq, said.source_file, said.line_number
FROM said LEFT JOIN starts USING (conversation_id)
LEFT JOIN discards AS d ON d.source_file = said.source_file AND d.turn_number = m.turn_number
WHERE d.last_line IS NULL OR said.line_number > d.last_line
"""

UNNUMBERED_MESSAGES_SQL = """
SELECT count(*) FROM messages WHERE experiment_id = $experiment_id AND turn_number IS NULL
"""

# pidgin-ai 1.x messages carry no turn number: their turn is the last one started before
# them in their log. Only those messages pay for the as-of join.
MESSAGE_TURNS_SQL = """
UPDATE messages SET turn_number = found.turn_number, turn = found.turn_number + 1
FROM (
    SELECT m.source_file, m.line_number, t.turn_number
    FROM (
        SELECT source_file, line_number FROM messages
        WHERE experiment_id = $experiment_id AND turn_number IS NULL
    ) AS m
    ASOF JOIN (
        SELECT source_file, line_number, turn_number
        FROM pidgin_load_outline WHERE event_type = 'TurnStartEvent'
    ) AS t
        ON m.source_file = t.source_file AND m.line_number >= t.line_number
) AS found
WHERE messages.experiment_id = $experiment_id
    AND messages.source_file = found.source_file AND messages.line_number = found.line_number
"""

# What the turns need from each TurnCompleteEvent, kept apart so that the payloads (in
# pidgin-ai's, the whole turn) are parsed slice by slice, like the messages.
TURN_ENDS_TABLE_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_load_turn_ends (
    conversation_id VARCHAR, timestamp TIMESTAMPTZ, source_file VARCHAR, line_number BIGINT,
    turn_number INTEGER, convergence_score DOUBLE, agent_a_chars BIGINT, agent_b_chars BIGINT
)
"""

TURN_ENDS_SQL = """
INSERT INTO pidgin_load_turn_ends BY NAME
SELECT conversation_id, timestamp, source_file, line_number, p.turn_number AS turn_number,
    p.convergence_score AS convergence_score,
    length(p.turn.agent_a_message.content) AS agent_a_chars,
    length(p.turn.agent_b_message.content) AS agent_b_chars
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

DROP_TURN_ENDS_SQL = "DROP TABLE pidgin_load_turn_ends"

TURNS_SQL = """
INSERT INTO turns BY NAME
WITH last_done AS (
    SELECT * FROM pidgin_load_turn_ends
    QUALIFY row_number() OVER (
        PARTITION BY conversation_id, turn_number ORDER BY source_file DESC, line_number DESC
    ) = 1
),
started AS (
    SELECT conversation_id, turn_number, min(timestamp) AS started_at
    FROM pidgin_load_outline WHERE event_type = 'TurnStartEvent'
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
    $experiment_id AS experiment_id, d.conversation_id, d.turn_number,
    d.turn_number + 1 AS turn, d.convergence_score,
    coalesce(s.a_chars, d.agent_a_chars) AS agent_a_chars,
    coalesce(s.b_chars, d.agent_b_chars) AS agent_b_chars,
    s.a_tokens AS agent_a_tokens, s.b_tokens AS agent_b_tokens,
    st.started_at, d.timestamp AS completed_at,
    date_diff('millisecond', st.started_at, d.timestamp) AS duration_ms
FROM last_done AS d
LEFT JOIN started AS st USING (conversation_id, turn_number)
LEFT JOIN said AS s USING (conversation_id, turn_number)
"""

ERRORS_SQL = """
INSERT INTO errors BY NAME
SELECT
    $experiment_id AS experiment_id, conversation_id, event_type,
    coalesce(p.error_type, event_type) AS error_type, p.error_message AS error_message,
    p.context AS context, p.agent_id AS agent_id, p.provider AS provider,
    p.error_code AS error_code, p.retryable AS retryable, p.retry_count AS retry_count,
    p.turn_number AS turn_number, p.turn_number + 1 AS turn, timestamp, seq, source_file,
    line_number
FROM (
    SELECT *, from_json(payload, '{"error_type": "VARCHAR", "error_message": "VARCHAR",
        "context": "VARCHAR", "agent_id": "VARCHAR", "provider": "VARCHAR",
        "error_code": "VARCHAR", "retryable": "BOOLEAN", "retry_count": "INTEGER",
        "turn_number": "INTEGER"}') AS p
    FROM events
    -- a join, not list_contains: with no error events, no payload is even read
    WHERE experiment_id = $experiment_id
        AND event_type IN (SELECT unnest($error_types::VARCHAR[])) {in_slice}
)
"""

CONVERSATIONS_SQL = f"""
INSERT INTO conversations BY NAME
WITH conv AS (
    SELECT conversation_id, min(timestamp) AS first_at, max(timestamp) AS last_at,
        count(*) AS events
    FROM events WHERE experiment_id = $experiment_id AND conversation_id IS NOT NULL
    GROUP BY ALL
),
{_STARTS},
en AS (
    SELECT conversation_id, timestamp,
        from_json(payload, '{{"status": "VARCHAR", "reason": "VARCHAR", "error": "VARCHAR",
            "total_turns": "INTEGER", "duration_ms": "BIGINT"}}') AS p
    FROM pidgin_load_outline
    WHERE event_type = 'ConversationEndEvent' AND conversation_id IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY conversation_id ORDER BY source_file DESC, line_number DESC) = 1
),
tu AS (
    SELECT conversation_id, count(*) AS turns,
        max_by(convergence_score, turn_number) AS final_convergence,
        -- in turn order: a float sum depends on its order, and a reload must not change it
        avg(convergence_score ORDER BY turn_number) AS mean_convergence
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
),
br AS (
    SELECT conversation_id,
        from_json(payload, '{{"source_conversation_id": "VARCHAR",
            "branch_point": "INTEGER"}}') AS p
    FROM pidgin_load_outline
    WHERE event_type = 'ConversationBranchedEvent' AND conversation_id IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY conversation_id ORDER BY source_file, line_number) = 1
),
-- How each conversation stands is the StateBuilder's verdict, per log file, given as data
-- ($status_files, $statuses): the rule lives in pidgin-state, never again in SQL.
judged AS (
    SELECT unnest($status_files::VARCHAR[]) AS source_file,
        unnest($statuses::VARCHAR[]) AS status
),
log_of AS (
    SELECT conversation_id, arg_min(source_file, line_number) AS source_file
    FROM events WHERE experiment_id = $experiment_id AND conversation_id IS NOT NULL
        AND list_contains($status_files::VARCHAR[], source_file)
    GROUP BY ALL
)
SELECT
    $experiment_id AS experiment_id, c.conversation_id,
    st.agent_a_model, st.agent_b_model,
    coalesce(st.p.agent_a_display_name, st.p.agent_a.display_name) AS agent_a_display_name,
    coalesce(st.p.agent_b_display_name, st.p.agent_b.display_name) AS agent_b_display_name,
    coalesce(st.p.temperature_a, st.p.agent_a.temperature) AS temperature_a,
    coalesce(st.p.temperature_b, st.p.agent_b.temperature) AS temperature_b,
    st.p.max_turns AS max_turns, st.p.initial_prompt AS initial_prompt, st.p.config AS config,
    coalesce(judged.status, 'unknown') AS status, en.p.reason AS end_reason,
    en.p.error AS error,
    coalesce(tu.turns, 0) AS turns, en.p.total_turns AS reported_total_turns,
    tu.final_convergence, tu.mean_convergence,
    coalesce(me.messages, 0) AS messages, coalesce(me.prompt_tokens, 0) AS prompt_tokens,
    coalesce(me.completion_tokens, 0) AS completion_tokens,
    coalesce(me.total_tokens, 0) AS total_tokens,
    coalesce(er.errors, 0) AS errors,
    coalesce(st.timestamp, c.first_at) AS started_at, en.timestamp AS ended_at,
    coalesce(en.p.duration_ms, date_diff('millisecond', c.first_at, c.last_at))
        AS duration_ms,
    c.events,
    br.p.source_conversation_id AS parent_conversation_id, br.p.branch_point AS branch_turn
FROM conv AS c
LEFT JOIN starts AS st USING (conversation_id)
LEFT JOIN en USING (conversation_id)
LEFT JOIN tu USING (conversation_id)
LEFT JOIN me USING (conversation_id)
LEFT JOIN er USING (conversation_id)
LEFT JOIN br USING (conversation_id)
LEFT JOIN log_of USING (conversation_id)
LEFT JOIN judged ON judged.source_file = log_of.source_file
"""

TOKEN_USAGE_SQL = """
INSERT INTO token_usage BY NAME
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
    $experiment_id AS experiment_id, u.conversation_id, u.agent_id,
    coalesce(models.model, u.reported_model) AS model, u.provider,
    coalesce(u.messages, 0) AS messages, coalesce(u.prompt_tokens, 0) AS prompt_tokens,
    coalesce(u.completion_tokens, 0) AS completion_tokens,
    coalesce(u.total_tokens, 0) AS total_tokens,
    coalesce(u.cache_read_tokens, 0) AS cache_read_tokens,
    coalesce(u.cache_write_tokens, 0) AS cache_write_tokens,
    coalesce(u.reports, 0) AS provider_reports, u.tokens AS provider_reported_tokens
FROM (SELECT * FROM mu FULL OUTER JOIN pu USING (conversation_id, agent_id)) AS u
LEFT JOIN models USING (conversation_id, agent_id)
"""

EXPERIMENT_SQL = """
INSERT INTO experiments BY NAME
WITH c AS (
    SELECT count(*) AS n,
        count(*) FILTER (WHERE status = 'completed') AS completed,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        count(*) FILTER (WHERE status = 'interrupted') AS interrupted
    FROM conversations WHERE experiment_id = $experiment_id
),
e AS (
    SELECT count(*) AS events, min(timestamp) AS first_at
    FROM events WHERE experiment_id = $experiment_id
),
b AS (SELECT count(*) AS bad FROM load_errors WHERE experiment_id = $experiment_id)
SELECT
    $experiment_id AS experiment_id, $name::VARCHAR AS name, $kind::VARCHAR AS kind,
    $source_format::VARCHAR AS source_format, $directory::VARCHAR AS directory,
    $run_dir::VARCHAR AS run_dir,
    $status::VARCHAR AS status,
    $reason::VARCHAR AS reason, $error::VARCHAR AS error,
    $planned::INTEGER AS planned_conversations,
    c.n AS conversations, c.completed AS completed_conversations,
    c.failed AS failed_conversations, c.interrupted AS interrupted_conversations,
    coalesce(TRY_CAST($started_at::VARCHAR AS TIMESTAMPTZ), e.first_at) AS started_at,
    TRY_CAST($completed_at::VARCHAR AS TIMESTAMPTZ) AS completed_at,
    TRY_CAST($config::VARCHAR AS JSON) AS config,
    e.events, b.bad AS bad_lines, $loaded_at::TIMESTAMPTZ AS loaded_at,
    $fingerprint::VARCHAR AS fingerprint
FROM c, e, b
"""
