"""Per-turn text metrics against values worked out by hand from docs/metrics.md.

The conversation has two turns whose replies exercise the rules: a question, an
exclamation run, a capitalised name mid-sentence, shared phrases, a "…" reply with no
words, and a reply that repeats itself.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any

import duckdb
import pytest

import pidgin_events as pe
import pidgin_load as pl

A0 = "Yes, I agree with Paris. Maybe we could try? Really!!"
B0 = "I agree, we could try it."
A1 = "…"
B1 = "I agree. I agree."


def _write(root: Path) -> Path:
    with (
        pe.Experiment.create(root, name="metrics", total_conversations=1) as exp,
        exp.conversation(agent_a="local:a", agent_b="local:b", max_turns=2) as conv,
    ):
        for turn, (a, b) in enumerate([(A0, B0), (A1, B1)]):
            conv.turn_start()
            conv.message("agent_a", a, prompt_tokens=10, completion_tokens=3)
            conv.message("agent_b", b, prompt_tokens=12, completion_tokens=4)
            conv.turn_complete(convergence_score=0.5 + turn / 10)
    return exp.directory


def _rows(db: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute("SELECT * FROM turn_metrics ORDER BY turn_number")
        names = [column[0] for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[Path, Path, list[dict[str, Any]]]:
    directory = _write(tmp_path / "out")
    db = tmp_path / "metrics.duckdb"
    summary = pl.load_experiment(directory, db)
    assert summary.ok
    assert summary.rows["turn_metrics"] == 2
    return directory, db, _rows(db)


def test_per_message_counts_by_hand(loaded: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    first, second = loaded[2]
    # A0 words: yes i agree with paris maybe we could try really
    assert first["a_word_count"] == 10
    assert first["a_vocabulary_size"] == first["a_unique_words"] == 10
    assert first["a_message_length"] == first["a_character_count"] == len(A0)
    assert first["a_ttr"] == 1.0
    assert first["a_hapax_ratio"] == 1.0
    assert first["a_word_entropy"] == pytest.approx(math.log2(10))
    # pieces between runs of . ! ?: "Yes, I agree with Paris", "Maybe we could try", "Really"
    assert first["a_sentence_count"] == 3
    assert first["a_avg_sentence_length"] == pytest.approx(10 / 3)
    assert first["a_question_count"] == 1
    assert first["a_exclamation_count"] == 2
    assert first["a_question_density"] == pytest.approx(1 / 3)
    assert first["a_hedge_words"] == 2  # maybe, could
    assert first["a_hedge_density"] == pytest.approx(2 / 10)
    assert first["a_agreement_markers"] == 2  # yes, agree
    assert first["a_first_person_singular"] == 1
    assert first["a_first_person_plural"] == 1
    assert first["a_proper_noun_count"] == 1  # Paris; Yes, Maybe, Really open sentences; I is short
    # no contraction, no word over 7 letters, "!!" twice over 10 words
    assert first["a_formality_score"] == pytest.approx(0.5 - 0.2 * 2 / 10)
    # 9 distinct bigrams and 8 distinct trigrams, none repeated
    assert first["a_ldi"] == 1.0
    assert first["a_repeated_bigrams"] == 0
    assert first["a_paragraph_count"] == 1
    assert first["a_new_words"] == 10
    assert first["a_cumulative_vocabulary"] == 10
    assert first["a_turn_repetition"] == 0.0

    # "…": no word, one non-blank piece, one character that is neither letter nor space
    assert second["a_word_count"] == 0
    assert second["a_vocabulary_size"] == 0
    assert second["a_ttr"] == 0.0
    assert second["a_word_entropy"] == 0.0
    assert second["a_formality_score"] == 0.5
    assert second["a_sentence_count"] == 1
    assert second["a_symbol_density"] == 1.0
    assert second["a_punctuation_diversity"] == 1
    assert second["a_new_words"] == 0
    assert second["a_cumulative_vocabulary"] == 10
    assert second["a_turn_repetition"] == 0.0

    # B1 words: i agree i agree
    assert second["b_word_count"] == 4
    assert second["b_vocabulary_size"] == 2
    assert second["b_ttr"] == 0.5
    assert second["b_hapax_ratio"] == 0.0
    assert second["b_word_entropy"] == pytest.approx(1.0)
    assert second["b_repeated_bigrams"] == 1  # "i agree" twice
    assert second["b_repeated_trigrams"] == 0
    assert second["b_ldi"] == pytest.approx((2 + 2) / (3 + 2))
    assert second["b_self_repetition"] == 0.0
    # both words were in B0 (6 distinct words), one earlier message
    assert second["b_new_words"] == 0
    assert second["b_cumulative_vocabulary"] == 6
    assert second["b_turn_repetition"] == pytest.approx(2 / 6)
    with duckdb.connect(str(loaded[1]), read_only=True) as con:
        digest = con.execute("SELECT sha256(?)", [B1]).fetchone()
    assert digest is not None
    assert second["b_message_hash"] == digest[0]


TRICKY = "Hello Bob. Alice met 'Carol' and x'Dan. O'Neil A B Cd! -> 2 ≈ 3"


def test_names_sentences_and_symbols_by_hand(tmp_path: Path) -> None:
    """Each of these is counted by one regex over the whole reply, not per sentence or
    per character: the counts must be what the definitions say sentence by sentence."""
    with (
        pe.Experiment.create(tmp_path / "out", name="tricky", total_conversations=1) as exp,
        exp.conversation(agent_a="local:a", agent_b="local:b", max_turns=2) as conv,
    ):
        for a, b in ((TRICKY, "One two. Three four five."), ("", "x")):
            conv.turn_start()
            conv.message("agent_a", a)
            conv.message("agent_b", b)
            conv.turn_complete()
    db = tmp_path / "tricky.duckdb"
    assert pl.load_experiment(exp.directory, db).ok
    row, empty = _rows(db)
    # sentences: "Hello Bob" | " Alice met 'Carol' and x'Dan" | " O'Neil A B Cd" | " -> 2 ≈ 3";
    # after each one's first word: Bob, Carol (x'Dan starts with x), Cd (A and B are short)
    assert row["a_proper_noun_count"] == 3
    assert row["a_sentence_count"] == 4
    # whitespace-separated pieces per sentence: A 2 + 5 + 4 + 4 over 4, B 2 + 3 over 2
    assert row["structural_similarity"] == pytest.approx(
        0.5 * (1 - 2 / 4) + 0.5 * (1 - (15 / 4 - 5 / 2) / (15 / 4))
    )
    # neither letter nor whitespace: . ' ' ' . ' ! - > 2 ≈ 3
    symbols = sum(1 for c in TRICKY if not c.isalpha() and not c.isspace())
    assert symbols == 12
    assert row["a_symbol_density"] == pytest.approx(symbols / len(TRICKY))
    assert row["a_punctuation_diversity"] == len(set(".'!->≈"))
    assert row["a_special_char_count"] == 3  # -, >, ≈ from the symbol set
    assert row["a_arrow_count"] == 1
    assert row["a_number_count"] == 2
    # an empty reply: every count 0, entropy 0, formality 0.5
    assert empty["a_word_count"] == empty["a_sentence_count"] == 0
    assert empty["a_proper_noun_count"] == empty["a_punctuation_diversity"] == 0
    assert empty["a_symbol_density"] == empty["a_character_entropy"] == 0.0
    assert empty["a_formality_score"] == 0.5


def test_between_agents_by_hand(loaded: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    first, second = loaded[2]
    # shared: i agree we could try; A0 has 10 distinct words, B0 6
    assert first["shared_vocabulary"] == ["agree", "could", "i", "try", "we"]
    assert first["shared_vocabulary_size"] == 5
    assert first["vocabulary_overlap"] == pytest.approx(5 / 11)
    assert first["phrase_alignment"] == pytest.approx(2 * 5 / (10 + 6))
    assert first["length_convergence"] == pytest.approx(len(B0) / len(A0))
    # bigrams shared: "i agree", "we could", "could try"; trigram: "we could try"
    assert first["mimicry_score_a_to_b"] == pytest.approx((1 * 3 / 9 + 2 * 1 / 8) / 15)
    assert first["mimicry_score_b_to_a"] == pytest.approx((1 * 3 / 5 + 2 * 1 / 4) / 15)
    assert first["mutual_mimicry"] == pytest.approx(
        (first["mimicry_score_a_to_b"] + first["mimicry_score_b_to_a"]) / 2
    )
    # sentences 3 against 1; whitespace words per sentence 10/3 against 6
    assert first["structural_similarity"] == pytest.approx(0.5 * (1 - 2 / 3) + 0.5 * (5 / 9))
    assert first["text_convergence"] == pytest.approx(
        (5 / 11 + 10 / 16 + first["structural_similarity"] + first["mutual_mimicry"]) / 4
    )
    assert first["cumulative_convergence"] == pytest.approx(5 / 11)
    # TF-IDF over the conversation's 4 messages: df 3 (i, agree), 2 (we, could, try), 1 (rest)
    x3, x2, x1 = (math.log(5 / (1 + df)) + 1 for df in (3, 2, 1))
    dot = 2 * x3**2 + 3 * x2**2
    norm_a = math.sqrt(2 * x3**2 + 3 * x2**2 + 5 * x1**2)
    norm_b = math.sqrt(2 * x3**2 + 3 * x2**2 + x1**2)
    assert first["tfidf_cosine"] == pytest.approx(dot / (norm_a * norm_b))

    # "…" has no words: nothing shared, nothing mimicked
    assert second["vocabulary_overlap"] == 0.0
    assert second["phrase_alignment"] == 0.0
    assert second["mimicry_score_a_to_b"] == 0.0
    assert second["tfidf_cosine"] == 0.0
    assert second["shared_vocabulary"] == []
    assert second["shared_vocabulary_size"] == 0
    assert second["length_convergence"] == pytest.approx(1 / len(B1))
    assert second["cumulative_convergence"] == pytest.approx(5 / 11)


def test_views(loaded: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    _, db, rows = loaded
    with duckdb.connect(str(db), read_only=True) as con:
        trends = con.execute(
            "SELECT turn_number, rolling_avg_5, convergence_delta FROM convergence_trends "
            "ORDER BY turn_number"
        ).fetchall()
        vocab = con.execute(
            "SELECT vocab_size_a, vocab_size_b, total_vocab_size FROM vocabulary_analysis "
            "ORDER BY turn_number"
        ).fetchall()
        compat = con.execute(
            "SELECT overall_convergence, lexical_entrainment, a_ttr FROM conversation_turns "
            "ORDER BY turn_number"
        ).fetchall()
        dashboard = con.execute(
            "SELECT median_final_convergence, median_progress, median_tokens, stddev_tokens "
            "FROM experiment_dashboard"
        ).fetchone()
    assert trends[0] == (0, pytest.approx(0.5), None)
    assert trends[1] == (1, pytest.approx((0.5 + 0.6) / 2), pytest.approx(0.1))
    assert vocab == [(10, 6, 16), (0, 2, 2)]
    assert compat[0] == (pytest.approx(0.5), pytest.approx(5 / 11), 1.0)
    assert dashboard is not None
    assert dashboard[0] == pytest.approx(0.6)
    assert dashboard[1] == 1.0
    assert dashboard[2] == 2 * (10 + 3 + 12 + 4)
    assert dashboard[3] is None
    assert len(rows) == 2


def test_recompute_fills_a_load_without_metrics(tmp_path: Path) -> None:
    directory = _write(tmp_path / "out")
    with_metrics = tmp_path / "with.duckdb"
    without = tmp_path / "without.duckdb"
    pl.load_experiment(directory, with_metrics)
    summary = pl.load_experiment(directory, without, metrics=False)
    assert "turn_metrics" not in summary.rows
    assert _rows(without) == []
    written = pl.recompute_metrics(without)
    assert list(written.values()) == [2]
    assert _rows(without) == _rows(with_metrics)


def test_cli_recompute_metrics(tmp_path: Path, run_cli: Any) -> None:
    root = tmp_path / "out"
    _write(root)
    db = tmp_path / "all.duckdb"
    done = run_cli("--all", root, "--db", db, "--no-metrics")
    assert done.returncode == 0, done.stderr
    assert _rows(db) == []
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM turns").fetchone() == (2,)
    both = run_cli("--all", root, "--db", db, "--no-metrics", "--recompute-metrics")
    assert both.returncode == 2
    assert "--no-metrics: not with --recompute-metrics" in both.stderr
    done = run_cli("--all", root, "--db", db, "--recompute-metrics")
    assert done.returncode == 0, done.stderr
    assert "metrics recomputed for 1 runs (2 turns)" in done.stderr
    assert len(_rows(db)) == 2
    refused = run_cli(str(root), "--recompute-metrics")
    assert refused.returncode == 2
    assert "--recompute-metrics goes with --all" in refused.stderr


def _deflate_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return min(len(zlib.compress(data)) / len(data), 2.0)


def test_compression_ratio(loaded: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    first, second = loaded[2]
    assert first["a_compression_ratio"] == _deflate_ratio(A0)
    assert first["b_compression_ratio"] == _deflate_ratio(B0)
    assert second["b_compression_ratio"] == _deflate_ratio(B1)
    # "…" is 3 bytes; zlib writes 2 header + 5 deflate + 4 checksum bytes: 11 / 3, capped.
    assert len(zlib.compress(A1.encode())) == 11
    assert second["a_compression_ratio"] == 2.0


def test_compression_ratio_of_an_empty_reply(tmp_path: Path) -> None:
    with (
        pe.Experiment.create(tmp_path / "out", name="empty", total_conversations=1) as exp,
        exp.conversation(agent_a="local:a", agent_b="local:b", max_turns=1) as conv,
    ):
        conv.turn_start()
        conv.message("agent_a", "", prompt_tokens=1, completion_tokens=0)
        conv.message("agent_b", B0, prompt_tokens=1, completion_tokens=1)
        conv.turn_complete(convergence_score=0.1)
    db = tmp_path / "empty.duckdb"
    assert pl.load_experiment(exp.directory, db).ok
    (row,) = _rows(db)
    assert row["a_compression_ratio"] == 0.0
    assert row["b_compression_ratio"] == _deflate_ratio(B0)


def test_recompute_fills_compression_in_a_database_from_before_migration_8(tmp_path: Path) -> None:
    """A database loaded before migration 8 gets the column empty, then filled."""
    directory = _write(tmp_path / "out")
    db = tmp_path / "old.duckdb"
    pl.load_experiment(directory, db)
    expected = _rows(db)
    with duckdb.connect(str(db)) as con:  # as pidgin-load before migration 8 left it
        con.execute("ALTER TABLE turn_metrics DROP COLUMN a_compression_ratio")
        con.execute("ALTER TABLE turn_metrics DROP COLUMN b_compression_ratio")
        con.execute("DELETE FROM schema_version WHERE version = 8")
    assert pl.recompute_metrics(db) == {expected[0]["experiment_id"]: 2}
    assert _rows(db) == expected
    assert expected[0]["a_compression_ratio"] == _deflate_ratio(A0)


def test_conversations_measured_in_batches_give_the_same_rows(tmp_path: Path) -> None:
    """Conversations are measured in batches, side by side (one per DuckDB thread); the
    rows must not depend on how they were grouped or how many ran at once."""
    from pidgin_load._metrics import compute_turn_metrics, conversation_batches

    words = ["we", "could", "agree", "the", "river", "keeps", "its", "shape", "while", "water"]
    with pe.Experiment.create(tmp_path / "out", name="batches", total_conversations=4) as exp:
        for c in range(4):
            with exp.conversation(agent_a="local:a", agent_b="local:b", max_turns=3) as conv:
                for turn in range(3):
                    conv.turn_start()
                    for agent, shift in (("agent_a", 1), ("agent_b", 2)):
                        start = c + turn * shift
                        text = " ".join(words[(start + i) % len(words)] for i in range(9))
                        conv.message(agent, text + "?", prompt_tokens=5, completion_tokens=9)
                    conv.turn_complete(convergence_score=0.5)
    db = tmp_path / "batches.duckdb"
    assert pl.load_experiment(exp.directory, db).rows["turn_metrics"] == 12
    whole = _rows_by_turn(db)
    with duckdb.connect(str(db)) as con:
        experiment_id = exp.id
        assert len(conversation_batches(con, experiment_id)) == 1
        assert [len(b) for b in conversation_batches(con, experiment_id, 1)] == [1, 1, 1, 1]
        # too little text to be worth a second batch, however many threads there are
        assert [len(b) for b in conversation_batches(con, experiment_id, at_least=2)] == [4]
        con.execute("SET threads = 1")
        assert compute_turn_metrics(con, experiment_id, batch_text_bytes=1) == 12
        assert _rows_by_turn(db, con) == whole
        con.execute("SET threads = 4")  # four batches at once, each on its own connection
        assert compute_turn_metrics(con, experiment_id, batch_text_bytes=1) == 12
        assert con.execute("SELECT current_setting('threads')").fetchone() == (4,)
    assert _rows_by_turn(db) == whole


@pytest.mark.parametrize(
    ("failure", "hint"),
    [
        ("the insert failed", None),
        # how DuckDB words running out of memory: the way around the metrics is named
        ("failed to allocate data of size 2.0 MiB", "--no-metrics"),
    ],
)
def test_an_error_while_measuring_is_the_error_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str, hint: str | None
) -> None:
    """A statement that fails on the load's connection aborts its transaction; restoring
    the thread setting there was refused in turn, and that refusal ("transaction is
    aborted") was all the user saw of a load that ran out of memory."""
    from pidgin_load import _metrics

    directory = _write(tmp_path / "out")
    failing = f"SELECT $experiment_id, $conversations, error('{failure}')"  # the same parameters
    monkeypatch.setattr(_metrics, "insert_from", lambda _path: failing)
    db = tmp_path / "metrics.duckdb"
    with pytest.raises(pl.LoadError) as refused:
        pl.load_experiment(directory, db)
    message = str(refused.value)
    assert "failed while computing the per-turn metrics: " in message
    assert failure in message
    assert "transaction is aborted" not in message
    assert (hint is not None and hint in message) or (
        hint is None and "--no-metrics" not in message
    )
    assert not (directory / pe.LOADED_MARKER).exists()

    assert pl.load_experiment(directory, db, metrics=False).ok  # the database is usable
    with duckdb.connect(str(db)) as con:
        con.execute("SET threads = 3")
        con.execute("BEGIN TRANSACTION")
        with pytest.raises(duckdb.Error, match=failure) as raised:
            _metrics.compute_turn_metrics(con, directory.name)
        assert _metrics.MEASURING in raised.value.__notes__
        con.execute("ROLLBACK")
        assert con.execute("SELECT current_setting('threads')").fetchone() == (3,)


def _rows_by_turn(db: Path, con: duckdb.DuckDBPyConnection | None = None) -> list[dict[str, Any]]:
    if con is None:
        with duckdb.connect(str(db), read_only=True) as own:
            return _rows_by_turn(db, own)
    cursor = con.execute("SELECT * FROM turn_metrics ORDER BY conversation_id, turn_number")
    names = [column[0] for column in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
