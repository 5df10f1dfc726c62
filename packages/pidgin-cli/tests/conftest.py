"""Shared fixtures of the pidgin-cli tests: real output roots, real writer processes.

Runs are written with ``pidgin_events.Experiment`` directly, so the watching commands are
tested without depending on the runner. Every ``pidgin`` invocation is a real subprocess
(``python -m pidgin_cli``) inheriting ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from pidgin_events import Experiment

RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


def cli_env(root: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a ``pidgin`` subprocess: no colour tricks, a fixed width."""
    env = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "TERM")}
    env["COLUMNS"] = "160"
    env["PYTHONUNBUFFERED"] = "1"
    if root is not None:
        env["PIDGIN_OUTPUT"] = str(root)
    env.update(extra)
    return env


@pytest.fixture(name="cli_env")
def cli_env_fixture() -> Callable[..., dict[str, str]]:
    """``cli_env(root=None, **extra)``: the environment for a ``pidgin`` subprocess."""
    return cli_env


@pytest.fixture
def output_root(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    root.mkdir()
    return root


@pytest.fixture
def run_cli(output_root: Path) -> RunCli:
    """Run ``python -m pidgin_cli ARGS`` against ``output_root`` and return the result."""

    def run(
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pidgin_cli", *args],
            env=dict(env) if env is not None else cli_env(output_root),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def write_experiment(
    root: Path,
    name: str,
    *,
    experiment_id: str | None = None,
    planned: int | None = None,
    outcomes: Sequence[str] = ("completed",),
    turns: int = 3,
    max_turns: int = 5,
    scores: Sequence[float] = (0.2, 0.5, 0.8),
    errors: int = 0,
    status: str | None = None,
    costs: Sequence[float] | None = None,
) -> Experiment:
    """A finished experiment whose conversations end with ``outcomes`` (one per conversation).

    A ``failed`` outcome raises inside the conversation block (so the error is recorded the
    way a real failure is); the experiment itself completes normally. ``costs`` gives each
    conversation's agent_b messages that cost (US dollars) apiece, as a priced model's would.
    """
    with Experiment.create(
        root,
        name=name,
        experiment_id=experiment_id,
        total_conversations=len(outcomes) if planned is None else planned,
        config={"purpose": "test"},
    ) as experiment:
        for index, outcome in enumerate(outcomes):
            try:
                with experiment.conversation(
                    agent_a="local:test",
                    agent_b="local:echo",
                    max_turns=max_turns,
                    initial_prompt="Hello",
                ) as conversation:
                    for turn in range(turns):
                        conversation.turn_start()
                        conversation.message("agent_a", f"a says {turn}", prompt_tokens=3)
                        conversation.message(
                            "agent_b",
                            f"b says {turn}",
                            completion_tokens=4,
                            cost_usd=None if costs is None else costs[index],
                        )
                        conversation.turn_complete(scores[turn % len(scores)])
                    for number in range(errors):
                        conversation.error("TestError", f"boom {number}", context="test")
                    if outcome == "failed":
                        raise RuntimeError("the model fell over")
                    if outcome != "completed":
                        conversation.end(outcome, reason="test")
            except RuntimeError:
                pass
        if status is not None:
            experiment.complete(status, reason="test", error="test failure")
    return experiment


@pytest.fixture
def make_experiment(output_root: Path) -> Callable[..., Experiment]:
    """``write_experiment`` bound to ``output_root``: ``make_experiment("name", ...)``."""

    def make(name: str, **options: Any) -> Experiment:
        return write_experiment(output_root, name, **options)

    return make


@pytest.fixture
def legacy_root(output_root: Path, legacy_fixtures: Path) -> Path:
    """``output_root`` holding copies of the pidgin-ai 1.1 experiment directories."""
    experiments = output_root / "experiments"
    experiments.mkdir(exist_ok=True)
    for source in sorted(legacy_fixtures.iterdir()):
        if source.is_dir():
            target = experiments / source.name
            shutil.copytree(source, target)
            target.chmod(0o755)
            for path in target.iterdir():
                path.chmod(0o644)
    return output_root


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    from pidgin_events import Experiment

    root, name, planned = sys.argv[1], sys.argv[2], int(sys.argv[3])
    given_id = sys.argv[4] if len(sys.argv) > 4 else None
    experiment = Experiment.create(
        root, name=name, total_conversations=planned, experiment_id=given_id
    )
    print("started", experiment.id, flush=True)
    conversation = None
    for line in sys.stdin:
        command, *args = line.split()
        if command == "conv":
            conversation = experiment.conversation(
                agent_a="local:test", agent_b="local:test", max_turns=int(args[0])
            )
        elif command == "turn":
            conversation.turn_start()
            conversation.message("agent_a", "ping", prompt_tokens=2, completion_tokens=3)
            conversation.message("agent_b", "pong", prompt_tokens=2, completion_tokens=3)
            conversation.turn_complete(float(args[0]))
        elif command == "error":
            conversation.error("APIError", " ".join(args) or "boom")
        elif command == "endconv":
            conversation.end(args[0] if args else "completed")
        elif command == "finish":
            break
        print("ok", flush=True)
    experiment.complete()
    print("done", flush=True)
    """
)


class LiveWriter:
    """A separate process writing one experiment, one command at a time, over a pipe."""

    def __init__(
        self, script: Path, root: Path, name: str, planned: int, experiment_id: str | None
    ) -> None:
        given = [] if experiment_id is None else [experiment_id]
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(root), name, str(planned), *given],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=cli_env(root),
        )
        self.experiment_id = self._reply().split()[1]
        self.directory = root / "experiments" / self.experiment_id

    def _stdin(self) -> IO[str]:
        assert self.process.stdin is not None
        return self.process.stdin

    def _reply(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"writer exited with status {self.process.wait(10)}")
        return line.strip()

    def send(self, *commands: str) -> None:
        """Send commands and wait until each has been written to disk."""
        for command in commands:
            self._stdin().write(command + "\n")
            self._stdin().flush()
            reply = self._reply()
            assert reply == "ok", reply

    def finish(self) -> None:
        self._stdin().write("finish\n")
        self._stdin().flush()
        assert self._reply() == "done"
        assert self.process.wait(30) == 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def live_writer(tmp_path: Path) -> Iterator[Callable[..., LiveWriter]]:
    """Start writer processes (``live_writer(root, name, planned, experiment_id=None)``).

    Each answers ``ok`` once a command (``conv MAX_TURNS``, ``turn SCORE``, ``error MSG``,
    ``endconv [STATUS]``) is on disk; ``finish()`` completes the experiment. Any writer
    still alive at teardown is killed.
    """
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    writers: list[LiveWriter] = []

    def start(
        root: Path, name: str, planned: int = 2, experiment_id: str | None = None
    ) -> LiveWriter:
        writer = LiveWriter(script, root, name, planned, experiment_id)
        writers.append(writer)
        return writer

    yield start
    for writer in writers:
        writer.stop()


class PtyProcess:
    """A process whose stdout and stderr are a real pseudo-terminal (so rich draws)."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], rows: int = 40) -> None:
        import fcntl
        import pty
        import struct
        import termios

        self._main, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, 160, 0, 0))
        self.process = subprocess.Popen(
            list(args), stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env=env
        )
        os.close(secondary)
        self.output = b""
        self._closed = False

    def _read(self, timeout: float) -> bool:
        import select

        if self._closed:
            return False
        ready, _, _ = select.select([self._main], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self._main, 65536)
        except OSError:  # EIO: every writer closed the terminal
            chunk = b""
        if not chunk:
            self._closed = True
            return False
        self.output += chunk
        return True

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def read_until(self, needle: str, timeout: float = 60) -> str:
        import time

        deadline = time.monotonic() + timeout
        while needle not in self.text:
            if time.monotonic() > deadline or not self._read(0.2):
                raise AssertionError(f"{needle!r} never appeared in:\n{self.text}")
        return self.text

    def wait(self, timeout: float = 60) -> tuple[int, str]:
        """Read to the end; the exit status and everything shown."""
        import time

        deadline = time.monotonic() + timeout
        while self._read(0.2):
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s:\n{self.text}")
        status = self.process.wait(timeout)
        os.close(self._main)
        return status, self.text

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        if not self._closed:
            self._closed = True
            os.close(self._main)


