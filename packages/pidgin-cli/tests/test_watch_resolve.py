"""Naming a run: full id, name, unique prefix; unknown, ambiguous and unsafe text refused."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest

from pidgin_cli._resolve import resolve_run, scan_runs
from pidgin_events import Chat

RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def three_runs(output_root: Path, make_experiment: Any) -> Path:
    make_experiment("greetings", experiment_id="exp_aaa111")
    make_experiment("greetings-long", experiment_id="exp_aab222")
    make_experiment("farewells", experiment_id="exp_bbb333")
    with Chat.create(output_root, agent_a="local:test", agent_b="local:test") as chat:
        chat.turn_start()
        chat.turn_complete(0.1)
    return output_root


def test_full_id_name_and_prefix(three_runs: Path) -> None:
    experiments = three_runs / "experiments"
    assert resolve_run(three_runs, "exp_aaa111") == experiments / "exp_aaa111"
    assert resolve_run(three_runs, "greetings") == experiments / "exp_aaa111"  # exact name wins
    assert resolve_run(three_runs, "greetings-l") == experiments / "exp_aab222"
    assert resolve_run(three_runs, "exp_b") == experiments / "exp_bbb333"
    assert resolve_run(three_runs, "farew") == experiments / "exp_bbb333"


def test_chats_resolve_by_directory_and_conversation_id(three_runs: Path) -> None:
    (chat,) = (three_runs / "chats").iterdir()
    conversation_id = next(ref for ref in scan_runs(three_runs) if ref.kind == "chat").aliases[0]
    assert resolve_run(three_runs, chat.name) == chat
    assert resolve_run(three_runs, conversation_id) == chat
    assert resolve_run(three_runs, conversation_id[:9]) == chat
    with pytest.raises(click.ClickException, match="no experiment matches"):
        resolve_run(three_runs, conversation_id, kinds=("experiment",))


def test_ambiguous_prefix_lists_candidates(three_runs: Path) -> None:
    with pytest.raises(click.ClickException) as raised:
        resolve_run(three_runs, "exp_aa")
    message = raised.value.format_message()
    assert "ambiguous" in message
    assert "exp_aaa111" in message
    assert "exp_aab222" in message
    assert "exp_bbb333" not in message
    assert raised.value.exit_code == 1


def test_unknown_id_lists_close_candidates(three_runs: Path) -> None:
    with pytest.raises(click.ClickException) as raised:
        resolve_run(three_runs, "greetngs")
    message = raised.value.format_message()
    assert "no experiment or chat matches 'greetngs'" in message
    assert "exp_aaa111" in message
    assert raised.value.exit_code == 1


def test_unknown_id_in_an_empty_root(output_root: Path) -> None:
    with pytest.raises(click.ClickException, match="there are none under"):
        resolve_run(output_root, "exp_nothing")


@pytest.mark.parametrize("text", ["../x", "..", "a/b", "a\nb", "a\x00b", "", " x", "-x"])
def test_unsafe_text_is_refused_before_any_path_is_built(three_runs: Path, text: str) -> None:
    with pytest.raises(click.BadParameter) as raised:
        resolve_run(three_runs, text)
    assert raised.value.exit_code == 2
    assert "invalid" in raised.value.format_message()


def test_legacy_names_and_manifest_ids(legacy_root: Path) -> None:
    experiments = legacy_root / "experiments"
    assert resolve_run(legacy_root, "exp-5x20-full") == experiments / "exp-5x20-full_f41ebd59"
    assert resolve_run(legacy_root, "experiment_f41") == experiments / "exp-5x20-full_f41ebd59"
    assert resolve_run(legacy_root, "chat-silent") == experiments / "chat-silent-10turn_4700f813"


def test_cli_unknown_and_ambiguous_exit_1(three_runs: Path, run_cli: RunCli) -> None:
    for command in (["experiment", "status"], ["experiment", "attach"]):
        result = run_cli(*command, "exp_aa")
        assert result.returncode == 1, result
        assert "ambiguous" in result.stderr
        assert "exp_aaa111" in result.stderr
        assert "exp_aab222" in result.stderr
        assert result.stdout == ""
        result = run_cli(*command, "exp_zzz")
        assert result.returncode == 1, result
        assert "no experiment or chat matches 'exp_zzz'" in result.stderr


@pytest.mark.parametrize("text", ["../x", "a\nb", "exp/../../etc"])
def test_cli_invalid_id_is_a_usage_error(three_runs: Path, run_cli: RunCli, text: str) -> None:
    result = run_cli("experiment", "status", text)
    assert result.returncode == 2, result
    assert "Invalid value for 'ID'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_directory_that_is_not_a_run(output_root: Path, run_cli: RunCli) -> None:
    (output_root / "experiments" / "exp_hollow").mkdir(parents=True)
    for command in (["experiment", "status"], ["experiment", "attach"]):
        result = run_cli(*command, "exp_hollow")
        assert result.returncode == 1, result
        assert "exp_hollow: not an experiment or chat directory" in result.stderr
        assert "Traceback" not in result.stderr
