"""The SQL that computes per-turn text metrics, set-based, from the ``messages`` of one run.

Every definition here is written out in ``docs/metrics.md``; change both together. Each
message is tokenised once (``regexp_extract_all``) and measured with DuckDB's list
functions, row by row but vectorised; what spans turns (new words, repetition of earlier
turns, running vocabularies, TF-IDF) is computed from one row per distinct word of each
message, with window functions. No row passes through Python.

The statements work on temporary tables named ``pidgin_metrics_*`` and read only
``turns`` and ``messages``, so they run inside a load's transaction as well as over a
database already loaded (``--recompute-metrics``).
"""

from __future__ import annotations

from ._compression import COMPRESSION_TABLE

__all__ = ["DROP_SQL", "STEPS", "TEXT_TABLE", "TOKEN_PATTERN", "WHITESPACE"]

TOKEN_PATTERN = r"[\p{L}\p{N}_]+(?:'+[\p{L}\p{N}_]+)*"
"""A word: letters, digits and underscores, with apostrophes inside but not at either end."""

WHITESPACE = r"\t\n\x{0B}\f\r\x{1C}-\x{1F}\x{85}\p{Z}"
"""The characters Python's ``str.isspace`` calls whitespace, as a regex class body."""


def _not_blank(expr: str) -> str:
    """Whether a piece has a character that is not whitespace: what is left once stripped.

    Pieces are tested rather than stripped: ``trim`` with a list of characters costs about
    as much as tokenising, and neither a count of pieces nor their words depends on it.
    """
    return f"regexp_matches({expr}, '[^{WHITESPACE}]')"


# Word lists of the marker counts. Only single words can match a token.
_HEDGES = (
    "about approximately appears arguably around basically conceivably could essentially "
    "fairly generally likely maybe might perhaps possibly potentially practically presumably "
    "probably quite rather roughly seems somewhat suggests typically usually virtually"
)
_AGREEMENT = (
    "absolutely affirmative agree agreed certainly clearly completely correct definitely "
    "entirely exactly indeed naturally obviously precisely right sure totally true "
    "undoubtedly yeah yep yes"
)
_DISAGREEMENT = (
    "actually alternatively although but contrary conversely disagree doubt doubtful false "
    "however incorrect instead nah negative nevertheless no nonetheless nope not oppose "
    "rather reject though unfortunately wrong"
)
_POLITENESS = (
    "apologies apologize appreciate excuse forgive graciously grateful humbly kindly pardon "
    "please regret respectfully sincerely sorry thank thanks welcome"
)
_FIRST_SINGULAR = "i me mine my myself"
_FIRST_PLURAL = "our ours ourselves us we"
_SECOND = "you your yours yourself yourselves"

_ARROW_CHARS = "→←↔⇒⇐⇔➜➡⬅↑↓⬆⬇↖↗↘↙"
_SYMBOL_CHARS = (
    _ARROW_CHARS + "≈≡≠≤≥±×÷∞∑∏∂∇√∫∈∉∀∃∅^+=<>*/%-" + "┌┐└┘─│├┤┬┴┼═║╔╗╚╝" + "•◦▪▫■□▲△▼▽◆◇○●★☆"
)
_ARROW_PATTERN = "(?:->|<-|<->|=>|<=|<=>|[" + _ARROW_CHARS + "])"
_EMOJI_PATTERN = (
    r"[\x{1F1E0}-\x{1F1FF}\x{1F300}-\x{1F5FF}\x{1F600}-\x{1F64F}\x{1F680}-\x{1F6FF}"
    r"\x{1F900}-\x{1F9FF}\x{2600}-\x{27BF}]+"
)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _word_list(words: str) -> str:
    return "[" + ", ".join(_sql_string(word) for word in words.split()) + "]"


def _count_in(words: str) -> str:
    return f"len(list_filter(w, lambda x: list_contains({_word_list(words)}, x)))"


def _histogram(expr: str, key_type: str = "VARCHAR") -> str:
    """How often each value of a list occurs, as a map: empty (not NULL) for an empty list."""
    empty = f"MAP([]::{key_type}[], []::UBIGINT[])"
    return f"coalesce(list_aggregate({expr}, 'histogram'), {empty})"


