"""What ``pidgin run`` says while it runs, and whether what it tells you to type works.

Real ``pidgin`` subprocesses against private output roots. The printed hints are run the
way a user would run them: copied into ``bash`` in the same directory, with a ``PATH``
that does not hold this interpreter's bin directory (as after ``tools/dev.py demo``, which
installs into ``.venv``) and without ``$PIDGIN_OUTPUT`` unless the test sets one.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pidgin_events import LOAD_FAILED_MARKER, is_running, read_events

BIN = Path(sys.executable).parent
DEADLINE = 120.0


class Shell:
    """Runs ``pidgin`` and copied command lines in one directory, like one terminal."""

    def __init__(self, directory: Path, **extra: str) -> None:
        self.directory = directory
        bin_dir = str(BIN)
        path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != bin_dir]
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PIDGIN_OUTPUT", "NO_COLOR", "TERM", "PATH")
        }
        self.env.update(
            PATH=os.pathsep.join(path),
            HOME=str(directory),
            COLUMNS="160",
            PYTHONUNBUFFERED="1",
            PIDGIN_CHATS_DB=str(directory / "chats.duckdb"),
            **extra,
        )
        self.roots: list[Path] = []

    def pidgin(self, *args: str, merge: bool = False) -> subprocess.CompletedProcess[str]:
        """``python -m pidgin_cli ARGS`` in this shell's directory (this interpreter)."""
        return subprocess.run(
            [sys.executable, "-m", "pidgin_cli", *args],
            cwd=self.directory,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            text=True,
            timeout=DEADLINE,
            check=False,
        )

    def paste(self, line: str) -> subprocess.CompletedProcess[str]:
        """A printed command line, copied into bash as it is."""
        return subprocess.run(
            ["bash", "-c", line],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )

    def cleanup(self) -> None:
        """Kill runners still alive, by the pid they wrote (only ours)."""
        from pidgin_cli._background import looks_like_runner

        for pid_file in self.directory.glob("**/experiments/exp_*/runner.pid"):
            directory = pid_file.parent
            if is_running(directory):
                pid = int(pid_file.read_text())
                if looks_like_runner(pid, directory.name):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    terminal = Shell(tmp_path)
    try:
        yield terminal
    finally:
        terminal.cleanup()


def _hint(output: str, label: str) -> str:
    """The command printed after ``label`` (``follow``, ``stop``) in ``pidgin run``'s output."""
    match = re.search(rf"^\s+{label}\s+(.+)$", output, flags=re.MULTILINE)
    assert match, f"no {label!r} line in:\n{output}"
    return match.group(1)


