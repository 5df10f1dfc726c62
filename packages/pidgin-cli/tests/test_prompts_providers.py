"""What the agents are told and what they think, compared with what the vendors' SDKs sent.

Real SDKs against the fake server (``tools/fake_providers``), which keeps every request:
the system prompts and injections in the events are the ones that went over the wire, the
history of every request can be rebuilt from the events alone, and Anthropic's signed
thinking goes back unchanged in the agent's later requests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pidgin_cli._awareness import AgentPrompts, Injection, resolve_awareness
from pidgin_cli._conductor import COLD_START, ConversationPlan, StopRequest, run_conversation
from pidgin_cli._models import MODELS, ChatMessage, ModelError
from pidgin_cli._prompting import Prompting
from pidgin_cli._providers import ProviderModel
from pidgin_cli._requests import RequestSettings
from pidgin_cli._thinking import Thought
from pidgin_events import Experiment, validate_file

NAMES = {"agent_a": "Claude Sonnet", "agent_b": "GPT-4o"}


def _wires() -> Any:
    """The fake server's wire module (the ``providers`` fixture put tools/ on the path)."""
    import importlib

    return importlib.import_module("fake_providers._wires")


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["event_type"] == kind]


def _converse(
    root: Path, prompting: Prompting, turns: int, models: tuple[str, str] = ("sonnet", "gpt-4o")
) -> list[dict[str, Any]]:
    plan = ConversationPlan(
        agent_a=models[0], agent_b=models[1], max_turns=turns, seed=3, prompting=prompting
    )
    settings = RequestSettings(backoff_base=0.01, chunk_interval=1e-9)
    with Experiment.create(root, name="prompts", total_conversations=1) as experiment:
        conversation = experiment.conversation(**plan.start_arguments())
        result = run_conversation(conversation, plan, settings=settings, stop=StopRequest())
        path = conversation.path
    assert (result.status, result.reason) == ("completed", "max_turns"), result.error
    assert validate_file(path) == []
    return _events(path)


def history_from_events(events: list[dict[str, Any]], agent: str) -> list[list[dict[str, str]]]:
    """The messages of every request ``agent`` was sent, rebuilt from the log alone.

    The rule pidgin-events' README states: the agent's ``SystemPromptEvent``, then the
    conversation's initial prompt (``[Begin]`` without one), then in log order every
    ``MessageCompleteEvent`` (the agent's own as ``assistant``, the other's as ``user``)
    and the ``PromptInjectionEvent``s addressed to the agent, with their role; each
    ``MessageRequestEvent`` of the agent is sent what has been rebuilt so far.
    """
    start = _of(events, "ConversationStartEvent")[0]
    history: list[dict[str, str]] = []
    requests: list[list[dict[str, str]]] = []
    for event in events:
        kind = event["event_type"]
        if kind == "SystemPromptEvent" and event["agent_id"] == agent:
            history.insert(0, {"role": "system", "content": event["prompt"]})
            history.append({"role": "user", "content": start["initial_prompt"] or COLD_START})
        elif kind == "PromptInjectionEvent" and event["agent_id"] == agent:
            history.append({"role": event["role"], "content": event["content"]})
        elif kind == "MessageCompleteEvent":
            own = event["agent_id"] == agent
            role = "assistant" if own else "user"
            history.append({"role": role, "content": event["message"]["content"]})
        elif kind == "MessageRequestEvent" and event["agent_id"] == agent:
            assert event["message_count"] == len(history)
            requests.append([dict(message) for message in history])
    return requests