@pytest.fixture
def pty_process() -> Iterator[Callable[..., PtyProcess]]:
    """``pty_process(args, env)`` starts a process on a pseudo-terminal; killed at teardown."""
    if sys.platform == "win32":
        pytest.skip("needs a pseudo-terminal")
    started: list[PtyProcess] = []

    def start(args: Sequence[str], env: Mapping[str, str], rows: int = 40) -> PtyProcess:
        process = PtyProcess(args, env, rows)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


# --- headless Chromium (Debian's chromium) ------------------------------------------------

ChromiumRender = Callable[[Path, Path], tuple[str, list[str]]]


def render_in_chromium(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM of ``page`` after its scripts ran, and the console messages Chromium logged."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed (apt-get install chromium)")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


@pytest.fixture
def chromium() -> ChromiumRender:
    """``chromium(page, profile_dir)``: ``(dom, console_lines)`` of a page in headless Chromium."""
    return render_in_chromium


# --- fake model providers (tools/fake_providers) ------------------------------------------

TOOLS = Path(__file__).resolve().parents[3] / "tools"
PROVIDER_KEY = "sk-pidgin-test-7f3a9c51e2b84d06"
"""The key the provider tests hand to every SDK; no output of a run may contain it."""


def _fake_providers() -> Any:
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return importlib.import_module("fake_providers")


@pytest.fixture
def provider_key() -> str:
    """The key every SDK gets from the ``providers`` fixture and ``provider_env``."""
    return PROVIDER_KEY


@pytest.fixture(name="provider_env")
def provider_env_fixture() -> Callable[..., dict[str, str]]:
    """``provider_env(server, root=None, key=PROVIDER_KEY)``: env of a ``pidgin`` process."""
    return provider_env


@pytest.fixture(scope="session")
def provider_server() -> Iterator[Any]:
    """One fake Anthropic/OpenAI/Gemini server on 127.0.0.1 for the whole test session."""
    server = _fake_providers().FakeServer().start()
    yield server
    server.stop()


@pytest.fixture
def providers(provider_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The session's fake server, reset, with every provider's SDK pointed at it by env."""
    from pidgin_cli._providers import configure

    provider_server.reset()
    provider_server.behaviour.keys = {PROVIDER_KEY}
    for variable in ("GEMINI_API_KEY",):
        monkeypatch.delenv(variable, raising=False)
    env = _fake_providers().environment(provider_server.url, PROVIDER_KEY)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    configure(base_urls={}, timeout=30.0)
    yield provider_server
    configure(base_urls={}, timeout=120.0)


def provider_env(server: Any, root: Path | None = None, key: str = PROVIDER_KEY) -> dict[str, str]:
    """A ``pidgin`` subprocess environment that sends every provider to ``server``."""
    return cli_env(root, **_fake_providers().environment(server.url, key))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``live`` tests call the real APIs: deselected unless ``-m`` names them."""
    if "live" in (config.getoption("markexpr") or ""):
        return
    live = [item for item in items if item.get_closest_marker("live") is not None]
    if live:
        config.hook.pytest_deselected(items=live)
        items[:] = [item for item in items if item.get_closest_marker("live") is None]
