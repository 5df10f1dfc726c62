"""Model names: pidgin-ai 1.1's names still work, and an unknown name gets a short, useful error.

The names come from ``models.json`` among the pidgin-ai 1.1 fixtures (its catalogue's
providers, API ids and aliases), so the expectations follow pidgin-ai's own data.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pidgin_cli._models import MODELS, UnknownModelError
from pidgin_cli._providers import CatalogueError, catalogue, entry_for
from pidgin_cli._providers._catalogue import load_catalogue
from pidgin_events import EXPERIMENT_LOG, EXPERIMENTS_DIR

RunCli = Callable[..., subprocess.CompletedProcess[str]]

SAME_MODEL = {
    "anthropic:claude-opus-4-1-20250805": "anthropic:claude-opus-4-1",
    "ollama:mistral:7b": "ollama:mistral",
}
"""pidgin-ai ids of models the catalogue lists under another id of the same model
(a dated snapshot id; Ollama's ``mistral`` is its ``mistral:7b``)."""

OWN_NAMES = {"local", "silent"}
"""pidgin-ai providers whose models are built into pidgin under the same names."""


def _pidgin_ai_models(legacy_fixtures: Path) -> dict[str, dict[str, Any]]:
    document = json.loads((legacy_fixtures.parent / "models.json").read_text(encoding="utf-8"))
    models: dict[str, dict[str, Any]] = document["models"]
    return models


def _meant(model: dict[str, Any]) -> str:
    """The ``provider:id`` a pidgin-ai model was sent as."""
    model_id = model.get("ollama_model") or model["model_id"]
    name = f"{model['provider']}:{model_id}"
    return SAME_MODEL.get(name, name)


def test_every_pidgin_ai_name_and_alias_means_the_same_model(legacy_fixtures: Path) -> None:
    checked = 0
    for name, model in _pidgin_ai_models(legacy_fixtures).items():
        if model["provider"] == "vercel":
            continue  # its gateway is not a provider here; see the next test
        for text in (name, *model["aliases"]):
            if model["provider"] in OWN_NAMES:
                assert MODELS.resolve(text).name == model["model_id"]
                continue
            expected = _meant(model)
            assert MODELS.resolve(text).name == expected, text
            assert MODELS.resolve(text.upper()).name == expected, "case is ignored, as in 1.x"
            entry = entry_for(text)
            assert entry is not None, f"{text}: no catalogue entry, so no cost would be recorded"
            assert entry.name == expected
            checked += 1
    assert checked >= 60


def test_pidgin_ai_vercel_names_are_refused_with_what_to_type(
    legacy_fixtures: Path,
) -> None:
    models = _pidgin_ai_models(legacy_fixtures).items()
    vercel = [(name, model) for name, model in models if model["provider"] == "vercel"]
    assert vercel
    for name, model in vercel:
        for text in (name, *model["aliases"]):
            with pytest.raises(UnknownModelError) as caught:
                MODELS.resolve(text)
            message = str(caught.value)
            assert message.startswith(
                f"unknown model {text!r}. Did you mean openai-compatible:{model['model_id']} "
                "with --base-url https://ai-gateway.vercel.sh/v1"
            ), message


@pytest.mark.parametrize(
    ("text", "suggested"),
    [
        ("sonet", ["sonnet"]),
        ("opsu", ["opus"]),
        ("gpt-4.5", ["openai:gpt-4.5", "gpt-5.5", "gpt-4.1"]),
        ("chatgpt-4o-latest", ["openai:chatgpt-4o-latest"]),
        ("o4-preview", ["openai:o4-preview"]),
        ("claude-sonnet-4.7", ["anthropic:claude-sonnet-4-7"]),
        ("gemini-9-ultra", ["google:gemini-9-ultra"]),
        ("grok-9", ["xai:grok-9"]),
        ("local:qwen3", ["local:qwen"]),
    ],
)
def test_an_unknown_name_says_what_was_probably_meant(text: str, suggested: list[str]) -> None:
    with pytest.raises(UnknownModelError) as caught:
        MODELS.resolve(text)
    message = str(caught.value)
    assert message.startswith(f"unknown model {text!r}. Did you mean {suggested[0]}")
    for name in suggested:
        assert name in message
    assert "can be named provider:model, e.g. openai:gpt-4.1" in message
    for provider in catalogue().providers:
        assert provider in message
    assert "'pidgin models' lists" in message
    assert "local:drift" not in message, "never a list of the offline models"
    assert message.count("?") == 1


def test_a_name_like_nothing_gets_no_suggestion() -> None:
    with pytest.raises(UnknownModelError) as caught:
        MODELS.resolve("zzzz")
    assert "Did you mean" not in str(caught.value)
    assert "'pidgin models' lists" in str(caught.value)


def test_aliases_must_be_lower_case_and_prefixes_a_list() -> None:
    provider = '[providers.x]\nwire = "openai"\nextra = "x"\nkey_env = []\n'
    with pytest.raises(CatalogueError, match=r"\[suggestions\]: 'Kimi' must be lower case"):
        load_catalogue(provider + '[suggestions]\nKimi = "x:kimi"\n')
    with pytest.raises(CatalogueError, match="alias 'Big' must be lower case"):
        load_catalogue(provider + '[[models]]\nname = "x:m"\naliases = ["Big"]\n')
    with pytest.raises(CatalogueError, match="'model_prefixes' must be a list"):
        load_catalogue(provider + 'model_prefixes = "x-"\n')


@pytest.mark.parametrize("text", ["gpt-4", "claude-sonnet-4.5", "flash2", "o4-mini"])
def test_pidgin_run_takes_a_pidgin_ai_name_and_records_the_full_name(
    text: str,
    provider_server: Any,
    run_cli: RunCli,
    output_root: Path,
    provider_env: Callable[..., dict[str, str]],
) -> None:
    provider_server.reset()
    env = provider_env(provider_server, output_root)
    done = run_cli("run", "-a", text, "-b", "local:test", "-t", "1", "-q", env=env)
    assert done.returncode == 0, done.stderr
    (log,) = (output_root / EXPERIMENTS_DIR).glob(f"*/{EXPERIMENT_LOG}")
    first = json.loads(log.read_text(encoding="utf-8").splitlines()[0])
    assert json.dumps(MODELS.resolve(text).name) in json.dumps(first), first


def test_pidgin_run_refuses_an_unknown_name_before_anything_starts(
    run_cli: RunCli, output_root: Path
) -> None:
    done = run_cli("run", "-a", "gpt-4.5", "-b", "local:test", "-q")
    assert done.returncode == 2
    assert "unknown model 'gpt-4.5'. Did you mean openai:gpt-4.5" in done.stderr
    assert "available models" not in done.stderr
    assert not (output_root / EXPERIMENTS_DIR).exists()


def test_a_spec_takes_pidgin_ai_names_and_suggests_for_unknown_ones(
    tmp_path: Path, run_cli: RunCli
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("agent_a: claude-sonnet-4.5\nagent_b: local:qwen\n", encoding="utf-8")
    checked = run_cli("spec", "check", str(good))
    assert checked.returncode == 0, checked.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent_a: local:test\nagent_b: sonet\n", encoding="utf-8")
    refused = run_cli("spec", "check", str(bad))
    assert refused.returncode == 2
    assert f"{bad}:2:10: " in refused.stderr
    assert "Did you mean sonnet?" in refused.stderr


def test_a_model_that_cannot_think_is_refused_with_a_few_of_its_provider_that_can() -> None:
    from pidgin_cli._thinking import ThinkingUnsupportedError, can_think, check_can_think

    with pytest.raises(ThinkingUnsupportedError) as caught:
        check_can_think("openai:gpt-4o")
    message = str(caught.value)
    thinkers = [
        entry
        for entry in catalogue().models.values()
        if entry.provider == "openai"
        if can_think(entry.name)
    ]
    assert len(thinkers) > 6
    assert f"and {len(thinkers) - 6} more" in message
    assert thinkers[0].aliases[0] in message
    assert "anthropic" not in message
    assert "sonnet" not in message
