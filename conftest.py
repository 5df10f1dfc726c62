"""Fixtures shared by every package's tests and the integration tests (stdlib and pytest only)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FIXTURES = Path(
    os.environ.get("PIDGIN_AI_FIXTURES")
    or Path(__file__).resolve().parent.parent / "shared" / "fixtures" / "pidgin-ai-1.1"
)
"""pidgin-ai 1.1 experiment directories: ``../shared/fixtures`` beside the repository."""


@pytest.fixture
def legacy_fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"pidgin-ai fixtures not found at {FIXTURES}")
    return FIXTURES / "experiments"


class PythonProcesses:
    """Starts real Python subprocesses with this interpreter and import path."""

    def start(self, code: str, *args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        return subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def run(
        self, code: str, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[bytes]:
        process = self.start(code, *args)
        try:
            out, err = process.communicate(timeout=timeout)
        finally:
            process.kill()
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture
def python() -> PythonProcesses:
    """Run code in a separate Python process (for kill -9, concurrency, liveness)."""
    return PythonProcesses()
