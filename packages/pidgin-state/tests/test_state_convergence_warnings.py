"""``ConvergenceWarningEvent``s reach ``ConversationState.convergence_warnings``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pidgin_events as pe
from pidgin_state import ConvergenceWarning, StateBuilder


def _warn(conv: pe.Conversation, turn: int, score: float, threshold: float) -> None:
    conv.emit(
        pe.ConvergenceWarningEvent(
            conversation_id=conv.id,
            turn_number=turn,
            convergence_score=score,
            threshold=threshold,
        )
    )


def test_warnings_are_kept_in_log_order_with_turns_counted_from_one(
    tmp_path: Path, logs: Any
) -> None:
    crossings = [(1, 0.91, 0.9), (4, 0.95, 0.9)]
    with (
        pe.Experiment.create(tmp_path, name="warned", total_conversations=1) as exp,
        exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=6) as conv,
    ):
        logs.write_turns(conv, 2)
        _warn(conv, *crossings[0])
        logs.write_turns(conv, 3)
        _warn(conv, *crossings[1])
    state = StateBuilder.from_experiment_dir(exp.directory)
    (conversation,) = state.conversations.values()
    assert conversation.convergence_warnings == tuple(
        ConvergenceWarning(turn + 1, score, threshold) for turn, score, threshold in crossings
    )
    assert state.problems == ()
    assert state.to_dict()["conversations"][conversation.id]["convergence_warnings"] == [
        {"turn": turn + 1, "score": score, "threshold": threshold}
        for turn, score, threshold in crossings
    ]


def test_a_warning_without_its_score_is_a_problem_not_a_warning(tmp_path: Path, logs: Any) -> None:
    with (
        pe.Experiment.create(tmp_path, name="broken", total_conversations=1) as exp,
        exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=2) as conv,
    ):
        logs.write_turns(conv, 1)
        log = conv.path
    with open(log, "ab") as stream:
        stream.write(
            b'{"event_type":"ConvergenceWarningEvent","timestamp":"2026-01-01T00:00:00+00:00",'
            b'"conversation_id":"' + conv.id.encode() + b'","turn_number":0}\n'
        )
    state = StateBuilder.from_experiment_dir(exp.directory)
    (conversation,) = state.conversations.values()
    assert conversation.convergence_warnings == ()
    (problem,) = state.problems
    assert problem.startswith(f"{log}:")
    assert "convergence_score" in problem
