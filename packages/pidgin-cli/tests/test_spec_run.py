"""``pidgin run SPEC.yaml``, its grids, ``--like`` and ``pidgin spec``, in real subprocesses.

Runs follow their experiment to its end (no ``-q``), so every runner has exited when
``pidgin run`` returns. Expected values are derived from the spec each test writes.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from pidgin_events import EXPERIMENT_LOG, EXPERIMENTS_DIR

REPOSITORY = Path(__file__).resolve().parents[3]
PUBLISHED_SCHEMA = REPOSITORY / "docs" / "spec.schema.json"
RUN_DEADLINE = 120


Pidgin = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def pidgin(output_root: Path, cli_env: Callable[..., dict[str, str]]) -> Pidgin:
    """``pidgin ARGS`` in a subprocess against ``output_root``; runs are followed to the end."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pidgin_cli", *args],
            env=cli_env(output_root),
            capture_output=True,
            text=True,
            timeout=RUN_DEADLINE,
            check=False,
        )

    return run


def write_spec(directory: Path, text: str, name: str = "study.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def experiments(root: Path) -> list[Path]:
    return sorted((root / EXPERIMENTS_DIR).glob("exp_*"))


def wait_until_processed(directories: list[Path]) -> None:
    """Background runners (an experiments grid is never followed) finish before the test."""
    deadline = time.monotonic() + RUN_DEADLINE
    for directory in directories:
        while "PostProcessingCompleteEvent" not in (directory / EXPERIMENT_LOG).read_text():
            assert time.monotonic() < deadline, f"{directory.name} did not finish"
            time.sleep(0.1)


def start_config(directory: Path) -> dict[str, Any]:
    start = records(directory / EXPERIMENT_LOG)[0]
    assert start["event_type"] == "ExperimentStartEvent"
    config: dict[str, Any] = start["config"]
    return config


def conversations(directory: Path) -> list[tuple[dict[str, Any], list[str]]]:
    """Each conversation's start config and its messages' text, ordered by seed."""
    found = []
    for log in directory.glob("conv_*_events.jsonl"):
        events = records(log)
        assert events[0]["event_type"] == "ConversationStartEvent"
        texts = [
            event["message"]["content"]
            for event in events
            if event["event_type"] == "MessageCompleteEvent"
        ]
        found.append((events[0]["config"], texts))
    return sorted(found, key=lambda item: int(item[0]["seed"]))


# --- running specs --------------------------------------------------------------------


def test_a_conversations_grid_is_one_experiment_whose_conversations_are_the_cells(
    tmp_path: Path, output_root: Path, pidgin: Pidgin
) -> None:
    temperatures, partners, repetitions, seed = [0.3, 1.1], ["local:drift", "local:test"], 2, 77
    spec = write_spec(
        tmp_path,
        f"""
        name: grid-study
        agent_a: local:drift
        max_turns: 3          # pidgin-ai's name for --turns
        repetitions: {repetitions}
        seed: {seed}
        custom_prompt: Talk about rivers.
        grid_mode: conversations
        grid:
          temperature: {json.dumps(temperatures)}
          agent_b: {json.dumps(partners)}
        """,
    )
    result = pidgin("run", str(spec), "--max-parallel", "2")
    assert result.returncode == 0, result.stderr
    (directory,) = experiments(output_root)
    config = start_config(directory)
    cells = [{"temperature": t, "agent_b": b} for t, b in itertools.product(temperatures, partners)]
    assert config["grid"] == {"mode": "conversations", "cells": cells}
    assert config["options"]["turns"] == 3
    assert config["options"]["max_parallel"] == 2
    assert config["command_line"] == ["max_parallel"]
    assert config["spec"]["file"] == str(spec)
    assert config["spec"]["given"]["max_turns"] == 3
    assert set(config["models"]) == {"local:drift", "local:test"}
    assert config["pidgin_version"]
    started = conversations(directory)
    assert len(started) == len(cells) * repetitions
    for index, (conversation, texts) in enumerate(started):
        cell = cells[index // repetitions]
        assert conversation["seed"] == seed + index
        assert conversation["agent_b"] == cell["agent_b"]
        assert conversation["temperature_a"] == conversation["temperature_b"] == cell["temperature"]
        assert conversation["initial_prompt"] == "Talk about rivers."
        assert conversation["max_turns"] == 3
        assert len(texts) == 2 * 3


def test_an_experiments_grid_starts_one_named_experiment_per_cell(
    tmp_path: Path, output_root: Path, pidgin: Pidgin
) -> None:
    turns = [2, 3]
    spec = write_spec(
        tmp_path,
        f"""
        name: sweep
        agent_a: local:drift
        agent_b: local:drift
        seed: 5
        grid:
          turns: {json.dumps(turns)}
        """,
    )
    result = pidgin("run", str(spec))
    assert result.returncode == 0, result.stderr
    assert f"Started {len(turns)} experiments" in result.stdout
    started = experiments(output_root)
    wait_until_processed(started)
    assert len(started) == len(turns)
    by_name = {start_config(directory)["name"]: directory for directory in started}
    assert set(by_name) == {f"sweep-{index + 1}" for index in range(len(turns))}
    for index, cell_turns in enumerate(turns):
        config = start_config(by_name[f"sweep-{index + 1}"])
        assert config["spec"]["cell"] == {"turns": cell_turns}
        assert config["max_turns"] == config["options"]["turns"] == cell_turns
        assert "grid" not in config
    again = pidgin("run", str(spec))
    assert again.returncode == 2
    assert "sweep-1, sweep-2 are already used" in again.stderr
    assert experiments(output_root) == started


def test_command_line_options_override_the_spec(
    tmp_path: Path, output_root: Path, pidgin: Pidgin
) -> None:
    spec = write_spec(
        tmp_path,
        """
        agent_a: local:drift
        agent_b: local:drift
        turns: 6
        temperature_a: 0.4
        seed: 9
        """,
    )
    result = pidgin("run", str(spec), "-t", "2", "--seed", "11")
    assert result.returncode == 0, result.stderr
    (directory,) = experiments(output_root)
    config = start_config(directory)
    assert (config["max_turns"], config["seed"], config["temperature_a"]) == (2, 11, 0.4)
    assert config["command_line"] == ["seed", "turns"]
    ((conversation, texts),) = conversations(directory)
    assert conversation["seed"] == 11
    assert len(texts) == 2 * 2


def test_like_runs_an_experiment_again_with_the_same_config_and_messages(
    tmp_path: Path, output_root: Path, pidgin: Pidgin
) -> None:
    first = pidgin(
        *("run", "-a", "local:drift", "-b", "local:drift", "-t", "4", "-r", "2"),
        *("--temp-b", "0.7", "-p", "Begin with a bridge.", "-n", "original"),
    )
    assert first.returncode == 0, first.stderr
    (original,) = experiments(output_root)
    for database in (output_root / EXPERIMENTS_DIR).glob("*.duckdb*"):
        database.unlink()  # --like reads the JSONL start event, never the database
    again = pidgin("run", "--like", "original")
    assert again.returncode == 0, again.stderr
    (copy,) = set(experiments(output_root)) - {original}
    before, after = start_config(original), start_config(copy)
    assert after["like"] == original.name
    assert {k: v for k, v in after["options"].items() if k != "name"} == {
        k: v for k, v in before["options"].items() if k != "name"
    }
    assert after["seed"] == before["seed"]  # the random seed was recorded and reused
    assert conversations(copy) == conversations(original)
    varied = pidgin("run", "--like", original.name, "-t", "2")
    assert varied.returncode == 0, varied.stderr
    (directory,) = set(experiments(output_root)) - {original, copy}
    changed = start_config(directory)
    assert (changed["max_turns"], changed["seed"]) == (2, before["seed"])
    assert changed["command_line"] == ["turns"]


@pytest.mark.parametrize("source", ["exp-5x20-full_f41ebd59", "chat-silent-10turn_4700f813"])
def test_like_runs_a_pidgin_ai_experiment_from_its_manifest(
    legacy_root: Path, pidgin: Pidgin, source: str
) -> None:
    directory = legacy_root / EXPERIMENTS_DIR / source
    manifest = json.loads((directory / "manifest.json").read_text("utf-8"))
    old = manifest["config"]
    assert not (directory / EXPERIMENT_LOG).exists()  # pidgin-ai keeps its config elsewhere

    result = pidgin("run", "--like", old["name"], "-t", "2")
    assert result.returncode == 0, result.stderr
    (copy,) = experiments(legacy_root)
    config = start_config(copy)
    assert config["like"] == source
    options = config["options"]
    assert (options["agent_a"], options["agent_b"]) == (old["agent_a_model"], old["agent_b_model"])
    assert options["prompt"] == old["custom_prompt"]
    assert options["repetitions"] == old["repetitions"] == len(conversations(copy))
    for key in ("awareness", "convergence_action", "max_parallel", "choose_names", "think"):
        assert options[key] == old[key], key
    assert options["turns"] == 2 != old["max_turns"]  # given on the command line: it wins
    assert config["command_line"] == ["turns"]
    assert options["name"] is None  # a new run gets a name of its own


def test_like_refuses_a_pidgin_ai_branch_and_a_manifest_without_config(
    legacy_root: Path, pidgin: Pidgin
) -> None:
    directory = legacy_root / EXPERIMENTS_DIR / "chat-silent-10turn_4700f813"
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    manifest["config"]["branch_from_conversation"] = "conv_7fc087b1"
    manifest_path.write_text(json.dumps(manifest), "utf-8")
    branched = pidgin("run", "--like", "chat-silent-10turn")
    assert branched.returncode == 2, branched.stderr
    assert f"{manifest_path}: this pidgin-ai experiment branched conversation" in branched.stderr
    del manifest["config"]
    manifest_path.write_text(json.dumps(manifest), "utf-8")
    bare = pidgin("run", "--like", "chat-silent-10turn")
    assert bare.returncode == 2, bare.stderr
    assert f"{manifest_path}: has no config object" in bare.stderr
    assert experiments(legacy_root) == []


def test_like_repeats_a_conversations_grid(
    tmp_path: Path, output_root: Path, pidgin: Pidgin
) -> None:
    spec = write_spec(
        tmp_path,
        """
        agent_a: local:drift
        agent_b: local:drift
        turns: 2
        grid_mode: conversations
        grid:
          temperature: [0.1, 0.5, 0.9]
        """,
    )
    assert pidgin("run", str(spec)).returncode == 0
    (original,) = experiments(output_root)
    again = pidgin("run", "--like", original.name)
    assert again.returncode == 0, again.stderr
    (copy,) = set(experiments(output_root)) - {original}
    assert start_config(copy)["grid"] == start_config(original)["grid"]
    assert conversations(copy) == conversations(original)


# --- bad specs --------------------------------------------------------------------------


class BadSpec(NamedTuple):
    """A spec that must be refused: the text of its wrong value locates line and column."""

    text: str
    line: int
    at: str
    """The text the error must point at (its first occurrence on ``line``)."""
    words: tuple[str, ...]

    @property
    def column(self) -> int:
        return self.text.splitlines()[self.line - 1].index(self.at) + 1


MODELS = "agent_a: local:drift\nagent_b: local:drift\n"
BAD_SPECS = {
    "unknown-key": BadSpec(
        MODELS + "max_turn: 5\n", 3, "max_turn", ("'max_turn'", "did you mean 'max_turns'")
    ),
    "wrong-type": BadSpec(
        MODELS + "turns: ten\n", 3, "ten", ("'turns'", "expected an integer", "'ten'")
    ),
    "out-of-range": BadSpec(
        MODELS + "temperature: 3.5\n", 3, "3.5", ("'temperature'", "3.5", "0.0<=x<=2.0")
    ),
    "bad-choice": BadSpec(
        MODELS + "convergence_action: pause\n",
        3,
        "pause",
        ("'convergence_action'", "one of stop, warn, continue", "'pause'"),
    ),
    "yaml-syntax": BadSpec(
        "agent_a: local:drift\nagent_b: [local:drift\nturns: 3\n",
        3,
        ":",
        ("YAML syntax error", "expected ',' or ']'"),
    ),
    "unknown-model": BadSpec(
        "agent_a: local:nope\nagent_b: local:drift\n",
        1,
        "local:nope",
        ("'agent_a'", "can be named provider:model", "'pidgin models' lists"),
    ),
    "grid-key-not-per-conversation": BadSpec(
        MODELS + "grid_mode: conversations\ngrid:\n  max_parallel: [1, 2]\n",
        5,
        "max_parallel",
        ("'max_parallel'", "grid_mode: experiments"),
    ),
    "grid-item": BadSpec(
        MODELS + "grid:\n  temperature: [0.5, high]\n",
        4,
        "high",
        ("'temperature', item 2", "expected a number"),
    ),
    "key-and-alias": BadSpec(
        MODELS + "turns: 4\nmax_turns: 5\n", 4, "max_turns", ("'max_turns' is given twice",)
    ),
    "pidgin-ai-unsupported": BadSpec(
        MODELS + "prompt_tag: '[H]'\n",
        3,
        "prompt_tag",
        ("pidgin-ai's key 'prompt_tag' is not supported",),
    ),
}


@pytest.mark.parametrize("case", BAD_SPECS.values(), ids=list(BAD_SPECS))
@pytest.mark.parametrize("command", [("run",), ("spec", "check")])
def test_a_bad_spec_is_refused_with_its_line_before_anything_runs(
    tmp_path: Path, output_root: Path, pidgin: Pidgin, case: BadSpec, command: tuple[str, ...]
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(case.text, encoding="utf-8")
    result = pidgin(*command, str(spec))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{spec}:{case.line}:{case.column}: " in result.stderr
    for word in case.words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr
    assert not (output_root / EXPERIMENTS_DIR).exists()


@pytest.mark.parametrize("command", [("run",), ("spec", "check")])
def test_every_problem_of_a_spec_is_listed_in_file_order(
    tmp_path: Path, output_root: Path, pidgin: Pidgin, command: tuple[str, ...]
) -> None:
    """One pass names them all, so a spec with several mistakes is mended in one go."""
    text = (
        "agent_a: local:nope\n"  # unknown model: found after the keys, listed first
        "agent_b: local:drift\n"
        "max_turn: 5\n"
        "turns: 3\n"
        "temperature: hot\n"
        "turns: 4\n"
        "grid:\n"
        "  seed: [1, x]\n"
        "  colour: [red]\n"
    )
    spec = tmp_path / "many.yaml"
    spec.write_text(text, encoding="utf-8")
    result = pidgin(*command, str(spec))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = text.splitlines()

    def at(line: int, word: str) -> str:
        return f"{spec}:{line}:{lines[line - 1].index(word) + 1}: "

    expected = [
        (at(1, "local:nope"), "'agent_a'"),
        (at(3, "max_turn"), "did you mean 'max_turns'"),
        (at(5, "hot"), "'temperature': expected a number"),
        (at(6, "turns"), "'turns' is given twice"),
        (at(8, "x"), "'seed', item 2"),
        (at(9, "colour"), "unknown key 'colour'"),
    ]
    assert f"{spec}: {len(expected)} problems" in result.stderr
    listed = [line for line in result.stderr.splitlines() if line.startswith(f"{spec}:")]
    assert len(listed) == len(expected), result.stderr
    for line, (place, words) in zip(listed, expected, strict=True):
        assert line.startswith(place), (line, place)
        assert words in line, (line, words)
    assert not (output_root / EXPERIMENTS_DIR).exists()


def test_a_grid_key_given_on_the_command_line_too_is_refused(
    tmp_path: Path, output_root: Path, pidgin: Pidgin
) -> None:
    spec = write_spec(
        tmp_path, "agent_a: local:drift\nagent_b: local:drift\ngrid:\n  turns: [2, 3]\n"
    )
    result = pidgin("run", str(spec), "-t", "4")
    assert result.returncode == 2
    assert "grid key 'turns'" in result.stderr
    assert "--turns" in result.stderr
    assert not (output_root / EXPERIMENTS_DIR).exists()


def test_a_missing_spec_file_is_named(tmp_path: Path, output_root: Path, pidgin: Pidgin) -> None:
    missing = tmp_path / "absent.yaml"
    result = pidgin("run", str(missing))
    assert result.returncode == 2
    assert f"{missing}: cannot read the spec" in result.stderr


# --- pidgin spec ------------------------------------------------------------------------


def test_the_published_schema_is_current(output_root: Path, pidgin: Pidgin) -> None:
    result = pidgin("spec", "schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == PUBLISHED_SCHEMA.read_text(encoding="utf-8"), (
        "docs/spec.schema.json is stale: run 'pidgin spec schema > docs/spec.schema.json'"
    )


def test_the_schema_accepts_the_example_and_rejects_what_the_loader_rejects(
    output_root: Path,
    pidgin: Pidgin,
) -> None:
    import jsonschema
    import yaml

    schema = json.loads(PUBLISHED_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    example = pidgin("spec", "example").stdout
    assert list(validator.iter_errors(yaml.safe_load(example))) == []
    beyond_a_schema = {  # models, YAML syntax, duplicates, what a conversations grid varies
        "unknown-model",
        "yaml-syntax",
        "key-and-alias",
        "grid-key-not-per-conversation",
    }
    for name, case in BAD_SPECS.items():
        if name not in beyond_a_schema:
            assert list(validator.iter_errors(yaml.safe_load(case.text))), name


def test_the_example_spec_checks_and_runs(
    tmp_path: Path, output_root: Path, pidgin: Pidgin
) -> None:
    example = pidgin("spec", "example")
    spec = write_spec(tmp_path, example.stdout)
    import yaml

    given = yaml.safe_load(example.stdout)
    cells = len(list(itertools.product(*given["grid"].values())))
    checked = pidgin("spec", "check", str(spec))
    assert checked.returncode == 0, checked.stderr
    total = cells * given["repetitions"]
    assert f"one experiment of {total} conversations" in checked.stdout
    result = pidgin("run", str(spec), "-t", "2")
    assert result.returncode == 0, result.stderr
    (directory,) = experiments(output_root)
    assert len(conversations(directory)) == total


def test_spec_keys_follow_the_options_of_run() -> None:
    """An option added to ``pidgin run`` is a spec key and in the schema, with no list."""
    import click

    from pidgin_cli._commands_run import _plan, run_command
    from pidgin_cli._spec import conversation_keys, spec_keys, spec_schema

    extended = click.Command(
        "run",
        params=[
            *run_command.params,
            click.Option(["--think-budget"], type=click.IntRange(1000, 100_000), help="Budget."),
        ],
    )
    keys = spec_keys(extended)
    expected = {
        *("agent_a", "agent_b", "prompt", "turns", "temperature", "temp_a", "temp_b"),
        *("convergence_threshold", "convergence_action", "seed", "repetitions", "name"),
        *("max_parallel", "max_cost", "context_policy", "base_url", "request_timeout"),
        *("chunk_interval", "limit", "output"),
    }
    assert expected <= set(spec_keys(run_command))
    assert not {"quiet", "detach", "like", "help"} & set(spec_keys(run_command))
    assert set(keys) == set(spec_keys(run_command)) | {"think_budget"}
    schema = spec_schema(keys, conversation_keys(extended, _plan))
    assert schema["properties"]["think_budget"] == {
        "type": "integer",
        "minimum": 1000,
        "maximum": 100_000,
        "description": "Budget. (pidgin run --think-budget)",
    }
    assert schema["properties"]["max_turns"]["$ref"] == "#/properties/turns"


def test_the_spec_overrides_like_whichever_comes_first(
    tmp_path: Path, output_root: Path, pidgin: Pidgin
) -> None:
    first = pidgin(
        *("run", "-a", "local:drift", "-b", "local:test", "-t", "4", "--temp-b", "0.6"),
        *("-n", "base", "--seed", "3"),
    )
    assert first.returncode == 0, first.stderr
    spec = write_spec(tmp_path, "turns: 2\nseed: 8\n")
    for order in (("--like", "base", str(spec)), (str(spec), "--like", "base")):
        before = set(experiments(output_root))
        result = pidgin("run", *order)
        assert result.returncode == 0, result.stderr
        (directory,) = set(experiments(output_root)) - before
        config = start_config(directory)
        assert (config["max_turns"], config["seed"]) == (2, 8), order  # the spec's
        assert (config["agent_b_model"], config["temperature_b"]) == ("local:test", 0.6)
        assert config["like"].startswith("exp_")


def test_a_base_url_password_is_never_recorded(
    tmp_path: Path, output_root: Path, pidgin: Pidgin
) -> None:
    password = "s3cr3t-pa55"
    spec = write_spec(
        tmp_path,
        f"""
        agent_a: local:drift
        agent_b: local:drift
        turns: 1
        base_url: http://user:{password}@127.0.0.1:9/v1
        """,
    )
    result = pidgin("run", str(spec))
    assert result.returncode == 0, result.stderr
    (directory,) = experiments(output_root)
    assert start_config(directory)["options"]["base_url"] == "http://127.0.0.1:9/v1"
    for path in directory.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert password not in result.stdout + result.stderr


def test_every_pidgin_ai_key_is_a_key_an_alias_or_explained(tmp_path: Path) -> None:
    """pidgin-ai 1.1's keys are accepted, or refused with words naming pidgin-ai."""
    import click

    from pidgin_cli._commands_run import run_command
    from pidgin_cli._spec import SpecError, load_spec, spec_keys
    from pidgin_cli._spec._keys import PIDGIN_AI_KEYS, aliases_of

    keys = spec_keys(run_command)
    accepted = set(keys) | set(aliases_of(keys))
    ctx = click.Context(run_command, info_name="run")
    for key in sorted(PIDGIN_AI_KEYS - accepted):
        spec = tmp_path / f"{key}.yaml"
        spec.write_text(f"agent_a: local:drift\n{key}: 1\n", encoding="utf-8")
        with pytest.raises(SpecError) as refused:
            load_spec(spec, keys, ctx)
        assert f"{spec}:2:1: pidgin-ai's key {key!r}" in refused.value.format_message()
