"""What monitors show: errors, failures, pauses, tokens per model, elapsed time and ETA."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import pidgin_events as pe
from pidgin_state import StateBuilder


def failing_conversation(exp: pe.Experiment, logs: Any) -> None:
    with exp.conversation(agent_a="m:a", agent_b="m:c", conversation_id="conv_fail") as conv:
        logs.write_turns(conv, 2)
        raise RuntimeError("the model fell over")


def test_errors_failures_and_pauses(tmp_path: Path, logs: Any) -> None:
    with pe.Experiment.create(
        tmp_path, name="errors", total_conversations=3, experiment_id="exp_err"
    ) as exp:
        with exp.conversation(
            agent_a="m:a", agent_b="m:b", conversation_id="conv_err", max_turns=5
        ) as conv:
            logs.write_turns(conv, 1)
            conv.emit(
                pe.APIErrorEvent(
                    conversation_id=conv.id,
                    error_type="rate_limit",
                    error_message="429 Too Many Requests",
                    agent_id="agent_a",
                    provider="openai",
                    retryable=True,
                )
            )
            conv.emit(
                pe.ConversationPausedEvent(
                    conversation_id=conv.id, turn_number=1, paused_during="turn"
                )
            )
            paused = StateBuilder.from_experiment_dir(exp.directory)
            assert paused.conversations["conv_err"].paused
            conv.emit(pe.ConversationResumedEvent(conversation_id=conv.id, turn_number=1))
            conv.emit(
                pe.EmptyResponseEvent(
                    conversation_id=conv.id, agent_id="agent_b", turn_number=1, provider="local"
                )
            )
            conv.end("interrupted", reason="empty_response")
        with pytest.raises(RuntimeError, match="fell over"):
            failing_conversation(exp, logs)
        with exp.conversation(agent_a="m:a", agent_b="m:b", conversation_id="conv_ok") as conv:
            logs.write_turns(conv, 1)

    state = StateBuilder.from_experiment_dir(exp.directory)
    assert state.status == "interrupted"  # as ExperimentCompleteEvent says: one was cut short
    assert (state.progress.completed, state.progress.failed, state.progress.interrupted) == (
        1,
        1,
        1,
    )
    errored = state.conversations["conv_err"]
    assert errored.status == "interrupted"
    assert errored.end_reason == "empty_response"
    assert not errored.paused
    assert errored.error_count == 2
    failed = state.conversations["conv_fail"]
    assert failed.status == "failed"
    assert failed.error == "RuntimeError: the model fell over"
    assert failed.turns_completed == 2
    assert state.error_count == 3
    assert [(e.conversation_id, e.event_type, e.message) for e in state.last_errors] == [
        ("conv_err", "APIErrorEvent", "429 Too Many Requests"),
        ("conv_err", "EmptyResponseEvent", "EmptyResponseEvent from local"),
        ("conv_fail", "ErrorEvent", "the model fell over"),
    ]
    log = exp.directory / "conv_err_events.jsonl"
    assert state.last_errors[0].location == f"{log}:8"  # start, 6 lines of one turn, then it
    assert state.last_errors[0].error_type == "rate_limit"
    assert state.tokens.by_model["m:a"].messages == 4
    assert state.tokens.by_model["m:b"].messages == 2
    assert state.tokens.by_model["m:c"].messages == 2
    assert state.tokens.by_agent["agent_b"].prompt == 20 * 4
    assert state.tokens.total.total == 4 * 13 + 4 * 24
    json.dumps(state.to_dict())


def test_elapsed_and_eta_follow_the_observed_rate(tmp_path: Path, logs: Any) -> None:
    with pe.Experiment.create(
        tmp_path, name="eta", total_conversations=4, experiment_id="exp_eta"
    ) as exp:
        with exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=10) as conv:
            logs.write_turns(conv, 10)
        with exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=10) as conv:
            logs.write_turns(conv, 5)
            state = StateBuilder.from_experiment_dir(exp.directory)
            timing = state.timing
            assert timing.running
            assert (timing.turns_completed, timing.turns_planned) == (15, 40)
            assert timing.started is not None
            later = timing.started + timedelta(seconds=30)
            assert timing.elapsed(later) == pytest.approx(30)
            # 15 turns in 30 s: the 25 turns left take 50 s at that rate.
            assert timing.eta(later) == pytest.approx(50)
    done = StateBuilder.from_experiment_dir(exp.directory)
    assert done.timing.eta() is None
    assert done.timing.completed is not None
    assert done.timing.started is not None
    assert done.timing.elapsed() == pytest.approx(
        (done.timing.completed - done.timing.started).total_seconds()
    )
