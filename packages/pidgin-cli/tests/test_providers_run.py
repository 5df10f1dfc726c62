"""Conversations between real providers' SDKs and the fake server, as events in the log.

In-process runs (``run_conversation``) check what each failure leaves in the log; the
``pidgin run`` subprocesses check the experiment as a whole: failing fast before any
conversation, the budget, and that the key appears in no output at all.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pidgin_cli._conductor import ConversationPlan, StopRequest, run_conversation
from pidgin_cli._models import MODELS, ChatMessage
from pidgin_cli._pacing import Budget, PacerLimits, Pacers
from pidgin_cli._providers import entry_for
from pidgin_cli._requests import RequestSettings
from pidgin_events import Experiment, validate_file

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["event_type"] == kind]


def _model_id(name: str) -> str:
    return MODELS.resolve(name).name.partition(":")[2]


def _converse(
    root: Path,
    agent_a: str,
    agent_b: str,
    *,
    turns: int = 2,
    settings: RequestSettings | None = None,
    **plan: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    settings = settings or RequestSettings(backoff_base=0.01, chunk_interval=1e-9)
    spec = ConversationPlan(agent_a=agent_a, agent_b=agent_b, max_turns=turns, seed=5, **plan)
    with Experiment.create(root, name="providers", total_conversations=1) as experiment:
        conversation = experiment.conversation(**spec.start_arguments())
        result = run_conversation(conversation, spec, settings=settings, stop=StopRequest())
        path = conversation.path
    assert validate_file(path) == []
    return result, _events(path)


def test_a_conversation_between_two_providers_records_usage_ids_and_cost(
    providers: Any, tmp_path: Path
) -> None:
    result, events = _converse(tmp_path, "sonnet", "gpt-4o", turns=3)
    assert (result.status, result.reason, result.turns) == ("completed", "max_turns", 3)
    messages = _of(events, "MessageCompleteEvent")
    sent = [request.facts for request in providers.requests if request.facts is not None]
    assert len(messages) == len(sent) == 6
    for message, facts in zip(messages, sent, strict=True):
        name = "sonnet" if message["agent_id"] == "agent_a" else "gpt-4o"
        entry = entry_for(name)
        assert entry is not None
        assert message["message"]["content"] == facts.text
        assert message["prompt_tokens"] == facts.prompt_tokens
        assert message["completion_tokens"] == facts.completion_tokens
        assert message["request_id"] == facts.request_id
        assert message["model_version"] == facts.version
        assert message["stop_reason"] in ("end_turn", "stop")
        assert message["cost_usd"] == pytest.approx(
            entry.cost(facts.prompt_tokens, facts.completion_tokens, 0, 0)
        )
    # each agent sees the other's replies: B's request holds A's first message
    b_first = next(r for r in providers.requests if r.api == "openai")
    assert messages[0]["message"]["content"] in json.dumps(b_first.body)
    # streamed text reached the log in chunks that add up to each message
    chunks = _of(events, "MessageChunkEvent")
    for message in messages:
        pieces = [
            chunk["chunk"]
            for chunk in chunks
            if chunk["agent_id"] == message["agent_id"]
            and chunk["seq"] < message["seq"]
            and chunk["seq"]
            > max((m["seq"] for m in messages if m["seq"] < message["seq"]), default=0)
        ]
        assert "".join(pieces) == message["message"]["content"][: len("".join(pieces))]
        assert pieces


def test_no_chunk_events_with_a_zero_chunk_interval(providers: Any, tmp_path: Path) -> None:
    settings = RequestSettings(chunk_interval=0)
    _result, events = _converse(tmp_path, "gemini", "grok", settings=settings)
    assert _of(events, "MessageChunkEvent") == []
    assert len(_of(events, "MessageCompleteEvent")) == 4


@pytest.mark.parametrize(
    ("name", "fault", "status"),
    [
        ("gpt-4o", {"kind": "error", "error": "rate_limit", "retry_after": 0.3}, 429),
        ("haiku", {"kind": "error", "error": "overloaded", "retry_after": 0.2}, 529),
        ("gemini", {"kind": "error", "error": "server"}, 500),
        ("sonnet", {"kind": "error", "error": "server"}, 500),
        ("grok", {"kind": "error", "error": "unavailable"}, 503),
    ],
    ids=["openai-429", "anthropic-529", "google-500", "anthropic-500", "xai-503"],
)
def test_a_retryable_failure_is_an_event_and_the_conversation_goes_on(
    providers: Any, tmp_path: Path, name: str, fault: Any, status: int
) -> None:
    providers.script(_model_id(name), fault, fault)
    started = time.monotonic()
    result, events = _converse(tmp_path, name, "local:test", turns=2)
    assert (result.status, result.turns) == ("completed", 2)
    errors = _of(events, "APIErrorEvent")
    assert [e["status_code"] for e in errors] == [status, status]
    assert [e["retry_count"] for e in errors] == [0, 1]
    assert all(e["retryable"] for e in errors)
    for error in errors:
        assert error["wait_seconds"] >= (fault.get("retry_after") or 0)
        assert error["provider"] == MODELS.resolve(name).provider
    if fault.get("retry_after"):
        assert time.monotonic() - started >= 2 * fault.get("retry_after")  # it really waited
    assert len(_of(events, "MessageCompleteEvent")) == 4


def test_a_timeout_then_success(providers: Any, tmp_path: Path) -> None:
    from pidgin_cli._providers import configure

    configure(timeout=0.3)
    providers.script(_model_id("sonnet"), {"kind": "stall", "seconds": 1.0})
    result, events = _converse(tmp_path, "sonnet", "local:test", turns=1)
    assert result.status == "completed"
    (error,) = _of(events, "APIErrorEvent")
    assert (error["error_type"], error["status_code"], error["retryable"]) == (
        "timeout",
        None,
        True,
    )


def test_a_stream_dropped_mid_reply_is_retried_from_the_start(
    providers: Any, tmp_path: Path
) -> None:
    providers.script(_model_id("gpt-4o"), {"kind": "drop", "after_chunks": 2})
    result, events = _converse(tmp_path, "gpt-4o", "local:test", turns=1)
    assert result.status == "completed"
    (error,) = _of(events, "APIErrorEvent")
    assert (error["error_type"], error["retryable"]) == ("connection", True)
    a_chunks = [e for e in events if e["event_type"] == "MessageChunkEvent"]
    indexes = [chunk["chunk_index"] for chunk in a_chunks]
    assert indexes[:2] == [0, 1]
    assert indexes[2] == 0
    partial = "".join(chunk["chunk"] for chunk in a_chunks[:2])
    (message,) = [m for m in _of(events, "MessageCompleteEvent") if m["agent_id"] == "agent_a"]
    assert message["message"]["content"] != partial


@pytest.mark.parametrize("name", ["sonnet", "gpt-4o", "gemini"])
def test_a_bad_key_fails_the_conversation_at_once_in_the_apis_words(
    providers: Any, tmp_path: Path, name: str
) -> None:
    providers.behaviour.keys = {"some-other-key"}
    result, events = _converse(tmp_path, name, "local:test")
    assert (result.status, result.reason, result.turns) == ("failed", "api_error", 0)
    (error,) = _of(events, "APIErrorEvent")  # no retry
    assert not error["retryable"]
    provider = MODELS.resolve(name).provider
    assert result.error is not None
    assert result.error.startswith(f"{provider} {_model_id(name)}: ")
    (end,) = _of(events, "ConversationEndEvent")
    assert end["error"] == result.error


def test_retries_end_after_the_configured_number(providers: Any, tmp_path: Path) -> None:
    providers.script(_model_id("gpt-4o"), *[{"kind": "error", "error": "server"}] * 4)
    settings = RequestSettings(retries=2, backoff_base=0.01, chunk_interval=0)
    result, events = _converse(tmp_path, "gpt-4o", "local:test", settings=settings)
    assert (result.status, result.reason) == ("failed", "api_error")
    errors = _of(events, "APIErrorEvent")
    assert [e["retry_count"] for e in errors] == [0, 1, 2]
    assert errors[-1]["wait_seconds"] is None  # the last one is not followed by a wait


# --- context window -------------------------------------------------------------------------


def test_context_overflow_drops_the_oldest_turns_and_records_it(
    providers: Any, tmp_path: Path
) -> None:
    providers.behaviour.context_windows = {_model_id("gpt-4o"): 120}
    result, events = _converse(tmp_path, "gpt-4o", "local:test", turns=6)
    assert (result.status, result.turns) == ("completed", 6)
    truncations = _of(events, "ContextTruncationEvent")
    assert truncations
    for event in truncations:
        assert (
            event["messages_dropped"]
            == (event["original_message_count"] - event["truncated_message_count"])
            > 0
        )
    openai_bodies = [r.body for r in providers.requests if r.api == "openai" and r.facts]
    for body in openai_bodies:
        assert body["messages"][0]["role"] == "system"  # the system prompt is kept
        assert body["messages"][1]["role"] == "user"


def test_replay_rebuilds_every_truncated_request_the_server_received(
    providers: Any, tmp_path: Path
) -> None:
    """The history replay gives is the one the vendor's server got, truncation included."""
    from pidgin_state import replay

    providers.behaviour.context_windows = {_model_id("gpt-4o"): 120}
    result, events = _converse(tmp_path, "gpt-4o", "local:test", turns=6)
    assert result.turns == 6
    assert _of(events, "ContextTruncationEvent")
    (path,) = tmp_path.glob("experiments/*/conv_*_events.jsonl")
    state = replay(path)
    # Agent A's requests, in order: each error event stands for one turned down.
    bodies = iter(
        [(m["role"], m["content"]) for m in request.body["messages"]]
        for request in providers.requests
        if request.api == "openai" and request.facts
    )
    answered = []
    for event in events:
        if event.get("agent_id") != "agent_a":
            continue
        if event["event_type"] == "APIErrorEvent":
            next(bodies)
        elif event["event_type"] == "MessageCompleteEvent":
            answered.append(next(bodies))
    assert len(answered) == 6
    for turn, sent in enumerate(answered):
        view = [(line.role, line.content) for line in state.view("agent_a", turn)]
        assert sent == view, turn


