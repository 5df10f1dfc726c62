"""A reply that streams: its text so far is kept per agent, incrementally, then dropped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pidgin_events as pe
from pidgin_state import StateBuilder


def _chunk(agent: str, text: str, index: int) -> pe.MessageChunkEvent:
    return pe.MessageChunkEvent(
        conversation_id="conv_a", agent_id=agent, chunk=text, chunk_index=index, elapsed_ms=index
    )


def _lines(logs: Any, events: list[pe.Event], first_seq: int) -> bytes:
    return b"".join(logs.our_line(e, first_seq + i) for i, e in enumerate(events))


def test_the_streaming_text_grows_chunk_by_chunk_and_matches_a_cold_read(
    run_dir: Path, logs: Any
) -> None:
    log = run_dir / "conv_a_events.jsonl"
    head = logs.conversation_events("conv_a", 1, end=False)
    log.write_bytes(head)
    seq = len(head.splitlines())
    builder = StateBuilder()
    assert builder.experiment(run_dir).conversations["conv_a"].streaming == {}

    logs.append(log, logs.our_line(pe.TurnStartEvent(conversation_id="conv_a", turn_number=1), seq))
    seq += 1
    pieces = ["Once ", "upon <b>a</b> ", "time\n", "\x1b[31m."]
    for index, piece in enumerate(pieces):
        logs.append(log, logs.our_line(_chunk("agent_a", piece, index), seq))
        seq += 1
        state = builder.experiment(run_dir)
        expected = "".join(pieces[: index + 1])
        assert state.conversations["conv_a"].streaming == {"agent_a": expected}
        assert state == StateBuilder.from_experiment_dir(run_dir)
    read = builder.bytes_read
    assert builder.experiment(run_dir) is state  # nothing appended: nothing read or rebuilt
    assert builder.bytes_read == read


def test_the_text_is_dropped_when_the_message_completes(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    head = logs.conversation_events("conv_a", 1, end=False)
    seq = len(head.splitlines())
    events: list[pe.Event] = [
        pe.TurnStartEvent(conversation_id="conv_a", turn_number=1),
        _chunk("agent_a", "all ", 0),
        _chunk("agent_a", "done", 1),
    ]
    log.write_bytes(head + _lines(logs, events, seq))
    builder = StateBuilder()
    assert builder.experiment(run_dir).conversations["conv_a"].streaming == {"agent_a": "all done"}

    complete = pe.MessageCompleteEvent(
        conversation_id="conv_a",
        agent_id="agent_a",
        message=pe.Message(role="assistant", content="all done", agent_id="agent_a"),
        prompt_tokens=1,
        completion_tokens=2,
        total_tokens=3,
        duration_ms=4,
        turn_number=1,
    )
    more: list[pe.Event] = [complete, _chunk("agent_b", "and ", 0)]
    logs.append(log, _lines(logs, more, seq + len(events)))
    state = builder.experiment(run_dir).conversations["conv_a"]
    assert state.streaming == {"agent_b": "and "}
    assert state.message_count == 3


def test_a_retried_attempt_starts_over_and_a_failed_one_is_dropped(
    run_dir: Path, logs: Any
) -> None:
    log = run_dir / "conv_a_events.jsonl"
    head = logs.conversation_events("conv_a", 1, end=False)
    seq = len(head.splitlines())
    failed = pe.APIErrorEvent(
        conversation_id="conv_a",
        error_type="overloaded",
        error_message="overloaded",
        agent_id="agent_a",
        provider="anthropic",
        retryable=True,
    )
    events: list[pe.Event] = [_chunk("agent_a", "first try", 0), failed]
    log.write_bytes(head + _lines(logs, events, seq))
    builder = StateBuilder()
    assert builder.experiment(run_dir).conversations["conv_a"].streaming == {}

    logs.append(log, _lines(logs, [_chunk("agent_a", "half", 0)], seq + 2))
    assert builder.experiment(run_dir).conversations["conv_a"].streaming == {"agent_a": "half"}
    logs.append(log, _lines(logs, [_chunk("agent_a", "again", 0)], seq + 3))
    assert builder.experiment(run_dir).conversations["conv_a"].streaming == {"agent_a": "again"}


def test_the_text_is_dropped_when_the_conversation_ends(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    head = logs.conversation_events("conv_a", 1, end=False)
    seq = len(head.splitlines())
    end = pe.ConversationEndEvent(
        conversation_id="conv_a", total_turns=1, status="interrupted", reason="stopped"
    )
    log.write_bytes(head + _lines(logs, [_chunk("agent_b", "cut off", 0)], seq))
    builder = StateBuilder()
    assert builder.experiment(run_dir).conversations["conv_a"].streaming == {"agent_b": "cut off"}
    logs.append(log, _lines(logs, [end], seq + 1))
    assert builder.experiment(run_dir).conversations["conv_a"].streaming == {}


def test_a_discarded_turn_drops_the_text(run_dir: Path, logs: Any) -> None:
    log = run_dir / "conv_a_events.jsonl"
    head = logs.conversation_events("conv_a", 1, end=False)
    seq = len(head.splitlines())
    # TurnDiscardedEvent comes with resume (another branch): written here as its line.
    discarded = (
        b'{"event_type":"TurnDiscardedEvent","conversation_id":"conv_a","turn_number":1,'
        b'"timestamp":"2026-01-01T00:00:00+00:00","seq":%d}\n' % (seq + 1)
    )
    log.write_bytes(head + _lines(logs, [_chunk("agent_a", "half a turn", 0)], seq))
    builder = StateBuilder()
    assert builder.experiment(run_dir).conversations["conv_a"].streaming == {
        "agent_a": "half a turn"
    }
    logs.append(log, discarded)
    state = builder.experiment(run_dir)
    assert state.conversations["conv_a"].streaming == {}
    assert state.problem_count == 0
