"""``pidgin run`` with awareness, chosen names and thinking, in real subprocesses, offline.

``local:drift`` answers the name request with a seeded name and thinks deterministically,
so these runs check the whole path: the options, the runner, the events, the displays
(status, attach) rebuilt by the StateBuilder, and the automatic load into DuckDB.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pidgin_cli._awareness import presets
from pidgin_cli._names import OFFLINE_NAMES, offline_name, read_name

RunCli = Any


def _events(directory: Path) -> list[dict[str, Any]]:
    (log,) = sorted(directory.glob("conv_*_events.jsonl"))
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["event_type"] == kind]


def _run(run_cli: RunCli, output_root: Path, *args: str) -> tuple[Path, list[dict[str, Any]]]:
    """``pidgin run ARGS``, followed to its end and its load; its directory and events."""
    result = run_cli("run", *args, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (directory,) = sorted((output_root / "experiments").glob("exp_*"))
    return directory, _events(directory)


def test_names_thinking_and_awareness_reach_events_displays_and_database(
    run_cli: RunCli, output_root: Path
) -> None:
    seed, turns = 11, 3
    _, events = _run(
        run_cli, output_root,
        "-a", "local:drift", "-b", "local:drift", "-t", str(turns), "--seed", str(seed),
        "-w", "firm", "--awareness-b", "backrooms", "--choose-names", "--think-a",
        "--think-budget", "2000", "-n", "named",
    )  # fmt: skip
    names = {agent: offline_name(agent, seed) for agent in ("agent_a", "agent_b")}
    if names["agent_a"] == names["agent_b"]:
        names = {agent: f"{name}-{agent[-1].upper()}" for agent, name in names.items()}
    chosen = _of(events, "AgentNameChosenEvent")
    assert {e["agent_id"]: e["chosen_name"] for e in chosen} == names
    assert {e["reply"] for e in chosen} == {f"Call me {offline_name(a, seed)}." for a in names}
    # the system prompts: each agent's preset, then both names, as sent
    wording = presets()
    prompts = {e["agent_id"]: e["prompt"] for e in _of(events, "SystemPromptEvent")}
    told = "You chose the name {}. The other AI chose the name {}."
    assert prompts == {
        "agent_a": wording["firm"].system
        + "\n\n"
        + told.format(names["agent_a"], names["agent_b"]),
        "agent_b": wording["backrooms"].system
        + "\n\n"
        + told.format(names["agent_b"], names["agent_a"]),
    }
    assert max(events.index(e) for e in chosen) < min(
        events.index(e) for e in _of(events, "SystemPromptEvent")
    )
    # thinking: agent A only, one trace per turn, never inside the message
    thoughts = _of(events, "ThinkingCompleteEvent")
    assert [(t["agent_id"], t["turn_number"]) for t in thoughts] == [
        ("agent_a", turn) for turn in range(turns)
    ]
    said = [m["message"]["content"] for m in _of(events, "MessageCompleteEvent")]
    assert not any(t["thinking_content"] in text for t in thoughts for text in said)
    assert all(0 < t["thinking_tokens"] <= 2000 for t in thoughts)

    status = run_cli("experiment", "status", "named", "--json")
    assert status.returncode == 0, status.stderr
    (conversation,) = json.loads(status.stdout)["experiment"]["conversations"]
    assert (conversation["agent_a_name"], conversation["agent_b_name"]) == (
        names["agent_a"],
        names["agent_b"],
    )
    table = run_cli("experiment", "status", "named")
    assert f"{names['agent_a']} (local:drift) / {names['agent_b']} (local:drift)" in table.stdout
    attach = run_cli("experiment", "attach", "named")
    assert f"agents {names['agent_a']} (local:drift) / {names['agent_b']}" in attach.stdout
    transcript = run_cli("transcript", "named", "--format", "json")
    assert transcript.returncode == 0, transcript.stderr
    agents = json.loads(transcript.stdout)["conversations"][0]["agents"]
    assert {agent: agents[agent]["chosen_name"] for agent in names} == names
    markdown = run_cli("transcript", "named", "--format", "md").stdout
    assert f"Agent A · {names['agent_a']} (local:drift)" in markdown

    with duckdb.connect(str(output_root / "experiments" / "experiments.duckdb")) as con:
        assert con.execute(
            "SELECT agent_a_chosen_name, agent_b_chosen_name FROM conversations"
        ).fetchall() == [(names["agent_a"], names["agent_b"])]
        rows = con.execute(
            "SELECT agent_id, turn_number, thinking_content, thinking_tokens FROM thinking "
            "ORDER BY turn_number"
        ).fetchall()
    assert rows == [
        ("agent_a", t["turn_number"], t["thinking_content"], t["thinking_tokens"]) for t in thoughts
    ]
    config = _of(events, "ConversationStartEvent")[0]["config"]
    assert (config["awareness_a"], config["awareness_b"], config["choose_names"]) == (
        "firm",
        "backrooms",
        True,
    )


def test_a_custom_awareness_file_injects_at_its_turns(
    run_cli: RunCli, output_root: Path, tmp_path: Path
) -> None:
    awareness = tmp_path / "turns.yml"
    awareness.write_text(
        "prompts:\n"
        "  0:\n"
        "    both: You are two lighthouses.\n"
        "  2:\n"
        "    agent_a: {role: user, content: 'The fog is lifting.'}\n",
        encoding="utf-8",
    )
    _, events = _run(
        run_cli, output_root, "-a", "local:test", "-b", "local:test", "-t", "3",
        "-w", str(awareness),
    )  # fmt: skip
    prompts = {e["agent_id"]: e["prompt"] for e in _of(events, "SystemPromptEvent")}
    assert prompts == dict.fromkeys(("agent_a", "agent_b"), "You are two lighthouses.")
    (injection,) = _of(events, "PromptInjectionEvent")
    assert (injection["turn_number"], injection["agent_id"], injection["role"]) == (
        2,
        "agent_a",
        "user",
    )
    assert injection["content"] == "The fog is lifting."
    assert injection["source"] == str(awareness)
    # local:test answers the last message it sees: the injected user message for A
    a_requests = [r for r in _of(events, "MessageRequestEvent") if r["agent_id"] == "agent_a"]
    b_requests = [r for r in _of(events, "MessageRequestEvent") if r["agent_id"] == "agent_b"]
    assert a_requests[2]["message_count"] == b_requests[2]["message_count"]  # B never sees it


def test_none_awareness_sends_no_system_prompt(run_cli: RunCli, output_root: Path) -> None:
    _, events = _run(
        run_cli, output_root, "-a", "local:test", "-b", "local:test", "-t", "1", "-w", "none"
    )
    assert _of(events, "SystemPromptEvent") == []
    assert _of(events, "MessageRequestEvent")[0]["message_count"] == 1


@pytest.mark.parametrize(
    ("content", "line", "expected"),
    [
        ("prompts:\n  1:\n    agent_c: hello\n", 3, "unknown key 'agent_c'"),
        ("name: x\nprompts:\n  one:\n    both: hi\n", 3, "turn 'one' must be a whole number"),
        (
            "prompts:\n  2:\n    both: {role: robot, content: hi}\n",
            3,
            "'role' must be system or user",
        ),
        ("base: loud\nprompts: {}\n", 1, "'base' must be one of none, basic"),
        ("name: x\nprompt:\n  1: {both: hi}\n", 2, "unknown key 'prompt'"),
        ("prompts:\n  1:\n    both: [a, b]\n", 3, "must be text, or a mapping"),
        ("prompts:\n  1: {both: 'unclosed\n", 3, "not valid YAML"),  # found at the end
        ("name: only\n", 1, "needs a 'prompts' mapping"),
    ],
)
def test_a_bad_awareness_file_is_refused_with_its_file_and_line(
    run_cli: RunCli, output_root: Path, content: str, line: int, expected: str
) -> None:
    bad = output_root.parent / "bad.yaml"
    bad.write_text(content, encoding="utf-8")
    result = run_cli("run", "-a", "local:test", "-b", "local:test", "--awareness-b", str(bad))
    assert result.returncode == 2
    assert f"{bad}:{line}: " in result.stderr, result.stderr
    assert expected in result.stderr
    assert "--awareness-b" in result.stderr
    assert not (output_root / "experiments").exists() or not any(
        (output_root / "experiments").glob("exp_*")
    )


def test_unknown_preset_and_thinking_without_support_are_refused(run_cli: RunCli) -> None:
    unknown = run_cli("run", "-a", "local:test", "-b", "local:test", "-w", "shy")
    assert unknown.returncode == 2
    assert "unknown awareness 'shy'" in unknown.stderr
    assert "none, basic, firm, research, backrooms" in unknown.stderr
    cannot = run_cli("run", "-a", "local:drift", "-b", "local:test", "--think")
    assert cannot.returncode == 2
    assert "local:test cannot think" in cannot.stderr
    assert "local:drift" in cannot.stderr  # the models that can are listed
    budget_alone = run_cli(
        "run", "-a", "local:drift", "-b", "local:drift", "--think-budget", "2000"
    )
    assert budget_alone.returncode == 2
    assert "needs --think" in budget_alone.stderr


@pytest.mark.parametrize(
    ("reply", "name"),
    [
        ("Call me Nova.", "Nova"),
        ("My name is **Quill**, nice to meet you", "Quill"),
        ("Name: Wren", "Wren"),
        ('I\'ll go by "Sable" for this one.', "Sable"),
        ("Sure! Tamsin.", "Tamsin"),
        ("Orrin", "Orrin"),
        ("I am Echo-7, an AI.", "Echo-7"),
        ("…", None),
        ("", None),
    ],
)
def test_read_name_finds_the_name_in_many_phrasings(reply: str, name: str | None) -> None:
    assert read_name(reply) == name


def test_offline_names_are_seeded() -> None:
    assert offline_name("agent_a", 1) == offline_name("agent_a", 1)
    assert offline_name("agent_a", 1) in OFFLINE_NAMES
    assert len({offline_name("agent_a", seed) for seed in range(40)}) > 5


def test_a_spec_grid_varies_awareness_per_conversation_with_flags_as_booleans(
    run_cli: RunCli, output_root: Path
) -> None:
    spec = output_root.parent / "aware.yaml"
    spec.write_text(
        "agent_a: local:drift\nagent_b: local:drift\nmax_turns: 1\nseed: 2\n"
        "choose_names: true\nthink_b: true\ngrid_mode: conversations\n"
        "grid:\n  awareness: [firm, backrooms]\n",
        encoding="utf-8",
    )
    result = run_cli("run", str(spec), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (directory,) = sorted((output_root / "experiments").glob("exp_*"))
    wording = presets()
    told: dict[str, set[str]] = {}
    for log in sorted(directory.glob("conv_*_events.jsonl")):
        events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        (start,) = _of(events, "ConversationStartEvent")
        awareness = start["config"]["awareness_a"]
        assert start["config"]["awareness_b"] == awareness
        told[awareness] = {e["prompt"].split("\n\n")[0] for e in _of(events, "SystemPromptEvent")}
        assert len(_of(events, "AgentNameChosenEvent")) == 2
        assert [t["agent_id"] for t in _of(events, "ThinkingCompleteEvent")] == ["agent_b"]
    assert told == {name: {wording[name].system} for name in ("firm", "backrooms")}
    bad = output_root.parent / "bad-flag.yaml"
    bad.write_text("agent_a: local:test\nagent_b: local:test\nchoose_names: 3\n", encoding="utf-8")
    refused = run_cli("run", str(bad))
    assert refused.returncode == 2
    assert "choose_names" in refused.stderr
