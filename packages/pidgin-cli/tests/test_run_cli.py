"""``pidgin chat``, ``run``, ``experiment stop`` and ``demo`` in real subprocesses.

Every test has its own output root and chats database under ``tmp_path``; background
runners still alive at the end of a test are killed by the pid they wrote (only ours).
Waits poll with deadlines; nothing asserts a duration.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pidgin_events import (
    LOAD_FAILED_MARKER,
    LOADED_MARKER,
    ConversationEndEvent,
    ConversationStartEvent,
    DatabaseLoadEvent,
    Event,
    Experiment,
    ExperimentCompleteEvent,
    ExperimentStartEvent,
    MessageCompleteEvent,
    PostProcessingCompleteEvent,
    is_running,
    read_events,
)

DEADLINE = 60.0
E = TypeVar("E", bound=Event)
SRC = Path(__file__).resolve().parents[1] / "src"


class Pidgin:
    """Runs ``python -m pidgin_cli`` against one output root, and cleans up after it."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "out"
        self.root.mkdir()
        self.chats_db = tmp_path / "chats" / "chats.duckdb"
        self.env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
        self.env.update(
            PIDGIN_OUTPUT=str(self.root),
            PIDGIN_CHATS_DB=str(self.chats_db),
            PIDGIN_LOAD_LOCK_TIMEOUT="2",
            COLUMNS="160",
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("TERM", None)
        self.holders: list[subprocess.Popen[bytes]] = []

    def __call__(self, *args: str, timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pidgin_cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def experiment(self, experiment_id: str) -> Path:
        return self.root / "experiments" / experiment_id

    def start_quiet(self, *args: str) -> Path:
        """``pidgin run ... -q``: the directory of the experiment it started."""
        result = self("run", *args, "-q")
        assert result.returncode == 0, result.stderr
        experiment_id = result.stdout.strip()
        assert experiment_id.startswith("exp_"), result.stdout
        return self.experiment(experiment_id)

    def hold_database(self, path: Path) -> None:
        """Another process keeps ``path`` open (DuckDB allows one writer) until teardown."""
        path.parent.mkdir(parents=True, exist_ok=True)
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                "print('holding', flush=True); time.sleep(600)",
                str(path),
            ],
            stdout=subprocess.PIPE,
            env=self.env,
        )
        self.holders.append(holder)
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"holding"

    def cleanup(self) -> None:
        for holder in self.holders:
            holder.kill()
            holder.wait(30)
            if holder.stdout is not None:
                holder.stdout.close()
        for directory in (self.root / "experiments").glob("exp_*"):
            pid_file = directory / "runner.pid"
            if pid_file.exists() and is_running(directory):
                from pidgin_cli._background import looks_like_runner

                pid = int(pid_file.read_text())
                if looks_like_runner(pid, directory.name):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def pidgin(tmp_path: Path) -> Iterator[Pidgin]:
    runner = Pidgin(tmp_path)
    try:
        yield runner
    finally:
        runner.cleanup()


def _events(path: Path) -> list[Event]:
    return list(read_events(path).events)


def _experiment_events(directory: Path) -> list[Event]:
    return _events(directory / "experiment.jsonl")


