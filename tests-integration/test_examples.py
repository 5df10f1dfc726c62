"""Every example in the help texts and the READMEs runs, as a user would type it.

The examples are collected, never listed here, so one added later is checked too:

* every ``Example:``/``Examples:`` section of ``--help``, from the real commands: the whole
  ``pidgin`` tree (walked through click, hidden commands included), ``pidgin-load`` and
  ``python -m pidgin_events`` with each of its subcommands;
* every line of every ``sh`` block, and every ``$ `` line of every ``console`` block, in
  ``README.md`` and ``packages/*/README.md`` (lines ending in ``\\`` continue).

Examples that talk to a vendor's API (``PAID``) run against the fake vendor servers of
``tools/fake_providers`` with ``--detach``, and are stopped once started: every option is
checked (models, thinking, awareness files) before anything starts.

Each runs in ``bash`` with ``pipefail``, in a temporary directory (also ``$HOME``) that
holds a small real output root at ``./pidgin_output`` (the default): a completed experiment
named ``greetings``, an interrupted one, and a chat, all made by the ``pidgin`` command.
Placeholders are replaced by real values: experiment ids (``exp_3f9a...``, prefixes
included) by the id of ``greetings``, conversation ids by one of its conversations, chat
directory names by the chat's, ``/tmp/`` by a directory inside the temporary one and
``old_output`` by a copy of the pidgin-ai 1.1 fixtures, the made-up names of ``NAMES`` by
``greetings``; ``curious-echo`` and ``restless-echo`` (the experiments
``stop`` stops) are started just before. Every stage of the pipeline must exit 0 (``grep``
also 1: no line matched is an answer), and nothing may print a traceback. Examples that
follow forever until Ctrl-C get a few seconds, then SIGINT, and must have printed something.

The few examples that cannot run here are in ``NOT_RUN``, each with its reason.
"""

from __future__ import annotations

import importlib
import os
import pty
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

REPO = Path(__file__).resolve().parents[1]
READMES = [REPO / "README.md", *sorted(REPO.glob("packages/*/README.md"))]
BIN = Path(sys.executable).parent

NOT_RUN: dict[str, str] = {
    r"^pip install (?!\./)": "installs from PyPI, where the packages of this clone are not (yet)",
    r"^pip install \./packages/": (
        "installs into the Python that runs it, from the clone's root; a fresh environment per "
        "line would need its dependencies downloaded (test_load_wheel_install does that once, "
        "for pidgin-load with its siblings)"
    ),
    r"^python3? tools/": (
        "repository tooling: builds .venv in the clone, runs this very suite, or benchmarks "
        "for minutes against pidgin-ai installed from PyPI; the commands it runs for the "
        "user (pidgin demo, the tests) are run here"
    ),
    r"^duckdb ": (
        "DuckDB's command-line program is a separate binary, not on PyPI; the SQL of these "
        "examples runs through DuckDB's Python module in test_duckdb_cli_examples_query"
    ),
    r"--target ducklake:": (
        "needs a PostgreSQL catalog server and the lake extra's DuckDB; the same commands "
        "run against a throwaway PostgreSQL in hatch's lake environment "
        "(packages/pidgin-load/tests/lake)"
    ),
    r"_PIDGIN_COMPLETE=(zsh|fish)_source": (
        "zsh and fish are not dependencies of the suite; the bash line runs the same "
        "completion source generation"
    ),
}
"""Examples that cannot run offline in a test, by pattern, each with why."""

PAID: dict[str, str] = {
    r"^pidgin run .*-a (opus|sonnet|haiku|gpt-|gemini|flash|grok|o\d)": (
        "talks to a paid provider API with a key: runs against the fake vendor servers of "
        "tools/fake_providers instead, with --detach and stopped once started (the options "
        "are all checked before it starts; a hundred conversations would take minutes)"
    ),
}
"""Examples that need a vendor's API: started against the fake servers, then stopped."""

FOLLOWS: dict[str, str] = {
    r"^pidgin monitor(?!.*--once)": "a live view, refreshed until Ctrl-C",
    r"^tail (-q )?-f ": "follows logs until Ctrl-C",
    r"^pidgin serve(?!.*--print-schema)": "a web server, serving until Ctrl-C",
}
"""Examples that run until Ctrl-C: given FOLLOW_SECONDS, then SIGINT."""
RUNNING = ("curious-echo", "restless-echo")
"""Experiments an example stops (``experiment stop``, ``stop``): each started just before."""
NAMES = {"night": "greetings"}
"""Names of the made-up runs whose screens the READMEs show, and the real run they stand for."""
FOLLOW_SECONDS = 3.0
EXAMPLE_TIMEOUT = 180.0


