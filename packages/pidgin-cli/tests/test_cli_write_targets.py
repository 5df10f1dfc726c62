"""``--to`` a place that cannot be written: one line naming it, exit 1, nothing half-written.

Every command that writes a file (query, transcript, report, export) fails the same way,
through ``_output.write_file`` (pidgin-load's ``export_database`` for export).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("plotly")  # pidgin report's extra; the dev environment has it


def _assert_one_line_naming(result: Any, target: Path, reason: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr == f"Error: cannot write {target}: {reason}\n"


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "parquet"])
def test_query_to_a_missing_directory(
    run_cli: Any, make_experiment: Any, tmp_path: Path, fmt: str
) -> None:
    make_experiment("written", experiment_id="exp_written")
    target = tmp_path / "absent" / f"result.{fmt}"
    result = run_cli("query", "SELECT 1 AS one", "--format", fmt, "--to", str(target))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"Error: cannot write {target}: ")
    assert result.stderr.count("\n") == 1
    assert "No such file or directory" in result.stderr
    assert not target.parent.exists()


def test_transcript_and_report_to_a_missing_directory(
    run_cli: Any, make_experiment: Any, tmp_path: Path
) -> None:
    make_experiment("written", experiment_id="exp_written")
    for command in ("transcript", "report"):
        target = tmp_path / "absent" / f"{command}.html"
        result = run_cli(command, "written", "--to", str(target))
        _assert_one_line_naming(result, target, "No such file or directory")
    assert not (tmp_path / "absent").exists()


def test_a_file_whose_parent_is_a_file(run_cli: Any, make_experiment: Any, tmp_path: Path) -> None:
    make_experiment("written", experiment_id="exp_written")
    plain = tmp_path / "plain.txt"
    plain.write_text("kept\n")
    target = plain / "out.md"
    _assert_one_line_naming(
        run_cli("transcript", "written", "--to", str(target)), target, "Not a directory"
    )
    assert plain.read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "out") == ["plain.txt"]


def test_export_to_a_place_that_cannot_be_a_directory(
    run_cli: Any, make_experiment: Any, tmp_path: Path
) -> None:
    make_experiment("written", experiment_id="exp_written")
    assert run_cli("load-db", "--all").returncode == 0
    plain = tmp_path / "plain.txt"
    plain.write_text("kept\n")
    target = plain / "exported"
    result = run_cli("export", "written", "--to", str(target))
    _assert_one_line_naming(result, target, "Not a directory")
    assert plain.read_text() == "kept\n"
