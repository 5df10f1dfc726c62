"""The SQL that computes per-turn text metrics, set-based, from the ``messages`` of one run.

Every definition here is written out in ``docs/metrics.md``; change both together. Each
message is tokenised once (``regexp_extract_all``); what depends on the order of its
words (phrases, repeats) is measured on that list, what depends on characters with one
regex over the text each, and what depends only on which words it uses and how often
(vocabulary, entropy, marker words, and everything that spans turns: new words,
repetition of earlier turns, TF-IDF) from one row per distinct word of each message, by
grouping. No row passes through Python.

The statements work on temporary tables named ``pidgin_metrics_*`` and read only
``turns`` and ``messages``, so they run inside a load's transaction as well as over a
database already loaded (``--recompute-metrics``).
"""

from __future__ import annotations

from ._metrics_lexicon import (
    AGREEMENT,
    ARROW_PATTERN,
    CAPITALISED_PATTERN,
    DISAGREEMENT,
    EMOJI_PATTERN,
    FIRST_PLURAL,
    FIRST_SINGULAR,
    HEDGES,
    OPENING_CAPITALISED_PATTERN,
    POLITENESS,
    SECOND,
    SYMBOL_CLASS,
    TOKEN_PATTERN,
    WHITESPACE,
)

__all__ = ["STEPS", "TEXT_SQL", "insert_from", "result_to"]


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _not_blank(expr: str) -> str:
    """Whether a piece has a character that is not whitespace: what is left once stripped.

    Pieces are tested rather than stripped: ``trim`` with a list of characters costs about
    as much as tokenising, and neither a count of pieces nor their words depends on it.
    """
    return f"regexp_matches({expr}, {_sql_string(f'[^{WHITESPACE}]')})"


def _matches(pattern: str) -> str:
    """How many times ``pattern`` matches the reply, leftmost first, without overlaps."""
    return f"len(regexp_extract_all(text, {_sql_string(pattern)}))"


def _characters_in(char_class: str) -> str:
    """How many characters of the reply belong to the one-character ``char_class``."""
    return f"(chars - length(regexp_replace(text, {_sql_string(char_class + '+')}, '', 'g')))"


def _histogram(expr: str) -> str:
    """How often each hash of a list occurs, as a map: empty (not NULL) for an empty list."""
    empty = "MAP([]::UBIGINT[], []::UBIGINT[])"
    return f"coalesce(list_aggregate({expr}, 'histogram'), {empty})"


_NGRAM_SIZES = range(2, 7)


def _phrase(n: int) -> str:
    """The k-word phrase starting at word ``i``, as one number: the hash of its words' hashes.

    Phrases are only ever counted, compared and intersected, never shown, so a 64-bit
    hash stands for the text: no string is built per phrase, and sets of numbers are
    cheap to deduplicate and intersect.
    """
    return "hash(" + ", ".join(f"h[i + {k}]" if k else "h[i]" for k in range(n)) + ")"


def _phrases(n: int) -> str:
    """Every n-word phrase of a message, in order, as hashes."""
    return f"list_transform(range(1, len(w) - {n - 2}), lambda i: {_phrase(n)})"


# One row per message that a turn of the run ended with: the last message of each agent
# in each completed turn.
TEXT_SQL = """
SELECT m.conversation_id, m.turn_number, m.agent_id AS agent,
    coalesce(arg_max(m.content, m.line_number), '') AS text
FROM messages AS m
SEMI JOIN turns AS t
    ON t.experiment_id = m.experiment_id AND t.conversation_id = m.conversation_id
    AND t.turn_number = m.turn_number
WHERE m.experiment_id = $experiment_id AND m.agent_id IN ('agent_a', 'agent_b')
    AND m.conversation_id IN (SELECT unnest($conversations::VARCHAR[]))
GROUP BY ALL
"""

