"""Fixtures shared by every package's tests and the integration tests (stdlib and pytest only)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

PIDGIN_AI_FIXTURES = (
    Path(__file__).resolve().parent / "tests-integration" / "fixtures" / "pidgin-ai-1.1"
)
PIDGIN_AI_EXPERIMENTS = PIDGIN_AI_FIXTURES / "experiments"
"""Experiment directories written by pidgin-ai 1.1, committed with the repository.

The one place tests (and ``tools/bench``) find them: relative to this file, so any clone
finds its own copy. Tests take the ``legacy_fixtures`` fixture rather than this constant.
"""


LAKE_TESTS_ENV = "PIDGIN_REQUIRE_LAKE_TESTS"
collect_ignore_glob = (
    [] if os.environ.get(LAKE_TESTS_ENV) else ["packages/pidgin-load/tests/lake/*"]
)
"""The DuckLake tests need DuckDB pinned to its extensions' version, so they run in hatch's
``lake`` environment (which sets ``$PIDGIN_REQUIRE_LAKE_TESTS``), called by ``hatch run test``
after the rest of the suite; every other environment leaves the folder out."""


def _tools_module(name: str) -> ModuleType:
    """A stdlib-only module of ``tools/`` (not a package), imported once by its path."""
    if name not in sys.modules:
        path = Path(__file__).resolve().parent / "tools" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def pgcluster() -> ModuleType:
    """``tools/pgcluster.py``: a throwaway PostgreSQL server (the lake tests start one)."""
    return _tools_module("pgcluster")


@pytest.fixture(scope="session")
def free_port(pgcluster: ModuleType) -> Callable[[], int]:
    """``free_port()``: a port of 127.0.0.1 nothing listens on (to serve on, or to find closed)."""
    probe: Callable[[], int] = pgcluster.free_port
    return probe


@pytest.fixture(scope="session")
def legacy_fixtures() -> Path:
    """The pidgin-ai 1.1 ``experiments/`` directory (read only: copy before changing it)."""
    if not (PIDGIN_AI_EXPERIMENTS / "exp-5x20-full_f41ebd59" / "manifest.json").is_file():
        pytest.fail(f"the pidgin-ai fixtures are missing from the clone: {PIDGIN_AI_EXPERIMENTS}")
    return PIDGIN_AI_EXPERIMENTS


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