def test_awareness_and_injections_are_recorded_exactly_as_sent(
    providers: Any, tmp_path: Path
) -> None:
    awareness = tmp_path / "nudges.yaml"
    awareness.write_text(
        "name: nudges\n"
        "base: research\n"
        "prompts:\n"
        "  1:\n"
        "    both: Speak only of rivers from now on.\n"
        "  2:\n"
        "    agent_b: {role: user, content: 'An aside, for B alone: be brief.'}\n"
        "    agent_a: {role: system, content: 'A, ask a question.'}\n",
        encoding="utf-8",
    )
    prompting = Prompting(
        prompts_a=resolve_awareness(str(awareness), "agent_a", NAMES),
        prompts_b=resolve_awareness(str(awareness), "agent_b", NAMES),
    )
    events = _converse(tmp_path, prompting, turns=3)

    injections = _of(events, "PromptInjectionEvent")
    assert [(e["turn_number"], e["agent_id"], e["role"], e["content"]) for e in injections] == [
        (1, "agent_a", "system", "Speak only of rivers from now on."),
        (1, "agent_b", "system", "Speak only of rivers from now on."),
        (2, "agent_a", "system", "A, ask a question."),
        (2, "agent_b", "user", "An aside, for B alone: be brief."),
    ]
    assert {e["source"] for e in injections} == {str(awareness)}
    # each injection is written before the request that first carries it
    for injection in injections:
        position = events.index(injection)
        following = [
            e
            for e in events[position:]
            if e["event_type"] == "MessageRequestEvent" and e["agent_id"] == injection["agent_id"]
        ]
        assert following[0]["turn_number"] == injection["turn_number"]

    system = {e["agent_id"]: e["prompt"] for e in _of(events, "SystemPromptEvent")}
    assert system == {
        "agent_a": prompting.prompts_a.system,
        "agent_b": prompting.prompts_b.system,
    }
    assert "You are Claude Sonnet" in system["agent_a"]
    assert "You are GPT-4o" in system["agent_b"]

    sent = [r for r in providers.requests if r.facts is not None]
    openai = [r.body["messages"] for r in sent if r.api == "openai"]
    anthropic = [r.body for r in sent if r.api == "anthropic"]
    # OpenAI takes every role in place: the rebuilt history is exactly what went out
    assert history_from_events(events, "agent_b") == openai
    # Anthropic: the system prompt apart, a mid-conversation system prompt in place as user
    # text, consecutive user messages joined; the rebuilt history gives exactly that body
    rebuilt_a = history_from_events(events, "agent_a")
    assert len(rebuilt_a) == len(anthropic) == 3
    for view, body in zip(rebuilt_a, anthropic, strict=True):
        assert body["system"] == view[0]["content"] == system["agent_a"]
        expected: list[dict[str, str]] = []
        for message in view[1:]:
            role = "user" if message["role"] == "system" else message["role"]
            if expected and expected[-1]["role"] == role:
                expected[-1]["content"] += "\n\n" + message["content"]
            else:
                expected.append({"role": role, "content": message["content"]})
        assert body["messages"] == expected
    assert "Speak only of rivers from now on." in anthropic[1]["messages"][-1]["content"]