# The same rows on the connection that measures them, with the ratio computed outside SQL.
_TEXT_TABLE_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_metrics_text AS
SELECT *, row_number() OVER () AS message_index
FROM (
    SELECT unnest($conversation_ids::VARCHAR[]) AS conversation_id,
        unnest($turn_numbers::INTEGER[]) AS turn_number,
        unnest($agents::VARCHAR[]) AS agent,
        unnest($texts::VARCHAR[]) AS text,
        unnest($compression_ratios::DOUBLE[]) AS compression_ratio
)
"""

_SYMBOLS = _characters_in(f"[^\\p{{L}}{WHITESPACE}]")  # neither letters nor whitespace
_PUNCTUATION = _sql_string(f"[^\\p{{L}}\\p{{N}}_{WHITESPACE}]")
_SENTENCE_PIECES = _matches(f"[^{WHITESPACE}.!?]+")
_NUMBERS = _matches(r"\b\d+(?:[.,]\d+)*\b")
_QUESTION_RUNS = _matches(r"[.!?]*\?[.!?]*")
_QUESTION_MARK_RUNS = _matches(r"\?+")
_CODE_POINTS = "list_transform(string_split(text, ''), lambda c: unicode(c))"
_PARAGRAPHS = "string_split(text, e'\\n\\n')"

# Each message tokenised once, and what is measured on its word order and its characters.
_TOKENS_SQL = f"""
CREATE OR REPLACE TEMP TABLE pidgin_metrics_tokens AS
WITH tokenised AS (
    SELECT *,
        regexp_extract_all(lower(text), {_sql_string(TOKEN_PATTERN)}) AS w,
        length(text) AS chars
    FROM pidgin_metrics_text
),
hashed AS (
    SELECT *, list_transform(w, lambda x: hash(x)) AS h FROM tokenised
)
SELECT conversation_id, turn_number, agent, message_index, compression_ratio,
    w, len(w) AS n, chars,
    {_histogram(_phrases(2))} AS bigram_hist,
    {_histogram(_phrases(3))} AS trigram_hist,
    {", ".join(f"{_phrases(n)} AS grams{n}" for n in _NGRAM_SIZES if n > 3)},
    CASE WHEN len(w) < 2 THEN 0.0 ELSE
        len(list_filter(range(2, len(w) + 1), lambda i: h[i] = h[i - 1])) / (len(w) - 1) END
        AS self_repetition,
    len(list_filter(regexp_split_to_array(text, '[.!?]+'), lambda s: {_not_blank("s")}))
        AS sentence_count,
    len(list_filter({_PARAGRAPHS}, lambda p: {_not_blank("p")}))
        AS paragraph_count,
    {_SENTENCE_PIECES} AS sentence_pieces,
    {_matches(CAPITALISED_PATTERN)} - {_matches(OPENING_CAPITALISED_PATTERN)}
        AS proper_noun_count,
    coalesce(list_entropy({_CODE_POINTS}), 0) AS character_entropy,
    coalesce(list_entropy(h), 0) AS word_entropy,
    {_SYMBOLS} AS symbols,
    len(list_distinct(regexp_extract_all(text, {_PUNCTUATION}))) AS punctuation_diversity,
    {_matches(EMOJI_PATTERN)} AS emoji_count,
    {_characters_in(SYMBOL_CLASS)} AS symbol_characters,
    {_matches(ARROW_PATTERN)} AS arrow_count,
    {_NUMBERS} AS number_count,
    chars - length(replace(text, '?', '')) AS questions,
    chars - length(replace(text, '!', '')) AS exclamations,
    {_QUESTION_RUNS} AS question_runs,
    {_QUESTION_MARK_RUNS} AS question_mark_runs,
    sha256(text) AS message_hash
FROM hashed
"""

# One row per distinct word of each message, with how often the message uses it.
_WORDS_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_metrics_words AS
SELECT conversation_id, turn_number, agent, message_index, word, count(*) AS uses
FROM (
    SELECT conversation_id, turn_number, agent, message_index, unnest(w) AS word
    FROM pidgin_metrics_tokens
)
GROUP BY ALL
"""


def _uses_of(words: str) -> str:
    listed = ", ".join(_sql_string(word) for word in words.split())
    return f"coalesce(sum(uses) FILTER (WHERE word IN ({listed})), 0)"


