"""What the fault suite tried and what came of it, gathered into ``docs/fault-table.md``.

Each test asks the ``fault_log`` fixture for one row per scenario it drives, and fills in
how many times it ran the fault, how many events the writers acknowledged, how many were
read back afterwards and a one-line outcome. Rows travel to the controlling process as
``user_properties`` of the test report (which pytest-xdist forwards from its workers), so
the table is written once, by whichever process sees every report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parent.parent
TABLE_PATH = REPO / "docs" / "fault-table.md"
TABLE_ENV = "PIDGIN_WRITE_FAULT_TABLE"
PROPERTY = "pidgin_fault_rows"
_DATA_MARK = "<!-- fault-table-data "

__all__ = [
    "PROPERTY",
    "REPO",
    "TABLE_ENV",
    "TABLE_PATH",
    "FaultLog",
    "FaultRow",
    "PythonProcesses",
    "RunCommand",
    "TableWriter",
    "run_module",
    "tree_snapshot",
]


@dataclass
class FaultRow:
    """One scenario of one test: filled in by the test as it goes."""

    scenario: str
    variant: str = "default"
    runs: int = 0
    written: int | None = None
    """Events the writers acknowledged (their ``emit`` returned), or good events planted."""
    recovered: int | None = None
    """Of those, how many were read back afterwards."""
    outcome: str = ""
    nodeid: str = ""
    line: int = 0
    """Where the test is defined, so that each slow variant follows its default one."""
    result: str = ""

    @property
    def lost(self) -> int | None:
        if self.written is None or self.recovered is None:
            return None
        return self.written - self.recovered

    def add(
        self, *, written: int | None = None, recovered: int | None = None, runs: int = 1
    ) -> None:
        """Count ``runs`` more repetitions of the fault (events: None when none are involved)."""
        self.runs += runs
        if written is not None:
            self.written = (self.written or 0) + written
        if recovered is not None:
            self.recovered = (self.recovered or 0) + recovered


@dataclass
class FaultLog:
    """The rows of one test; the fixture ships them to the report at teardown."""

    nodeid: str
    variant: str
    rows: list[FaultRow] = field(default_factory=list)

    def row(self, scenario: str) -> FaultRow:
        entry = FaultRow(scenario=scenario, variant=self.variant, nodeid=self.nodeid)
        self.rows.append(entry)
        return entry

    def as_property(self) -> tuple[str, str]:
        return PROPERTY, json.dumps([asdict(row) for row in self.rows])


def rows_from_property(value: object) -> list[FaultRow]:
    if not isinstance(value, str):
        return []
    return [FaultRow(**item) for item in json.loads(value)]


class TableWriter:
    """Collects rows and results from reports and writes the markdown table."""

    def __init__(self) -> None:
        self.rows: dict[str, list[FaultRow]] = {}
        self.results: dict[str, str] = {}
        self.locations: dict[str, tuple[str, int]] = {}

    def add_report(
        self,
        nodeid: str,
        *,
        when: str,
        outcome: str,
        location: tuple[str, int | None, str],
        properties: Iterable[tuple[str, object]],
        xfail_reason: str | None,
    ) -> None:
        self.locations[nodeid] = (location[0], location[1] or 0)
        for name, value in properties:
            if name == PROPERTY:
                self.rows[nodeid] = rows_from_property(value)
        if xfail_reason is not None:
            self.results[nodeid] = f"xfail: {xfail_reason}"
        elif outcome == "failed":
            self.results[nodeid] = "FAILED" if when == "call" else f"FAILED ({when})"
        elif when == "call" and outcome == "passed" and nodeid not in self.results:
            self.results[nodeid] = "passed"
        elif outcome == "skipped" and nodeid not in self.results:
            self.results[nodeid] = "skipped"

    def session_rows(self) -> list[FaultRow]:
        rows: list[FaultRow] = []
        for nodeid, produced in self.rows.items():
            for row in produced:
                row.result = self.results.get(nodeid, "unknown")
                row.line = self.locations.get(nodeid, ("", 0))[1]
                rows.append(row)
        return rows

    def write(self, path: Path, command: str) -> Path:
        """Write the table, keeping earlier rows of tests this session did not run.

        CI runs the fast and the slow variants as two sessions; each keeps the other's rows.
        """
        fresh = self.session_rows()
        ran = {row.nodeid for row in fresh}
        kept = [row for row in _previous_rows(path) if row.nodeid not in ran and _still_exists(row)]
        rows = _ordered(kept + fresh)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_table(rows, command), encoding="utf-8")
        return path


MODULE_ORDER = (
    "test_faults_writer",
    "test_faults_load",
    "test_faults_cli",
    "test_hostile_logs",
    "test_hostile_ids",
    "test_hostile_permissions",
)
"""The table's sections: events, loader, command line, then hostile input."""


