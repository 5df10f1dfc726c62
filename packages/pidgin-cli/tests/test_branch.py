"""``pidgin branch``: real runs of seeded ``local:drift``, branched, replayed, loaded."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import duckdb

import pidgin_load
from pidgin_events import (
    EXPERIMENTS_DIR,
    ConversationBranchedEvent,
    conversation_id_of_log,
    read_events,
)
from pidgin_state import Replay, StateBuilder, replay

RunCli = Callable[..., "subprocess.CompletedProcess[str]"]

TURNS = 6
BRANCH_AT = 3


def _logs(root: Path, name: str) -> list[Path]:
    for directory in (root / EXPERIMENTS_DIR).iterdir():
        if not directory.is_dir():
            continue
        with (directory / "experiment.jsonl").open("rb") as stream:
            if json.loads(stream.readline()).get("name") == name:
                return sorted(
                    p for p in directory.iterdir() if conversation_id_of_log(p.name) is not None
                )
    raise AssertionError(f"no experiment {name}")


def _said(state: Replay, before: int | None = None) -> list[tuple[str, int | None, str]]:
    return [
        (said.speaker, said.turn, said.content)
        for said in state.history
        if before is None or said.turn is None or said.turn < before
    ]


def test_branch_replays_the_parents_first_turns_then_goes_its_own_way(
    run_cli: RunCli, output_root: Path
) -> None:
    parent_run = run_cli(
        "run", "-a", "local:drift", "-b", "local:drift", "-t", str(TURNS), "--seed", "5",
        "-p", "Tell me about rivers.", "--name", "parent", timeout=120,
    )  # fmt: skip
    assert parent_run.returncode == 0, parent_run.stderr
    (parent_log,) = _logs(output_root, "parent")
    parent = replay(parent_log)
    parent_id = parent.conversation_id
    assert parent_id is not None

    same = run_cli("branch", parent_id, "--turn", str(BRANCH_AT), "-n", "same", timeout=120)
    assert same.returncode == 0, same.stdout + same.stderr
    assert f"Branched {parent_id} at turn {BRANCH_AT}" in same.stdout
    (same_log,) = _logs(output_root, "same")
    # Nothing changed and the parent's seed: the branch is the parent again, every request.
    twin = replay(same_log)
    assert _said(twin) == _said(parent)
    assert twin.branched_from == (parent_id, BRANCH_AT)
    for turn in range(TURNS):
        for agent in ("agent_a", "agent_b"):
            assert twin.view(agent, turn) == parent.view(agent, turn)

    changed = run_cli(
        "branch", parent_id[:9], "--turn", str(BRANCH_AT), "--temperature", "1.4",
        "-p", "Now disagree.", "-r", "2", "-n", "changed", timeout=120,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stdout + changed.stderr
    branches = [replay(path) for path in _logs(output_root, "changed")]
    assert len(branches) == 2
    for branch in branches:
        # The first N turns, byte for byte in content; then the injected prompt.
        assert _said(branch, BRANCH_AT) == _said(parent, BRANCH_AT)
        assert branch.turns_completed == TURNS
        injected = [said for said in branch.history if said.speaker == "injection"]
        assert {(said.audience, said.content, said.turn) for said in injected} == {
            ("agent_a", "Now disagree.", BRANCH_AT),
            ("agent_b", "Now disagree.", BRANCH_AT),
        }
        sent = branch.view("agent_a", BRANCH_AT)
        assert sent[-1].content == "Now disagree."
        assert sent[:-1] == parent.view("agent_a", BRANCH_AT)
        assert _said(branch)[2 * BRANCH_AT + 1 :] != _said(parent)[2 * BRANCH_AT + 1 :]
        assert not StateBuilder().experiment(branch_path(output_root, branch).parent).problems
        events = read_events(branch_path(output_root, branch)).events
        (branched,) = [e for e in events if isinstance(e, ConversationBranchedEvent)]
        assert branched.parameter_changes["prompt"] == "Now disagree."
        assert branched.parameter_changes["temperature_a"] == 1.4
    assert branches[0].start["config"]["seed"] != branches[1].start["config"]["seed"]

    database = output_root / "branches.duckdb"
    for log in (parent_log, same_log, *_logs(output_root, "changed")):
        pidgin_load.load_experiment(log.parent, database)
    with duckdb.connect(str(database), read_only=True) as db:
        rows = db.execute(
            "SELECT conversation_id, parent_conversation_id, branch_turn FROM conversations "
            "WHERE parent_conversation_id IS NOT NULL ORDER BY ALL"
        ).fetchall()
        aligned = db.execute(
            "SELECT conversation_id, replayed, bool_and(same_as_parent), count(*) "
            "FROM branch_alignment GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    assert len(rows) == 3
    assert {(parent, turn) for _, parent, turn in rows} == {(parent_id, BRANCH_AT)}
    twin_id = twin.conversation_id
    for conversation_id, replayed, same_content, count in aligned:
        assert count == 2 * (BRANCH_AT if replayed else TURNS - BRANCH_AT)
        assert same_content == (replayed or conversation_id == twin_id)


def branch_path(root: Path, state: Replay) -> Path:
    (path,) = root.glob(f"{EXPERIMENTS_DIR}/*/{state.conversation_id}_events.jsonl")
    return path


def test_branch_refuses_a_turn_the_parent_never_completed(
    run_cli: RunCli, output_root: Path
) -> None:
    done = run_cli(
        "run", "-a", "local:drift", "-b", "local:drift", "-t", "2", "--name", "short",
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (log,) = _logs(output_root, "short")
    conversation_id = replay(log).conversation_id
    assert conversation_id is not None
    refused = run_cli("branch", conversation_id, "--turn", "5")
    assert refused.returncode == 2
    assert "has 2 complete turns" in refused.stderr
    unknown = run_cli("branch", "conv_nothere", "--turn", "1")
    assert unknown.returncode == 1
    assert "no conversation 'conv_nothere'" in unknown.stderr
    shown = run_cli("branch", "--help")
    assert "pidgin branch conv_3f2a9c0d1e2b --turn 2" in shown.stdout


def test_branch_goes_on_from_the_parents_last_turn_by_default(
    run_cli: RunCli, output_root: Path
) -> None:
    """As in pidgin-ai: without --turn the branch keeps every complete turn of the parent."""
    done = run_cli(
        "run", "-a", "local:drift", "-b", "local:drift", "-t", "2", "--name", "whole",
        "--seed", "7", timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (log,) = _logs(output_root, "whole")
    parent = replay(log)
    assert parent.conversation_id is not None
    nothing_left = run_cli("branch", parent.conversation_id)
    assert nothing_left.returncode == 2
    assert "used all of its 2 turns" in nothing_left.stderr
    assert "-t/--turns above 2" in nothing_left.stderr
    longer = run_cli(
        "branch", parent.conversation_id, "--max-turns", "4", "-n", "longer", timeout=120
    )
    assert longer.returncode == 0, longer.stdout + longer.stderr
    assert f"Branched {parent.conversation_id} at turn 2" in longer.stdout
    (branch_log,) = _logs(output_root, "longer")
    branch = replay(branch_log)
    assert branch.turns_completed == 4
    assert branch.branched_from == (parent.conversation_id, 2)
    for agent in ("agent_a", "agent_b"):
        for turn in range(2):
            assert branch.view(agent, turn) == parent.view(agent, turn)