@dataclass(frozen=True)
class Example:
    command: str
    source: str
    """Where it was found: ``README.md:12`` or ``pidgin experiment status --help``."""

    @property
    def id(self) -> str:
        return f"{self.source}: {self.command}"


# --- collecting -------------------------------------------------------------------------


def _readme_examples(path: Path) -> Iterator[Example]:
    lines = path.read_text(encoding="utf-8").splitlines()
    block: str | None = None
    pending = ""
    start = 0
    for number, line in enumerate(lines, start=1):
        fence = re.match(r"^```(\S*)", line)
        if fence:
            block = None if block is not None else fence.group(1)
            pending = ""
            continue
        if block == "console":
            if line.startswith("$ "):
                yield Example(line[2:].strip(), f"{path.relative_to(REPO)}:{number}")
            continue
        if block != "sh":
            continue
        if not pending:
            start = number
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        yield Example(command, f"{path.relative_to(REPO)}:{start}")


def _help_sections(text: str) -> Iterator[str]:
    """The indented lines under ``Example:``/``Examples:`` headings of a help text."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not re.fullmatch(r"\s*examples?:\s*", line, flags=re.IGNORECASE):
            continue
        indent = len(line) - len(line.lstrip())
        for following in lines[index + 1 :]:
            if not following.strip() or len(following) - len(following.lstrip()) <= indent:
                break
            yield following.strip()


def _help(*argv: str) -> str:
    result = subprocess.run(
        [*argv, "--help"], capture_output=True, text=True, timeout=60, check=False, env=_env()
    )
    assert result.returncode == 0, f"{argv} --help: {result.stderr}"
    return result.stdout


def _pidgin_paths() -> Iterator[tuple[str, ...]]:
    """Every command path of ``pidgin`` (``()`` is the root), hidden commands included."""
    from pidgin_cli._main import cli

    def walk(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        if isinstance(command, click.Group):
            context = click.Context(command, info_name=path[-1] if path else "pidgin")
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                if sub is not None:
                    yield from walk(sub, (*path, name))

    yield from walk(cli, ())


def _help_examples() -> Iterator[Example]:
    for path in _pidgin_paths():
        for command in _help_sections(_help(str(BIN / "pidgin"), *path)):
            yield Example(command, " ".join(("pidgin", *path, "--help")))
    for command in _help_sections(_help(str(BIN / "pidgin-load"))):
        yield Example(command, "pidgin-load --help")
    events = (sys.executable, "-m", "pidgin_events")
    top = _help(*events)
    # argparse lists subcommands as "    name   help" under the COMMAND metavar
    subcommands = re.findall(r"^    ([a-z][\w-]*)  ", top, flags=re.MULTILINE)
    assert subcommands, "python -m pidgin_events lists no subcommands"
    for argv in [(), *((name,) for name in subcommands)]:
        text = top if not argv else _help(*events, *argv)
        for command in _help_sections(text):
            yield Example(command, " ".join(("python -m pidgin_events", *argv, "--help")))


def _collect() -> list[Example]:
    found: dict[str, Example] = {}
    for readme in READMES:
        for example in _readme_examples(readme):
            found.setdefault(example.command, example)
    for example in _help_examples():
        found.setdefault(example.command, example)
    return list(found.values())


def _env(home: Path | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PIDGIN_OUTPUT", "PIDGIN_CHATS_DB", "NO_COLOR", "TERM")
        and not key.startswith("PYTEST")
    }
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["COLUMNS"] = "160"
    if home is not None:
        env["HOME"] = str(home)
    return env


EXAMPLES = _collect()


def _matches(patterns: dict[str, str], command: str) -> str | None:
    return next((why for pattern, why in patterns.items() if re.search(pattern, command)), None)


RUNNABLE = [example for example in EXAMPLES if _matches(NOT_RUN, example.command) is None]


# --- the world the examples run in ------------------------------------------------------


@dataclass
class World:
    directory: Path
    env: dict[str, str]
    experiment_id: str
    conversation_id: str
    chat: str
    free_port: Callable[[], int]

    def pidgin(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / "pidgin"), *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"pidgin {shlex.join(args)}: {result.stderr}"
        return result

    def start_running(self, name: str) -> None:
        """A detached experiment that runs until stopped, once it has begun to write."""
        self.pidgin("run", "-a", "local:drift", "-b", "local:drift", "-t", "100000", "-n", name,
                    "--detach")  # fmt: skip
        deadline = time.monotonic() + 60
        experiments = self.directory / "pidgin_output" / "experiments"
        while time.monotonic() < deadline:
            for directory in experiments.iterdir():
                log = directory / "experiment.jsonl"
                named = log.is_file() and f'"name":"{name}"' in log.read_text(encoding="utf-8")
                if named and any(directory.glob("conv_*_events.jsonl")):
                    return
            time.sleep(0.1)
        raise AssertionError(f"experiment {name} did not start")


def _fake_providers() -> Any:
    tools = str(REPO / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    return importlib.import_module("fake_providers")


@pytest.fixture(scope="module")
def fake_vendors() -> Iterator[str]:
    """The URL of one fake Anthropic/OpenAI/Gemini/xAI server for this module."""
    server = _fake_providers().FakeServer()
    server.record_requests = False
    server.start()
    url: str = server.url
    yield url
    server.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]) -> World:
    directory = tmp_path_factory.mktemp("examples")
    (directory / "tmp").mkdir()
    env = _env(home=directory)
    draft = World(directory, env, "", "", "", free_port)
    quiet = draft.pidgin("run", "-a", "local:drift", "-b", "local:drift", "-t", "3", "-r", "2",
                         "-n", "greetings", "-q")  # fmt: skip
    experiment_id = quiet.stdout.strip()
    draft.pidgin("experiment", "attach", experiment_id)  # to its end
    draft.pidgin("load-db", experiment_id)
    draft.start_running("big")
    draft.pidgin("experiment", "stop", "big")
    draft.pidgin("chat", "-a", "local:test", "-b", "silent:none", "-t", "2")
    root = directory / "pidgin_output"
    conversation = sorted((root / "experiments" / experiment_id).glob("conv_*_events.jsonl"))[0]
    (chat,) = (root / "chats").iterdir()
    return World(
        directory,
        env,
        experiment_id=experiment_id,
        conversation_id=conversation.name.removesuffix("_events.jsonl"),
        chat=chat.name,
        free_port=free_port,
    )


def _substitute(command: str, world: World) -> str:
    # Ids end where the hex digits do: "conv_0c1d2e3f4a5b_events.jsonl" holds one.
    command = re.sub(r"(?<!\w)exp_[0-9a-f]{3,12}(?![0-9a-f])", world.experiment_id, command)
    command = re.sub(r"(?<!\w)conv_[0-9a-f]{12}(?![0-9a-f])", world.conversation_id, command)
    command = re.sub(r"\b\d{8}_\d{6}_[0-9a-z]+\b", world.chat, command)
    for name, real in NAMES.items():
        command = re.sub(rf"(?<=\s){re.escape(name)}(?=\s|$)", real, command)
    command = command.replace("/tmp/", f"{world.directory}/tmp/")
    return _on_a_free_port(command, world.free_port)


def _on_a_free_port(command: str, free_port: Callable[[], int]) -> str:
    """A served example listens on a port nobody holds: parallel workers serve at once."""
    if not command.startswith("pidgin serve") or "--print-schema" in command:
        return command
    port = free_port()
    command = re.sub(r"\s--port\s+\d+", "", command)
    return re.sub(r"^pidgin serve", f"pidgin serve --port {port}", command)


def _stages(command: str) -> list[str]:
    """The program of each stage of a pipeline (``VAR=value`` prefixes skipped)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    stages: list[list[str]] = [[]]
    for token in lexer:
        if token == "|":
            stages.append([])
        else:
            stages[-1].append(token)
    programs = []
    for words in stages:
        names = [w for w in words if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w)]
        programs.append(names[0] if names else "")
    return programs


