"""``pidgin-load`` installed alone: only its wheels, pidgin-events, pidgin-state and DuckDB.

Builds the three wheels (``pip wheel --no-deps``), installs them with their third-party
dependencies from PyPI into a fresh virtual environment outside the workspace, and runs
the console script there, without PYTHONPATH, on a copy of the pidgin-ai fixture. An
undeclared dependency, a module missing from the wheel or a broken entry point fails here.
Skipped when PyPI cannot be reached.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DISTRIBUTIONS = ("pidgin-events", "pidgin-state", "pidgin-load")
ALLOWED = {"pidgin-events", "pidgin-state", "pidgin-load", "duckdb", "orjson", "pip", "setuptools"}


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=5):
            return True
    except OSError:
        return False


def _run(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow  # builds three wheels and a virtual environment
def test_console_script_from_wheels_in_a_fresh_environment(
    tmp_path: Path, pidgin_ai_root: Path
) -> None:
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable: cannot install DuckDB into a fresh environment")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    wheels = tmp_path / "wheels"
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--quiet",
        "-w",
        wheels,
        *(REPO / "packages" / name for name in DISTRIBUTIONS),
        cwd=tmp_path,
        env=env,
    )
    built = sorted(wheels.glob("*.whl"))
    assert [path.name.split("-")[0] for path in built] == [
        "pidgin_events",
        "pidgin_load",
        "pidgin_state",
    ]

    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", *built, cwd=tmp_path, env=env)
    installed = json.loads(
        _run(python, "-m", "pip", "list", "--format=json", cwd=tmp_path, env=env).stdout
    )
    assert {entry["name"].lower() for entry in installed} <= ALLOWED

    script = environment / "bin" / "pidgin-load"
    help_text = _run(script, "--help", cwd=tmp_path, env=env).stdout
    assert "--all ROOT" in help_text

    experiment = pidgin_ai_root / "experiments" / "exp-5x20-full_f41ebd59"
    db = tmp_path / "ci.duckdb"
    summary = json.loads(
        _run(script, experiment, "--db", db, "--json", cwd=tmp_path, env=env).stdout
    )
    assert summary["ok"] is True
    assert summary["rows"]["turns"] == 100
    assert summary["rows"]["messages"] == 200
    where = _run(
        python,
        "-c",
        "import pidgin_load, duckdb; print(pidgin_load.__file__, pidgin_load.__version__)",
        cwd=tmp_path,
        env=env,
    ).stdout
    assert str(environment) in where
    assert where.split()[-1] == "0.1.0"
    shutil.rmtree(environment)
