"""The benchmark suite (tools/bench) runs end to end on tiny data and writes sound results.

Benchmarks never run inside the test suite and nothing here looks at a timing: this only
proves that ``tools/bench/run.py --quick`` still works against the current code, so the
suite cannot rot silently between full runs. It needs no network and nothing outside the
clone: the work directory is the test's own, so quick mode finds no pidgin-ai venv there and
never installs one; every pidgin-ai comparison must then say why it was not measured.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "tools" / "bench" / "run.py"
SECTIONS = (
    "writer", "imports", "state", "load", "analysis", "cli", "size", "memory", "serve", "providers",
)  # fmt: skip


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def _docs_state() -> dict[str, float]:
    docs = REPO / "docs"
    return {
        name: (docs / name).stat().st_mtime_ns
        for name in ("benchmarks.md", "benchmarks.json")
        if (docs / name).exists()
    }


def test_quick_run_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(RUN),
        "--quick",
        "--work",
        str(tmp_path / "work"),
        "--output",
        str(out),
    ]
    docs_before = _docs_state()

    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=900, check=False)

    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert _docs_state() == docs_before, "a quick run must never overwrite docs/benchmarks.*"
    document = json.loads((out / "benchmarks.json").read_text())
    assert document["mode"] == "quick"
    assert list(document["sections"]) == list(SECTIONS)
    for name, section in document["sections"].items():
        rows = section["rows"]
        assert rows, f"section {name} produced no rows"
        if name != "cli" or importlib.util.find_spec("pidgin_cli") is not None:
            assert any(row["ours"] is not None for row in rows), f"section {name} measured nothing"
        for row in rows:
            assert "section failed" not in (row["note"] or ""), row
            if row["ours"] is not None:
                assert row["ours"]["runs"] >= 1
                assert isinstance(row["ours"]["value"], float)
    for row in document["targets"]:
        assert row["met"] in (True, False, None)
        if row["met"] is None:
            assert row["note"], f"a target not measured must say why: {row}"
    markdown = (out / "benchmarks.md").read_text()
    assert markdown.startswith("# Benchmarks")
    for name in SECTIONS:
        assert f"\n## {name}\n" in markdown
    assert "| figure | ours | baseline | baseline value | ratio | target | met |" in markdown
    reason = document["pidgin_ai"]["reason"]
    assert "quick mode never installs pidgin-ai" in reason
    assert "pidgin-ai comparisons were skipped" in markdown
    assert "pidgin-ai comparisons skipped" in proc.stdout


def test_unknown_section_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", "writer,nonsense", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown section(s) nonsense" in proc.stderr


def test_only_runs_the_named_sections(tmp_path: Path) -> None:
    out = tmp_path / "out"
    section = "writer"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--no-pidgin-ai",
            "--only",
            section,
            "--work",
            str(tmp_path / "work"),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = json.loads((out / "benchmarks.json").read_text())
    assert list(document["sections"]) == [section]
    assert document["pidgin_ai"]["reason"] == "disabled with --no-pidgin-ai"


def test_the_benchmarks_compare_on_the_fixtures_the_tests_read(legacy_fixtures: Path) -> None:
    code = "from bench._setup import FIXTURES; print(FIXTURES)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(_env(), PYTHONPATH=os.pathsep.join([str(REPO / "tools"), *sys.path])),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) / "experiments" == legacy_fixtures
