"""Fixtures and hooks of the cross-package fault suite.

The ``python`` fixture (real Python subprocesses) comes from the repository's root
``conftest.py``. This file adds the ``fault_log`` recorder, the hooks that turn its rows into
``docs/fault-table.md`` (when ``PIDGIN_WRITE_FAULT_TABLE=1``), a private output root per
test inside a sandbox whose neighbours are watched, and a runner for the ``pidgin`` and
``pidgin-load`` commands.

Slow variants (``@pytest.mark.slow``) run with everything else; ``-m "not slow"`` leaves
them out while working on something else.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # importlib mode: for _faultlog

from _faultlog import (
    TABLE_ENV,
    TABLE_PATH,
    FaultLog,
    RunCommand,
    TableWriter,
    run_module,
)

_TABLE: dict[str, TableWriter] = {}
"""The table writer of this session, in the controlling process only (hooks get no config)."""


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(TABLE_ENV, "") not in ("", "0") and _is_controller(config):
        _TABLE["writer"] = TableWriter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    writer = _TABLE.get("writer")
    if writer is None:
        return
    xfail = getattr(report, "wasxfail", None)
    writer.add_report(
        report.nodeid,
        when=report.when,
        outcome=report.outcome,
        location=report.location,
        properties=report.user_properties,
        xfail_reason=xfail,
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    writer = _TABLE.get("writer")
    if writer is None or not writer.rows:
        return
    args = shlex.join(session.config.invocation_params.args)
    path = writer.write(TABLE_PATH, f"{TABLE_ENV}=1 python -m pytest {args}".strip())
    sys.stderr.write(f"\nfault table written to {path}\n")


@pytest.fixture
def fault_log(request: pytest.FixtureRequest) -> Iterator[FaultLog]:
    """Rows for the fault table; shipped with the test's report at teardown."""
    node = request.node
    variant = "slow" if node.get_closest_marker("slow") else "default"
    log = FaultLog(nodeid=node.nodeid, variant=variant)
    yield log
    node.user_properties.append(log.as_property())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs owned by this user, mounted for this test.

    Mounting needs root: as root directly, otherwise through passwordless ``sudo -n`` (as
    on CI runners). Where neither works the test is skipped, saying why.
    """
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    options = f"size=2m,mode=0700,uid={os.getuid()},gid={os.getgid()}"
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    try:
        mounted = subprocess.run(
            [*prefix, "mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except FileNotFoundError as exc:  # no mount or no sudo on this machine
        pytest.skip(f"cannot mount a small tmpfs for the full-disk test ({exc})")
    if mounted.returncode != 0:
        reason = mounted.stderr.strip() or f"exit status {mounted.returncode}"
        pytest.skip(f"cannot mount a small tmpfs for the full-disk test ({reason}); needs root")
    try:
        yield mount_point
    finally:
        subprocess.run([*prefix, "umount", "-l", str(mount_point)], check=False, timeout=30)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A directory holding the output root and neighbours that nothing may touch."""
    box = tmp_path / "sandbox"
    box.mkdir()
    return box


@pytest.fixture
def out_root(sandbox: Path) -> Path:
    """The Pidgin output root of one test (``$PIDGIN_OUTPUT`` of its commands)."""
    root = sandbox / "pidgin_output"
    root.mkdir()
    return root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """``$HOME`` of the commands, so that chats never reach the real ``~/.pidgin``."""
    path = tmp_path / "home"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def command_env(out_root: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    env.update(PIDGIN_OUTPUT=str(out_root), HOME=str(home), COLUMNS="160", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def pidgin(command_env: dict[str, str]) -> RunCommand:
    """Run ``python -m pidgin_cli ARGS`` (the ``pidgin`` command) against ``out_root``."""

    def run(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return run_module("pidgin_cli", *args, env={**command_env, **env}, timeout=timeout)

    return run


@pytest.fixture
def pidgin_load_cmd(command_env: dict[str, str]) -> RunCommand:
    """Run ``python -m pidgin_load ARGS`` (the ``pidgin-load`` command)."""

    def run(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return run_module("pidgin_load", *args, env={**command_env, **env}, timeout=timeout)

    return run