def test_anthropic_thinking_is_recorded_apart_and_sent_back_sealed(
    providers: Any, tmp_path: Path
) -> None:
    thinking_signature = _wires().thinking_signature
    budget = 2048
    events = _converse(tmp_path, Prompting(think_a=True, think_budget=budget), turns=3)
    sent = [r for r in providers.requests if r.facts is not None]
    anthropic = [r for r in sent if r.api == "anthropic"]
    openai = [r for r in sent if r.api == "openai"]
    assert len(anthropic) == len(openai) == 3
    for request in anthropic:
        assert request.body["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert request.body["max_tokens"] > budget
    assert all("thinking" not in request.body for request in openai)

    thoughts = _of(events, "ThinkingCompleteEvent")
    assert [(t["agent_id"], t["turn_number"]) for t in thoughts] == [
        ("agent_a", 0),
        ("agent_a", 1),
        ("agent_a", 2),
    ]
    messages = [m for m in _of(events, "MessageCompleteEvent") if m["agent_id"] == "agent_a"]
    for thought, message, request in zip(thoughts, messages, anthropic, strict=True):
        assert thought["thinking_content"] == request.facts.thinking
        assert thought["signature"] == thinking_signature(request.facts.thinking)
        assert thought["thinking_tokens"] is None  # Anthropic reports no separate count
        # never mixed into the message, which is the text alone
        assert message["message"]["content"] == request.facts.text
        assert request.facts.thinking not in message["message"]["content"]
        assert events.index(thought) < events.index(message)
        assert message["completion_tokens"] == request.facts.completion_tokens
    requested = [r for r in _of(events, "MessageRequestEvent") if r["agent_id"] == "agent_a"]
    assert {(r["thinking_enabled"], r["thinking_budget"]) for r in requested} == {(True, budget)}

    # Each later request carries every earlier trace, sealed, ahead of its message's text
    for turn, request in enumerate(anthropic):
        assistant = [m for m in request.body["messages"] if m["role"] == "assistant"]
        assert len(assistant) == turn
        for earlier, message in zip(thoughts, assistant, strict=False):
            thinking, text = message["content"]
            assert thinking == {
                "type": "thinking",
                "thinking": earlier["thinking_content"],
                "signature": earlier["signature"],
            }
            assert text["type"] == "text"


def test_gemini_thought_parts_are_the_trace_with_their_token_count(
    providers: Any, tmp_path: Path
) -> None:
    tokens = _wires().tokens
    budget = 1500
    prompting = Prompting(think_a=True, think_budget=budget)
    events = _converse(tmp_path, prompting, turns=2, models=("gemini", "gpt-4o"))
    google = [r for r in providers.requests if r.facts is not None and r.api == "google"]
    assert len(google) == 2
    for request in google:
        generation = request.body["generationConfig"]
        config = generation.get("thinkingConfig") or generation["thinking_config"]
        assert {key.replace("_", "").lower(): value for key, value in config.items()} == {
            "thinkingbudget": budget,
            "includethoughts": True,
        }
    thoughts = _of(events, "ThinkingCompleteEvent")
    messages = [m for m in _of(events, "MessageCompleteEvent") if m["agent_id"] == "agent_a"]
    assert len(thoughts) == len(messages) == 2
    for thought, message, request in zip(thoughts, messages, google, strict=True):
        assert thought["thinking_content"] == request.facts.thinking
        assert thought["thinking_tokens"] == tokens(request.facts.thinking)
        assert thought["signature"] is None
        assert message["message"]["content"] == request.facts.text
        assert message["completion_tokens"] == request.facts.completion_tokens
        # what Gemini sends back is the text alone: thoughts are not part of its history
        assert request.facts.thinking not in json.dumps(request.body)


@pytest.mark.parametrize(("model", "shown"), [("o3", False), ("xai:grok-3-mini", True)])
def test_openai_reasoning_is_a_count_or_the_text_the_server_sends(
    providers: Any, tmp_path: Path, model: str, shown: bool
) -> None:
    tokens = _wires().tokens
    prompting = Prompting(think_b=True, think_budget=20_000)
    events = _converse(tmp_path, prompting, turns=2, models=("gpt-4o", model))
    chat = [r for r in providers.requests if r.facts is not None and r.api == "openai"]
    thinking = [r for r in chat if "reasoning_effort" in r.body]
    assert len(chat) == 4
    assert len(thinking) == 2  # only agent B's requests
    assert {r.body["reasoning_effort"] for r in thinking} == {"high"}
    thoughts = _of(events, "ThinkingCompleteEvent")
    assert [t["agent_id"] for t in thoughts] == ["agent_b", "agent_b"]
    for thought, request in zip(thoughts, thinking, strict=True):
        assert thought["thinking_tokens"] == tokens(request.facts.thinking)
        assert thought["thinking_content"] == (request.facts.thinking if shown else "")


def test_a_tampered_trace_is_refused_by_the_fake_as_by_the_api(providers: Any) -> None:
    model = MODELS.create("sonnet")
    assert isinstance(model, ProviderModel)  # the Model protocol has no thinking_budget
    history = [
        ChatMessage("user", "[Begin]"),
        ChatMessage("assistant", "hello", thought=Thought("I think", None, "forged")),
        ChatMessage("user", "and then?"),
    ]
    with pytest.raises(ModelError, match="signature"):
        model.generate(history, agent_id="agent_a", temperature=None, thinking_budget=2048)


def test_prompts_resolve_to_plain_data_that_survives_the_runner_spec() -> None:
    prompting = Prompting(
        prompts_a=AgentPrompts("f.yaml", "sys", (Injection(2, "user", "hi"),)),
        choose_names=True,
        think_b=True,
        think_budget=4096,
    )
    assert Prompting.from_dict(json.loads(json.dumps(prompting.to_dict()))) == prompting
