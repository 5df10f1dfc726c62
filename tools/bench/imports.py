"""Import cost for agent code: ``python -c "import pidgin_events"`` against a bare interpreter.

Also against ``import orjson`` (our one dependency: the floor) and pidgin-ai 1.1's
``import pidgin.core.events`` (what agent code pays today). Whole processes are timed, in
alternating rounds; the cost of an import is the median of its per-round difference to the
bare interpreter of the same Python. The target: at most 40 ms over a bare start.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from bench._harness import Measure, Row, SectionResult, command_rounds, compare, median

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "imports"
LIMIT = 0.040


def _added(samples: dict[str, list[float]], key: str, bare: str) -> Measure | None:
    """Per-round differences: both commands ran back to back in each round."""
    if key not in samples or bare not in samples:
        return None
    pairs = list(zip(samples[key], samples[bare], strict=False))
    return Measure.of([a - b for a, b in pairs], "s") if pairs else None


def _importtime(python: str, module: str, env: dict[str, str]) -> str:
    """The modules that cost the most, by ``-X importtime`` (self time, one run)."""
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    rows: list[tuple[int, str]] = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if (
            len(parts) == 3
            and parts[0].startswith("import time:")
            and parts[0].split(":")[1].strip().isdigit()
        ):
            rows.append((int(parts[0].split(":")[1]), parts[2].strip()))
    rows.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.1f} ms" for us, name in rows[:5])


def run(ws: Workspace) -> SectionResult:
    result = SectionResult()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    py = ws.python
    commands: list[tuple[str, list[str], dict[str, str]]] = [
        ("bare", [py, "-c", "pass"], env),
        ("orjson", [py, "-c", "import orjson"], env),
        ("pidgin_events", [py, "-c", "import pidgin_events"], env),
    ]
    legacy = ws.legacy_python()
    legacy_env = {
        k: v for k, v in ws.legacy_env.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    }
    if legacy is not None:
        commands += [
            ("legacy_bare", [legacy, "-c", "pass"], legacy_env),
            ("legacy_events", [legacy, "-c", "import pidgin.core.events"], legacy_env),
        ]
    else:
        result.notes.append(f"pidgin-ai not measured: {ws.legacy_reason}")
    for _, cmd, cmd_env in commands:  # warm the page cache and write bytecode first
        subprocess.run(cmd, env=cmd_env, capture_output=True, check=False)
    # Ours are cheap, so many rounds; pidgin-ai's take seconds each, so fewer. Each Python's
    # import cost is paired with its own bare start in the same round.
    ours_rounds, legacy_rounds = (3, 2) if ws.quick else (60, 12)
    ws.log(f"  {ours_rounds} rounds of our 3 commands, {legacy_rounds} of pidgin-ai's 2")
    rounds = command_rounds(ours_rounds, commands[:3], ws.log)
    if len(commands) > 3:
        theirs = command_rounds(legacy_rounds, commands[3:], ws.log)
        rounds.samples.update(theirs.samples)
        rounds.errors.update(theirs.errors)
    samples = rounds.samples
    added = _added(samples, "pidgin_events", "bare")
    bare = rounds.measure("bare", "s")
    row = Row(
        NAME,
        "import pidgin_events: time added to interpreter start",
        added,
        "bare interpreter: python -c pass",
        bare,
        target="<= +40 ms",
        note=rounds.error("pidgin_events", "bare"),
    )
    if added is not None:
        row.met = added.value <= LIMIT
        row.ratio_text = f"+{added.value * 1000:.1f} ms"
    result.rows.append(row)
    result.rows.append(
        compare(
            NAME,
            "import pidgin_events: time added",
            added,
            "import orjson: time added (the floor)",
            _added(samples, "orjson", "bare"),
            how="within",
        )
    )
    if legacy is not None:
        result.rows.append(
            compare(
                NAME,
                "python -c 'import pidgin_events' (whole process)",
                rounds.measure("pidgin_events", "s"),
                "pidgin-ai: python -c 'import pidgin.core.events'",
                rounds.measure("legacy_events", "s"),
                how="faster",
                note=rounds.error("legacy_events"),
            )
        )
        result.rows.append(
            compare(
                NAME,
                "import pidgin_events: time added",
                added,
                "pidgin-ai import pidgin.core.events: time added",
                _added(samples, "legacy_events", "legacy_bare"),
                how="faster",
            )
        )
    if samples.get("bare"):
        result.notes.append(
            f"{len(samples['bare'])} alternating rounds of ours"
            + (
                f", {len(samples['legacy_bare'])} of pidgin-ai's"
                if samples.get("legacy_bare")
                else ""
            )
            + "; bare interpreter start "
            f"{median(samples['bare']) * 1000:.1f} ms (ours)"
            + (
                f", {median(samples['legacy_bare']) * 1000:.1f} ms (pidgin-ai's venv)"
                if samples.get("legacy_bare")
                else ""
            )
            + "."
        )
    if ws.quick:
        return result
    top = _importtime(py, "orjson", env)
    if top:
        result.notes.append(
            f"orjson's own import pulls in datetime, uuid, enum and dataclasses: {top}."
        )
    top = _importtime(py, "pidgin_events", env)
    if top:
        result.notes.append(
            f"Largest self times under `-X importtime -c 'import pidgin_events'`: {top}."
        )
    if legacy is not None:
        top = _importtime(legacy, "pidgin.core.events", legacy_env)
        if top:
            result.notes.append(f"pidgin-ai's largest: {top}.")
    return result
