"""Starting the runner as a background process, and talking to it afterwards.

The runner is started in a new session (``start_new_session=True``): closing the terminal,
or Ctrl-C in it, does not reach it. Its stdout and stderr go to ``runner.log`` in the
experiment directory and its pid to ``runner.pid``. The launcher waits until the runner has
written its ``ExperimentStartEvent`` (or died, in which case the log says why).

The runner cannot be handed an open experiment directory (the directory, its lock and its
first event are all created by ``Experiment.create`` in the runner), so its log starts as
``<root>/experiments/.<id>.launch.log`` and the runner moves it into the directory it
creates; the launcher reads it through a descriptor that survives the move.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ._runner import PID_FILE, RUNNER_LOG, ExperimentSpec

if TYPE_CHECKING:
    from pidgin_state import ExperimentState, StateBuilder

    from ._commands_watch import View

__all__ = [
    "RUNNER_LOG",
    "Ended",
    "LaunchError",
    "Launched",
    "LoadOutcome",
    "attach",
    "completion",
    "database_load",
    "launch_experiment",
    "looks_like_runner",
    "runner_pid",
    "signal_runner",
    "wait_until_ended",
    "wait_until_loaded",
]

START_TIMEOUT = 30.0
_LOG_TAIL_BYTES = 4000
_POLL = 0.1
_CHILDREN: list[subprocess.Popen[bytes]] = []  # kept so that no Popen is collected while alive
_BUILDERS: dict[Path, StateBuilder] = {}
"""One StateBuilder per run directory for this process: each look reads only what was
appended since the last (launch, follow, wait for the load, report)."""


class LaunchError(Exception):
    """The runner did not start; the message ends with the tail of its log."""


@dataclass(frozen=True, slots=True)
class Launched:
    """A runner that has started its experiment."""

    experiment_id: str
    directory: Path
    pid: int
    process: subprocess.Popen[bytes]


def launch_experiment(spec: ExperimentSpec, *, timeout: float = START_TIMEOUT) -> Launched:
    """Start ``python -m pidgin_cli._runner`` for ``spec`` and wait until it has begun."""
    from pidgin_events import EXPERIMENTS_DIR, make_private_dir

    parent = Path(spec.root) / EXPERIMENTS_DIR
    make_private_dir(parent)
    directory = parent / spec.experiment_id
    launch_log = parent / f".{spec.experiment_id}.launch.log"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    write_fd = os.open(launch_log, flags, 0o600)
    read_fd = os.open(launch_log, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    process: subprocess.Popen[bytes] | None = None
    try:
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "pidgin_cli._runner", spec.experiment_id],
                stdin=subprocess.PIPE,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(write_fd)
        _CHILDREN.append(process)
        assert process.stdin is not None
        try:
            process.stdin.write(replace(spec, launch_log=str(launch_log)).to_json().encode())
            process.stdin.close()
        except BrokenPipeError:
            pass  # it died at once; the wait below reports why
        _wait_until_started(process, directory, read_fd, timeout)
    except BaseException:
        # The launch log is only still there if the runner never got going; if it is alive
        # (Ctrl-C while waiting), it will still move the log into its directory.
        if process is None or process.poll() is not None:
            with contextlib.suppress(FileNotFoundError):
                launch_log.unlink()
        raise
    finally:
        os.close(read_fd)
    return Launched(spec.experiment_id, directory, process.pid, process)


def _wait_until_started(
    process: subprocess.Popen[bytes], directory: Path, log_fd: int, timeout: float
) -> None:
    from pidgin_events import EVENT_LINE_PREFIX, EXPERIMENT_LOG

    deadline = time.monotonic() + timeout
    start = EVENT_LINE_PREFIX + b'ExperimentStartEvent"'
    while True:
        with contextlib.suppress(OSError), (directory / EXPERIMENT_LOG).open("rb") as stream:
            first = stream.readline()
            if first.startswith(start) and first.endswith(b"\n"):
                return
        code = process.poll()
        if code is not None:
            raise LaunchError(
                f"the runner exited with status {code} before starting the experiment.\n"
                f"{_tail(log_fd)}"
            )
        if time.monotonic() > deadline:
            process.terminate()
            raise LaunchError(
                f"the runner did not start the experiment within {timeout:g} s; stopped it.\n"
                f"{_tail(log_fd)}"
            )
        time.sleep(0.02)


def _tail(fd: int) -> str:
    size = os.fstat(fd).st_size
    data = os.pread(fd, _LOG_TAIL_BYTES, max(0, size - _LOG_TAIL_BYTES))
    text = data.decode("utf-8", "replace").strip()
    return f"Its log ends with:\n{text}" if text else "Its log is empty."


# --- how the run stands, from pidgin-state ----------------------------------------------


def _state(directory: Path) -> ExperimentState:
    from pidgin_state import StateBuilder

    key = directory.absolute()
    builder = _BUILDERS.get(key)
    if builder is None:
        builder = _BUILDERS[key] = StateBuilder()
    return builder.experiment(key)


def _wait(
    directory: Path, done: Callable[[ExperimentState], bool], timeout: float
) -> ExperimentState | None:
    deadline = time.monotonic() + timeout
    while True:
        state = _state(directory)
        if done(state):
            return state
        if time.monotonic() >= deadline:
            return None
        time.sleep(_POLL)


@dataclass(frozen=True, slots=True)
class Ended:
    """How an experiment that recorded its end ended, by its conversations' statuses."""

    status: str
    completed_conversations: int
    failed_conversations: int
    interrupted_conversations: int


