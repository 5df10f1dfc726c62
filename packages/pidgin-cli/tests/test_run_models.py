"""The built-in models and the registry real providers plug into."""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import pytest

from pidgin_cli._convergence import convergence_score
from pidgin_cli._models import (
    MODELS,
    ChatMessage,
    DriftModel,
    Model,
    ModelRegistry,
    Reply,
    SilentModel,
    TestModel,
    UnknownModelError,
    estimate_tokens,
)


def _converse(
    model_a: Model, model_b: Model, turns: int, seed: int, prompt: str = "[Begin]"
) -> list[tuple[str, str]]:
    """Run two models the way the conductor does; returns (agent, content) per message."""
    history: list[tuple[str, str]] = [("human", prompt)]
    for _ in range(turns):
        for agent, model in (("agent_a", model_a), ("agent_b", model_b)):
            view = [
                ChatMessage("assistant" if speaker == agent else "user", content)
                for speaker, content in history
            ]
            reply = model.generate(view, agent_id=agent, temperature=None, seed=seed)
            history.append((agent, reply.content))
    return history[1:]


def _scores(history: Sequence[tuple[str, str]]) -> list[float]:
    return [convergence_score(history[i][1], history[i + 1][1]) for i in range(0, len(history), 2)]


# --- the registry ------------------------------------------------------------------------


def test_builtins_are_registered_with_pidgin_ai_aliases() -> None:
    names = {info.name for info in MODELS.available()}
    assert {"local:test", "silent:none", "local:drift"} <= names
    assert MODELS.resolve("test").name == "local:test"
    assert MODELS.resolve("silent").name == "silent:none"
    assert MODELS.resolve("silent:none").provider == "silent"


def test_an_unknown_model_suggests_the_closest_names() -> None:
    with pytest.raises(UnknownModelError) as error:
        MODELS.resolve("local:tset")
    message = str(error.value)
    assert message.startswith("unknown model 'local:tset'. Did you mean local:test")
    assert "local:drift" not in message


def test_a_provider_plugs_in_by_registering_a_factory() -> None:
    class Echo:
        def generate(
            self,
            messages: Sequence[ChatMessage],
            *,
            agent_id: str,
            temperature: float | None,
            seed: int | None = None,
        ) -> Reply:
            return Reply(messages[-1].content, 0, 0)

    registry = ModelRegistry()
    registry.register("echo:v1", Echo, description="says it back", aliases=("echo",))
    model = registry.create("echo")
    assert model.generate([ChatMessage("user", "hi")], agent_id="agent_a", temperature=None) == (
        Reply("hi", 0, 0)
    )
    with pytest.raises(ValueError, match="provider:model"):
        registry.register("nocolon", Echo, description="bad")


def test_tokens_are_estimated_at_four_characters_each() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2


# --- local:test --------------------------------------------------------------------------


def _legacy_requests(legacy: Path) -> list[tuple[list[ChatMessage], str, str]]:
    """(what the agent was sent, its id, what pidgin-ai's local:test answered)."""
    cases = []
    for log in sorted(legacy.glob("*/events_*.jsonl")):
        events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        start = next(e for e in events if e["event_type"] == "ConversationStartEvent")
        models = {"agent_a": start["agent_a"]["model"], "agent_b": start["agent_b"]["model"]}
        pending: dict[str, list[ChatMessage]] = {}
        for event in events:
            agent = event.get("agent_id")
            if event["event_type"] == "MessageRequestEvent":
                pending[agent] = [
                    ChatMessage(
                        "assistant"
                        if m["agent_id"] == agent
                        else "system"
                        if m["agent_id"] == "system"
                        else "user",
                        m["content"],
                    )
                    for m in event["conversation_history"]
                ]
            elif event["event_type"] == "MessageCompleteEvent" and models[agent] == "local:test":
                cases.append((pending[agent], agent, event["message"]["content"]))
    return cases


def test_local_test_answers_exactly_as_pidgin_ai_did(legacy_fixtures: Path) -> None:
    cases = _legacy_requests(legacy_fixtures)
    model = TestModel()
    for messages, agent, expected in cases:
        reply = model.generate(messages, agent_id=agent, temperature=None)
        # pidgin-ai streamed word by word and left a trailing space; the words are the same.
        assert reply.content == expected.rstrip()
    assert len(cases) > 100


def test_local_test_falls_into_one_word_agreement_after_ten_replies() -> None:
    history = _converse(TestModel(), TestModel(), turns=14, seed=0)
    assert history[-1][1] in ("Indeed.", "Agreed.", "Precisely.", "Yes.")
    assert _scores(history)[-1] == 1.0


# --- silent:none -------------------------------------------------------------------------


def test_silent_none_says_an_ellipsis_that_costs_nothing() -> None:
    reply = SilentModel().generate(
        [ChatMessage("user", "Hello there")], agent_id="agent_b", temperature=0.5
    )
    assert reply.content == "\u2026"
    assert reply.completion_tokens == 0
    assert reply.prompt_tokens == estimate_tokens("Hello there")


# --- local:drift -------------------------------------------------------------------------


def test_drift_is_deterministic_per_seed_and_varies_between_seeds() -> None:
    model = DriftModel(delay=0)
    first = _converse(model, model, turns=8, seed=42)
    assert first == _converse(DriftModel(delay=0), DriftModel(delay=0), turns=8, seed=42)
    assert first != _converse(model, model, turns=8, seed=43)
    contents = [content for _, content in first]
    assert len(set(contents)) == len(contents)  # no reply repeats another


def test_drift_convergence_rises_over_a_conversation_on_average() -> None:
    model = DriftModel(delay=0)
    curves = [_scores(_converse(model, model, turns=16, seed=seed)) for seed in range(20)]
    early = statistics.mean(score for curve in curves for score in curve[:3])
    late = statistics.mean(score for curve in curves for score in curve[-4:])
    assert late > early + 0.2
    # Noisy, not a staircase: some conversation dips between consecutive turns.
    assert any(b < a for curve in curves for a, b in itertools.pairwise(curve))
    assert all(0.0 <= score < 1.0 for curve in curves for score in curve[:3])


def test_drift_agents_start_with_different_vocabularies() -> None:
    model = DriftModel(delay=0)
    first_turn = _converse(model, model, turns=1, seed=7)
    words_a = set(first_turn[0][1].lower().split())
    words_b = set(first_turn[1][1].lower().split())
    assert len(words_a & words_b) < min(len(words_a), len(words_b))