def _wait(what: str, condition: Callable[[], Any]) -> Any:
    end = time.monotonic() + DEADLINE
    while not (value := condition()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def _events(directory: Path, event_type: str) -> list[Any]:
    return [
        event
        for log in sorted(directory.glob("conv_*_events.jsonl"))
        for event in read_events(log).events
        if event.event_type == event_type
    ]


def _rich_frame(directory: Path) -> str:
    from rich.console import Console

    from pidgin_cli._render_attach import attach_frame
    from pidgin_state import StateBuilder

    screen = io.StringIO()
    console = Console(file=screen, width=200, height=40, color_system=None)
    console.print(attach_frame(StateBuilder.from_experiment_dir(directory), console))
    return screen.getvalue()


# --- --convergence-action warn -------------------------------------------------------------


def test_warn_is_recorded_and_shown_by_every_screen(shell: Shell) -> None:
    # Two local:test agents say the same from the second turn on: the score crosses 0.9 once.
    result = shell.pidgin("-o", "out", "run", "-a", "local:test", "-b", "local:test", "-t", "5",
                          "--convergence-threshold", "0.9",
                          "--convergence-action", "warn")  # fmt: skip
    assert result.returncode == 0, result.stderr
    (directory,) = (shell.directory / "out" / "experiments").glob("exp_*")
    scores = [e.convergence_score for e in _events(directory, "TurnCompleteEvent")]
    above = [score >= 0.9 for score in scores]
    crossings = [
        turn for turn, now in enumerate(above) if now and (turn == 0 or not above[turn - 1])
    ]
    assert crossings  # the input crosses the threshold, else this test proves nothing
    warnings = _events(directory, "ConvergenceWarningEvent")
    assert [(w.turn_number, w.convergence_score, w.threshold) for w in warnings] == [
        (turn, scores[turn], 0.9) for turn in crossings
    ]
    ends = _events(directory, "ConversationEndEvent")
    assert [(e.status, e.reason) for e in ends] == [("completed", "max_turns")]  # it went on
    # The live view of `pidgin run` (piped: one line per change) said so as it happened.
    for turn in crossings:
        assert f"reached the threshold 0.9 at turn {turn + 1}" in result.stdout
    # The rich live view (on a terminal) has a line for it too.
    frame = _rich_frame(directory)
    assert "convergence warning: 1 conversation reached the threshold 0.9; latest " in frame
    assert f"at turn {crossings[-1] + 1} ({scores[crossings[-1]]:.2f})" in frame
    # So did the runner's log.
    log = (directory / "runner.log").read_text()
    assert log.count("reached the threshold 0.9 (warn: going on)") == len(crossings)
    # And `experiment status`, in words and in JSON.
    status = shell.pidgin("-o", "out", "experiment", "status", directory.name)
    assert status.returncode == 0, status.stderr
    assert "convergence warnings:" in status.stdout
    for turn in crossings:
        assert re.search(
            rf"turn {turn + 1}: convergence \S+ reached the threshold 0\.9", status.stdout
        )
    document = json.loads(
        shell.pidgin("-o", "out", "experiment", "status", directory.name, "--json").stdout
    )
    (conversation,) = document["experiment"]["conversations"]
    assert [w["turn"] for w in conversation["convergence"]["warnings"]] == [
        turn + 1 for turn in crossings
    ]
    # The new event is in the schema: the log validates.
    validate = subprocess.run(
        [sys.executable, "-m", "pidgin_events", "validate", str(directory)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_continue_goes_on_without_a_word(shell: Shell) -> None:
    result = shell.pidgin("-o", "out", "run", "-a", "local:test", "-b", "local:test", "-t", "5",
                          "--convergence-threshold", "0.9",
                          "--convergence-action", "continue")  # fmt: skip
    assert result.returncode == 0, result.stderr
    (directory,) = (shell.directory / "out" / "experiments").glob("exp_*")
    assert max(e.convergence_score for e in _events(directory, "TurnCompleteEvent")) >= 0.9
    assert _events(directory, "ConvergenceWarningEvent") == []
    assert "threshold" not in result.stdout
    assert "threshold" not in (directory / "runner.log").read_text()


# --- hints that work when copy-pasted ------------------------------------------------------


def test_hints_after_dash_o_work_from_the_same_shell(shell: Shell) -> None:
    result = shell.pidgin("-o", "elsewhere/out", "run", "-a", "local:test", "-b", "silent:none",
                          "-t", "3", "--detach")  # fmt: skip
    assert result.returncode == 0, result.stderr
    follow, stop = _hint(result.stdout, "follow"), _hint(result.stdout, "stop")
    (directory,) = (shell.directory / "elsewhere" / "out" / "experiments").iterdir()
    assert " -o " in follow  # not the default root: it has to be named
    attached = shell.paste(follow)  # follows the run to its end
    assert attached.returncode == 0, attached.stderr
    assert f"{directory.name} completed" in attached.stdout
    details = re.search(r"details: (.+)$", attached.stdout, flags=re.MULTILINE)
    assert details, attached.stdout
    status = shell.paste(details.group(1))
    assert status.returncode == 0, status.stderr
    assert directory.name in status.stdout
    stopped = shell.paste(stop)  # it already ended: the command runs and says so
    assert stopped.returncode == 1
    assert "already ended (completed)" in stopped.stderr


def test_hints_name_the_root_only_when_the_shell_would_not_find_it(shell: Shell) -> None:
    shell.env["PIDGIN_OUTPUT"] = str(shell.directory / "from-env")
    named = shell.pidgin("-o", "pidgin_output", "run", "-a", "local:test", "-b", "silent:none",
                         "-t", "1", "--detach")  # fmt: skip
    follow = _hint(named.stdout, "follow")
    assert f" -o {shell.directory / 'pidgin_output'} " in follow  # $PIDGIN_OUTPUT differs
    plain = shell.pidgin("run", "-a", "local:test", "-b", "silent:none", "-t", "1", "--detach")
    assert " -o " not in _hint(plain.stdout, "follow")  # the root the shell uses anyway
    for result in (named, plain):
        attached = shell.paste(_hint(result.stdout, "follow"))
        assert attached.returncode == 0, attached.stderr


def test_demo_next_steps_work_copy_pasted(shell: Shell) -> None:
    result = shell.pidgin("demo", "-r", "1", "-t", "2")
    assert result.returncode == 0, result.stderr
    after_next = result.stdout.split("== Next", 1)[1]
    lines = [line for line in after_next.splitlines() if line.strip()]
    assert len(lines) == 2, after_next
    python_line = next(line for line in result.stdout.splitlines() if '-c "import duckdb' in line)
    for line in [python_line, *lines]:
        pasted = shell.paste(line)
        assert pasted.returncode == 0, f"{line}\n{pasted.stderr}"
        assert pasted.stdout.strip(), line


def test_hints_follow_the_callers_path_when_a_wrapper_changed_ours(shell: Shell) -> None:
    """tools/dev.py runs Pidgin with .venv/bin first on PATH; the user's shell has not."""
    users_path = shell.env["PATH"]
    shell.env["PATH"] = os.pathsep.join([str(BIN), users_path])
    shell.env["PIDGIN_HINT_PATH"] = users_path
    result = shell.pidgin("demo", "-r", "1", "-t", "2")
    assert result.returncode == 0, result.stderr
    steps = [line for line in result.stdout.split("== Next", 1)[1].splitlines() if line.strip()]
    assert steps[0].startswith(str(BIN / "pidgin")), steps  # not found there as a bare name
    shell.env["PATH"] = users_path  # the shell the user pastes into
    for line in steps:
        pasted = shell.paste(line)
        assert pasted.returncode == 0, f"{line}\n{pasted.stderr}"
    del shell.env["PIDGIN_HINT_PATH"]  # without the wrapper's word, our PATH is the user's
    shell.env["PATH"] = os.pathsep.join([str(BIN), users_path])
    plain = shell.pidgin("demo", "-r", "1", "-t", "2")
    bare = [line for line in plain.stdout.split("== Next", 1)[1].splitlines() if line.strip()]
    assert bare[0].startswith("pidgin "), bare


def test_stopping_a_chat_says_how_chats_stop(shell: Shell) -> None:
    chat = shell.pidgin("chat", "-a", "local:test", "-b", "silent:none", "-t", "1", "--no-load")
    assert chat.returncode == 0, chat.stderr
    (directory,) = (shell.directory / "pidgin_output" / "chats").iterdir()
    stop = shell.pidgin("experiment", "stop", directory.name)
    assert stop.returncode == 1
    assert f"{directory.name} is a chat" in stop.stderr
    assert "Ctrl-C" in stop.stderr
    unknown = shell.pidgin("experiment", "stop", "no-such-thing")
    assert unknown.returncode == 1
    assert "no experiment 'no-such-thing'" in unknown.stderr  # nothing at all: still unknown


# --- a database another process holds ------------------------------------------------------


def _hold(path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('holding', flush=True); time.sleep(600)", str(path)],
        stdout=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == b"holding"
    return holder


def test_a_locked_database_is_said_at_once_and_its_failure_shown_whole(shell: Shell) -> None:
    shell.env["PIDGIN_LOAD_LOCK_TIMEOUT"] = "3"
    database = shell.directory / "pidgin_output" / "experiments" / "experiments.duckdb"
    holder = _hold(database, shell.env)
    try:
        run = shell.pidgin("run", "-a", "local:test", "-b", "silent:none", "-t", "2", merge=True)
        (directory,) = (shell.directory / "pidgin_output" / "experiments").glob("exp_*")
        load = shell.pidgin("load-db", directory.name)
    finally:
        holder.kill()
        holder.wait(30)
        assert holder.stdout is not None
        holder.stdout.close()
    assert run.returncode == 0, run.stdout  # the experiment completed; only its load failed
    lines = run.stdout.splitlines()
    waiting = next(i for i, line in enumerate(lines) if "is held by another process" in line)
    failed = next(i for i, line in enumerate(lines) if line.startswith("Not loaded into DuckDB"))
    assert waiting < failed  # said while waiting, not after
    assert lines[waiting].startswith("Waiting for the automatic load into DuckDB: database ")
    assert f"database {database} is held by another process" in lines[waiting]
    assert "waiting up to 3 s" in lines[waiting]
    assert load.returncode == 1
    assert load.stderr.startswith(f"waiting: database {database} is held by another process")
    # `experiment status` shows the reason of the failed load whole (the list cuts it).
    reason = json.loads((directory / LOAD_FAILED_MARKER).read_text())["error"]
    assert len(reason) > 40  # long enough that the list's LOADED column has to cut it
    status = shell.pidgin("experiment", "status", directory.name)
    assert f"load failed: {' '.join(reason.split())}" in status.stdout
    listed = shell.pidgin("experiment", "list")
    assert "failed: " in listed.stdout  # the list's LOADED column cuts the reason
    assert " ".join(reason.split()) not in listed.stdout
    retry = re.search(r"retry with: (.+)$", status.stdout, flags=re.MULTILINE)
    assert retry, status.stdout
    retried = shell.paste(retry.group(1))  # the database is free now: the hint loads it
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert directory.name in retried.stdout
    assert "1 loaded" in retried.stdout
    listed = shell.pidgin("experiment", "list")
    assert listed.stdout.splitlines()[1].endswith("yes")  # loaded by the pasted hint


def test_a_chat_says_at_once_that_its_database_is_held(shell: Shell) -> None:
    shell.env["PIDGIN_LOAD_LOCK_TIMEOUT"] = "2"
    database = Path(shell.env["PIDGIN_CHATS_DB"])
    holder = _hold(database, shell.env)
    try:
        chat = shell.pidgin("chat", "-a", "local:test", "-b", "silent:none", "-t", "1", merge=True)
    finally:
        holder.kill()
        holder.wait(30)
        assert holder.stdout is not None
        holder.stdout.close()
    assert chat.returncode == 0, chat.stdout  # the chat completed; only its load failed
    lines = chat.stdout.splitlines()
    waiting = next(i for i, line in enumerate(lines) if line.startswith("Waiting: "))
    failed = next(i for i, line in enumerate(lines) if line.startswith("Not loaded into DuckDB"))
    assert waiting < failed
    assert f"database {database} is held by another process" in lines[waiting]