def _ended(state: ExperimentState | None) -> Ended | None:
    if state is None or not state.recorded_end:
        return None
    progress = state.progress
    return Ended(state.status, progress.completed, progress.failed, progress.interrupted)


def completion(directory: Path) -> Ended | None:
    """How the experiment ended, or None while it has not recorded its end (running, or
    killed before it could: ``pidgin experiment status`` shows it interrupted)."""
    return _ended(_state(directory))


def wait_until_ended(directory: Path, timeout: float) -> Ended | None:
    """``completion``, waiting up to ``timeout`` seconds for the experiment to record it."""
    return _ended(_wait(directory, lambda state: state.recorded_end, timeout))


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    """The database load of a run as its markers and events tell it."""

    status: str
    """``loaded`` or ``failed``."""
    db_path: str | None
    error: str | None


def database_load(directory: Path) -> LoadOutcome | None:
    """The run's latest database load, or None if none was recorded."""
    database = _state(directory).database
    if database.failed:
        return LoadOutcome("failed", database.db_path, database.error)
    if database.loaded:
        return LoadOutcome("loaded", database.db_path, None)
    return None


def wait_until_loaded(directory: Path, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the runner's automatic load to finish (its
    post-processing recorded as complete); False if it did not in time."""
    found = _wait(directory, lambda state: state.database.post_processing == "completed", timeout)
    return found is not None


# --- the runner process -----------------------------------------------------------------


def runner_pid(directory: Path) -> int | None:
    try:
        text = (directory / PID_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def looks_like_runner(pid: int, experiment_id: str) -> bool:
    """Whether ``pid`` is the runner of ``experiment_id``, where the system lets us tell.

    Guards against signalling an unrelated process that reused the pid. Where there is no
    ``/proc`` the check is skipped: the caller has already seen the run lock held.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    try:
        argv = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"pidgin_cli._runner" in argv and experiment_id.encode() in argv


def signal_runner(directory: Path, signum: int = signal.SIGTERM) -> int | None:
    """Send ``signum`` to the runner of ``directory``; its pid, or None if there is none."""
    pid = runner_pid(directory)
    if pid is None or not looks_like_runner(pid, directory.name):
        return None
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return None
    return pid


# --- following a run --------------------------------------------------------------------


def attach(root: Path, experiment_id: str, view: View = "progress") -> int:
    """Follow the experiment live with ``pidgin experiment attach``'s display (``view``)."""
    from ._commands_watch import attach_experiment

    return attach_experiment(root, experiment_id, view)
