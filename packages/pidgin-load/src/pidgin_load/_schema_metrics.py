"""The schema of the per-turn text metrics: one migration, appended to ``_schema.MIGRATIONS``.

A metric added later is a new migration (``ALTER TABLE turn_metrics ADD COLUMN ...``);
``pidgin-load --all ROOT --recompute-metrics`` then fills it in for runs already loaded.
The definitions are in ``docs/metrics.md``.
"""

from __future__ import annotations

__all__ = ["COMPRESSION_MIGRATION", "METRICS_MIGRATION"]

METRICS_MIGRATION = """
CREATE TABLE turn_metrics (
    experiment_id              VARCHAR NOT NULL,
    conversation_id            VARCHAR NOT NULL,
    turn_number                INTEGER NOT NULL,
    turn                       INTEGER,           -- from 1, as everywhere since version 2
    a_message_length             INTEGER,
    a_character_count            INTEGER,
    a_word_count                 INTEGER,
    a_vocabulary_size            INTEGER,
    a_unique_words               INTEGER,
    a_sentence_count             INTEGER,
    a_paragraph_count            INTEGER,
    a_avg_sentence_length        DOUBLE,
    a_avg_word_length            DOUBLE,
    a_ttr                        DOUBLE,
    a_hapax_ratio                DOUBLE,
    a_ldi                        DOUBLE,
    a_repeated_bigrams           INTEGER,
    a_repeated_trigrams          INTEGER,
    a_self_repetition            DOUBLE,
    a_word_entropy               DOUBLE,
    a_character_entropy          DOUBLE,
    a_symbol_density             DOUBLE,
    a_emoji_count                INTEGER,
    a_arrow_count                INTEGER,
    a_punctuation_diversity      INTEGER,
    a_special_char_count         INTEGER,
    a_number_count               INTEGER,
    a_proper_noun_count          INTEGER,
    a_question_count             INTEGER,
    a_exclamation_count          INTEGER,
    a_question_density           DOUBLE,
    a_hedge_density              DOUBLE,
    a_hedge_words                INTEGER,
    a_agreement_markers          INTEGER,
    a_disagreement_markers       INTEGER,
    a_politeness_markers         INTEGER,
    a_first_person_singular      INTEGER,
    a_first_person_plural        INTEGER,
    a_second_person              INTEGER,
    a_formality_score            DOUBLE,
    a_message_hash               VARCHAR,
    a_turn_repetition            DOUBLE,
    a_new_words                  INTEGER,
    a_cumulative_vocabulary      INTEGER,
    b_message_length             INTEGER,
    b_character_count            INTEGER,
    b_word_count                 INTEGER,
    b_vocabulary_size            INTEGER,
    b_unique_words               INTEGER,
    b_sentence_count             INTEGER,
    b_paragraph_count            INTEGER,
    b_avg_sentence_length        DOUBLE,
    b_avg_word_length            DOUBLE,
    b_ttr                        DOUBLE,
    b_hapax_ratio                DOUBLE,
    b_ldi                        DOUBLE,
    b_repeated_bigrams           INTEGER,
    b_repeated_trigrams          INTEGER,
    b_self_repetition            DOUBLE,
    b_word_entropy               DOUBLE,
    b_character_entropy          DOUBLE,
    b_symbol_density             DOUBLE,
    b_emoji_count                INTEGER,
    b_arrow_count                INTEGER,
    b_punctuation_diversity      INTEGER,
    b_special_char_count         INTEGER,
    b_number_count               INTEGER,
    b_proper_noun_count          INTEGER,
    b_question_count             INTEGER,
    b_exclamation_count          INTEGER,
    b_question_density           DOUBLE,
    b_hedge_density              DOUBLE,
    b_hedge_words                INTEGER,
    b_agreement_markers          INTEGER,
    b_disagreement_markers       INTEGER,
    b_politeness_markers         INTEGER,
    b_first_person_singular      INTEGER,
    b_first_person_plural        INTEGER,
    b_second_person              INTEGER,
    b_formality_score            DOUBLE,
    b_message_hash               VARCHAR,
    b_turn_repetition            DOUBLE,
    b_new_words                  INTEGER,
    b_cumulative_vocabulary      INTEGER,
    vocabulary_overlap         DOUBLE,
    length_convergence         DOUBLE,
    structural_similarity      DOUBLE,
    mimicry_score_a_to_b       DOUBLE,
    mimicry_score_b_to_a       DOUBLE,
    mutual_mimicry             DOUBLE,
    phrase_alignment           DOUBLE,
    cumulative_convergence     DOUBLE,
    text_convergence           DOUBLE,
    tfidf_cosine               DOUBLE,
    shared_vocabulary          VARCHAR[],
    shared_vocabulary_size     INTEGER,
    PRIMARY KEY (experiment_id, conversation_id, turn_number)
);

-- pidgin-ai's wide table under its own name and column names, for queries written for it.
CREATE VIEW conversation_turns AS
SELECT
    t.experiment_id, t.conversation_id, t.turn_number, t.turn, t.completed_at AS timestamp,
    c.agent_a_model, c.agent_b_model, c.temperature_a, c.temperature_b, c.initial_prompt,
    t.convergence_score,
    coalesce(t.convergence_score, m.text_convergence) AS overall_convergence,
    m.vocabulary_overlap AS lexical_entrainment,
    m.structural_similarity AS style_similarity,
    m.* EXCLUDE (experiment_id, conversation_id, turn_number, turn)
FROM turns AS t
JOIN turn_metrics AS m USING (experiment_id, conversation_id, turn_number)
LEFT JOIN conversations AS c USING (experiment_id, conversation_id);

CREATE VIEW convergence_trends AS
SELECT
    t.experiment_id, t.conversation_id, t.turn_number, t.turn, t.convergence_score,
    avg(t.convergence_score) OVER (w ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS rolling_avg_5,
    avg(t.convergence_score) OVER (w ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) AS rolling_avg_10,
    t.convergence_score - lag(t.convergence_score) OVER w AS convergence_delta,
    m.text_convergence,
    m.tfidf_cosine,
    t.agent_a_chars AS msg_length_a,
    t.agent_b_chars AS msg_length_b
FROM turns AS t
LEFT JOIN turn_metrics AS m USING (experiment_id, conversation_id, turn_number)
WINDOW w AS (PARTITION BY t.experiment_id, t.conversation_id ORDER BY t.turn_number);

CREATE VIEW vocabulary_analysis AS
SELECT
    experiment_id, conversation_id, turn_number, turn,
    a_vocabulary_size AS vocab_size_a,
    b_vocabulary_size AS vocab_size_b,
    a_vocabulary_size + b_vocabulary_size AS total_vocab_size,
    shared_vocabulary_size,
    shared_vocabulary,
    a_new_words AS new_words_a,
    b_new_words AS new_words_b,
    a_cumulative_vocabulary AS cumulative_vocab_a,
    b_cumulative_vocabulary AS cumulative_vocab_b,
    vocabulary_overlap,
    cumulative_convergence
FROM turn_metrics;

CREATE OR REPLACE VIEW experiment_dashboard AS
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
    date_diff('millisecond', e.started_at, e.completed_at) / 1000.0 AS duration_seconds,
    median(c.final_convergence) AS median_final_convergence,
    stddev_samp(c.final_convergence) AS stddev_final_convergence,
    median(c.turns / nullif(c.max_turns, 0)) AS median_progress,
    stddev_samp(c.turns / nullif(c.max_turns, 0)) AS stddev_progress,
    median(c.total_tokens) AS median_tokens,
    stddev_samp(c.total_tokens) AS stddev_tokens
FROM experiments AS e
LEFT JOIN conversations AS c USING (experiment_id)
GROUP BY ALL;
"""

_CONVERSATION_TURNS = METRICS_MIGRATION[
    METRICS_MIGRATION.index("CREATE VIEW conversation_turns") : METRICS_MIGRATION.index(
        "CREATE VIEW convergence_trends"
    )
].replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1)

COMPRESSION_MIGRATION = (
    """
ALTER TABLE turn_metrics ADD COLUMN a_compression_ratio DOUBLE;
ALTER TABLE turn_metrics ADD COLUMN b_compression_ratio DOUBLE;
-- conversation_turns selects m.*: defined again (as in migration 5), so that a DuckDB
-- file and a DuckLake show the same columns
"""
    + _CONVERSATION_TURNS
)
"""pidgin-ai's ``compression_ratio`` (migration 8); ``--recompute-metrics`` fills it in."""
