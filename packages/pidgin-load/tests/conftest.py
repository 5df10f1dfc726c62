"""Shared helpers: real experiment directories, real DuckDB files, real subprocesses."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import pidgin_events as pe
import pidgin_load as pl

PIDGIN_AI_EXPERIMENT = "exp-5x20-full_f41ebd59"
PIDGIN_AI_CHAT = "chat-silent-10turn_4700f813"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may touch the real ~/.pidgin or wait 10 s for a lock by accident."""
    monkeypatch.setenv(pl.CHATS_DB_ENV, str(tmp_path / "home-pidgin" / "chats.duckdb"))
    monkeypatch.setenv(pl.LOCK_TIMEOUT_ENV, "2")
    monkeypatch.delenv("PIDGIN_LOAD_TEST_PAUSE_AFTER_INSERT", raising=False)
    monkeypatch.delenv("PIDGIN_OUTPUT", raising=False)


def _make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode | stat.S_IWUSR | (stat.S_IXUSR if path.is_dir() else 0))


@pytest.fixture
def pidgin_ai_root(tmp_path: Path, legacy_fixtures: Path) -> Path:
    """A writable copy of the pidgin-ai 1.1 fixtures as an output root."""
    root = tmp_path / "pidgin_output"
    shutil.copytree(legacy_fixtures, root / "experiments")
    _make_writable(root)
    return root


def write_experiment(
    root: Path,
    *,
    conversations: int = 2,
    turns: int = 3,
    experiment_id: str | None = None,
    name: str = "greetings",
    fail_last: bool = False,
    thinking: bool = False,
) -> Path:
    """A finished experiment written through pidgin_events' own API.

    ``thinking``: the agents choose names (``Ada-<index>``, ``Bo-<index>``) and agent A
    thinks before each message (trace ``thought <turn>``, ``3 + turn`` tokens).
    """
    with pe.Experiment.create(
        root, name=name, total_conversations=conversations, experiment_id=experiment_id
    ) as exp:
        for index in range(conversations):
            try:
                with exp.conversation(
                    agent_a={"model": "local:test", "temperature": 0.3},
                    agent_b={"model": "local:echo", "temperature": 0.9},
                    max_turns=turns,
                    initial_prompt="Say hello",
                ) as conv:
                    if thinking:
                        for agent, chosen in (("agent_a", "Ada"), ("agent_b", "Bo")):
                            conv.emit(pe.AgentNameChosenEvent(
                                conversation_id=conv.id, agent_id=agent,
                                chosen_name=f"{chosen}-{index}",
                            ))  # fmt: skip
                    conv.system_prompt("agent_a", "be brief")
                    for turn in range(turns):
                        conv.turn_start()
                        conv.request("agent_a", message_count=2 * turn + 1)
                        if thinking:
                            conv.emit(pe.ThinkingCompleteEvent(
                                conversation_id=conv.id, turn_number=turn, agent_id="agent_a",
                                thinking_content=f"thought {turn}", thinking_tokens=3 + turn,
                            ))  # fmt: skip
                        conv.message(
                            "agent_a",
                            "a" * (10 + turn),
                            prompt_tokens=100 + turn,
                            completion_tokens=5 + turn,
                            duration_ms=40 + turn,
                        )
                        conv.request("agent_b", message_count=2 * turn + 2)
                        conv.message(
                            "agent_b",
                            "bé" * (20 + turn),
                            prompt_tokens=200 + turn,
                            completion_tokens=7 + turn,
                            duration_ms=60 + turn,
                        )
                        conv.turn_complete(convergence_score=round(0.1 * (turn + 1), 2))
                    if fail_last and index == conversations - 1:
                        raise RuntimeError("provider exploded")
            except RuntimeError:
                pass
    return exp.directory


def counts(db: Path, experiment_id: str) -> dict[str, int]:
    """Rows per table for one experiment, read with a connection of our own."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            table: int(
                con.execute(
                    f"SELECT count(*) FROM {table} WHERE experiment_id = ?", [experiment_id]
                ).fetchall()[0][0]
            )
            for table in pl.TABLES
        }


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m pidgin_load ARGS`` in a subprocess, with this environment (PYTHONPATH)."""
    return subprocess.run(
        [sys.executable, "-m", "pidgin_load", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def holder() -> Iterator[list[subprocess.Popen[str]]]:
    """Subprocesses a test starts; each is killed (by its own pid) when the test ends."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr, process.stdin):
            if stream is not None:
                stream.close()


# Helpers reach the tests as fixtures: with --import-mode=importlib, conftest is not importable.


@pytest.fixture(name="write_experiment")
def write_experiment_fixture() -> Any:
    """``write_experiment(root, conversations=2, turns=3, ...)`` -> the experiment directory."""
    return write_experiment


@pytest.fixture(name="counts")
def counts_fixture() -> Any:
    """``counts(db, experiment_id)`` -> rows per table."""
    return counts


@pytest.fixture(name="query")
def query_fixture() -> Any:
    """``query(db, sql, params)`` -> rows, through a read-only connection."""
    return query


@pytest.fixture(name="run_cli")
def run_cli_fixture() -> Any:
    """``run_cli(*args, env=None)`` -> CompletedProcess of ``python -m pidgin_load``."""
    return run_cli
