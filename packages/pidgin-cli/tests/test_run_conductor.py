"""The conductor writes every step of a conversation, and ends it for the right reason.

In-process, against real files: each test runs a conversation into a real directory and
reads the JSONL back with pidgin-events' reader.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pidgin_cli._conductor import (
    BASIC_SYSTEM_PROMPT,
    ConversationPlan,
    ConversationResult,
    StopRequest,
    run_conversation,
)
from pidgin_cli._models import (
    ChatMessage,
    DriftModel,
    Model,
    ModelError,
    Reply,
    SilentModel,
    TestModel,
)
from pidgin_cli._plan import ConvergenceAction
from pidgin_events import (
    APIErrorEvent,
    Chat,
    ConvergenceWarningEvent,
    ConversationEndEvent,
    ConversationStartEvent,
    ErrorEvent,
    Event,
    Experiment,
    MessageCompleteEvent,
    MessageRequestEvent,
    SystemPromptEvent,
    TurnCompleteEvent,
    read_events,
)


def _events(path: Path) -> list[Event]:
    result = read_events(path)
    assert result.bad_lines == []
    return list(result.events)


def _types(events: Sequence[Event]) -> list[str]:
    return [event.event_type for event in events]


def _chat(
    root: Path, plan: ConversationPlan, models: dict[str, Model] | None = None, **options: Any
) -> tuple[ConversationResult, list[Event]]:
    conversation = Chat.create(root, **plan.start_arguments())
    result = run_conversation(conversation, plan, models=models, **options)
    return result, _events(conversation.path)


class Scripted:
    """A model that raises or answers from a script, one entry per call."""

    def __init__(self, *script: str | BaseException) -> None:
        self.script = list(script)
        self.calls = 0

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        agent_id: str,
        temperature: float | None,
        seed: int | None = None,
    ) -> Reply:
        self.calls += 1
        step = self.script.pop(0) if self.script else "fine"
        if isinstance(step, BaseException):
            raise step
        return Reply(step, 1, 1)


def test_a_chat_writes_every_step_in_order(tmp_path: Path) -> None:
    plan = ConversationPlan(agent_a="local:test", agent_b="silent:none", max_turns=2)
    result, events = _chat(tmp_path, plan)
    turn = [
        "TurnStartEvent",
        "MessageRequestEvent",
        "MessageCompleteEvent",
        "MessageRequestEvent",
        "MessageCompleteEvent",
        "TurnCompleteEvent",
    ]
    assert _types(events) == [
        "ConversationStartEvent",
        "SystemPromptEvent",
        "SystemPromptEvent",
        *turn,
        *turn,
        "ConversationEndEvent",
    ]
    start, system_prompt, end = events[0], events[1], events[-1]
    assert isinstance(start, ConversationStartEvent), start
    assert start.agent_a_model == "local:test"
    assert start.agent_b_model == "silent:none"
    assert start.max_turns == 2
    assert start.config["seed"] is None
    assert isinstance(system_prompt, SystemPromptEvent), system_prompt
    assert system_prompt.prompt == BASIC_SYSTEM_PROMPT
    requests = [e for e in events if isinstance(e, MessageRequestEvent)]
    # system prompt + "[Begin]", then one more message before each later request
    assert [r.message_count for r in requests] == [2, 3, 4, 5]
    assert all(r.conversation_history is None for r in requests)
    messages = [e for e in events if isinstance(e, MessageCompleteEvent)]
    assert [m.turn_number for m in messages] == [0, 0, 1, 1]
    silent = [m for m in messages if m.agent_id == "agent_b"]
    assert {m.message.content for m in silent} == {"\u2026"}
    assert {m.completion_tokens for m in silent} == {0}
    scores = [e.convergence_score for e in events if isinstance(e, TurnCompleteEvent)]
    assert scores == result.scores
    assert all(0 < score < 0.5 for score in result.scores)
    assert isinstance(end, ConversationEndEvent), end
    assert (end.status, end.reason, end.total_turns) == ("completed", "max_turns", 2)
    assert [e.seq for e in events] == list(range(len(events)))
    assert (result.status, result.reason, result.turns) == ("completed", "max_turns", 2)


def test_the_threshold_stops_a_conversation_as_high_convergence(tmp_path: Path) -> None:
    # Two local:test agents say the same thing from the second turn on (score 1.0).
    plan = ConversationPlan(
        agent_a="local:test", agent_b="local:test", max_turns=10, convergence_threshold=0.9
    )
    result, events = _chat(tmp_path, plan)
    end = events[-1]
    assert isinstance(end, ConversationEndEvent), end
    assert (end.status, end.reason) == ("completed", "high_convergence")
    assert end.total_turns == 2
    assert result.scores[-1] >= 0.9 > result.scores[0]


@pytest.mark.parametrize(("action", "warned"), [("warn", True), ("continue", False)])
def test_warn_and_continue_run_every_turn(
    tmp_path: Path, action: ConvergenceAction, warned: bool
) -> None:
    plan = ConversationPlan(
        agent_a="local:test",
        agent_b="local:test",
        max_turns=4,
        convergence_threshold=0.9,
        convergence_action=action,
    )
    seen: list[tuple[int, float, bool]] = []
    result, events = _chat(tmp_path, plan, on_turn=lambda *args: seen.append(args))
    assert (result.status, result.reason, result.turns) == ("completed", "max_turns", 4)
    assert [turn for turn, _, _ in seen] == [0, 1, 2, 3]
    assert any(warn for _, _, warn in seen) is warned
    # A warning when the score crosses the threshold upward, not on every turn above it.
    above = [score >= 0.9 for _, score, _ in seen]
    crossings = [now and not before for before, now in zip([False, *above], above, strict=False)]
    assert [warn for _, _, warn in seen] == [warned and crossed for crossed in crossings]
    assert sum(above) > sum(crossings) > 0  # local:test stays converged: one warning, not three
    recorded = [e for e in events if isinstance(e, ConvergenceWarningEvent)]
    expected = [(turn, score, 0.9) for turn, score, warn in seen if warn]
    assert [(e.turn_number, e.convergence_score, e.threshold) for e in recorded] == expected
    assert "InterruptRequestEvent" not in _types(events)
    start = events[0]
    assert isinstance(start, ConversationStartEvent), start
    assert start.config["convergence_action"] == action


def test_the_stop_flag_ends_a_conversation_as_interrupted(tmp_path: Path) -> None:
    stop = StopRequest()
    said: list[str] = []

    def on_message(agent: str, content: str, turn: int) -> None:
        said.append(agent)
        if len(said) == 3:  # agent A of the second turn has spoken
            stop.request("SIGTERM")

    plan = ConversationPlan(agent_a="local:test", agent_b="local:test", max_turns=50)
    result, events = _chat(tmp_path, plan, stop=stop, on_message=on_message)
    assert (result.status, result.reason, result.turns) == ("interrupted", "SIGTERM", 1)
    assert _types(events)[-3:] == [
        "MessageRequestEvent",
        "MessageCompleteEvent",
        "ConversationEndEvent",
    ]
    end = events[-1]
    assert isinstance(end, ConversationEndEvent), end
    assert (end.status, end.reason, end.total_turns) == ("interrupted", "SIGTERM", 1)


def test_a_provider_error_is_recorded_and_fails_the_conversation(tmp_path: Path) -> None:
    failing = Scripted(ModelError("quota exceeded", provider="acme", code="429"))
    plan = ConversationPlan(agent_a="local:test", agent_b="local:test", max_turns=3)
    result, events = _chat(tmp_path, plan, models={"agent_a": TestModel(), "agent_b": failing})
    error = next(e for e in events if isinstance(e, APIErrorEvent))
    assert error.error_message == "quota exceeded"
    assert (error.provider, error.error_code, error.agent_id) == ("acme", "429", "agent_b")
    end = events[-1]
    assert isinstance(end, ConversationEndEvent), end
    assert (end.status, end.reason, end.error) == ("failed", "api_error", "quota exceeded")
    assert result.status == "failed"


def test_a_retryable_error_is_retried(tmp_path: Path) -> None:
    flaky = Scripted(
        ModelError("overloaded", provider="acme", retryable=True),
        ModelError("overloaded", provider="acme", retryable=True),
        "finally",
    )
    plan = ConversationPlan(
        agent_a="local:test", agent_b="local:test", max_turns=1, retry_delay=0.0
    )
    result, events = _chat(tmp_path, plan, models={"agent_a": flaky, "agent_b": TestModel()})
    errors = [e for e in events if isinstance(e, APIErrorEvent)]
    assert [e.retry_count for e in errors] == [0, 1]
    assert result.status == "completed"
    assert flaky.calls == 3


def test_a_model_exception_is_an_error_event_and_a_failure(tmp_path: Path) -> None:
    broken = Scripted(RuntimeError("segfault in the tokenizer"))
    plan = ConversationPlan(agent_a="local:test", agent_b="local:test", max_turns=2)
    result, events = _chat(tmp_path, plan, models={"agent_a": broken, "agent_b": TestModel()})
    # Exactly an ErrorEvent: APIErrorEvent and ProviderTimeoutEvent are subclasses of it.
    error = next(e for e in events if type(e) is ErrorEvent)
    assert error.error_type == "RuntimeError"
    end = events[-1]
    assert isinstance(end, ConversationEndEvent), end
    assert (end.status, end.reason) == ("failed", "exception")
    assert "segfault" in (result.error or "")


def test_an_empty_reply_ends_the_conversation(tmp_path: Path) -> None:
    plan = ConversationPlan(agent_a="local:test", agent_b="local:test", max_turns=3)
    result, events = _chat(
        tmp_path, plan, models={"agent_a": TestModel(), "agent_b": Scripted("  ")}
    )
    assert "EmptyResponseEvent" in _types(events)
    assert (result.status, result.reason, result.turns) == ("interrupted", "empty_response", 0)


def test_silent_partner_never_counts_as_empty(tmp_path: Path) -> None:
    plan = ConversationPlan(agent_a="silent:none", agent_b="silent:none", max_turns=3)
    result, events = _chat(
        tmp_path, plan, models={"agent_a": SilentModel(), "agent_b": SilentModel()}
    )
    assert "EmptyResponseEvent" not in _types(events)
    assert result.status == "completed"
    assert result.scores == [1.0, 1.0, 1.0]  # two silences are identical


def test_conversations_of_an_experiment_share_its_directory(tmp_path: Path) -> None:
    plan = ConversationPlan(agent_a="local:drift", agent_b="local:drift", max_turns=3, seed=5)
    models: dict[str, Model] = {"agent_a": DriftModel(delay=0), "agent_b": DriftModel(delay=0)}
    with Experiment.create(tmp_path, name="pair", total_conversations=2) as experiment:
        results = []
        for index in range(2):
            indexed = dataclasses.replace(plan, seed=5 + index)
            conversation = experiment.conversation(**indexed.start_arguments())
            results.append(run_conversation(conversation, indexed, models=models))
    logs = sorted(experiment.directory.glob("*_events.jsonl"))
    assert len(logs) == 2
    assert all(_events(log)[-1].experiment_id == experiment.id for log in logs)
    assert results[0].scores != results[1].scores  # different seeds, different conversations