def _run(command: str, world: World, status_file: Path) -> tuple[int, str, str]:
    script = f'set -o pipefail\n{command}\nprintf "%s" "${{PIPESTATUS[*]}}" > {status_file}\n'
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=world.directory,
        env=world.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=EXAMPLE_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, out, err


def _follow(command: str, world: World) -> tuple[str, str]:
    """Run a following example on a terminal (a pty, as a user would), then press Ctrl-C."""
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=world.directory,
        env=world.env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    os.close(terminal)
    shown = bytearray()
    interrupted_at = time.monotonic() + FOLLOW_SECONDS
    deadline = interrupted_at + 30
    interrupted = False
    try:
        while time.monotonic() < deadline:
            if not interrupted and time.monotonic() >= interrupted_at:
                os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole pipeline
                interrupted = True
            ready, _, _ = select.select([main], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: every writer of the terminal is gone
                    break
                if not chunk:
                    break
                shown += chunk
            elif process.poll() is not None and interrupted:
                break
    finally:
        os.close(main)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        _, err_bytes = process.communicate(timeout=30)  # closes the stderr pipe too
    err = err_bytes.decode(errors="replace")
    return shown.decode(errors="replace"), err


def _start_and_stop(command: str, world: World, url: str, shown: str) -> None:
    """A paid example started against the fake vendors with --detach, then stopped."""
    env = {**world.env, **_fake_providers().environment(url)}

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=world.directory, env=env, capture_output=True,
                              text=True, timeout=EXAMPLE_TIMEOUT, check=False)  # fmt: skip

    started = run(["bash", "-c", f"{command} --detach"])
    shown += f"\n--- exit {started.returncode}\n{started.stdout}\n--- stderr\n{started.stderr}"
    assert started.returncode == 0, shown
    assert "Traceback" not in started.stderr, shown
    found = re.search(r"^Started experiment (exp_[0-9a-f]+)", started.stdout, re.MULTILINE)
    assert found, shown
    stopped = run([str(BIN / "pidgin"), "stop", found.group(1), "--timeout", "60"])
    # 1: it had ended already, which the fake servers' speed allows
    assert stopped.returncode in (0, 1), f"{shown}\n--- stop\n{stopped.stderr}"
    assert "Traceback" not in stopped.stderr


