"""Local servers (Ollama, an OpenAI-compatible one) that refuse connections are found first.

A port on 127.0.0.1 where nothing listens (bound to get a free one, then closed) stands for
a server that is not running; the fake provider server stands for one that is.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pidgin_events import EXPERIMENTS_DIR

RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port of 127.0.0.1 that accepts connections (and never answers a request)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_pidgin_run_refuses_an_ollama_model_when_ollama_is_not_running(
    run_cli: RunCli, output_root: Path, cli_env: Callable[..., dict[str, str]], closed_port: int
) -> None:
    env = cli_env(output_root, OLLAMA_HOST=f"127.0.0.1:{closed_port}")
    done = run_cli("run", "-a", "ollama:qwen3:0.6b", "-b", "local:test", "-t", "2", "-q", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"the ollama server at http://127.0.0.1:{closed_port}/v1 is not reachable" in done.stderr
    assert "connection refused" in done.stderr
    assert "'ollama serve'" in done.stderr
    assert "OLLAMA_HOST" in done.stderr
    assert not (output_root / EXPERIMENTS_DIR).exists()


def test_a_spec_naming_a_local_model_alias_is_refused_the_same_way(
    run_cli: RunCli,
    output_root: Path,
    cli_env: Callable[..., dict[str, str]],
    closed_port: int,
    tmp_path: Path,
) -> None:
    spec = tmp_path / "local.yaml"
    spec.write_text("agent_a: local:qwen\nagent_b: local:test\nturns: 2\n", encoding="utf-8")
    env = cli_env(output_root, OLLAMA_HOST=f"http://127.0.0.1:{closed_port}")
    done = run_cli("run", str(spec), "-q", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"http://127.0.0.1:{closed_port}/v1 is not reachable" in done.stderr
    assert not (output_root / EXPERIMENTS_DIR).exists()


def test_an_openai_compatible_base_url_that_refuses_is_named_with_its_fix(
    run_cli: RunCli, output_root: Path, cli_env: Callable[..., dict[str, str]], closed_port: int
) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    env = cli_env(output_root)
    env.pop("PIDGIN_COMPATIBLE_BASE_URL", None)
    done = run_cli(
        "run", "-a", "openai-compatible:m", "-b", "local:test", "--base-url", url, "-q", env=env
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"the openai-compatible server at {url} is not reachable" in done.stderr
    assert "--base-url or set PIDGIN_COMPATIBLE_BASE_URL" in done.stderr
    assert not (output_root / EXPERIMENTS_DIR).exists()


def test_a_server_that_takes_connections_passes_the_check_and_like_checks_it_again(
    run_cli: RunCli,
    output_root: Path,
    provider_server: Any,
    provider_env: Callable[..., dict[str, str]],
    closed_port: int,
) -> None:
    provider_server.reset()
    env = provider_env(provider_server, output_root)
    done = run_cli(
        "run", "-a", "ollama:qwen3:0.6b", "-b", "local:test", "-t", "1", "-n", "first", "-q",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list((output_root / EXPERIMENTS_DIR).glob("exp_*"))) == 1
    env["OLLAMA_HOST"] = f"127.0.0.1:{closed_port}"
    again = run_cli("run", "--like", "first", "-q", env=env)
    assert again.returncode == 2, again.stdout + again.stderr
    assert f"127.0.0.1:{closed_port}/v1 is not reachable" in again.stderr
    assert len(list((output_root / EXPERIMENTS_DIR).glob("exp_*"))) == 1


def _ollama(document: dict[str, Any]) -> dict[str, Any]:
    providers: list[dict[str, Any]] = document["providers"]
    (ollama,) = [provider for provider in providers if provider["name"] == "ollama"]
    return ollama


def test_pidgin_models_says_a_local_server_is_not_reachable(
    run_cli: RunCli,
    output_root: Path,
    cli_env: Callable[..., dict[str, str]],
    closed_port: int,
    listening_port: int,
) -> None:
    down = cli_env(output_root, OLLAMA_HOST=f"127.0.0.1:{closed_port}")
    shown = run_cli("models", "--json", env=down)
    assert shown.returncode == 0, shown.stderr
    ollama = _ollama(json.loads(shown.stdout))
    assert (ollama["usable"], ollama["reachable"]) == (False, False)
    assert f"127.0.0.1:{closed_port}" in ollama["fix"]
    text = run_cli("models", env=down).stdout
    (line,) = [line for line in text.splitlines() if line.startswith("  ollama ")]
    assert "not reachable (connection refused): start it with 'ollama serve'" in line
    up = cli_env(output_root, OLLAMA_HOST=f"127.0.0.1:{listening_port}")
    ollama = _ollama(json.loads(run_cli("models", "--json", env=up).stdout))
    assert (ollama["usable"], ollama["reachable"], ollama["fix"]) == (True, True, None)
    anthropic = [p for p in json.loads(shown.stdout)["providers"] if p["name"] == "anthropic"]
    assert anthropic[0]["reachable"] is None, "vendors' APIs are not contacted"
