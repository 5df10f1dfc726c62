"""Calls to the real provider APIs: marked ``live``, deselected unless asked for.

They cost a few cents and need keys, so ``pytest`` leaves them out (``conftest.py``
deselects ``live`` tests unless ``-m`` names the marker). Maintainers run them with:

    ANTHROPIC_API_KEY=... OPENAI_API_KEY=... GOOGLE_API_KEY=... XAI_API_KEY=... \\
        .venv/bin/pytest -m live packages/pidgin-cli/tests/test_providers_live.py

A provider whose key is not set is skipped then (and only then), by name. The models are
the cheapest of each provider in the catalogue; each test asks for one short reply.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pidgin_cli._conductor import ConversationPlan, StopRequest, run_conversation
from pidgin_cli._models import MODELS, ChatMessage, ModelError
from pidgin_cli._providers import ProviderModel, entry_for, provider_of
from pidgin_cli._requests import RequestSettings
from pidgin_events import Experiment, validate_file

pytestmark = pytest.mark.live

LIVE_MODELS = ["haiku", "gpt-4o-mini", "gemini-2.5-flash", "grok"]


def _ready(name: str) -> ProviderModel:
    provider = provider_of(MODELS.resolve(name).name)
    assert provider is not None
    if not any(os.environ.get(variable) for variable in provider.key_env):
        pytest.skip(f"{' / '.join(provider.key_env)} not set")
    model = MODELS.create(name)
    assert isinstance(model, ProviderModel)
    return model


@pytest.mark.parametrize("name", LIVE_MODELS)
def test_a_real_reply_reports_usage_and_ids(name: str) -> None:
    model = _ready(name)
    model.check()
    chunks: list[str] = []
    reply = model.generate(
        [ChatMessage("user", "Say hello in three words.")],
        agent_id="agent_a",
        temperature=None,
        on_chunk=chunks.append,
    )
    assert reply.content.strip()
    assert "".join(chunks) == reply.content
    assert reply.prompt_tokens > 0
    assert reply.completion_tokens > 0
    assert reply.model_version
    assert reply.stop_reason


@pytest.mark.parametrize("name", LIVE_MODELS)
def test_an_unknown_model_and_a_bad_key_fail_fast(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _ready(name)
    provider = MODELS.resolve(name).provider
    with pytest.raises(ModelError) as caught:
        _ready(f"{provider}:no-such-model-pidgin-test").check()
    assert not caught.value.retryable
    for variable in model.provider.key_env:
        monkeypatch.setenv(variable, "sk-invalid-pidgin-test")
    with pytest.raises(ModelError) as caught:
        _ready(name).check()
    assert caught.value.kind in ("auth", "bad_request")
    assert not caught.value.retryable


def test_a_short_conversation_between_two_real_providers(tmp_path: Path) -> None:
    _ready("haiku")
    _ready("gpt-4o-mini")
    plan = ConversationPlan(agent_a="haiku", agent_b="gpt-4o-mini", max_turns=1, seed=1)
    with Experiment.create(tmp_path, name="live", total_conversations=1) as experiment:
        conversation = experiment.conversation(**plan.start_arguments())
        result = run_conversation(
            conversation, plan, settings=RequestSettings(), stop=StopRequest()
        )
    assert result.status == "completed"
    assert validate_file(conversation.path) == []
    entry = entry_for("haiku")
    assert entry is not None