def _wait(what: str, condition: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _post_processed(directory: Path) -> bool:
    return any(
        event.event_type == "PostProcessingCompleteEvent" for event in _experiment_events(directory)
    )


def _last(directory: Path, kind: type[E]) -> E:
    return [e for e in _experiment_events(directory) if isinstance(e, kind)][-1]


def _conversation_logs(directory: Path) -> list[Path]:
    return sorted(directory.glob("*_events.jsonl"))


def _turns_written(log: Path) -> int:
    return sum(1 for event in _events(log) if event.event_type == "TurnCompleteEvent")


def _query(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def _status(directory: Path) -> str:
    from pidgin_state import StateBuilder

    return StateBuilder().experiment(directory).status


# --- pidgin chat --------------------------------------------------------------------------


def test_chat_with_a_silent_partner_prints_stores_and_loads(pidgin: Pidgin) -> None:
    result = pidgin("chat", "-a", "local:test", "-b", "silent:none", "-t", "3", "-p", "Hello")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "[turn 1] agent_b (silent:none): \u2026" in lines
    assert sum(line.startswith("[turn 3] agent_a (local:test): ") for line in lines) == 1
    assert "\x1b[" not in result.stdout  # piped: plain text
    chats = list((pidgin.root / "chats").iterdir())
    assert len(chats) == 1
    (log,) = _conversation_logs(chats[0])
    events = _events(log)
    start, end = events[0], events[-1]
    assert isinstance(start, ConversationStartEvent), start
    assert start.initial_prompt == "Hello"
    silent = [e for e in events if isinstance(e, MessageCompleteEvent) and e.agent_id == "agent_b"]
    assert [e.message.content for e in silent] == ["\u2026"] * 3
    assert isinstance(end, ConversationEndEvent), end
    assert (end.status, end.reason, end.total_turns) == ("completed", "max_turns", 3)
    assert (chats[0] / LOADED_MARKER).exists()
    assert f"Loaded into DuckDB: {pidgin.chats_db}" in result.stdout
    assert _query(pidgin.chats_db, "SELECT count(*) FROM turns")[0][0] == 3


def test_chat_stops_at_the_convergence_threshold(pidgin: Pidgin) -> None:
    result = pidgin(
        "chat", "-a", "local:test", "-b", "local:test", "-t", "10",
        "--convergence-threshold", "0.9", "--no-load",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (chat,) = (pidgin.root / "chats").iterdir()
    (log,) = _conversation_logs(chat)
    end = _events(log)[-1]
    assert isinstance(end, ConversationEndEvent), end
    assert (end.status, end.reason, end.total_turns) == ("completed", "high_convergence", 2)
    assert "completed (high_convergence) after 2 turns" in result.stdout
    assert not (chat / LOADED_MARKER).exists()
    assert not pidgin.chats_db.exists()


def test_chat_warns_at_the_threshold_and_goes_on(pidgin: Pidgin) -> None:
    result = pidgin(
        "chat", "-a", "local:test", "-b", "local:test", "-t", "4",
        "--convergence-threshold", "0.9", "--convergence-action", "warn", "--no-load",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning: reached the threshold 0.9" in result.stdout
    assert "completed (max_turns) after 4 turns" in result.stdout


def test_ctrl_c_ends_a_chat_as_interrupted_with_its_events(pidgin: Pidgin) -> None:
    chat = subprocess.Popen(
        [sys.executable, "-m", "pidgin_cli", "chat", "-a", "local:drift", "-b", "local:drift",
         "-t", "1000", "--no-load"],
        env=pidgin.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert chat.stdout is not None
        assert chat.stdout.readline().startswith("Chat conv_")
        assert chat.stdout.readline().startswith("[turn 1] agent_a (local:drift): ")
        chat.send_signal(signal.SIGINT)
        out, err = chat.communicate(timeout=DEADLINE)
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.communicate()
    assert chat.returncode == 1, err
    assert "Conversation interrupted (SIGINT)" in out
    (directory,) = (pidgin.root / "chats").iterdir()
    (log,) = _conversation_logs(directory)
    end = _events(log)[-1]
    assert isinstance(end, ConversationEndEvent), end
    assert (end.status, end.reason) == ("interrupted", "SIGINT")
    assert is_running(directory) is False


# --- pidgin run ---------------------------------------------------------------------------


def test_run_quiet_completes_in_the_background_and_is_loaded(pidgin: Pidgin) -> None:
    directory = pidgin.start_quiet(
        "-a", "local:drift", "-b", "local:drift", "-r", "3", "-t", "5", "--max-parallel", "2"
    )
    _wait("post-processing", lambda: _post_processed(directory))
    complete = _last(directory, ExperimentCompleteEvent)
    assert (complete.status, complete.completed_conversations) == ("completed", 3)
    logs = _conversation_logs(directory)
    assert len(logs) == 3
    assert all(_turns_written(log) == 5 for log in logs)
    assert (directory / LOADED_MARKER).exists()
    assert not (directory / LOAD_FAILED_MARKER).exists()
    load = _last(directory, DatabaseLoadEvent)
    assert load.status == "loaded"
    assert load.db_path is not None
    database = Path(load.db_path)
    assert _last(directory, PostProcessingCompleteEvent).tasks_completed == ("database_load",)
    rows = _query(
        database,
        "SELECT count(*) FROM conversations WHERE experiment_id = ?",
        directory.name,
    )
    assert rows[0][0] == 3
    turns = _query(
        database,
        "SELECT count(*) FROM convergence_by_turn WHERE experiment_id = ?",
        directory.name,
    )
    assert turns[0][0] == 5
    start = _experiment_events(directory)[0]
    assert isinstance(start, ExperimentStartEvent), start
    assert start.total_conversations == 3
    assert start.config["max_parallel"] == 2
    assert isinstance(start.config["seed"], int)
    assert is_running(directory) is False
    assert "database load: 1 loaded" in (directory / "runner.log").read_text()
    assert not list((pidgin.root / "experiments").glob(".*.launch.log"))
    assert _status(directory) == "completed"
    # What post-processing appended after the load does not make it look changed.
    from pidgin_load import load_all

    later = load_all(pidgin.root)
    assert [outcome.experiment_id for outcome in later.skipped] == [directory.name]
    assert later.loaded == []


def test_run_follows_the_experiment_to_its_end_and_reports_the_load(pidgin: Pidgin) -> None:
    result = pidgin("run", "-a", "local:test", "-b", "silent:none", "-r", "2", "-t", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Started experiment exp_")
    assert "Loaded into DuckDB: " in result.stdout


def test_run_seed_makes_conversations_repeatable(pidgin: Pidgin) -> None:
    def transcript(directory: Path) -> list[str]:
        _wait("post-processing", lambda: _post_processed(directory))
        (log,) = _conversation_logs(directory)
        return [e.message.content for e in _events(log) if isinstance(e, MessageCompleteEvent)]

    common = ("-a", "local:drift", "-b", "local:drift", "-t", "4", "--seed", "1234")
    first = transcript(pidgin.start_quiet(*common))
    assert first == transcript(pidgin.start_quiet(*common))
    assert first != transcript(pidgin.start_quiet(*common[:-1], "1235"))


def test_run_applies_the_convergence_threshold(pidgin: Pidgin) -> None:
    directory = pidgin.start_quiet(
        "-a", "local:test", "-b", "local:test", "-r", "2", "-t", "10",
        "--convergence-threshold", "0.9",
    )  # fmt: skip
    _wait("post-processing", lambda: _post_processed(directory))
    for log in _conversation_logs(directory):
        end = _events(log)[-1]
        assert isinstance(end, ConversationEndEvent), end
        assert (end.status, end.reason, end.total_turns) == ("completed", "high_convergence", 2)
    assert _last(directory, ExperimentCompleteEvent).status == "completed"


def test_experiment_stop_interrupts_conversations_in_flight(pidgin: Pidgin) -> None:
    directory = pidgin.start_quiet(
        "-a", "local:drift", "-b", "local:drift", "-r", "4", "-t", "1000",
        "--max-parallel", "2", "-n", "long-one",
    )  # fmt: skip
    _wait(
        "two conversations under way",
        lambda: (
            len(logs := _conversation_logs(directory)) == 2
            and all(_turns_written(log) >= 1 for log in logs)
        ),
    )
    result = pidgin("experiment", "stop", "long")  # a unique prefix of the name
    assert result.returncode == 0, result.stderr
    assert "interrupted (0 completed, 2 interrupted, 0 failed)" in result.stdout
    complete = _last(directory, ExperimentCompleteEvent)
    assert (complete.status, complete.reason) == ("interrupted", "SIGTERM")
    assert complete.interrupted_conversations == 2
    logs = _conversation_logs(directory)
    assert len(logs) == 2  # the two not started never were
    for log in logs:
        end = _events(log)[-1]
        assert isinstance(end, ConversationEndEvent), end
        assert (end.status, end.reason) == ("interrupted", "SIGTERM")
        assert end.total_turns == _turns_written(log) >= 1
    assert _status(directory) == "interrupted"
    _wait("post-processing", lambda: _post_processed(directory))  # stopped ones load too
    again = pidgin("experiment", "stop", directory.name)
    assert again.returncode == 1
    assert "not running: it already ended (interrupted)" in again.stderr


def test_stop_all_stops_every_running_experiment(pidgin: Pidgin) -> None:
    """pidgin-ai's ``stop --all``: every runner is signalled, then each end is reported."""
    runs = [
        pidgin.start_quiet("-a", "local:drift", "-b", "local:drift", "-t", "1000", "-n", name)
        for name in ("first-long", "second-long")
    ]
    _wait(
        "both under way",
        lambda: all(
            any(_turns_written(log) >= 1 for log in _conversation_logs(directory))
            for directory in runs
        ),
    )
    result = pidgin("stop", "--all")
    assert result.returncode == 0, result.stderr
    for directory in runs:
        assert f"Stopped {directory.name}: interrupted" in result.stdout
        complete = _last(directory, ExperimentCompleteEvent)
        assert (complete.status, complete.reason) == ("interrupted", "SIGTERM")
    again = pidgin("stop", "--all")
    assert again.returncode == 0, again.stderr
    assert "No experiment is running under" in again.stdout
    for wrong in ((), ("first-long", "--all")):
        refused = pidgin("stop", *wrong)
        assert refused.returncode == 2
        assert "give the ID of one experiment, or --all" in refused.stderr
    _wait("post-processing", lambda: all(_post_processed(directory) for directory in runs))


def test_kill_9_of_the_runner_releases_the_lock(pidgin: Pidgin) -> None:
    directory = pidgin.start_quiet("-a", "local:drift", "-b", "local:drift", "-t", "1000")
    _wait("a turn", lambda: any(_turns_written(log) for log in _conversation_logs(directory)))
    assert is_running(directory) is True
    pid = int((directory / "runner.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    _wait("the lock to be released", lambda: is_running(directory) is False)
    assert not any(e.event_type == "ExperimentCompleteEvent" for e in _experiment_events(directory))
    assert _status(directory) == "interrupted"
    result = pidgin("experiment", "stop", directory.name)
    assert result.returncode == 1
    assert "killed?" in result.stderr


def test_a_database_held_open_does_not_fail_the_experiment(pidgin: Pidgin) -> None:
    db = pidgin.root / "experiments" / "experiments.duckdb"
    pidgin.hold_database(db)
    directory = pidgin.start_quiet("-a", "local:test", "-b", "local:test", "-t", "2")
    _wait("post-processing", lambda: _post_processed(directory))
    assert _last(directory, ExperimentCompleteEvent).status == "completed"
    assert not (directory / LOADED_MARKER).exists()
    failure = json.loads((directory / LOAD_FAILED_MARKER).read_text())
    assert "experiments.duckdb" in failure["error"]
    assert failure["db_path"] == str(db)
    assert _last(directory, DatabaseLoadEvent).status == "failed"
    assert _last(directory, PostProcessingCompleteEvent).tasks_failed == ("database_load",)
    assert _status(directory) == "completed"


def test_a_runner_that_cannot_start_is_reported_with_its_log(
    pidgin: Pidgin, tmp_path: Path
) -> None:
    # The launcher imports the real packages; its child finds a broken pidgin_cli first.
    import pidgin_cli
    import pidgin_events
    import pidgin_load
    import pidgin_state

    broken = tmp_path / "broken" / "pidgin_cli"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('pidgin_cli broken on purpose')\n")
    real = [
        str(Path(module.__file__ or "").parents[1])
        for module in (pidgin_cli, pidgin_events, pidgin_state, pidgin_load)
    ]
    code = f"import sys; sys.path[:0] = {real!r}; from pidgin_cli._main import main; main()"
    env = dict(pidgin.env, PYTHONPATH=str(broken.parent))
    result = subprocess.run(
        [sys.executable, "-c", code, "run", "-a", "local:test", "-b", "local:test", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "before starting the experiment" in result.stderr
    assert "pidgin_cli broken on purpose" in result.stderr  # the tail of its log
    assert list((pidgin.root / "experiments").iterdir()) == []


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-a", "gpt-17", "-b", "local:test"], "unknown model 'gpt-17'; available models"),
        (["-a", "local:test", "-b", "nope:nope"], "local:drift"),
        (["-a", "local:test", "-b", "local:test", "-t", "0"], "'-t' / '--turns'"),
        (["-a", "local:test", "-b", "local:test", "-n", "../escape"], "invalid experiment name"),
        (["-a", "local:test", "-b", "local:test", "--convergence-action", "pause"], "pause"),
        (["-a", "local:test"], "'-b' / '--agent-b'"),
        (["-a", "local:test", "-b", "local:test", "--seed", "-1"], "between 0 and 2**63 - 1"),
    ],
)
def test_bad_run_arguments_are_usage_errors(pidgin: Pidgin, args: list[str], message: str) -> None:
    result = pidgin("run", *args, "-q")
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert not (pidgin.root / "experiments").exists()


def test_a_name_already_used_is_refused(pidgin: Pidgin) -> None:
    Experiment.create(pidgin.root, name="taken", total_conversations=0).complete()
    result = pidgin("run", "-a", "local:test", "-b", "local:test", "-n", "taken", "-q")
    assert result.returncode == 2
    assert "'taken' is already used by exp_" in result.stderr


def test_chat_refuses_an_unknown_model(pidgin: Pidgin) -> None:
    result = pidgin("chat", "-a", "local:test", "-b", "claude")
    assert result.returncode == 2
    assert "unknown model 'claude'" in result.stderr
    assert not (pidgin.root / "chats").exists()


def test_stopping_an_unknown_experiment_fails(pidgin: Pidgin) -> None:
    result = pidgin("experiment", "stop", "exp_nothing")
    assert result.returncode == 1
    assert "exp_nothing" in result.stderr


def test_stopping_an_experiment_pidgin_did_not_start_fails(pidgin: Pidgin) -> None:
    experiment = Experiment.create(pidgin.root, name="by-hand", total_conversations=1)
    try:
        result = pidgin("experiment", "stop", "by-hand")
        assert result.returncode == 1
        assert "not written by a runner that pidgin started" in result.stderr
        assert experiment.status is None
    finally:
        experiment.complete()


# --- pidgin demo ----------------------------------------------------------------------------


def test_demo_runs_watches_loads_and_queries(pidgin: Pidgin) -> None:
    result = pidgin("demo", "-o", str(pidgin.root), "-r", "2", "-t", "4")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    (directory,) = (pidgin.root / "experiments").glob("exp_*")
    db = pidgin.root / "experiments" / "experiments.duckdb"
    assert f"Loaded automatically into {db}" in out
    assert "FROM convergence_by_turn" in out
    assert "Mean convergence by turn:" in out
    assert f"tail -f {directory}/*_events.jsonl" in out
    assert "jq -r" in out
    assert (directory / LOADED_MARKER).exists()
    lines = out.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.split()[:2] == ["turn", "conversations"]
    )
    table = []
    for line in lines[header + 1 :]:
        if not line[:1].isdigit():
            break
        table.append(line.split())
    assert [row[0] for row in table] == ["1", "2", "3", "4"]  # one row per turn from DuckDB
    assert all(row[1] == "2" for row in table)
