"""The command line around providers: ``pidgin models``, missing extras and keys, options."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pidgin_cli._models import MODELS
from pidgin_cli._providers import CatalogueError, catalogue, entry_for
from pidgin_cli._providers._catalogue import load_catalogue

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def test_aliases_and_full_names_resolve_through_the_catalogue() -> None:
    cat = catalogue()
    for alias, name in cat.aliases.items():
        assert MODELS.resolve(alias).name == name
    for wanted in ("opus", "sonnet", "haiku", "gpt-4o", "gpt-4o-mini", "gemini", "grok"):
        assert wanted in cat.aliases
    # any model of a known provider works by its full name, catalogued or not
    for name in ("anthropic:claude-new-9", "ollama:qwen2.5:7b", "openai-compatible:x"):
        assert MODELS.resolve(name).name == name
        assert entry_for(name) is None


def test_prices_give_each_message_its_cost() -> None:
    entry = entry_for("gpt-4o")
    assert entry is not None
    assert entry.input_per_million
    assert entry.output_per_million
    assert entry.cost(1_000_000, 0) == pytest.approx(entry.input_per_million)
    assert entry.cost(0, 2_000_000) == pytest.approx(2 * entry.output_per_million)
    assert entry_for("local:test") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[providers.x]\nwire = "smoke"\nextra = "x"\nkey_env = []\n', "wire must be one of"),
        ('[providers.x]\nwire = "openai"\nextra = "x"\nkey_env = "K"\n', "must be a list"),
        (
            '[providers.x]\nwire = "openai"\nextra = "x"\nkey_env = []\n[[models]]\nname = "y:m"\n',
            "names no known provider",
        ),
        (
            '[providers.x]\nwire = "openai"\nextra = "x"\nkey_env = []\n'
            '[[models]]\nname = "x:m"\ninput_per_million = "cheap"\n',
            "input_per_million",
        ),
        (
            '[providers.x]\nwire = "openai"\nextra = "x"\nkey_env = []\n'
            '[[models]]\nname = "x:m"\naliases = ["a"]\n'
            '[[models]]\nname = "x:n"\naliases = ["a"]\n',
            "alias 'a' already names x:m",
        ),
    ],
)
def test_a_malformed_catalogue_names_the_file_and_the_entry(text: str, problem: str) -> None:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(text, "models.toml")
    assert str(caught.value).startswith("models.toml")
    assert problem in str(caught.value)


def test_pidgin_models_says_which_providers_are_usable(
    provider_server: Any,
    run_cli: RunCli,
    output_root: Path,
    provider_key: str,
    provider_env: Callable[..., dict[str, str]],
) -> None:
    env = provider_env(provider_server, output_root)
    del env["GOOGLE_API_KEY"]
    env.pop("GEMINI_API_KEY", None)
    shown = run_cli("models", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    usable = {p["name"]: p["usable"] for p in document["providers"]}
    assert usable["anthropic"]
    assert usable["openai"]
    assert not usable["google"]
    (google,) = [p for p in document["providers"] if p["name"] == "google"]
    assert google["fix"] == "set GOOGLE_API_KEY or GEMINI_API_KEY"
    names = {model["name"] for model in document["models"]}
    assert set(catalogue().models) == names
    assert "local:test" in document["offline"]
    text = run_cli("models", env=env)
    assert "anthropic:claude-opus-4-8" in text.stdout
    assert "not usable" in text.stdout
    assert provider_key not in text.stdout + shown.stdout


def test_a_missing_key_is_a_one_line_error(
    run_cli: RunCli, output_root: Path, cli_env: Callable[..., dict[str, str]]
) -> None:
    env = cli_env(output_root)
    for variable in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        env.pop(variable, None)
    done = run_cli("run", "-a", "sonnet", "-b", "local:test", "-q", env=env)
    assert done.returncode == 2
    assert "no API key for anthropic: set ANTHROPIC_API_KEY" in done.stderr
    assert not (output_root / "experiments").exists()


@pytest.mark.parametrize(
    ("model", "module", "extra"),
    [
        ("sonnet", "anthropic", "anthropic"),
        ("grok", "openai", "openai"),
        ("gemini", "google.genai", "google"),
    ],
)
def test_a_missing_extra_says_which_pip_install_fixes_it(
    output_root: Path, model: str, module: str, extra: str, cli_env: Callable[..., dict[str, str]]
) -> None:
    """The SDK made unimportable in a real ``pidgin`` process, as if never installed."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules[{module!r}] = None
        sys.argv = ["pidgin", "run", "-a", {model!r}, "-b", "local:test", "-q"]
        from pidgin_cli._main import main
        main()
        """
    )
    env = cli_env(output_root, ANTHROPIC_API_KEY="k", XAI_API_KEY="k", GOOGLE_API_KEY="k")
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f'pip install "pidgin-cli[{extra}]"' in done.stderr
    error_lines = [line for line in done.stderr.splitlines() if "pip install" in line]
    assert len(error_lines) == 1


def test_bad_provider_options_name_the_argument(run_cli: RunCli, output_root: Path) -> None:
    done = run_cli("run", "-a", "local:test", "-b", "local:test", "--limit", "nobody.rpm=5")
    assert done.returncode == 2
    assert "unknown provider 'nobody'" in done.stderr
    done = run_cli("run", "-a", "local:test", "-b", "local:test", "--limit", "openai.rpm=x")
    assert done.returncode == 2
    assert "PROVIDER.KEY=N" in done.stderr
    done = run_cli("run", "-a", "local:test", "-b", "local:test", "--max-parallel", "2000")
    assert done.returncode == 2
    assert "--max-parallel" in done.stderr


def test_the_sdks_are_not_imported_by_help(
    tmp_path: Path, cli_env: Callable[..., dict[str, str]]
) -> None:
    code = (
        "import sys\n"
        "from pidgin_cli._main import main\n"
        "sys.argv = ['pidgin', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in ('anthropic', 'openai', 'google.genai', 'httpx2') "
        "if m in sys.modules]\n"
        "print('LOADED', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=cli_env(tmp_path),
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
