"""Every run under an output root, newest first, kept up to date incrementally."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pidgin_events as pe
from pidgin_state import StateBuilder


def test_lists_experiments_and_chats_newest_first(tmp_path: Path, logs: Any) -> None:
    logs.write_experiment(tmp_path, experiment_id="exp_old")
    logs.write_experiment(tmp_path, experiment_id="exp_new", conversations=1)
    with pe.Chat.create(tmp_path, agent_a="m:a", agent_b="m:b") as chat:
        logs.write_turns(chat, 2)
    (tmp_path / "experiments" / "not_a_run").mkdir()
    (tmp_path / "experiments" / "experiments.duckdb").write_bytes(b"DUCK")
    (tmp_path / "chats" / "junk.txt").write_text("x")

    states = StateBuilder.from_output_root(tmp_path)
    assert [(s.kind, s.id) for s in states] == [
        ("chat", chat.directory.name),
        ("experiment", "exp_new"),
        ("experiment", "exp_old"),
    ]
    assert [s.status for s in states] == ["completed"] * 3
    assert states[0].conversations[chat.id].turns_completed == 2
    json.dumps([s.to_dict() for s in states])


def test_output_root_refreshes_incrementally(tmp_path: Path, logs: Any) -> None:
    builder = StateBuilder()
    assert builder.output_root(tmp_path) == []  # no root yet
    first = logs.write_experiment(tmp_path, experiment_id="exp_a")
    (state,) = builder.output_root(tmp_path)
    read = builder.bytes_read
    (again,) = builder.output_root(tmp_path)
    assert again is state
    assert builder.bytes_read == read

    logs.write_experiment(tmp_path, experiment_id="exp_b")
    assert [s.id for s in builder.output_root(tmp_path)] == ["exp_b", "exp_a"]
    shutil.rmtree(first)
    assert [s.id for s in builder.output_root(tmp_path)] == ["exp_b"]


def test_environment_variable_names_the_default_root(
    tmp_path: Path, logs: Any, monkeypatch: Any
) -> None:
    logs.write_experiment(tmp_path, experiment_id="exp_env")
    monkeypatch.setenv("PIDGIN_OUTPUT", str(tmp_path))
    assert [s.id for s in StateBuilder.from_output_root()] == ["exp_env"]
