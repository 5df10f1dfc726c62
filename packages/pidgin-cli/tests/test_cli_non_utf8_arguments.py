"""Command-line text that is not UTF-8 is refused (exit 2, naming its option) before any write.

A shell passes ``$'caf\\xe9'`` as the bytes ``caf\\xe9``; Python hands them over as the
lone surrogate ``\\udce9``, which no log line can hold. Arguments here are given as such
strings, and ``subprocess`` turns them back into those bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

NOT_UTF8 = "caf\udce9"  # the bytes b"caf\xe9" once on the command line
TWO = ("-a", "local:drift", "-b", "local:drift")


def _refused(result: Any, option: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"Error: Invalid value for {option}: not valid UTF-8 (byte 0xe9)"), last


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("-p", NOT_UTF8), "'-p' / '--prompt'"),
        (("-w", f"{NOT_UTF8}.yaml"), "'-w' / '--awareness'"),
        (("--awareness-a", NOT_UTF8), "'--awareness-a'"),
        (("--awareness-b", NOT_UTF8), "'--awareness-b'"),
        (("--base-url", f"http://127.0.0.1:9/{NOT_UTF8}"), "'--base-url'"),
    ],
)
def test_run_and_chat_refuse_before_writing(
    run_cli: Any, output_root: Path, args: tuple[str, ...], option: str
) -> None:
    _refused(run_cli("run", *TWO, *args, "-q"), option)
    _refused(run_cli("chat", *TWO, *args), option)
    assert list(output_root.iterdir()) == []  # no experiment, no chat, not even their folders


@pytest.mark.parametrize("flag", ["-a", "-b"])
def test_a_model_name_that_is_not_utf8(run_cli: Any, output_root: Path, flag: str) -> None:
    # ollama: and openai-compatible: take any model name, which goes into the logs
    models = {"-a": "local:drift", "-b": "local:drift", flag: f"ollama:{NOT_UTF8}"}
    result = run_cli("run", "-a", models["-a"], "-b", models["-b"], "-q")
    _refused(result, f"'{flag}' / '--agent-{flag[1]}'")
    assert list(output_root.iterdir()) == []


def test_branch_refuses_before_writing(
    run_cli: Any, output_root: Path, make_experiment: Any
) -> None:
    make_experiment("parent", experiment_id="exp_parent")
    (log,) = (output_root / "experiments" / "exp_parent").glob("conv_*_events.jsonl")
    conversation = log.stem.removesuffix("_events")
    before = sorted(p.name for p in (output_root / "experiments").iterdir())
    for args, option in (
        (("-p", NOT_UTF8), "'-p' / '--prompt'"),
        (("-b", f"ollama:{NOT_UTF8}"), "'-b' / '--agent-b'"),
    ):
        _refused(run_cli("branch", conversation, "--turn", "1", *args), option)
    assert sorted(p.name for p in (output_root / "experiments").iterdir()) == before


def test_text_that_is_utf8_goes_into_the_log(run_cli: Any, output_root: Path) -> None:
    prompt = "caf\u00e9 \u2615"
    result = run_cli("chat", "-a", "local:test", "-b", "local:test", "-t", "1", "-p", prompt)
    assert result.returncode == 0, result.stderr
    (log,) = (output_root / "chats").glob("*/conv_*_events.jsonl")
    prompts = [
        event.get("initial_prompt")
        for event in map(json.loads, log.read_text("utf-8").splitlines())
        if event["event_type"] == "ConversationStartEvent"
    ]
    assert prompts == [prompt]
