"""Experiments and chats written by pidgin_events load into every table correctly."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

import pidgin_events as pe
import pidgin_load as pl


def test_experiment_rows_match_what_was_written(
    tmp_path: Path, write_experiment: Any, counts: Any, query: Any
) -> None:
    directory = write_experiment(tmp_path, conversations=3, turns=4, experiment_id="exp_rows")
    summary = pl.load_experiment(directory)
    db = tmp_path / "experiments" / "experiments.duckdb"

    assert pl.experiments_db(tmp_path) == db
    # per conversation: start, system prompt, 4 x (turn start, 2 requests, 2 messages,
    # turn complete), end = 27; plus 2 experiment events
    assert counts(db, "exp_rows") == {
        "experiments": 1,
        "conversations": 3,
        "turns": 12,
        "messages": 24,
        "token_usage": 6,
        "errors": 0,
        "events": 3 * 27 + 2,
        "load_errors": 0,
        "loads": 1,
        "turn_metrics": 12,  # one per turn
        "thinking": 0,  # no ThinkingCompleteEvent written
    }
    assert summary.rows == counts(db, "exp_rows")
    assert query(
        db,
        "SELECT DISTINCT agent_a_model, agent_b_model, temperature_a, temperature_b, max_turns, "
        "initial_prompt, status, turns, reported_total_turns, final_convergence, messages, "
        "prompt_tokens, completion_tokens FROM conversations",
    ) == [
        (
            "local:test",
            "local:echo",
            0.3,
            0.9,
            4,
            "Say hello",
            "completed",
            4,
            4,
            0.4,
            8,
            sum(100 + t + 200 + t for t in range(4)),
            sum(5 + t + 7 + t for t in range(4)),
        )
    ]
    assert query(
        db,
        "SELECT turn_number, turn, convergence_score, agent_a_chars, agent_b_chars, "
        "agent_a_tokens, agent_b_tokens FROM turns WHERE conversation_id = "
        "(SELECT min(conversation_id) FROM conversations) ORDER BY turn_number",
    ) == [(t, t + 1, round(0.1 * (t + 1), 2), 10 + t, 2 * (20 + t), 5 + t, 7 + t) for t in range(4)]
    assert query(
        db,
        "SELECT agent_id, role, model, turn_number, turn, chars, prompt_tokens, "
        "completion_tokens, total_tokens, duration_ms FROM messages WHERE conversation_id = "
        "(SELECT min(conversation_id) FROM conversations) ORDER BY seq",
    ) == [
        row
        for t in range(4)
        for row in (
            (
                "agent_a",
                "agent_a",
                "local:test",
                t,
                t + 1,
                10 + t,
                100 + t,
                5 + t,
                105 + 2 * t,
                40 + t,
            ),
            (
                "agent_b",
                "agent_b",
                "local:echo",
                t,
                t + 1,
                2 * (20 + t),
                200 + t,
                7 + t,
                207 + 2 * t,
                60 + t,
            ),
        )
    ]
    assert query(
        db,
        "SELECT name, kind, source_format, status, planned_conversations, conversations, "
        "completed_conversations, events FROM experiments",
    ) == [("greetings", "experiment", "pidgin", "completed", 3, 3, 3, 83)]
    # events keep the writer's own seq and the experiment id from the directory
    assert query(
        db,
        "SELECT count(*) FROM events WHERE seq <> line_number - 1 OR experiment_id <> 'exp_rows'",
    ) == [(0,)]


def test_token_usage_sums_per_agent_with_model(
    tmp_path: Path, write_experiment: Any, query: Any
) -> None:
    directory = write_experiment(tmp_path, conversations=1, turns=2, experiment_id="exp_tok")
    with pe.EventWriter(next(directory.glob("*_events.jsonl")), experiment_id="exp_tok") as w:
        conversation_id = pe.conversation_id_of_log(w.path.name)
        assert conversation_id is not None
        w.emit(
            pe.TokenUsageEvent(
                conversation_id=conversation_id,
                provider="local",
                tokens_used=999,
                tokens_per_minute_limit=10_000,
                current_usage_rate=0.5,
                agent_id="agent_a",
            )
        )
    db = tmp_path / "db.duckdb"
    pl.load_experiment(directory, db)
    assert query(
        db,
        "SELECT agent_id, model, provider, messages, prompt_tokens, completion_tokens, "
        "provider_reports, provider_reported_tokens FROM token_usage ORDER BY agent_id",
    ) == [
        ("agent_a", "local:test", "local", 2, 201, 11, 1, 999),
        ("agent_b", "local:echo", None, 2, 401, 15, 0, None),
    ]


def test_thinking_has_its_own_table_and_chosen_names_reach_conversations(
    tmp_path: Path, write_experiment: Any, query: Any
) -> None:
    turns = 3
    directory = write_experiment(
        tmp_path, conversations=2, turns=turns, experiment_id="exp_think", thinking=True
    )
    db = tmp_path / "db.duckdb"
    summary = pl.load_experiment(directory, db)
    assert summary.rows["thinking"] == 2 * turns
    conversations = [row[0] for row in query(db, "SELECT conversation_id FROM conversations")]
    assert len(conversations) == 2
    traces = query(
        db,
        "SELECT conversation_id, agent_id, model, turn_number, turn, thinking_content, "
        "thinking_tokens FROM thinking ORDER BY conversation_id, turn_number",
    )
    assert traces == [
        (conv, "agent_a", "local:test", turn, turn + 1, f"thought {turn}", 3 + turn)
        for conv in sorted(conversations)
        for turn in range(turns)
    ]
    # the traces stay out of the messages, whose text is what the agents said
    said = query(db, "SELECT DISTINCT content FROM messages WHERE content LIKE 'thought%'")
    assert said == []
    names = query(
        db,
        "SELECT agent_a_chosen_name, agent_b_chosen_name FROM conversations ORDER BY started_at",
    )
    assert names == [("Ada-0", "Bo-0"), ("Ada-1", "Bo-1")]


def test_failed_conversation_is_counted_and_its_error_recorded(
    tmp_path: Path, write_experiment: Any, query: Any
) -> None:
    directory = write_experiment(tmp_path, conversations=2, turns=1, fail_last=True)
    db = tmp_path / "db.duckdb"
    pl.load_experiment(directory, db)
    assert query(db, "SELECT status, count(*) FROM conversations GROUP BY ALL ORDER BY 1") == [
        ("completed", 1),
        ("failed", 1),
    ]
    assert query(db, "SELECT event_type, error_type, error_message FROM errors") == [
        ("ErrorEvent", "RuntimeError", "provider exploded")
    ]
    assert query(db, "SELECT conversations, completed, failed FROM experiment_dashboard") == [
        (2, 1, 1)
    ]
    assert query(db, "SELECT errors FROM conversations WHERE status = 'failed'") == [(1,)]


def test_marker_and_database_load_event_after_commit(tmp_path: Path, write_experiment: Any) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_mark")
    db = tmp_path / "db.duckdb"
    log_size = (directory / pe.EXPERIMENT_LOG).stat().st_size

    summary = pl.load_experiment(directory, db)

    marker_path = directory / pe.LOADED_MARKER
    marker = json.loads(marker_path.read_text())
    assert stat.S_IMODE(marker_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert marker["db_path"] == str(db)
    assert marker["schema_version"] == pl.SCHEMA_VERSION
    assert marker["experiment_id"] == "exp_mark"
    assert marker["rows"] == summary.rows
    assert marker["fingerprint"].startswith("stat-v1:")
    files = {entry["name"]: entry for entry in marker["files"]}
    assert set(files) == {pe.EXPERIMENT_LOG} | {p.name for p in directory.glob("*_events.jsonl")}
    assert files[pe.EXPERIMENT_LOG] == {
        "name": pe.EXPERIMENT_LOG,
        "size": log_size,
        "mtime_ns": None,
    }
    last = pe.read_events(directory / pe.EXPERIMENT_LOG).events[-1]
    assert isinstance(last, pe.DatabaseLoadEvent)
    assert (last.status, last.db_path, dict(last.rows)) == ("loaded", str(db), summary.rows)
    assert not list(directory.glob("*.tmp"))


def test_chats_go_to_the_chats_database(tmp_path: Path, counts: Any, query: Any) -> None:
    with pe.Chat.create(tmp_path, agent_a="local:test", agent_b="local:echo") as chat:
        chat.turn_start()
        chat.message("agent_a", "hi", completion_tokens=1)
        chat.message("agent_b", "hello", completion_tokens=2)
        chat.turn_complete(0.25)
    assert pl.default_db_path(chat.directory) == pl.chats_db()
    assert pl.chats_db() == tmp_path / "home-pidgin" / "chats.duckdb"  # $PIDGIN_CHATS_DB

    summary = pl.load_experiment(chat.directory)

    run_id = chat.directory.name
    assert [o.experiment_id for o in summary.loaded] == [run_id]
    assert counts(pl.chats_db(), run_id)["turns"] == 1
    assert query(
        pl.chats_db(),
        "SELECT kind, status, conversations, completed_at IS NOT NULL FROM experiments",
    ) == [("chat", "completed", 1, True)]


def test_chats_db_default_is_in_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(pl.CHATS_DB_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert pl.chats_db() == tmp_path / ".pidgin" / "chats.duckdb"


def test_load_all_sends_experiments_and_chats_to_their_databases(
    tmp_path: Path, write_experiment: Any, counts: Any
) -> None:
    write_experiment(tmp_path, experiment_id="exp_one")
    write_experiment(tmp_path, experiment_id="exp_two")
    with pe.Chat.create(tmp_path, agent_a="local:test", agent_b="local:echo") as chat:
        chat.turn_start()
        chat.turn_complete()
    seen: list[tuple[int, int, str]] = []

    summary = pl.load_all(
        tmp_path, progress=lambda done, total, label: seen.append((done, total, label))
    )

    assert summary.ok
    assert len(summary.loaded) == 3
    assert [done for done, _, _ in seen] == [1, 2, 3]
    assert {t for _, t, _ in seen} == {3}
    assert counts(pl.experiments_db(tmp_path), "exp_one")["conversations"] == 2
    assert counts(pl.experiments_db(tmp_path), "exp_two")["conversations"] == 2
    assert counts(pl.chats_db(), chat.directory.name)["conversations"] == 1
    assert counts(pl.experiments_db(tmp_path), chat.directory.name)["experiments"] == 0

    without_chats = pl.load_all(tmp_path, include_chats=False, force=True)
    assert len(without_chats.loaded) == 2

    one_db = tmp_path / "one.duckdb"
    everything = pl.load_all(tmp_path, one_db)
    assert len(everything.loaded) == 3
    assert counts(one_db, chat.directory.name)["experiments"] == 1


def test_crashed_experiment_loads_as_interrupted(tmp_path: Path, query: Any) -> None:
    """The state's words, from the state's rule: what every screen shows for it."""
    from pidgin_state import StateBuilder

    exp = pe.Experiment.create(tmp_path, name="crashy", experiment_id="exp_crash")
    conv = exp.conversation(agent_a="local:test", agent_b="local:test")
    conv.turn_start()
    conv.message("agent_a", "hi")
    conv.turn_complete(0.5)
    conv.turn_start()
    # a crash: no end events, and the run lock goes away with the process
    exp._lock.release()
    db = tmp_path / "db.duckdb"

    pl.load_experiment(exp.directory, db)

    state = StateBuilder.from_experiment_dir(exp.directory)
    assert (state.status, state.conversations[conv.id].status) == ("interrupted", "interrupted")
    assert query(db, "SELECT status, turns, ended_at FROM conversations") == [
        ("interrupted", 1, None)
    ]
    assert query(
        db, "SELECT status, conversations, interrupted_conversations FROM experiments"
    ) == [("interrupted", 1, 1)]


def test_messages_of_a_discarded_turn_stay_events_but_are_no_messages(
    tmp_path: Path, query: Any
) -> None:
    """A turn left half done and run again on resume counts once, with its second messages."""
    exp = pe.Experiment.create(tmp_path, name="resumed", experiment_id="exp_discard")
    conv = exp.conversation(agent_a="local:test", agent_b="local:echo")
    conv.turn_start()
    conv.message("agent_a", "a, turn 1")
    conv.message("agent_b", "b, turn 1")
    conv.turn_complete(0.1)
    conv.turn_start()
    conv.message("agent_a", "a, turn 2, left half done")
    exp._open.discard(conv.id)  # its process died here
    again = exp.resume_conversation(conv.id, turns_completed=1)
    again.emit(pe.TurnDiscardedEvent(conversation_id=conv.id, turn_number=1, messages_discarded=1))
    again.turn_start()
    again.message("agent_a", "a, turn 2")
    again.message("agent_b", "b, turn 2")
    again.turn_complete(0.2)
    db = tmp_path / "db.duckdb"

    assert pl.load_experiment(exp.directory, db, allow_running=True).ok

    assert query(
        db, "SELECT turn, agent_id, model, content FROM messages ORDER BY line_number"
    ) == [
        (1, "agent_a", "local:test", "a, turn 1"),
        (1, "agent_b", "local:echo", "b, turn 1"),
        (2, "agent_a", "local:test", "a, turn 2"),
        (2, "agent_b", "local:echo", "b, turn 2"),
    ]
    assert query(db, "SELECT count(*) FROM events WHERE event_type = 'MessageCompleteEvent'") == [
        (5,)
    ]
