"""Experiment directories written by pidgin-ai 1.1 load with exact row counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pidgin_load as pl

EXPERIMENT = "exp-5x20-full_f41ebd59"
CHAT = "chat-silent-10turn_4700f813"


def test_five_by_twenty_experiment_has_exact_rows(
    pidgin_ai_root: Path, counts: Any, query: Any
) -> None:
    directory = pidgin_ai_root / "experiments" / EXPERIMENT
    db = tmp_db = pidgin_ai_root / "experiments" / "experiments.duckdb"

    summary = pl.load_experiment(directory)

    assert pl.default_db_path(directory) == tmp_db
    assert summary.ok
    assert [o.experiment_id for o in summary.loaded] == ["experiment_f41ebd59"]
    assert counts(db, "experiment_f41ebd59") == {
        "experiments": 1,
        "conversations": 5,
        "turns": 100,
        "messages": 200,
        "token_usage": 10,
        "errors": 0,
        "events": 620,
        "load_errors": 0,
        "loads": 1,
        "turn_metrics": 100,  # one per turn
        "thinking": 0,  # the fixture ran without thinking
    }
    assert summary.rows == counts(db, "experiment_f41ebd59")
    assert (summary.bad_lines, summary.unknown_events) == (0, 0)
    # turns come from TurnCompleteEvents; the end event's off-by-one total is kept apart
    assert query(
        db, "SELECT DISTINCT turns, reported_total_turns, status, end_reason FROM conversations"
    ) == [(20, 21, "completed", "max_turns")]
    assert query(
        db,
        "SELECT name, kind, source_format, status, planned_conversations, conversations, "
        "completed_conversations FROM experiments",
    ) == [("exp-5x20-full", "experiment", "pidgin-ai", "completed", 5, 5, 5)]


def test_messages_get_their_turn_and_their_own_tokens(pidgin_ai_root: Path, query: Any) -> None:
    directory = pidgin_ai_root / "experiments" / EXPERIMENT
    db = pidgin_ai_root / "db.duckdb"
    pl.load_experiment(directory, db)

    # pidgin-ai messages carry no turn number: each is placed in the turn started before it
    assert query(
        db,
        "SELECT turn_number, count(*), count(DISTINCT agent_id) FROM messages "
        "GROUP BY ALL ORDER BY 1",
    ) == [(turn, 10, 2) for turn in range(20)]
    log = directory / "events_conv_0fc24c12.jsonl"
    expected = []
    models: dict[str, str] = {}
    shown_turn = None  # the turn users see: the last TurnStartEvent's number, from 1
    for line in map(json.loads, log.read_text().splitlines()):
        if line["event_type"] == "ConversationStartEvent":
            models = {agent: line[f"{agent}_model"] for agent in ("agent_a", "agent_b")}
        elif line["event_type"] == "TurnStartEvent":
            shown_turn = line["turn_number"] + 1
        elif line["event_type"] == "MessageCompleteEvent":
            agent = line["agent_id"]
            content = line["message"]["content"]
            tokens = (line["prompt_tokens"], line["completion_tokens"], line["duration_ms"])
            expected.append((shown_turn, agent, models[agent], content, *tokens))
    assert len({row[4] for row in expected}) > 1  # tokens per message, not per conversation
    assert {row[0] for row in expected} == set(range(1, 21))
    assert (
        query(
            db,
            "SELECT turn, role, model, content, prompt_tokens, completion_tokens, duration_ms "
            "FROM messages WHERE conversation_id = 'conv_0fc24c12' ORDER BY line_number",
        )
        == expected
    )
    # the whole history repeated by MessageRequestEvent stays in the raw payload only
    assert query(db, "SELECT count(*) FROM messages WHERE content LIKE '%[Begin]%'") == [(0,)]
    assert query(
        db,
        "SELECT count(*) FROM events WHERE event_type = 'MessageRequestEvent' "
        "AND json_array_length(payload -> '$.conversation_history') >= 2",
    ) == [(200,)]


def test_turn_rows_carry_both_messages_sizes_and_tokens(pidgin_ai_root: Path, query: Any) -> None:
    directory = pidgin_ai_root / "experiments" / EXPERIMENT
    db = pidgin_ai_root / "db.duckdb"
    pl.load_experiment(directory, db)
    log = [
        json.loads(line)
        for line in (directory / "events_conv_0fc24c12.jsonl").read_text().splitlines()
    ]
    first_turn = next(line for line in log if line["event_type"] == "TurnCompleteEvent")
    a, b = [line for line in log if line["event_type"] == "MessageCompleteEvent"][:2]
    assert query(
        db,
        "SELECT convergence_score, agent_a_chars, agent_b_chars, agent_a_tokens, agent_b_tokens "
        "FROM turns WHERE conversation_id = 'conv_0fc24c12' AND turn_number = 0",
    ) == [
        (
            first_turn["convergence_score"],
            len(a["message"]["content"]),
            len(b["message"]["content"]),
            a["completion_tokens"],
            b["completion_tokens"],
        )
    ]
    scores = [
        line["convergence_score"] for line in log if line["event_type"] == "TurnCompleteEvent"
    ]
    assert query(
        db, "SELECT final_convergence FROM conversations WHERE conversation_id = 'conv_0fc24c12'"
    ) == [(scores[-1],)]


def test_events_keep_file_line_and_derived_seq(pidgin_ai_root: Path, query: Any) -> None:
    directory = pidgin_ai_root / "experiments" / EXPERIMENT
    db = pidgin_ai_root / "db.duckdb"
    pl.load_experiment(directory, db)
    rows = query(
        db,
        "SELECT source_file, min(line_number), max(line_number), count(*), "
        "bool_and(seq = line_number - 1), count(DISTINCT experiment_id), "
        "bool_and(conversation_id IS NOT NULL) FROM events GROUP BY 1 ORDER BY 1",
    )
    assert [row[0] for row in rows] == sorted(p.name for p in directory.glob("events_*.jsonl"))
    assert {row[1:] for row in rows} == {(1, 124, 124, True, 1, True)}


def test_pidgin_ai_chat_fixture(pidgin_ai_root: Path, counts: Any, query: Any) -> None:
    db = pidgin_ai_root / "db.duckdb"
    pl.load_experiment(pidgin_ai_root / "experiments" / CHAT, db)
    rows = counts(db, "experiment_4700f813")
    assert (rows["conversations"], rows["turns"], rows["messages"], rows["events"]) == (
        1,
        10,
        20,
        73,
    )
    assert query(db, "SELECT turns, agent_b_model FROM conversations") == [(10, "silent:none")]
    assert query(db, "SELECT count(*) FROM events WHERE event_type = 'RateLimitPaceEvent'") == [
        (9,)
    ]


def test_load_all_loads_both_fixtures_and_the_views_answer(
    pidgin_ai_root: Path, query: Any
) -> None:
    summary = pl.load_all(pidgin_ai_root)
    db = pl.experiments_db(pidgin_ai_root)
    assert summary.ok
    assert len(summary.loaded) == 2
    assert not summary.skipped
    assert query(
        db,
        "SELECT experiment_id, conversations, completed, failed, turns "
        "FROM experiment_dashboard ORDER BY 1",
    ) == [("experiment_4700f813", 1, 1, 0, 10), ("experiment_f41ebd59", 5, 5, 0, 100)]
    assert query(
        db,
        "SELECT count(*), min(turn_number), max(turn_number), sum(conversations) "
        "FROM convergence_by_turn WHERE experiment_id = 'experiment_f41ebd59'",
    ) == [(20, 0, 19, 100)]
    again = pl.load_all(pidgin_ai_root)
    assert not again.loaded
    assert len(again.skipped) == 2