_TOKEN = _sql_string(TOKEN_PATTERN)
_NGRAM_SIZES = range(2, 7)


def _phrase(n: int) -> str:
    """The k-word phrase starting at word ``i``, as one number: the hash of its words' hashes.

    Phrases are only ever counted, compared and intersected, never shown, so a 64-bit
    hash stands for the text: no string is built per phrase, and sets of numbers are
    cheap to deduplicate and intersect (on 10 KB replies this was most of the metrics' time).
    """
    return "hash(" + ", ".join(f"h[i + {k}]" if k else "h[i]" for k in range(n)) + ")"


def _ngrams(n: int) -> str:
    """The distinct n-word phrases (n from 4 to 6) of a message, as hashes."""
    return (
        f"list_distinct(list_transform(range(1, len(w) - {n - 2}), "
        f"lambda i: {_phrase(n)})) AS grams{n}"
    )


# One row per message that a turn of the run ended with: the last message of each agent
# in each completed turn, numbered for what is computed outside SQL (``_compression``).
_TEXT_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_metrics_text AS
SELECT *, row_number() OVER () AS message_index
FROM (
    SELECT m.conversation_id, m.turn_number, m.agent_id AS agent,
        coalesce(arg_max(m.content, m.line_number), '') AS text
    FROM messages AS m
    SEMI JOIN turns AS t
        ON t.experiment_id = m.experiment_id AND t.conversation_id = m.conversation_id
        AND t.turn_number = m.turn_number
    WHERE m.experiment_id = $experiment_id AND m.agent_id IN ('agent_a', 'agent_b')
        AND m.conversation_id IN (SELECT unnest($conversations::VARCHAR[]))
    GROUP BY ALL
)
"""
TEXT_TABLE = "pidgin_metrics_text"

# Each message tokenised once, with the lists and counts several measures share.
_TOKENS_SQL = f"""
CREATE OR REPLACE TEMP TABLE pidgin_metrics_tokens AS
WITH tokenised AS (
    SELECT *,
        regexp_extract_all(lower(text), {_TOKEN}) AS w,
        list_filter(regexp_split_to_array(text, '[.!?]+'), lambda s: {_not_blank("s")})
            AS sentences,
        length(text) AS chars
    FROM pidgin_metrics_text
),
hashed AS (
    SELECT *, list_transform(w, lambda x: hash(x)) AS h FROM tokenised
),
phrases AS (
    SELECT *,
        list_transform(range(1, len(w)), lambda i: {_phrase(2)}) AS bigrams,
        list_transform(range(1, len(w) - 1), lambda i: {_phrase(3)}) AS trigrams
    FROM hashed
)
SELECT *,
    len(w) AS n,
    {_histogram("w")} AS hist,
    {_histogram("bigrams", "UBIGINT")} AS bigram_hist,
    {_histogram("trigrams", "UBIGINT")} AS trigram_hist,
    {_histogram("string_split(text, '')")} AS char_hist,
    length(text) - length(replace(text, '?', '')) AS questions,
    length(text) - length(replace(text, '!', '')) AS exclamations