def _ordered(rows: Sequence[FaultRow]) -> list[FaultRow]:
    def key(row: FaultRow) -> tuple[int, str, int, str]:
        module = row.nodeid.split("::", 1)[0]
        group = next((i for i, name in enumerate(MODULE_ORDER) if name in module), 99)
        return group, module, row.line, row.nodeid

    # sorted() is stable: the rows of one test keep the order the test produced them in.
    return sorted(rows, key=key)


def _previous_rows(path: Path) -> list[FaultRow]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    start = text.find(_DATA_MARK)
    if start < 0:
        return []
    end = text.find(" -->", start)
    try:
        return [FaultRow(**item) for item in json.loads(text[start + len(_DATA_MARK) : end])]
    except (ValueError, TypeError):
        return []


def _still_exists(row: FaultRow) -> bool:
    module, _, name = row.nodeid.partition("::")
    function = re.sub(r"\[.*\]$", "", name)
    try:
        source = (REPO / module).read_text(encoding="utf-8")
    except OSError:
        return False
    return f"def {function}(" in source


def _cell(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_table(rows: Sequence[FaultRow], command: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    total_written = sum(row.written or 0 for row in rows)
    total_lost = sum(row.lost or 0 for row in rows)
    lines = [
        "# Fault table",
        "",
        "<!-- Generated by tests-integration (tests-integration/_faultlog.py); do not edit. -->",
        "",
        "What the integration suite (`tests-integration/test_faults_*.py`,",
        "`tests-integration/test_hostile_*.py`) does to Pidgin, and what survives it. Every",
        "row is a real scenario: real processes killed with SIGKILL, real files, a real",
        "full tmpfs, real DuckDB databases. No mocks.",
        "",
        "- **runs**: how many times the fault was applied (kills, processes, inputs tried).",
        "- **written**: events the writers acknowledged (their `emit` returned), or good",
        "  events planted around the bad input.",
        "- **recovered**: of those, events read back afterwards (by the reader, the state",
        "  builder or the loader, as the outcome says).",
        "- **lost**: written minus recovered; the suite fails if it is ever above 0.",
        "- **variant**: `default` runs in every CI run; `slow` is the long variant",
        "  (`pytest -m slow`), run by `.ci/run` in its own step.",
        "- **result**: the pytest result of the test that produced the row; `xfail` rows",
        "  are known bugs in a package, listed under the table.",
        "",
        "Regenerate it with both variants in one session (each session keeps the rows of",
        "tests it did not run):",
        "",
        "```sh",
        f'{TABLE_ENV}=1 python -m pytest tests-integration -m "slow or not slow" -n 2',
        "```",
        "",
        f"Last written {stamp} by `{command}`.",
        f"Totals: {len(rows)} scenarios, {total_written:,} events written, {total_lost:,} lost.",
        "",
        "| scenario | variant | runs | written | recovered | lost | outcome | result |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    bugs: dict[str, int] = {}
    for row in rows:
        result = row.result
        if result.startswith("xfail: "):
            number = bugs.setdefault(result.removeprefix("xfail: "), len(bugs) + 1)
            result = f"xfail (known bug {number})"
        cells = [
            row.scenario,
            row.variant,
            row.runs,
            row.written,
            row.recovered,
            row.lost,
            row.outcome,
            result,
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    if bugs:
        lines += ["", "## Known bugs", ""]
        lines += ["Each `xfail` row is a strict expected failure: it turns red when fixed.", ""]
        lines += [f"{number}. {reason}" for reason, number in bugs.items()]
    data = json.dumps([asdict(row) for row in rows], ensure_ascii=True)
    lines += ["", f"{_DATA_MARK}{data} -->", ""]
    return "\n".join(lines)


# --- small helpers the fault tests share ------------------------------------------------


RunCommand = Callable[..., "subprocess.CompletedProcess[str]"]
"""``run(*args, timeout=120, **env)``: a ``pidgin`` or ``pidgin-load`` subprocess."""


class PythonProcesses(Protocol):
    """The root conftest's ``python`` fixture: real Python subprocesses."""

    def start(self, code: str, *args: str) -> subprocess.Popen[bytes]: ...

    def run(
        self, code: str, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[bytes]: ...


def run_module(
    module: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module ARGS`` in a real subprocess with this import path."""
    base = dict(os.environ if env is None else env)
    base["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=base,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
        input=stdin,
    )


def tree_snapshot(root: Path, *, skip: Path | None = None) -> dict[str, tuple[int, int, str]]:
    """Every path under ``root`` (not following symlinks) with its mode, size and target.

    ``skip`` is a subtree that is allowed to change (the output root itself).
    """
    snapshot: dict[str, tuple[int, int, str]] = {}
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(directory)
        if skip is not None and (here == skip or skip in here.parents):
            dirnames[:] = []
            continue
        for name in [*dirnames, *filenames]:
            path = here / name
            if skip is not None and path == skip:
                continue
            info = path.lstat()
            target = os.readlink(path) if path.is_symlink() else ""
            snapshot[str(path.relative_to(root))] = (info.st_mode, info.st_size, target)
    return snapshot
