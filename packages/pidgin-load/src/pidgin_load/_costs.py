"""Cost views: what each message, conversation, model and experiment cost, in US dollars.

Pidgin records each message's cost (by the catalogue's prices at the time of the run) in
its ``MessageCompleteEvent``, with the provider's request id, model version and stop
reason. These views read them from the ``events`` table, which holds every event's
payload, so no table changes shape and no loader statement changes: a database loaded
before the views existed answers them as soon as it is opened (the migration adds them).
Messages of models without prices (the offline models, pidgin-ai logs) have a NULL cost.
"""

from __future__ import annotations

__all__ = ["COSTS_MIGRATION", "COSTS_VERSION", "COST_VIEWS"]

COSTS_VERSION = 3
"""The migration's number: the next after main's version 2 (renumber if another lands first)."""

COST_VIEWS = ("message_costs", "conversation_costs", "model_costs", "experiment_costs")

COSTS_MIGRATION = """
CREATE OR REPLACE VIEW message_costs AS
SELECT
    e.experiment_id,
    e.conversation_id,
    CAST(json_extract(e.payload, '$.turn_number') AS INTEGER) AS turn_number,
    json_extract_string(e.payload, '$.agent_id') AS agent_id,
    CASE json_extract_string(e.payload, '$.agent_id')
        WHEN 'agent_a' THEN c.agent_a_model WHEN 'agent_b' THEN c.agent_b_model
    END AS model,
    json_extract_string(e.payload, '$.model_version') AS model_version,
    json_extract_string(e.payload, '$.request_id') AS request_id,
    json_extract_string(e.payload, '$.stop_reason') AS stop_reason,
    CAST(json_extract(e.payload, '$.prompt_tokens') AS BIGINT) AS prompt_tokens,
    CAST(json_extract(e.payload, '$.completion_tokens') AS BIGINT) AS completion_tokens,
    CAST(json_extract(e.payload, '$.cache_read_tokens') AS BIGINT) AS cache_read_tokens,
    CAST(json_extract(e.payload, '$.cache_write_tokens') AS BIGINT) AS cache_write_tokens,
    CAST(json_extract(e.payload, '$.cost_usd') AS DOUBLE) AS cost_usd,
    e.timestamp,
    e.source_file,
    e.line_number
FROM events AS e
LEFT JOIN conversations AS c
    ON c.experiment_id = e.experiment_id AND c.conversation_id = e.conversation_id
WHERE e.event_type = 'MessageCompleteEvent';

CREATE OR REPLACE VIEW conversation_costs AS
SELECT experiment_id, conversation_id, count(*) AS messages,
    count(cost_usd) AS priced_messages, sum(cost_usd) AS cost_usd
FROM message_costs
GROUP BY experiment_id, conversation_id;

CREATE OR REPLACE VIEW model_costs AS
SELECT experiment_id, model, count(*) AS messages, count(cost_usd) AS priced_messages,
    sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
    sum(cost_usd) AS cost_usd
FROM message_costs
GROUP BY experiment_id, model;

CREATE OR REPLACE VIEW experiment_costs AS
SELECT experiment_id, count(*) AS messages, count(cost_usd) AS priced_messages,
    sum(cost_usd) AS cost_usd
FROM message_costs
GROUP BY experiment_id;
"""