# Per message, what the counts of its words give.
_WORD_COUNTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE pidgin_metrics_word_counts AS
SELECT message_index,
    count(*) AS vocabulary_size,
    count(*) FILTER (WHERE uses = 1) AS hapaxes,
    sum(uses * length(word)) AS letters,
    {_uses_of(HEDGES)} AS hedge_words,
    {_uses_of(AGREEMENT)} AS agreement_markers,
    {_uses_of(DISAGREEMENT)} AS disagreement_markers,
    {_uses_of(POLITENESS)} AS politeness_markers,
    {_uses_of(FIRST_SINGULAR)} AS first_person_singular,
    {_uses_of(FIRST_PLURAL)} AS first_person_plural,
    {_uses_of(SECOND)} AS second_person,
    coalesce(sum(uses) FILTER (WHERE contains(word, '''')), 0) AS contractions,
    coalesce(sum(uses) FILTER (WHERE length(word) > 7), 0) AS long_words
FROM pidgin_metrics_words
GROUP BY ALL
"""

_MESSAGE_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_metrics_message AS
SELECT t.conversation_id, t.turn_number, t.agent, t.message_index, compression_ratio,
    map_keys(bigram_hist) AS grams2, cardinality(bigram_hist) AS distinct2,
    map_keys(trigram_hist) AS grams3, cardinality(trigram_hist) AS distinct3,
    grams4, list_unique(grams4) AS distinct4,
    grams5, list_unique(grams5) AS distinct5,
    grams6, list_unique(grams6) AS distinct6,
    chars AS message_length,
    n AS word_count,
    coalesce(vocabulary_size, 0) AS vocabulary_size,
    sentence_count,
    paragraph_count,
    n / greatest(sentence_count, 1) AS avg_sentence_length,
    sentence_pieces / greatest(sentence_count, 1) AS avg_sentence_words,
    coalesce(letters / nullif(n, 0), 0) AS avg_word_length,
    coalesce(vocabulary_size, 0) / greatest(n, 1) AS ttr,
    coalesce(hapaxes / nullif(vocabulary_size, 0), 0) AS hapax_ratio,
    CASE WHEN n < 3 THEN 0.0 ELSE
        (cardinality(bigram_hist) + cardinality(trigram_hist)) / (2 * n - 3) END AS ldi,
    len(list_filter(map_values(bigram_hist), lambda c: c >= 2)) AS repeated_bigrams,
    len(list_filter(map_values(trigram_hist), lambda c: c >= 2)) AS repeated_trigrams,
    self_repetition,
    word_entropy,
    character_entropy,
    coalesce(symbols / nullif(chars, 0), 0) AS symbol_density,
    emoji_count,
    arrow_count,
    punctuation_diversity,
    emoji_count + symbol_characters AS special_char_count,
    number_count,
    proper_noun_count,
    questions AS question_count,
    exclamations AS exclamation_count,
    question_runs / greatest(sentence_count, 1) AS question_density,
    coalesce(hedge_words, 0) / greatest(n, 1) AS hedge_density,
    coalesce(hedge_words, 0) AS hedge_words,
    coalesce(agreement_markers, 0) AS agreement_markers,
    coalesce(disagreement_markers, 0) AS disagreement_markers,
    coalesce(politeness_markers, 0) AS politeness_markers,
    coalesce(first_person_singular, 0) AS first_person_singular,
    coalesce(first_person_plural, 0) AS first_person_plural,
    coalesce(second_person, 0) AS second_person,
    CASE WHEN n = 0 THEN 0.5 ELSE greatest(0.0, least(1.0, 0.5
        - 0.3 * contractions / n
        - 0.2 * exclamations / n
        - 0.1 * (questions - question_mark_runs) / n
        + 0.3 * long_words / n)) END AS formality_score,
    message_hash
FROM pidgin_metrics_tokens AS t
LEFT JOIN pidgin_metrics_word_counts AS c USING (message_index)
"""

# What each message owes to the same agent's earlier turns of its conversation.
_HISTORY_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_metrics_history AS
WITH first_uses AS (
    SELECT conversation_id, agent, min(turn_number) AS turn_number
    FROM pidgin_metrics_words GROUP BY conversation_id, agent, word
),
new_words AS (
    SELECT conversation_id, agent, turn_number, count(*) AS new_words
    FROM first_uses GROUP BY ALL
),
seen AS (  -- one partition per word of an agent, keyed by one hash: 1.5x faster
    SELECT w.conversation_id, w.turn_number, w.agent, w.word,
        coalesce(sum(1 / m.vocabulary_size) OVER (PARTITION BY hash(w.conversation_id, w.agent,
            w.word) ORDER BY w.turn_number ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
            AS earlier_share
    FROM pidgin_metrics_words AS w
    JOIN pidgin_metrics_message AS m USING (message_index)
),
shares AS (
    SELECT conversation_id, turn_number, agent, sum(earlier_share ORDER BY word) AS earlier_share
    FROM seen GROUP BY ALL
)
SELECT m.conversation_id, m.turn_number, m.agent,
    coalesce(n.new_words, 0) AS new_words,
    sum(coalesce(n.new_words, 0)) OVER running AS cumulative_vocabulary,
    coalesce(coalesce(s.earlier_share, 0) / nullif(row_number() OVER running - 1, 0), 0.0)
        AS turn_repetition
FROM pidgin_metrics_message AS m
LEFT JOIN new_words AS n USING (conversation_id, turn_number, agent)
LEFT JOIN shares AS s USING (conversation_id, turn_number, agent)
WINDOW running AS (PARTITION BY m.conversation_id, m.agent ORDER BY m.turn_number
    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""

# Sums of floating-point numbers name their order (ORDER BY word): a load gives the same
# bits every time, whatever the threads did.
# Per turn: words both agents have used by then; the words both replies use, with the
# smaller of their two counts (phrase alignment); and the TF-IDF cosine of the two replies
# (document frequencies over the messages of the conversation).
_PAIRS_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_metrics_pairs AS
WITH conversation_words AS (  -- each word of a conversation: by then both agents use it
    SELECT conversation_id, word, count(*) AS messages,
        CASE WHEN count(DISTINCT agent) = 2 THEN greatest(
            min(turn_number) FILTER (WHERE agent = 'agent_a'),
            min(turn_number) FILTER (WHERE agent = 'agent_b')) END AS shared_from
    FROM pidgin_metrics_words  -- already one row per word of each message
    GROUP BY conversation_id, word
),
shared_by_turn AS (
    SELECT conversation_id, shared_from AS turn_number, count(*) AS words
    FROM conversation_words WHERE shared_from IS NOT NULL GROUP BY ALL
),
turn_list AS (
    SELECT DISTINCT conversation_id, turn_number FROM pidgin_metrics_message
),
documents AS (
    SELECT conversation_id, count(*) AS n FROM pidgin_metrics_message GROUP BY ALL
),
weighted AS (
    SELECT w.conversation_id, w.turn_number, w.agent, w.word, w.uses,
        w.uses * (ln((1 + d.n) / (1 + c.messages)) + 1) AS weight
    FROM pidgin_metrics_words AS w
    JOIN documents AS d USING (conversation_id)
    JOIN conversation_words AS c USING (conversation_id, word)
),
norms AS (
    SELECT conversation_id, turn_number,
        sqrt(sum(weight * weight ORDER BY word) FILTER (WHERE agent = 'agent_a')) AS norm_a,
        sqrt(sum(weight * weight ORDER BY word) FILTER (WHERE agent = 'agent_b')) AS norm_b
    FROM weighted GROUP BY ALL
),
products AS (  -- words both replies of a turn use: one group each, no self-join
    SELECT conversation_id, turn_number, word, min(uses) AS common_uses,
        any_value(weight) FILTER (WHERE agent = 'agent_a')
        * any_value(weight) FILTER (WHERE agent = 'agent_b') AS product
    FROM weighted GROUP BY ALL HAVING count(*) = 2
),
dots AS (
    SELECT conversation_id, turn_number, sum(product ORDER BY word) AS dot,
        list(word ORDER BY word) AS shared, sum(common_uses) AS common_uses
    FROM products GROUP BY ALL
)
SELECT t.conversation_id, t.turn_number,
    sum(coalesce(s.words, 0)) OVER (PARTITION BY t.conversation_id ORDER BY t.turn_number
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS shared_cumulative,
    coalesce(d.dot / nullif(n.norm_a * n.norm_b, 0), 0.0) AS tfidf_cosine,
    coalesce(d.shared, []) AS shared,
    coalesce(d.common_uses, 0) AS common_uses
FROM turn_list AS t
LEFT JOIN shared_by_turn AS s USING (conversation_id, turn_number)
LEFT JOIN norms AS n USING (conversation_id, turn_number)
LEFT JOIN dots AS d USING (conversation_id, turn_number)
"""


def _mimicry(source: str) -> str:
    """How many of ``source``'s 2- to 6-word phrases the other reply repeats; longer weigh more.

    ``common{n}`` is the number of distinct n-word phrases the two replies share, the same
    seen from either side, so it is counted once per turn for both directions.
    """
    terms = " + ".join(
        f"CASE WHEN longest >= {n} THEN {n - 1} * common{n} / {source}_distinct{n} ELSE 0 END"
        for n in _NGRAM_SIZES
    )
    return f"CASE WHEN longest < 2 THEN 0.0 ELSE ({terms}) / (longest * (longest - 1) / 2) END"


_PER_AGENT = (  # noqa: SIM905
    "message_length character_count word_count vocabulary_size unique_words sentence_count "
    "paragraph_count avg_sentence_length avg_word_length ttr hapax_ratio ldi repeated_bigrams "
    "repeated_trigrams self_repetition word_entropy character_entropy symbol_density "
    "emoji_count arrow_count punctuation_diversity special_char_count number_count "
    "proper_noun_count question_count exclamation_count question_density hedge_density "
    "hedge_words agreement_markers disagreement_markers politeness_markers "
    "first_person_singular first_person_plural second_person formality_score message_hash"
).split()
_ALIASES = {"character_count": "message_length", "unique_words": "vocabulary_size"}
_HISTORY = ("turn_repetition", "new_words", "cumulative_vocabulary")


def _agent_columns(prefix: str, alias: str, history: str) -> str:
    columns = [f"{alias}.{_ALIASES.get(name, name)} AS {prefix}_{name}" for name in _PER_AGENT]
    columns += [f"{history}.{name} AS {prefix}_{name}" for name in _HISTORY]
    columns.append(f"{alias}.compression_ratio AS {prefix}_compression_ratio")
    return ",\n    ".join(columns)


def _join_agents(table: str, alias_a: str, alias_b: str) -> str:
    """Joins to turn ``t`` of ``table``'s rows for agent_a and for agent_b."""
    return "\n".join(
        f"LEFT JOIN {table} AS {alias}\n"
        f"    ON {alias}.conversation_id = t.conversation_id "
        f"AND {alias}.turn_number = t.turn_number AND {alias}.agent = '{agent}'"
        for alias, agent in ((alias_a, "agent_a"), (alias_b, "agent_b"))
    )


_JOIN_AGENTS = _join_agents("pidgin_metrics_message", "a", "b")

# What compares the two replies of a turn, computed once per turn (an alias that a later
# expression uses would be computed again for it, hence the inner query).
# Phrases both replies use, as |A| + |B| - |A or B| (counting the distinct values of one
# list is much cheaper than intersecting two).
_COMMON = ",\n        ".join(
    f"a.distinct{n} + b.distinct{n} - list_unique(a.grams{n} || b.grams{n}) AS common{n}"
    for n in _NGRAM_SIZES
)
_GRAMS = ", ".join(
    f"a.distinct{n} AS a_distinct{n}, b.distinct{n} AS b_distinct{n}" for n in _NGRAM_SIZES
)
_SCORES_SQL = f"""
CREATE OR REPLACE TEMP TABLE pidgin_metrics_scores AS
SELECT conversation_id, turn_number, shared,
    CASE WHEN a_vocabulary_size = 0 OR b_vocabulary_size = 0 THEN 0.0 ELSE
        len(shared) / (a_vocabulary_size + b_vocabulary_size - len(shared)) END
        AS vocabulary_overlap,
    CASE WHEN a_message_length = 0 AND b_message_length = 0 THEN 1.0 ELSE
        least(a_message_length, b_message_length)
        / greatest(a_message_length, b_message_length) END AS length_convergence,
    0.5 * (1 - abs(a_sentence_count - b_sentence_count)
            / greatest(a_sentence_count, b_sentence_count, 1))
    + 0.5 * (1 - abs(a_avg_sentence_words - b_avg_sentence_words)
            / greatest(a_avg_sentence_words, b_avg_sentence_words, 1))
        AS structural_similarity,
    {_mimicry("a")} AS mimicry_score_a_to_b,
    {_mimicry("b")} AS mimicry_score_b_to_a,
    CASE WHEN a_word_count = 0 OR b_word_count = 0 THEN 0.0 ELSE
        2 * common_uses / (a_word_count + b_word_count) END AS phrase_alignment
FROM (
    SELECT t.conversation_id, t.turn_number, t.shared, t.common_uses,
        least(6, a.word_count, b.word_count) AS longest,
        {_COMMON},
        {_GRAMS},
        a.vocabulary_size AS a_vocabulary_size, b.vocabulary_size AS b_vocabulary_size,
        a.message_length AS a_message_length, b.message_length AS b_message_length,
        a.sentence_count AS a_sentence_count, b.sentence_count AS b_sentence_count,
        a.avg_sentence_words AS a_avg_sentence_words,
        b.avg_sentence_words AS b_avg_sentence_words,
        a.word_count AS a_word_count, b.word_count AS b_word_count
    FROM pidgin_metrics_pairs AS t
    {_JOIN_AGENTS}
)
"""

# Every turn of the batch that has a reply, with every column of ``turn_metrics`` but the
# experiment and the turn's own counter, which ``INSERT_SQL`` takes from ``turns``.
_RESULT_SQL = f"""
SELECT t.conversation_id, t.turn_number,
    {_agent_columns("a", "a", "ha")},
    {_agent_columns("b", "b", "hb")},
    s.vocabulary_overlap, s.length_convergence, s.structural_similarity,
    s.mimicry_score_a_to_b, s.mimicry_score_b_to_a,
    (s.mimicry_score_a_to_b + s.mimicry_score_b_to_a) / 2 AS mutual_mimicry,
    s.phrase_alignment,
    CASE WHEN ha.cumulative_vocabulary = 0 OR hb.cumulative_vocabulary = 0 THEN 0.0 ELSE
        t.shared_cumulative
        / (ha.cumulative_vocabulary + hb.cumulative_vocabulary - t.shared_cumulative) END
        AS cumulative_convergence,
    (s.vocabulary_overlap + s.phrase_alignment + s.structural_similarity
        + (s.mimicry_score_a_to_b + s.mimicry_score_b_to_a) / 2) / 4 AS text_convergence,
    t.tfidf_cosine,
    s.shared AS shared_vocabulary,
    len(s.shared) AS shared_vocabulary_size
FROM pidgin_metrics_pairs AS t
{_JOIN_AGENTS}
{_join_agents("pidgin_metrics_history", "ha", "hb")}
LEFT JOIN pidgin_metrics_scores AS s
    ON s.conversation_id = t.conversation_id AND s.turn_number = t.turn_number
"""

STEPS = (
    _TEXT_TABLE_SQL,
    _TOKENS_SQL,
    _WORDS_SQL,
    _WORD_COUNTS_SQL,
    _MESSAGE_SQL,
    _HISTORY_SQL,
    _PAIRS_SQL,
    _SCORES_SQL,
)
"""The statements that measure the replies given to ``_TEXT_TABLE_SQL``, in order, each
into a temporary table of the connection that runs them; ``RESULT_SQL`` then reads the
rows of ``turn_metrics`` from them. Every measure is within one conversation, so the
conversations of a run can be measured in batches, side by side."""


def result_to(path: str) -> str:
    """The statement that writes the batch's rows to the Parquet file ``path``."""
    return f"COPY ({_RESULT_SQL}) TO {_sql_string(path)} (FORMAT parquet)"


def insert_from(path: str) -> str:
    """The statement that adds a measured batch (``result_to``) to ``turn_metrics``: one row
    per turn of its ``$conversations``, NULL where a turn has no reply."""
    return f"""
INSERT INTO turn_metrics BY NAME
SELECT $experiment_id AS experiment_id, t.conversation_id, t.turn_number, t.turn,
    r.* EXCLUDE (conversation_id, turn_number)
FROM turns AS t
LEFT JOIN read_parquet({_sql_string(path)}) AS r
    ON r.conversation_id = t.conversation_id AND r.turn_number = t.turn_number
WHERE t.experiment_id = $experiment_id
    AND t.conversation_id IN (SELECT unnest($conversations::VARCHAR[]))
"""
