"""Migration 6: reasoning traces in their own table, and the names agents chose.

``thinking`` holds one row per ``ThinkingCompleteEvent`` (never mixed into ``messages``);
``conversations.agent_a_chosen_name``/``agent_b_chosen_name`` come from
``AgentNameChosenEvent`` (``--choose-names``), pidgin-ai 1.x's column names.
"""

from __future__ import annotations

__all__ = ["CHOSEN_NAMES_SQL", "PROMPTS_MIGRATION", "PROMPTS_VERSION", "THINKING_SQL"]

PROMPTS_VERSION = 6

PROMPTS_MIGRATION = """
CREATE TABLE thinking (
    experiment_id     VARCHAR NOT NULL,
    conversation_id   VARCHAR,
    agent_id          VARCHAR,
    model             VARCHAR,            -- the model of the agent that thought
    turn_number       INTEGER,            -- as the events number turns, from 0
    turn              INTEGER,            -- the 1-based turn users see
    thinking_content  VARCHAR,
    thinking_tokens   BIGINT,             -- as the provider counted them; NULL if it did not
    duration_ms       BIGINT,
    timestamp         TIMESTAMPTZ,
    seq               BIGINT,
    source_file       VARCHAR NOT NULL,
    line_number       BIGINT NOT NULL
);

ALTER TABLE conversations ADD COLUMN agent_a_chosen_name VARCHAR;
ALTER TABLE conversations ADD COLUMN agent_b_chosen_name VARCHAR;
"""

THINKING_SQL = """
INSERT INTO thinking BY NAME
SELECT
    $experiment_id AS experiment_id, t.conversation_id, p.agent_id AS agent_id,
    CASE p.agent_id WHEN 'agent_a' THEN c.agent_a_model WHEN 'agent_b' THEN c.agent_b_model END
        AS model,
    p.turn_number AS turn_number, p.turn_number + 1 AS turn,
    p.thinking_content AS thinking_content, p.thinking_tokens AS thinking_tokens,
    p.duration_ms AS duration_ms, t.timestamp, t.seq, t.source_file, t.line_number
FROM (
    SELECT *, from_json(payload, '{"agent_id": "VARCHAR", "turn_number": "INTEGER",
        "thinking_content": "VARCHAR", "thinking_tokens": "BIGINT",
        "duration_ms": "BIGINT"}') AS p
    FROM events
    WHERE experiment_id = $experiment_id AND event_type = 'ThinkingCompleteEvent'
) AS t
LEFT JOIN conversations AS c
    ON c.experiment_id = $experiment_id AND c.conversation_id = t.conversation_id
"""

CHOSEN_NAMES_SQL = """
UPDATE conversations SET
    agent_a_chosen_name = n.agent_a_chosen_name,
    agent_b_chosen_name = n.agent_b_chosen_name
FROM (
    SELECT conversation_id,
        arg_max(p.chosen_name, seq) FILTER (WHERE p.agent_id = 'agent_a')
            AS agent_a_chosen_name,
        arg_max(p.chosen_name, seq) FILTER (WHERE p.agent_id = 'agent_b')
            AS agent_b_chosen_name
    FROM (
        SELECT conversation_id, seq,
            from_json(payload, '{"agent_id": "VARCHAR", "chosen_name": "VARCHAR"}') AS p
        FROM events
        WHERE experiment_id = $experiment_id AND event_type = 'AgentNameChosenEvent'
    )
    GROUP BY conversation_id
) AS n
WHERE conversations.experiment_id = $experiment_id
    AND conversations.conversation_id = n.conversation_id
"""
