"""Each provider through its real SDK against the fake server: replies, usage, errors.

The server speaks each API's wire format (JSON, SSE streams, usage blocks, error bodies,
``Retry-After``); expected values come from what the server recorded it sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from pidgin_cli._models import MODELS, ChatMessage, ModelError
from pidgin_cli._providers import ProviderModel, configure, entry_for

# (name on the command line, API the server sees)
PROVIDERS = [
    ("sonnet", "anthropic"),
    ("gpt-4o", "openai"),
    ("gemini", "google"),
    ("grok", "openai"),
    ("ollama:qwen2.5", "openai"),
    ("openai-compatible:llama-3.1-8b", "openai"),
]
IDS = [name for name, _ in PROVIDERS]

VIEW = [
    ChatMessage("system", "You are an AI having a conversation with another AI."),
    ChatMessage("user", "[Begin]"),
    ChatMessage("user", "Tell me about tides and lanterns."),
    ChatMessage("assistant", "Tides carry lanterns."),
    ChatMessage("user", "What do the lanterns remember?"),
]


def _model(name: str) -> ProviderModel:
    model = MODELS.create(name)
    assert isinstance(model, ProviderModel)
    return model


def _model_id(name: str) -> str:
    return MODELS.resolve(name).name.partition(":")[2]


def _generations(server: Any) -> list[Any]:
    return [request for request in server.requests if request.facts is not None]


@pytest.mark.parametrize(("name", "api"), PROVIDERS, ids=IDS)
def test_streamed_replies_reuse_one_connection(providers: Any, name: str, api: str) -> None:
    # A stream read only up to its last event leaves the body unfinished, and the client
    # then discards the connection: every request would pay a new connect (and TLS).
    model = _model(name)
    before = providers.connections
    chunks: list[str] = []
    for _ in range(4):
        model.generate(VIEW, agent_id="agent_a", temperature=None, on_chunk=chunks.append)
    assert len(_generations(providers)) == 4
    assert all(request.api == api for request in _generations(providers))
    assert chunks
    assert providers.connections - before <= 1


@pytest.mark.parametrize(("name", "api"), PROVIDERS, ids=IDS)
def test_reply_carries_the_providers_usage_request_id_model_and_stop_reason(
    providers: Any, name: str, api: str
) -> None:
    chunks: list[str] = []
    reply = _model(name).generate(
        VIEW, agent_id="agent_a", temperature=0.7, seed=11, on_chunk=chunks.append
    )
    (request,) = _generations(providers)
    sent = request.facts
    assert request.api == api
    assert reply.content == sent.text == "".join(chunks)
    assert len(chunks) == len(sent.pieces) > 1  # streamed, piece by piece
    assert reply.prompt_tokens == sent.prompt_tokens
    assert reply.completion_tokens == sent.completion_tokens
    assert reply.request_id == sent.request_id
    assert reply.model_version == sent.version
    assert reply.stop_reason == {"anthropic": "end_turn", "openai": "stop", "google": "STOP"}[api]


@pytest.mark.parametrize(("name", "api"), PROVIDERS, ids=IDS)
def test_cached_tokens_are_reported_and_priced_at_the_cache_price(
    providers: Any, name: str, api: str
) -> None:
    providers.behaviour.cache_read = 10
    reply = _model(name).generate(VIEW, agent_id="agent_a", temperature=None)
    (request,) = _generations(providers)
    assert reply.cache_read_tokens == 10
    assert reply.prompt_tokens == request.facts.prompt_tokens  # cached ones included
    entry = entry_for(name)
    if entry is not None and entry.input_per_million:
        fresh = reply.prompt_tokens - 10
        read_price = entry.cache_read_per_million or entry.input_per_million
        expected = (
            fresh * entry.input_per_million
            + 10 * read_price
            + reply.completion_tokens * (entry.output_per_million or 0)
        ) / 1e6
        assert entry.cost(reply.prompt_tokens, reply.completion_tokens, 10, 0) == pytest.approx(
            expected
        )


def test_each_api_gets_the_request_shape_of_its_reference(
    providers: Any, provider_key: str
) -> None:
    for name in ("sonnet", "gpt-4o", "gemini"):
        _model(name).generate(VIEW, agent_id="agent_b", temperature=0.5, seed=3, on_chunk=print)
    for name in ("sonnet", "gpt-4o", "gemini"):  # without a chunk callback: no stream
        _model(name).generate(VIEW, agent_id="agent_b", temperature=0.5, seed=3)
    anthropic, openai, google, *whole = _generations(providers)
    assert "stream" not in whole[0].body
    assert "stream" not in whole[1].body
    assert whole[2].path.endswith(":generateContent")
    assert [w.body["messages" if i < 2 else "contents"] for i, w in enumerate(whole)] == [
        anthropic.body["messages"],
        openai.body["messages"],
        google.body["contents"],
    ]

    # The API takes x-api-key; SDK 2.x sends the key as a bearer token instead.
    sent_key = anthropic.headers.get("x-api-key") or anthropic.headers["authorization"][7:]
    assert sent_key == provider_key
    assert "anthropic-version" in anthropic.headers
    assert anthropic.body["system"] == VIEW[0].content
    assert anthropic.body["stream"] is True
    roles = [message["role"] for message in anthropic.body["messages"]]
    assert roles == ["user", "assistant", "user"]  # the two leading user messages joined
    assert (
        anthropic.body["messages"][0]["content"] == "[Begin]\n\nTell me about tides and lanterns."
    )
    assert "temperature" not in anthropic.body  # the current Messages API takes none

    assert openai.headers["authorization"] == f"Bearer {provider_key}"
    assert [m["role"] for m in openai.body["messages"]] == [m.role for m in VIEW]
    assert openai.body["stream_options"] == {"include_usage": True}
    assert openai.body["temperature"] == 0.5
    assert openai.body["seed"] == 3
    assert "max_completion_tokens" in openai.body

    assert google.headers["x-goog-api-key"] == provider_key
    assert google.path.endswith(":streamGenerateContent?alt=sse")
    assert google.body["systemInstruction"]["parts"][0]["text"] == VIEW[0].content
    assert [c["role"] for c in google.body["contents"]] == ["user", "model", "user"]
    assert google.body["generationConfig"]["temperature"] == 0.5


# --- errors -------------------------------------------------------------------------------

RETRYABLE = [
    # (fault, expected kind, expected status)
    ({"kind": "error", "error": "rate_limit", "retry_after": 1.5}, "rate_limit", 429),
    ({"kind": "error", "error": "server"}, "server", 500),
    ({"kind": "error", "error": "unavailable"}, "server", 503),
    ({"kind": "drop", "after_chunks": 2}, "connection", None),
]


@pytest.mark.parametrize(("name", "api"), PROVIDERS, ids=IDS)
@pytest.mark.parametrize(
    ("fault", "kind", "status"), RETRYABLE, ids=["429", "500", "503", "dropped-stream"]
)
def test_transient_failures_are_retryable_with_the_servers_wait(
    providers: Any, *, name: str, api: str, fault: Any, kind: str, status: int | None
) -> None:
    providers.script(_model_id(name), fault)
    seen: list[str] = []
    with pytest.raises(ModelError) as caught:
        _model(name).generate(VIEW, agent_id="agent_a", temperature=None, on_chunk=seen.append)
    error = caught.value
    assert (error.kind, error.status, error.retryable) == (kind, status, True)
    assert error.retry_after == fault.get("retry_after")
    if fault["kind"] == "drop":
        assert len(seen) == fault["after_chunks"]  # the text before the cut reached us
    # and the next request goes through
    assert _model(name).generate(VIEW, agent_id="agent_a", temperature=None).content


def test_anthropic_529_overloaded_is_retryable(providers: Any) -> None:
    providers.script(_model_id("haiku"), {"kind": "error", "error": "overloaded", "retry_after": 2})
    with pytest.raises(ModelError) as caught:
        _model("haiku").generate(VIEW, agent_id="agent_a", temperature=None)
    error = caught.value
    assert (error.kind, error.status, error.retryable, error.retry_after) == (
        "overloaded",
        529,
        True,
        2.0,
    )
    assert error.code == "overloaded_error"


def test_anthropic_error_event_inside_a_stream_is_retryable(providers: Any) -> None:
    providers.script(
        _model_id("sonnet"), {"kind": "sse_error", "error": "overloaded", "after_chunks": 1}
    )
    with pytest.raises(ModelError) as caught:
        _model("sonnet").generate(VIEW, agent_id="agent_a", temperature=None, on_chunk=print)
    assert (caught.value.kind, caught.value.retryable) == ("overloaded", True)


@pytest.mark.parametrize(("name", "api"), PROVIDERS, ids=IDS)
def test_a_request_without_an_answer_times_out_and_is_retryable(
    providers: Any, name: str, api: str
) -> None:
    configure(timeout=0.3)
    providers.script(_model_id(name), {"kind": "stall", "seconds": 1.0})
    with pytest.raises(ModelError) as caught:
        _model(name).generate(VIEW, agent_id="agent_a", temperature=None)
    assert (caught.value.kind, caught.value.status, caught.value.retryable) == (
        "timeout",
        None,
        True,
    )


@pytest.mark.parametrize(("name", "api"), PROVIDERS, ids=IDS)
def test_a_bad_key_is_final_and_named_in_the_apis_words(
    providers: Any, monkeypatch: pytest.MonkeyPatch, name: str, api: str
) -> None:
    wrong = "sk-wrong-key-0123456789abcdef"
    for variable in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GOOGLE_API_KEY", "XAI_API_KEY"):
        monkeypatch.setenv(variable, wrong)
    if api == "openai" and not name.startswith(("gpt", "grok")):
        monkeypatch.setenv("OLLAMA_API_KEY", wrong)
        monkeypatch.setenv("PIDGIN_COMPATIBLE_API_KEY", wrong)
    model = _model(name)
    with pytest.raises(ModelError) as caught:
        model.check()
    error = caught.value
    assert error.kind == "auth" if api != "google" else error.kind in ("auth", "bad_request")
    assert not error.retryable
    provider = MODELS.resolve(name).provider
    assert str(error).startswith(f"{provider} {_model_id(name)}: ")
    words = {
        "anthropic": "invalid x-api-key",
        "openai": "Incorrect API key provided",
        "google": "API key not valid",
    }[api]
    assert words in str(error)
    assert wrong not in str(error)


@pytest.mark.parametrize(("name", "api"), PROVIDERS, ids=IDS)
def test_an_unknown_model_is_final(providers: Any, name: str, api: str) -> None:
    providers.behaviour.models = {"some-other-model"}
    with pytest.raises(ModelError) as caught:
        _model(name).check()
    assert (caught.value.kind, caught.value.retryable) == ("model", False)
    assert _model_id(name) in str(caught.value)
    with pytest.raises(ModelError) as caught:
        _model(name).generate(VIEW, agent_id="agent_a", temperature=None)
    assert (caught.value.kind, caught.value.status) == ("model", 404)


@pytest.mark.parametrize(("name", "api"), PROVIDERS, ids=IDS)
def test_context_overflow_is_recognised_in_every_apis_words(
    providers: Any, name: str, api: str
) -> None:
    providers.behaviour.context_windows = {_model_id(name): 10}
    with pytest.raises(ModelError) as caught:
        _model(name).generate(VIEW, agent_id="agent_a", temperature=None)
    assert (caught.value.kind, caught.value.retryable) == ("context", False)


def test_openai_429_for_an_exhausted_balance_is_not_retried(providers: Any) -> None:
    providers.script(_model_id("gpt-4o"), {"kind": "error", "error": "quota"})
    with pytest.raises(ModelError) as caught:
        _model("gpt-4o").generate(VIEW, agent_id="agent_a", temperature=None)
    error = caught.value
    assert (error.status, error.kind, error.retryable) == (429, "auth", False)
    assert "exceeded your current quota" in str(error)
