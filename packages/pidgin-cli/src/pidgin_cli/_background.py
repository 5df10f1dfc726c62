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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ._output import safe_text
from ._runner import PID_FILE, RUNNER_LOG, ExperimentSpec

if TYPE_CHECKING:
    from pidgin_events import DatabaseLoadEvent, Event, ExperimentCompleteEvent

__all__ = [
    "RUNNER_LOG",
    "LaunchError",
    "Launched",
    "attach",
    "completion",
    "database_load",
    "experiment_events",
    "follow_experiment",
    "last_event",
    "launch_experiment",
    "looks_like_runner",
    "runner_pid",
    "signal_runner",
    "wait_for_event",
]

START_TIMEOUT = 30.0
_LOG_TAIL_BYTES = 4000
_CHILDREN: list[subprocess.Popen[bytes]] = []  # kept so that no Popen is collected while alive

Echo = Callable[[str], None]


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
    from pidgin_events import EXPERIMENT_LOG

    deadline = time.monotonic() + timeout
    start = b'{"event_type":"ExperimentStartEvent"'
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


# --- reading experiment.jsonl -----------------------------------------------------------


def experiment_events(directory: Path) -> Iterator[Event]:
    """The events of ``experiment.jsonl`` (bad lines skipped; it is small)."""
    from pidgin_events import EXPERIMENT_LOG, BadLine, LogReader

    path = directory / EXPERIMENT_LOG
    if not path.exists():
        return
    for item in LogReader(path).events():
        if not isinstance(item, BadLine):
            yield item


def last_event(directory: Path, event_type: str) -> Event | None:
    found = None
    for event in experiment_events(directory):
        if event.event_type == event_type:
            found = event
    return found


def wait_for_event(directory: Path, event_type: str, timeout: float) -> Event | None:
    """The last ``event_type`` event in experiment.jsonl, waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        event = last_event(directory, event_type)
        if event is not None or time.monotonic() >= deadline:
            return event
        time.sleep(0.1)


def completion(directory: Path) -> ExperimentCompleteEvent | None:
    event = last_event(directory, "ExperimentCompleteEvent")
    return event  # type: ignore[return-value]


def database_load(directory: Path) -> DatabaseLoadEvent | None:
    event = last_event(directory, "DatabaseLoadEvent")
    return event  # type: ignore[return-value]


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


def attach(root: Path, experiment_id: str, *, echo: Echo) -> int:
    """Follow the experiment live with ``pidgin experiment attach``'s display.

    Falls back to printing progress lines when the watching side is not available.
    """
    try:
        from ._commands_watch import attach_experiment
    except ImportError:
        pass
    else:
        try:
            return attach_experiment(root, experiment_id)
        except ImportError:
            pass  # pidgin-state without what attach needs: print progress ourselves
    return follow_experiment(root / "experiments" / experiment_id, echo=echo)


def follow_experiment(directory: Path, *, echo: Echo, interval: float = 0.25) -> int:
    """Print a line per turn and per conversation end until the experiment completes.

    Reads only what was appended since the last look. Returns 0 if the experiment
    completed, 1 otherwise. Ctrl-C stops following and leaves the experiment running.
    Every line goes through ``safe_text``: ids, statuses and reasons come from the logs.
    """
    from pidgin_events import LogReader, conversation_id_of_log, is_running

    def say(line: str) -> None:
        echo(safe_text(line))

    readers: dict[str, LogReader] = {}
    max_turns: dict[str, int | None] = {}
    try:
        while True:
            for path in sorted(directory.glob("*_events.jsonl")):
                conversation = conversation_id_of_log(path.name)
                if conversation is None:
                    continue
                reader = readers.setdefault(conversation, LogReader(path))
                for event in reader.events():
                    line = _progress_line(conversation, event, max_turns)
                    if line:
                        say(line)
            complete = completion(directory)
            if complete is not None:
                say(
                    f"experiment {directory.name} {complete.status}: "
                    f"{complete.completed_conversations} completed, "
                    f"{complete.failed_conversations} failed, "
                    f"{complete.interrupted_conversations} interrupted"
                )
                return 0 if complete.status == "completed" else 1
            if is_running(directory) is False and completion(directory) is None:
                say(f"experiment {directory.name}: its runner is gone without completing it")
                return 1
            time.sleep(interval)
    except KeyboardInterrupt:
        say(f"detached; {directory.name} keeps running in the background")
        return 0


def _progress_line(conversation: str, event: object, max_turns: dict[str, int | None]) -> str:
    event_type = getattr(event, "event_type", None)
    if event_type == "ConversationStartEvent":
        max_turns[conversation] = getattr(event, "max_turns", None)
        return f"{conversation} started"
    if event_type == "TurnCompleteEvent":
        turn = getattr(event, "turn_number", 0) + 1
        total = max_turns.get(conversation)
        score = getattr(event, "convergence_score", None)
        shown = "-" if score is None else f"{score:.2f}"
        return f"{conversation} turn {turn}/{total or '?'} convergence {shown}"
    if event_type == "ConversationEndEvent":
        reason = getattr(event, "reason", None)
        return f"{conversation} {getattr(event, 'status', '?')}" + (
            f" ({reason})" if reason else ""
        )
    return ""