def test_context_overflow_ends_the_conversation_under_policy_end(
    providers: Any, tmp_path: Path
) -> None:
    providers.behaviour.context_windows = {_model_id("sonnet"): 120}
    settings = RequestSettings(context_policy="end", chunk_interval=0)
    result, events = _converse(tmp_path, "sonnet", "local:test", turns=8, settings=settings)
    assert (result.status, result.reason) == ("completed", "context_limit")
    assert result.turns < 8
    (limit,) = _of(events, "ContextLimitEvent")
    assert "prompt is too long" in limit["error_message"]


def test_the_catalogue_window_truncates_before_sending(tmp_path: Path) -> None:
    from pidgin_cli._requests import Requester, fit_context

    messages = [ChatMessage("system", "be brief")] + [
        ChatMessage("user" if index % 2 == 0 else "assistant", f"message {index} " + "w" * 40)
        for index in range(9)
    ]
    window, reserve = 100, 20
    with Experiment.create(tmp_path, name="window", total_conversations=1) as experiment:
        conversation = experiment.conversation(agent_a="a:x", agent_b="b:y", max_turns=1)
        requester = Requester(
            conversation,
            RequestSettings(),
            StopRequest(),
            context_windows={"agent_a": (window, reserve)},
            providers={"agent_a": "ollama"},
            models={"agent_a": "ollama:qwen3:0.6b"},
        )
        kept = requester.fit("agent_a", 0, messages)
        conversation.end("completed", reason="max_turns")
    expected = fit_context(messages, window - reserve)
    assert expected is not None
    assert kept == expected[0]
    assert kept[0] == messages[0]
    assert kept[-1] == messages[-1]
    assert kept[1].role == "user"
    assert len(kept) < len(messages)
    (event,) = _of(_events(conversation.path), "ContextTruncationEvent")
    assert event["messages_dropped"] == len(messages) - len(kept) == expected[1]