FROM phrases
"""

_MESSAGE_SQL = f"""
CREATE OR REPLACE TEMP TABLE pidgin_metrics_message AS
SELECT conversation_id, turn_number, agent, message_index, hist,
    map_keys(bigram_hist) AS grams2,
    map_keys(trigram_hist) AS grams3,
    {", ".join(_ngrams(n) for n in _NGRAM_SIZES if n > 3)},
    chars AS message_length,
    n AS word_count,
    cardinality(hist) AS vocabulary_size,
    len(sentences) AS sentence_count,
    len(list_filter(string_split(text, e'\\n\\n'), lambda p: {_not_blank("p")}))
        AS paragraph_count,
    n / greatest(len(sentences), 1) AS avg_sentence_length,
    coalesce(list_sum(list_transform(sentences,
        lambda s: len(regexp_extract_all(s, '[^{WHITESPACE}]+')))), 0)
        / greatest(len(sentences), 1) AS avg_sentence_words,
    coalesce(list_sum(list_transform(w, lambda x: length(x))) / nullif(n, 0), 0)
        AS avg_word_length,
    cardinality(hist) / greatest(n, 1) AS ttr,
    coalesce(len(list_filter(map_values(hist), lambda c: c = 1)) / nullif(cardinality(hist), 0),
        0) AS hapax_ratio,
    CASE WHEN n < 3 THEN 0.0 ELSE
        (cardinality(bigram_hist) + cardinality(trigram_hist)) / (2 * n - 3) END AS ldi,
    len(list_filter(map_values(bigram_hist), lambda c: c >= 2)) AS repeated_bigrams,
    len(list_filter(map_values(trigram_hist), lambda c: c >= 2)) AS repeated_trigrams,
    CASE WHEN n < 2 THEN 0.0 ELSE
        len(list_filter(range(2, n + 1), lambda i: w[i] = w[i - 1])) / (n - 1) END
        AS self_repetition,
    coalesce(list_sum(list_transform(map_values(hist), lambda c: -(c / n) * log2(c / n))), 0)
        AS word_entropy,
    coalesce(list_sum(list_transform(map_values(char_hist),
        lambda c: -(c / chars) * log2(c / chars))), 0) AS character_entropy,
    coalesce(list_sum(list_transform(list_filter(map_entries(char_hist),
        lambda e: NOT regexp_matches(e.key, '[\\p{{L}}{WHITESPACE}]')), lambda e: e.value))
        / nullif(chars, 0), 0) AS symbol_density,
    len(regexp_extract_all(text, {_sql_string(_EMOJI_PATTERN)})) AS emoji_count,
    len(regexp_extract_all(text, {_sql_string(_ARROW_PATTERN)})) AS arrow_count,
    len(list_filter(map_keys(char_hist),
        lambda k: regexp_matches(k, '[^\\p{{L}}\\p{{N}}_{WHITESPACE}]'))) AS punctuation_diversity,
    len(regexp_extract_all(text, {_sql_string(_EMOJI_PATTERN)}))
        + coalesce(list_sum(list_transform(list_filter(map_entries(char_hist),
            lambda e: list_contains({_word_list(" ".join(_SYMBOL_CHARS))}, e.key)),
            lambda e: e.value)), 0) AS special_char_count,
    len(regexp_extract_all(text, '\\b\\d+(?:[.,]\\d+)*\\b')) AS number_count,
    coalesce(list_sum(list_transform(sentences,
        lambda s: len(list_filter(regexp_extract_all(s, {_TOKEN})[2:],
            lambda t: length(t) > 1 AND regexp_matches(t, '^\\p{{Lu}}'))))), 0)
        AS proper_noun_count,
    questions AS question_count,
    exclamations AS exclamation_count,
    len(regexp_extract_all(text, '[.!?]*\\?[.!?]*')) / greatest(len(sentences), 1)
        AS question_density,
    {_count_in(_HEDGES)} / greatest(n, 1) AS hedge_density,
    {_count_in(_HEDGES)} AS hedge_words,
    {_count_in(_AGREEMENT)} AS agreement_markers,
    {_count_in(_DISAGREEMENT)} AS disagreement_markers,
    {_count_in(_POLITENESS)} AS politeness_markers,
    {_count_in(_FIRST_SINGULAR)} AS first_person_singular,
    {_count_in(_FIRST_PLURAL)} AS first_person_plural,
    {_count_in(_SECOND)} AS second_person,
    CASE WHEN n = 0 THEN 0.5 ELSE greatest(0.0, least(1.0, 0.5
        - 0.3 * len(list_filter(w, lambda x: contains(x, ''''))) / n
        - 0.2 * exclamations / n
        - 0.1 * (questions - len(regexp_extract_all(text, '\\?+'))) / n
        + 0.3 * len(list_filter(w, lambda x: length(x) > 7)) / n)) END AS formality_score,
    sha256(text) AS message_hash
FROM pidgin_metrics_tokens
"""

# One row per distinct word of each message, with how often the message uses it.
_WORDS_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_metrics_words AS
SELECT conversation_id, turn_number, agent, vocabulary_size,
    unnest(map_keys(hist)) AS word, unnest(map_values(hist)) AS uses
FROM pidgin_metrics_message
"""

# What each message owes to the same agent's earlier turns of its conversation.
_HISTORY_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_metrics_history AS
WITH seen AS (
    SELECT conversation_id, turn_number, agent, word,
        turn_number = min(turn_number) OVER same_word AS first_use,
        coalesce(sum(1 / vocabulary_size) OVER (same_word
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS earlier_share
    FROM pidgin_metrics_words
    WINDOW same_word AS (PARTITION BY conversation_id, agent, word ORDER BY turn_number)
),
per_message AS (
    SELECT conversation_id, turn_number, agent,
        count(*) FILTER (WHERE first_use) AS new_words,
        sum(earlier_share ORDER BY word) AS earlier_share
    FROM seen GROUP BY ALL
)
SELECT m.conversation_id, m.turn_number, m.agent,
    coalesce(p.new_words, 0) AS new_words,
    sum(coalesce(p.new_words, 0)) OVER running AS cumulative_vocabulary,
    coalesce(coalesce(p.earlier_share, 0) / nullif(row_number() OVER running - 1, 0), 0.0)
        AS turn_repetition
FROM pidgin_metrics_message AS m
LEFT JOIN per_message AS p USING (conversation_id, turn_number, agent)
WINDOW running AS (PARTITION BY m.conversation_id, m.agent ORDER BY m.turn_number
    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""

# Sums of floating-point numbers name their order (ORDER BY word): a load gives the same
# bits every time, whatever the threads did.
# Per turn: words both agents have used by then, and the TF-IDF cosine of the two replies
# (document frequencies over the messages of the conversation).
_PAIRS_SQL = """
CREATE OR REPLACE TEMP TABLE pidgin_metrics_pairs AS
WITH first_shared AS (
    SELECT conversation_id, greatest(min(turn_number) FILTER (WHERE agent = 'agent_a'),
        min(turn_number) FILTER (WHERE agent = 'agent_b')) AS turn_number, count(*) AS words
    FROM pidgin_metrics_words  -- already one row per word of each message
    GROUP BY conversation_id, word
    HAVING count(DISTINCT agent) = 2
),
shared_by_turn AS (
    SELECT conversation_id, turn_number, count(*) AS words
    FROM first_shared GROUP BY ALL
),
turn_list AS (
    SELECT DISTINCT conversation_id, turn_number FROM pidgin_metrics_message
),
documents AS (
    SELECT conversation_id, count(*) AS n FROM pidgin_metrics_message GROUP BY ALL
),
weighted AS (
    SELECT w.conversation_id, w.turn_number, w.agent, w.word,
        w.uses * (ln((1 + d.n) / (1 + count(*) OVER (PARTITION BY w.conversation_id, w.word)))
            + 1) AS weight
    FROM pidgin_metrics_words AS w JOIN documents AS d USING (conversation_id)
),
norms AS (
    SELECT conversation_id, turn_number,
        sqrt(sum(weight * weight ORDER BY word) FILTER (WHERE agent = 'agent_a')) AS norm_a,
        sqrt(sum(weight * weight ORDER BY word) FILTER (WHERE agent = 'agent_b')) AS norm_b
    FROM weighted GROUP BY ALL
),
products AS (  -- words both replies of a turn use: one group each, no self-join
    SELECT conversation_id, turn_number, word,
        any_value(weight) FILTER (WHERE agent = 'agent_a')
        * any_value(weight) FILTER (WHERE agent = 'agent_b') AS product
    FROM weighted GROUP BY ALL HAVING count(*) = 2
),
dots AS (
    SELECT conversation_id, turn_number, sum(product ORDER BY word) AS dot
    FROM products GROUP BY ALL
)
SELECT t.conversation_id, t.turn_number,
    sum(coalesce(s.words, 0)) OVER (PARTITION BY t.conversation_id ORDER BY t.turn_number
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS shared_cumulative,
    coalesce(d.dot / nullif(n.norm_a * n.norm_b, 0), 0.0) AS tfidf_cosine
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
        f"CASE WHEN longest >= {n} THEN {n - 1} * common{n} / len({source}_grams{n}) ELSE 0 END"
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


def _agent_columns(prefix: str, alias: str, history: str, compression: str) -> str:
    columns = [f"{alias}.{_ALIASES.get(name, name)} AS {prefix}_{name}" for name in _PER_AGENT]
    columns += [f"{history}.{name} AS {prefix}_{name}" for name in _HISTORY]
    columns.append(f"{compression}.compression_ratio AS {prefix}_compression_ratio")
    return ",\n    ".join(columns)


_SHARED = "list_intersect(map_keys(a.hist), map_keys(b.hist))"


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
_COMMON = ",\n        ".join(
    f"len(list_intersect(a.grams{n}, b.grams{n})) AS common{n}" for n in _NGRAM_SIZES
)
_GRAMS = ", ".join(f"a.grams{n} AS a_grams{n}, b.grams{n} AS b_grams{n}" for n in _NGRAM_SIZES)
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
        2 * coalesce(list_sum(list_transform(shared,
            lambda k: least(map_extract_value(a_hist, k), map_extract_value(b_hist, k)))), 0)
        / (a_word_count + b_word_count) END AS phrase_alignment
FROM (
    SELECT t.conversation_id, t.turn_number, {_SHARED} AS shared,
        least(6, a.word_count, b.word_count) AS longest,
        {_COMMON},
        {_GRAMS},
        a.vocabulary_size AS a_vocabulary_size, b.vocabulary_size AS b_vocabulary_size,
        a.message_length AS a_message_length, b.message_length AS b_message_length,
        a.sentence_count AS a_sentence_count, b.sentence_count AS b_sentence_count,
        a.avg_sentence_words AS a_avg_sentence_words,
        b.avg_sentence_words AS b_avg_sentence_words,
        a.word_count AS a_word_count, b.word_count AS b_word_count,
        a.hist AS a_hist, b.hist AS b_hist
    FROM (SELECT DISTINCT conversation_id, turn_number FROM pidgin_metrics_message) AS t
    {_JOIN_AGENTS}
)
"""

_INSERT_SQL = f"""
INSERT INTO turn_metrics BY NAME
SELECT
    $experiment_id AS experiment_id, t.conversation_id, t.turn_number, t.turn,
    {_agent_columns("a", "a", "ha", "ca")},
    {_agent_columns("b", "b", "hb", "cb")},
    s.vocabulary_overlap, s.length_convergence, s.structural_similarity,
    s.mimicry_score_a_to_b, s.mimicry_score_b_to_a,
    (s.mimicry_score_a_to_b + s.mimicry_score_b_to_a) / 2 AS mutual_mimicry,
    s.phrase_alignment,
    CASE WHEN ha.cumulative_vocabulary = 0 OR hb.cumulative_vocabulary = 0 THEN 0.0 ELSE
        p.shared_cumulative
        / (ha.cumulative_vocabulary + hb.cumulative_vocabulary - p.shared_cumulative) END
        AS cumulative_convergence,
    (s.vocabulary_overlap + s.phrase_alignment + s.structural_similarity
        + (s.mimicry_score_a_to_b + s.mimicry_score_b_to_a) / 2) / 4 AS text_convergence,
    p.tfidf_cosine,
    list_sort(s.shared) AS shared_vocabulary,
    len(s.shared) AS shared_vocabulary_size
FROM turns AS t
{_JOIN_AGENTS}
{_join_agents("pidgin_metrics_history", "ha", "hb")}
LEFT JOIN {COMPRESSION_TABLE} AS ca ON ca.message_index = a.message_index
LEFT JOIN {COMPRESSION_TABLE} AS cb ON cb.message_index = b.message_index
LEFT JOIN pidgin_metrics_pairs AS p
    ON p.conversation_id = t.conversation_id AND p.turn_number = t.turn_number
LEFT JOIN pidgin_metrics_scores AS s
    ON s.conversation_id = t.conversation_id AND s.turn_number = t.turn_number
WHERE t.experiment_id = $experiment_id
    AND t.conversation_id IN (SELECT unnest($conversations::VARCHAR[]))
"""

STEPS = (
    _TEXT_SQL,
    _TOKENS_SQL,
    _MESSAGE_SQL,
    _WORDS_SQL,
    _HISTORY_SQL,
    _PAIRS_SQL,
    _SCORES_SQL,
    _INSERT_SQL,
)
"""The statements that fill ``turn_metrics`` for the ``$conversations`` of ``$experiment_id``,
in order (every measure is within one conversation, so conversations can go in batches)."""

DROP_SQL = tuple(
    f"DROP TABLE IF EXISTS pidgin_metrics_{name}"
    for name in ("text", "tokens", "message", "words", "history", "pairs", "scores", "compression")
)
