"""The command line: ``pidgin --help``, ``pidgin experiment list``, ``pidgin monitor --once``.

Whole processes, timed from the outside in alternating rounds, against pidgin-ai 1.1's
``pidgin --help`` (its console script) and a bare interpreter start. Ours runs as
``python -m pidgin_cli`` (what the console script does, without the wrapper's own start).
``experiment list`` and ``monitor --once`` read an output root of 100 small experiments.
The target: ``pidgin --help`` in under 150 ms.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from bench._harness import SectionResult, absolute, command_rounds, compare, median, missing

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "cli"
HELP_LIMIT = 0.150


def _try(cmd: list[str], env: dict[str, str]) -> tuple[bool, str]:
    """Run once (warming caches); whether it worked, and its stdout or the error."""
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if proc.returncode != 0:
        return False, f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-400:]}"
    return True, proc.stdout


def run(ws: Workspace) -> SectionResult:
    result = SectionResult()
    root, count = ws.output_root_of_experiments()
    home = ws.scratch("cli-home")
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "NO_COLOR")}
    env = {**base, "HOME": str(home), "PIDGIN_OUTPUT": str(root), "COLUMNS": "120"}
    py = ws.python
    pidgin = [py, "-m", "pidgin_cli"]
    wanted = {
        "help": ([*pidgin, "--help"], "pidgin --help"),
        "list": ([*pidgin, "experiment", "list"], f"pidgin experiment list ({count} experiments)"),
        "monitor": ([*pidgin, "monitor", "--once"], f"pidgin monitor --once ({count} experiments)"),
    }
    script = Path(py).parent / "pidgin"
    if script.is_file() and os.access(script, os.X_OK):  # installed: what people type
        wanted["script_help"] = (
            [str(script), "--help"],
            "pidgin --help (installed console script)",
        )
    commands: list[tuple[str, list[str], dict[str, str]]] = [("bare", [py, "-c", "pass"], env)]
    unavailable: dict[str, str] = {}
    for key, (cmd, _) in wanted.items():
        ok, output = _try(cmd, env)
        if ok:
            commands.append((key, cmd, env))
        else:
            unavailable[key] = (
                f"not available: `python -m pidgin_cli {' '.join(cmd[3:])}` failed ({output})"
            )
    ok, listed = (
        _try([*pidgin, "experiment", "list", "--json"], env)
        if "list" not in unavailable
        else (False, "")
    )
    if ok:
        try:
            document = json.loads(listed)
            entries = (
                document
                if isinstance(document, list)
                else document.get("experiments", document.get("runs", []))
            )
            result.notes.append(
                f"`pidgin experiment list --json` lists {len(entries)} runs of the {count} made."
            )
        except (ValueError, AttributeError):
            pass
    legacy_cmd = ws.legacy_command()
    legacy_env = {
        k: v for k, v in ws.legacy_env.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    }
    if legacy_cmd is not None:
        ok, output = _try([*legacy_cmd, "--help"], legacy_env)
        if ok:
            commands.append(("legacy_help", [*legacy_cmd, "--help"], legacy_env))
        else:
            result.notes.append(f"pidgin-ai `pidgin --help` failed: {output}")
    else:
        result.notes.append(f"pidgin-ai not measured: {ws.legacy_reason}")
    rounds_count = 2 if ws.quick else 12
    ws.log(f"  {rounds_count} rounds of {len(commands)} commands")
    rounds = command_rounds(rounds_count, commands, ws.log)
    legacy_help = rounds.measure("legacy_help", "s")
    for key, (_, label) in wanted.items():
        if key in unavailable:
            target = "< 150 ms" if key in ("help", "script_help") else ""
            result.rows.append(missing(NAME, label, unavailable[key], target=target))
            continue
        measure = rounds.measure(key, "s")
        if key in ("help", "script_help"):
            result.rows.append(
                absolute(
                    NAME,
                    label,
                    measure,
                    limit=HELP_LIMIT,
                    target="< 150 ms",
                    baseline="pidgin-ai pidgin --help",
                    base=legacy_help,
                    note=rounds.error(key),
                )
            )
        else:
            result.rows.append(
                compare(
                    NAME,
                    label,
                    measure,
                    "pidgin-ai pidgin --help",
                    legacy_help,
                    how="faster",
                    note=rounds.error(key),
                )
            )
    if rounds.samples.get("bare"):
        result.notes.append(
            f"{rounds_count} alternating rounds; a bare `python -c pass` takes "
            f"{median(rounds.samples['bare']) * 1000:.1f} ms here: part of every figure above."
        )
    return result
