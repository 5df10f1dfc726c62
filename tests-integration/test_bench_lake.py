"""``tools/bench/run.py --only lake`` runs alone: measured where the lake extra is installed,
reported as not measurable (with the reason) elsewhere. Nothing here looks at a timing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "tools" / "bench" / "run.py"


def test_lake_section_runs_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--only",
            "lake",
            "--work",
            str(tmp_path / "work"),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = json.loads((out / "benchmarks.json").read_text())
    assert list(document["sections"]) == ["lake"]
    rows = document["sections"]["lake"]["rows"]
    if importlib.util.find_spec("duckdb_extension_ducklake") is None:
        (row,) = rows
        assert row["ours"] is None
        assert "not installed" in row["note"] or "DuckDB" in row["note"]
        return
    figures = [row["figure"] for row in rows]
    assert len(figures) == 3, rows
    assert all(row["ours"]["value"] > 0 and row["baseline_value"]["value"] > 0 for row in rows)