def test_fit_context_keeps_system_and_last_and_starts_with_a_user() -> None:
    from pidgin_cli._requests import fit_context

    system = ChatMessage("system", "s" * 40)
    last = ChatMessage("user", "l" * 40)
    history = [ChatMessage("assistant" if i % 2 else "user", "h" * 40) for i in range(6)]
    assert fit_context([system, last], 10) is None  # even the essentials do not fit
    kept, dropped = fit_context([system, *history, last], 60) or ([], 0)
    assert kept[0] is system
    assert kept[-1] is last
    assert all(message.role != "assistant" for message in kept[1:2])
    assert dropped == len(history) + 2 - len(kept)


# --- pacing -----------------------------------------------------------------------------------


def test_the_pacer_holds_requests_to_the_providers_concurrency(
    providers: Any, tmp_path: Path
) -> None:
    import threading

    providers.behaviour.latency = 0.1
    pacers = Pacers({"openai": PacerLimits(max_concurrency=1)})
    settings = RequestSettings(chunk_interval=0, pacers=pacers)
    outcomes: list[Any] = []

    def one(index: int) -> None:
        outcomes.append(_converse(tmp_path / str(index), "gpt-4o", "local:test", settings=settings))

    threads = [threading.Thread(target=one, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    paces = [p for _, events in outcomes for p in _of(events, "RateLimitPaceEvent")]
    assert paces
    assert all(p["reason"] == "concurrency" and p["provider"] == "openai" for p in paces)
    assert all(result.status == "completed" for result, _ in outcomes)


def test_retry_after_pauses_the_provider_for_everyone(providers: Any, tmp_path: Path) -> None:
    pacers = Pacers({"openai": PacerLimits()})
    settings = RequestSettings(chunk_interval=0, pacers=pacers, backoff_base=0.01)
    providers.script(
        _model_id("gpt-4o"), {"kind": "error", "error": "rate_limit", "retry_after": 0.5}
    )
    _converse(tmp_path / "first", "gpt-4o", "local:test", turns=1, settings=settings)
    pacers("openai").pause(0.4)  # as a 429 met by another conversation would
    _result, events = _converse(tmp_path / "second", "gpt-4o", "local:test", settings=settings)
    (pace, *_) = _of(events, "RateLimitPaceEvent")
    assert pace["reason"] == "retry_after"
    assert pace["wait_time"] > 0.2


def test_the_pacer_spreads_requests_over_the_minute() -> None:
    from pidgin_cli._pacing import BURST_SECONDS, Pacer

    per_minute = 600  # 10 a second, a burst of BURST_SECONDS' worth
    pacer = Pacer(PacerLimits(requests_per_minute=per_minute))
    waits: list[float] = []
    burst = int(per_minute / 60 * BURST_SECONDS)
    for _ in range(burst + 2):
        pacer.acquire(1, waits.append, lambda seconds, reason: None)()
    # the burst passes without waiting; then one request per 1/10 s, queued behind the last
    assert waits == pytest.approx([0.1, 0.2], abs=0.02)


# --- budget -----------------------------------------------------------------------------------


def test_the_budget_stops_new_turns_once_spent(providers: Any, tmp_path: Path) -> None:
    entry = entry_for("sonnet")
    assert entry is not None
    budget = Budget(1e-6)
    settings = RequestSettings(chunk_interval=0, budget=budget)
    stop = StopRequest()
    spec = ConversationPlan(agent_a="sonnet", agent_b="gpt-4o", max_turns=10, seed=1)
    with Experiment.create(tmp_path, name="budget", total_conversations=1) as experiment:
        conversation = experiment.conversation(**spec.start_arguments())
        result = run_conversation(conversation, spec, settings=settings, stop=stop)
    assert (result.status, result.reason) == ("interrupted", "budget")
    assert stop.reason == "budget"
    messages = _of(_events(conversation.path), "MessageCompleteEvent")
    assert len(messages) == 1  # the first message already spent more than the budget
    assert budget.spent_usd == pytest.approx(messages[0]["cost_usd"])


# --- whole experiments through `pidgin run` ----------------------------------------------------


def _experiment_dir(root: Path) -> Path:
    (directory,) = (root / "experiments").glob("exp_*")
    return directory


def _complete(directory: Path) -> dict[str, Any]:
    (complete,) = _of(_events(directory / "experiment.jsonl"), "ExperimentCompleteEvent")
    return complete


@pytest.mark.parametrize(
    ("setup", "words"),
    [("bad_key", "invalid x-api-key"), ("unknown_model", "not_found_error")],
)
def test_a_bad_key_or_unknown_model_fails_the_experiment_before_any_conversation(
    provider_server: Any,
    *,
    output_root: Path,
    run_cli: RunCli,
    setup: str,
    words: str,
    provider_key: str,
    provider_env: Callable[..., dict[str, str]],
) -> None:
    provider_server.reset()
    provider_server.behaviour.keys = {provider_key}
    key = "sk-not-the-right-one-4242" if setup == "bad_key" else provider_key
    if setup == "unknown_model":
        provider_server.behaviour.models = {"gpt-4o"}
    env = provider_env(provider_server, output_root, key=key)
    done = run_cli(
        "run",
        "-a",
        "sonnet",
        "-b",
        "gpt-4o",
        "-r",
        "100",
        "--max-parallel",
        "50",
        "-t",
        "5",
        env=env,
        timeout=180,
    )
    directory = _experiment_dir(output_root)
    complete = _complete(directory)
    assert (complete["status"], complete["reason"]) == ("failed", "provider_check")
    assert words in complete["error"]
    assert "anthropic claude-sonnet-4-6" in complete["error"]
    assert list(directory.glob("conv_*")) == []  # not one conversation started
    generations = [r for r in provider_server.requests if r.facts is not None]
    assert generations == []
    assert done.returncode != 0 or "failed" in done.stdout


def test_max_cost_interrupts_the_experiment_with_reason_budget(
    provider_server: Any,
    output_root: Path,
    run_cli: RunCli,
    provider_env: Callable[..., dict[str, str]],
) -> None:
    provider_server.reset()
    provider_server.behaviour.latency = 0.05
    env = provider_env(provider_server, output_root)
    max_cost = 0.002
    run_cli(
        "run",
        "-a",
        "opus",
        "-b",
        "gpt-4o",
        "-r",
        "6",
        "--max-parallel",
        "2",
        "-t",
        "40",
        "--max-cost",
        str(max_cost),
        "--chunk-interval",
        "0",
        env=env,
        timeout=300,
    )
    directory = _experiment_dir(output_root)
    complete = _complete(directory)
    assert (complete["status"], complete["reason"]) == ("interrupted", "budget")
    ends = []
    spent = 0.0
    for log in directory.glob("conv_*_events.jsonl"):
        events = _events(log)
        spent += sum(m["cost_usd"] for m in _of(events, "MessageCompleteEvent"))
        ends += _of(events, "ConversationEndEvent")
    assert spent >= max_cost
    assert ends
    assert all(e["reason"] == "budget" for e in ends if e["status"] == "interrupted")
    assert any(e["status"] == "interrupted" for e in ends)
    assert len(ends) < 6 or all(e["total_turns"] < 40 for e in ends)


def test_the_key_appears_in_no_output_of_a_run(
    provider_server: Any,
    *,
    output_root: Path,
    run_cli: RunCli,
    tmp_path: Path,
    provider_key: str,
    provider_env: Callable[..., dict[str, str]],
) -> None:
    provider_server.reset()
    provider_server.behaviour.keys = {provider_key}
    env = provider_env(provider_server, output_root)
    ok = run_cli(
        "run",
        "-a",
        "sonnet",
        "-b",
        "gemini",
        "-t",
        "2",
        "-r",
        "2",
        "--max-parallel",
        "2",
        env=env,
        timeout=240,
    )
    # a second run whose key is refused: the error path must not leak the key either
    wrong = "sk-refused-key-9d8c7b6a5f4e3d2c"
    refused = run_cli(
        "run",
        "-a",
        "gpt-4o",
        "-b",
        "grok",
        "-t",
        "1",
        env=provider_env(provider_server, output_root, key=wrong),
        timeout=240,
    )
    chat = run_cli(
        "chat",
        "-a",
        "gpt-4o",
        "-b",
        "sonnet",
        "-t",
        "1",
        "--no-load",
        env=provider_env(provider_server, output_root),
        timeout=240,
    )
    assert ok.returncode == 0, ok.stderr
    assert chat.returncode == 0, chat.stderr
    outputs = [ok.stdout, ok.stderr, refused.stdout, refused.stderr, chat.stdout, chat.stderr]
    files = [path for path in output_root.rglob("*") if path.is_file()]
    assert any(path.suffix == ".duckdb" for path in files)
    assert any(path.name == "runner.log" for path in files)
    for secret in (provider_key, wrong):
        for text in outputs:
            assert secret not in text
        for path in files:
            assert secret.encode() not in path.read_bytes(), path


def test_cost_is_shown_by_status_and_summed_by_the_database(
    provider_server: Any,
    output_root: Path,
    run_cli: RunCli,
    provider_env: Callable[..., dict[str, str]],
) -> None:
    import duckdb

    provider_server.reset()
    env = provider_env(provider_server, output_root)
    done = run_cli(
        "run",
        "-a",
        "opus",
        "-b",
        "gemini",
        "-t",
        "3",
        "-r",
        "2",
        "--max-parallel",
        "2",
        "-n",
        "cost-check",
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    directory = _experiment_dir(output_root)
    costs: dict[str, float] = {}
    for log in directory.glob("conv_*_events.jsonl"):
        for message in _of(_events(log), "MessageCompleteEvent"):
            model = (
                "anthropic:claude-opus-4-8"
                if message["agent_id"] == "agent_a"
                else ("google:gemini-3-pro-preview")
            )
            costs[model] = costs.get(model, 0.0) + message["cost_usd"]
    total = sum(costs.values())
    assert total > 0
    status = run_cli("experiment", "status", "cost-check", "--json", env=env)
    document = json.loads(status.stdout)["experiment"]
    assert document["cost_usd"] == pytest.approx(total, abs=1e-6)
    by_model = document["tokens"]["by_model"]
    for model, cost in costs.items():
        assert by_model[model]["cost_usd"] == pytest.approx(cost, abs=1e-6)
    plain = run_cli("experiment", "status", "cost-check", env=env)
    assert f"${total:.4f}" in plain.stdout
    (database,) = output_root.rglob("*.duckdb")
    with duckdb.connect(str(database), read_only=True) as con:
        (experiment_cost,) = con.execute("SELECT cost_usd FROM experiment_costs").fetchall()[0]
        rows = con.execute("SELECT model, cost_usd FROM model_costs ORDER BY model").fetchall()
        per_conversation = con.execute("SELECT sum(cost_usd) FROM conversation_costs").fetchone()
        missing_ids = con.execute(
            "SELECT count(*) FROM message_costs WHERE request_id IS NULL OR model_version IS NULL"
        ).fetchone()
    assert experiment_cost == pytest.approx(total)
    assert dict(rows) == pytest.approx(costs)
    assert per_conversation == (pytest.approx(total),)
    assert missing_ids == (0,)
