"""The results as Markdown (for people, linked from the README) and JSON (for tools)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench._harness import Row, SectionResult

SCHEMA = 1
HEADER = ("figure", "ours", "baseline", "baseline value", "ratio", "target", "met")


def machine_info(repo: Path) -> dict[str, Any]:
    """What the figures were measured on: they mean nothing without it."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }
    for dist in ("orjson", "duckdb", "click", "rich"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = None
    info["git_commit"] = _git(repo, "rev-parse", "--short", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no", "packages")
    info["git_packages_dirty"] = bool(status)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30), 1)
    except (ValueError, OSError, AttributeError):
        return None


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _met(row: Row) -> str:
    if not row.target:
        return ""
    if row.met is None:
        return "not measured"
    return "met" if row.met else "**NOT MET**"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row_cells(row: Row) -> list[str]:
    return [
        row.figure,
        row.ours.text() if row.ours else "n/a",
        row.baseline,
        row.base.text() if row.base else ("n/a" if row.baseline else ""),
        row.ratio_text,
        row.target,
        _met(row),
    ]


def table(rows: list[Row], header: tuple[str, ...] = HEADER) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in _row_cells(row)) + " |")
    return lines


def markdown(run: Mapping[str, Any], sections: Mapping[str, SectionResult]) -> str:
    machine = run["machine"]
    ram = f", {machine['ram_gib']} GiB RAM" if machine.get("ram_gib") else ""
    commit = machine.get("git_commit") or "unknown"
    if machine.get("git_packages_dirty"):
        commit += " (with uncommitted changes in packages/)"
    legacy = run.get("pidgin_ai") or {}
    lines = [
        "# Benchmarks",
        "",
        "Pidgin against `pidgin-ai` 1.1 and against the limits of the machine, all measured in "
        f"one run by `{run['command']}`.",
        "This file and `benchmarks.json` beside it are written by `tools/bench/run.py`; do not "
        "edit them by hand.",
        "",
        f"- **Date:** {run['finished_at']} ({run['mode']} run, {run['seconds'] / 60:.1f} min)",
        f"- **Machine:** {machine['cpu']}, {machine['logical_cores']} logical cores{ram}; "
        f"{machine['os']}",
        f"- **Python:** {machine['python']} ({machine['python_implementation']}); pidgin-ai "
        f"{legacy.get('version') or 'not available'}"
        + (f" on Python {legacy['python_version']}" if legacy.get("python_version") else ""),
        f"- **Code:** commit {commit}; orjson {machine.get('orjson')}, "
        f"duckdb {machine.get('duckdb')}",
        f"- **Load average** at start / end: {run.get('load_start')} / {run.get('load_end')} "
        "(a shared machine: compare ratios, not absolute figures)",
        "",
        "Every figure is the median of all its runs (the count is in `benchmarks.json`). "
        "Contenders run in alternating rounds (ours, baseline, ours, baseline, ...), each in a "
        "fresh process, so that the machine's noise falls on both. *ratio* says how ours "
        "compares with the baseline on the same row.",
        "",
    ]
    if legacy.get("reason"):
        lines += [f"pidgin-ai comparisons were skipped: {legacy['reason']}.", ""]
    targets = [row for result in sections.values() for row in result.rows if row.target]
    if targets:
        met = sum(1 for row in targets if row.met)
        lines += [
            "## Targets",
            "",
            f"{met} of {len(targets)} targets met.",
            "",
            "| section | figure | ours | against | ratio | target | met |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in targets:
            against = f"{row.baseline}: {row.base.text()}" if row.base else (row.baseline or "")
            cells = [
                row.section,
                row.figure,
                row.ours.text() if row.ours else "n/a",
                against,
                row.ratio_text,
                row.target,
                _met(row),
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    for name, result in sections.items():
        lines += [f"## {name}", ""]
        if result.rows:
            lines += table(result.rows)
            lines.append("")
        notes = result.notes + [f"{row.figure}: {row.note}" for row in result.rows if row.note]
        for note in notes:
            lines.append(f"- {_cell(note)}")
        if notes:
            lines.append("")
        lines += [f"*Section time: {result.seconds:.0f} s.*", ""]
    return "\n".join(lines)


def document(run: Mapping[str, Any], sections: Mapping[str, SectionResult]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        **run,
        "sections": {
            name: {
                "seconds": round(result.seconds, 1),
                "notes": result.notes,
                "rows": [row.as_json() for row in result.rows],
            }
            for name, result in sections.items()
        },
        "targets": [
            row.as_json() for result in sections.values() for row in result.rows if row.target
        ],
    }


def write(
    output: Path, run: Mapping[str, Any], sections: Mapping[str, SectionResult]
) -> tuple[Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    md = output / "benchmarks.md"
    js = output / "benchmarks.json"
    md.write_text(markdown(run, sections))
    js.write_text(json.dumps(document(run, sections), indent=1) + "\n")
    return md, js


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
