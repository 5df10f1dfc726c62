"""Fixtures of the ``pidgin serve`` tests: a real server process, a scripted writer, a browser.

The server is ``python -m pidgin_cli serve --port 0`` in a subprocess, reached over
127.0.0.1. The writer is another process that appends to an experiment's logs when told
to, so a test can watch a run that goes on while the pages are open. The browser is the
system's headless Chromium through selenium and chromedriver; without them the browser
tests skip, except under CI (``CI=true``), where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

pytest.importorskip("strawberry", reason="pidgin serve needs its extra: pidgin-cli[serve]")

REPO = Path(__file__).resolve().parents[4]
ARTIFACTS = Path(os.environ.get("PIDGIN_TEST_ARTIFACTS") or REPO / "test-artifacts") / "serve"
"""Screenshots of the browser tests (gitignored; CI keeps them as artifacts)."""

WRITER = textwrap.dedent(
    """
    import json, sys
    from pidgin_events import Experiment, ThinkingCompleteEvent

    root, name, planned = sys.argv[1], sys.argv[2], int(sys.argv[3])
    experiment = Experiment.create(root, name=name, total_conversations=planned)
    print(json.dumps({"id": experiment.id}), flush=True)
    conversation = None
    for line in sys.stdin:
        order = json.loads(line)
        op = order["op"]
        if op == "conv":
            conversation = experiment.conversation(
                agent_a=order.get("a", "local:test"), agent_b=order.get("b", "local:test"),
                max_turns=order.get("max_turns", 10), initial_prompt=order.get("prompt"),
            )
            print(json.dumps({"id": conversation.id}), flush=True)
            continue
        if op == "turn":
            turn = conversation.turn_start()
            if order.get("thinking"):
                conversation.emit(ThinkingCompleteEvent(
                    conversation_id=conversation.id, turn_number=turn, agent_id="agent_a",
                    thinking_content=order["thinking"], thinking_tokens=7,
                ))
            conversation.message(
                "agent_a", order["a_text"], prompt_tokens=5, completion_tokens=9,
                cost_usd=order.get("cost"),
            )
            conversation.message("agent_b", order["b_text"], prompt_tokens=6, completion_tokens=4)
            conversation.turn_complete(order.get("score"))
        elif op == "end":
            conversation.end("completed")
        elif op == "finish":
            break
        print("{}", flush=True)
    experiment.complete()
    print("{}", flush=True)
    """
)


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIDGIN_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PIDGIN_OUTPUT"] = str(root)
    env["HOME"] = str(root.parent)
    return env


class Writer:
    """A separate process writing one experiment, one order (a JSON line) at a time."""

    def __init__(self, script: Path, root: Path, name: str, planned: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(root), name, str(planned)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_env(root),
        )
        self.experiment_id: str = self._reply()["id"]

    def _pipe(self, stream: IO[str] | None) -> IO[str]:
        assert stream is not None
        return stream

    def _reply(self) -> dict[str, Any]:
        line = self._pipe(self.process.stdout).readline()
        if not line:
            raise RuntimeError(f"writer exited with status {self.process.wait(10)}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def order(self, op: str, **fields: object) -> dict[str, Any]:
        """Send one order; returns once it is on disk (with the writer's answer)."""
        stdin = self._pipe(self.process.stdin)
        stdin.write(json.dumps({"op": op, **fields}) + "\n")
        stdin.flush()
        return self._reply()

    def conversation(self, **fields: object) -> str:
        return str(self.order("conv", **fields)["id"])

    def turn(self, a_text: str, b_text: str, score: float | None = None, **fields: object) -> None:
        self.order("turn", a_text=a_text, b_text=b_text, score=score, **fields)

    def finish(self) -> None:
        self.order("finish")
        assert self.process.wait(30) == 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Callable[..., Writer]]:
    """``writer(root, name, planned=1)``: a live writer process (killed at teardown)."""
    script = tmp_path / "serve_writer.py"
    script.write_text(WRITER)
    started: list[Writer] = []

    def start(root: Path, name: str, planned: int = 1) -> Writer:
        started.append(Writer(script, root, name, planned))
        return started[-1]

    yield start
    for one in started:
        one.stop()


class Server:
    """``pidgin serve`` in a subprocess; ``url`` is where it listens."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pidgin_cli", "-o", str(root), "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**_env(root), **(env or {})},
        )
        assert self.process.stdout is not None
        self.stderr: str | None = None
        self.banner: list[str] = []
        while True:
            line = self.process.stdout.readline()
            if not line:
                assert self.process.stderr is not None
                raise RuntimeError(f"serve exited: {self.process.stderr.read()}")
            self.banner.append(line)
            found = re.search(r"open (http://\S+?/)(\?token=(\S+))?$", line.strip())
            if found:
                self.url = found.group(1)
                self.token = found.group(3)
                break

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        return request(self.url + path.lstrip("/"), headers=headers)

    def graphql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        status, _, text = request(
            self.url + "graphql",
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        return status, json.loads(text)

    def stop(self) -> str:
        """Stop the server; its stderr."""
        if self.stderr is not None:
            return self.stderr
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        assert self.process.stderr is not None
        assert self.process.stdout is not None
        self.stderr = self.process.stderr.read()
        self.process.stderr.close()
        self.process.stdout.close()
        return self.stderr


def request(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """One HTTP request; status, headers and body, whatever the status."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """``serve(root, *args)``: a running ``pidgin serve`` (stopped at teardown)."""
    servers: list[Server] = []

    def start(root: Path, *args: str) -> Server:
        servers.append(Server(root, *args))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
)


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium driven by selenium, with a fresh profile."""
    missing = []
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    # Debian's chromium first (what tools/ci/install-browser.sh installs); a Chrome that a
    # CI image ships works the same through chromedriver.
    chromium = _find("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    driver_path = _find("chromedriver")
    if chromium is None or driver_path is None:
        missing.append("chromium and chromium-driver (tools/ci/install-browser.sh)")
    if missing or chromium is None or driver_path is None:
        message = "browser tests need " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(browser: Any, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``screenshot(label)``: save the browser's view under ``test-artifacts/serve/``."""

    def take(label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}-{label}.png"
        browser.save_screenshot(str(path))
        return path

    return take