@pytest.mark.parametrize("example", RUNNABLE, ids=[e.id for e in RUNNABLE])
def test_example_runs(
    example: Example, world: World, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    command = _substitute(example.command, world)
    if _matches(PAID, example.command) is not None:
        url: str = request.getfixturevalue("fake_vendors")
        _start_and_stop(command, world, url, f"{example.source}\n$ {command}")
        return
    if "old_output" in command and not (world.directory / "old_output").exists():
        legacy: Path = request.getfixturevalue("legacy_fixtures")
        shutil.copytree(legacy, world.directory / "old_output" / "experiments")
    for name in RUNNING:
        if name in command:
            world.start_running(name)
    if _matches(FOLLOWS, example.command) is not None:
        out, err = _follow(command, world)
        shown = f"{example.source}\n$ {command}\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
        assert out.strip(), shown  # what it printed until Ctrl-C is what counts
        assert not err.strip(), shown
        return
    status_file = tmp_path / "pipestatus"
    code, out, err = _run(command, world, status_file)
    shown = (
        f"{example.source}\n$ {command}\n--- exit {code}\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
    )
    assert "Traceback" not in err, shown
    statuses = [int(s) for s in status_file.read_text().split()] if status_file.exists() else []
    programs = _stages(command)
    if len(statuses) != len(programs):
        assert code == 0, shown
        assert set(statuses) == {0}, shown
        return
    for program, status in zip(programs, statuses, strict=True):
        allowed = {0, 1} if Path(program).name == "grep" else {0}
        assert status in allowed, f"{program} exited {status}\n{shown}"


def test_examples_were_found() -> None:
    """The collectors see what the files hold: a broken collector must not pass quietly."""
    sources = {example.source.split(":")[0] for example in EXAMPLES}
    for readme in READMES:
        text = readme.read_text(encoding="utf-8")
        if "```sh" in text or re.search(r"```console\n\$ ", text):
            assert str(readme.relative_to(REPO)) in sources, readme
    commands = {example.command for example in EXAMPLES}
    assert any(c.startswith("pidgin experiment status") for c in commands)
    assert any(c.startswith("python -m pidgin_events validate") for c in commands)
    helps = {e.source for e in EXAMPLES if e.source.endswith("--help")}
    # Hidden commands are walked too: load-db, whose examples are first met under its
    # hidden alias import (the walk is alphabetical, and an example is kept where first met).
    assert "pidgin import --help" in helps


@pytest.mark.parametrize("pattern", [*NOT_RUN, *PAID, *FOLLOWS])
def test_every_exception_is_still_needed(pattern: str) -> None:
    """An entry of NOT_RUN, PAID or FOLLOWS that matches no example any more must go."""
    assert any(re.search(pattern, example.command) for example in EXAMPLES), pattern


def test_duckdb_cli_examples_query(world: World) -> None:
    """The SQL of the ``duckdb`` command-line examples, through DuckDB's Python module."""
    import duckdb

    examples = [e for e in EXAMPLES if e.command.startswith("duckdb ")]
    assert examples
    for example in examples:
        words = shlex.split(_substitute(example.command, world))
        flags = [w for w in words[1:] if w.startswith("-")]
        database, sql = [w for w in words[1:] if not w.startswith("-")]
        assert flags == ["-readonly"], example.id
        with duckdb.connect(str(world.directory / database), read_only=True) as con:
            assert con.execute(sql).fetchall(), example.id
