"""A reader that goes away (``pidgin ... | head``) stops ``pidgin`` quietly: exit 1, no traceback.

click's standalone mode is the one mechanism: it turns EPIPE on standard output into exit
status 1 for every command; these tests hold each command that prints a lot to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

COMMANDS = [
    ("experiment", "list"),
    ("experiment", "list", "--json"),
    ("experiment", "status", "written", "--json"),
    ("monitor", "--once"),
    ("monitor", "--once", "--json"),
    ("query", "SELECT * FROM turns"),
    ("query", "SELECT * FROM turns", "--format", "csv"),
    ("query", "SELECT * FROM turns", "--format", "json"),
    ("transcript", "written"),
    ("transcript", "written", "--format", "json"),
    ("load-db", "--all", "--force"),
]


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_every_printing_command_stops_quietly(
    output_root: Path, make_experiment: Any, cli_env: Any, buffered: bool
) -> None:
    make_experiment("written", experiment_id="exp_written", turns=40)
    env = cli_env(output_root)
    if buffered:  # as a user's shell runs it
        env.pop("PYTHONUNBUFFERED")
    assert env.get("PYTHONUNBUFFERED") == (None if buffered else "1")
    for args in COMMANDS:
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before the first write
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pidgin_cli", *args],
                env=env,
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            os.close(write_end)
        assert (result.returncode, result.stderr) == (1, ""), args
