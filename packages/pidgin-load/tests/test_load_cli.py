"""The ``pidgin-load`` command: exit status, human and JSON output, light imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pidgin_events as pe
import pidgin_load as pl


def test_help_documents_the_databases(run_cli: Any) -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for text in ("EXP_DIR", "--all ROOT", "--db PATH", "--force", "--json", pl.CHATS_DB_ENV):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give one or more EXP_DIR arguments, or --all ROOT"),
        (("--all", "."), None),  # combined with an EXP_DIR below
        (("/no/such/dir",), "argument EXP_DIR: /no/such/dir: no such directory"),
        (("--all", "/no/such/root"), "argument --all: /no/such/root: no such directory"),
        (("--bogus",), "unrecognized arguments: --bogus"),
        ((".", "--lock-timeout", "-1"), "must not be negative"),
        ((".", "--allow-empty"), "argument --allow-empty: goes with --all ROOT"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, run_cli: Any, args: tuple[str, ...], message: str | None
) -> None:
    if message is None:
        args, message = (str(tmp_path), *args), "not both"
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_load_then_skip_with_exit_0(tmp_path: Path, write_experiment: Any, run_cli: Any) -> None:
    directory = write_experiment(tmp_path, experiment_id="exp_cli")
    db = tmp_path / "db.duckdb"

    first = run_cli(directory, "--db", db)
    second = run_cli(directory, "--db", db)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("loaded   exp_cli  loaded: ")
    assert "1 loaded, 0 skipped, 0 failed" in first.stdout
    assert second.returncode == 0
    assert second.stdout.startswith("skipped  exp_cli  unchanged since its load at ")
    assert (directory / pe.LOADED_MARKER).exists()


def test_json_summary_is_machine_readable(
    tmp_path: Path, write_experiment: Any, run_cli: Any
) -> None:
    good = write_experiment(tmp_path, experiment_id="exp_json")
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    db = tmp_path / "db.duckdb"

    result = run_cli(good, not_a_run, "--db", db, "--json")

    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["ok"] is False
    assert [entry["experiment_id"] for entry in summary["loaded"]] == ["exp_json"]
    assert summary["loaded"][0]["db_path"] == str(db)
    assert summary["loaded"][0]["run_dir"] == str(good)
    (failed,) = summary["failed"]
    assert failed["run_dir"] == str(not_a_run)
    assert "not a Pidgin run directory" in failed["reason"]
    assert summary["rows"]["conversations"] == 2
    assert summary["rows"]["events"] > 0
    assert set(summary) >= {
        "loaded",
        "skipped",
        "stale",
        "failed",
        "rows",
        "bad_lines",
        "unknown_events",
        "seconds",
        "warnings",
        "ok",
    }
    assert isinstance(summary["seconds"], float)

    again = run_cli(good, "--db", db, "--json", "--force")
    assert again.returncode == 0
    assert json.loads(again.stdout)["ok"] is True


def test_all_root_loads_experiments_and_chats(
    tmp_path: Path, write_experiment: Any, run_cli: Any, counts: Any
) -> None:
    write_experiment(tmp_path, experiment_id="exp_all")
    with pe.Chat.create(tmp_path, agent_a="local:test", agent_b="local:echo") as chat:
        chat.turn_start()
        chat.turn_complete(0.1)

    without = run_cli("--all", tmp_path, "--no-chats", "--json")
    everything = run_cli("--all", tmp_path, "--json")

    assert without.returncode == 0
    assert [e["experiment_id"] for e in json.loads(without.stdout)["loaded"]] == ["exp_all"]
    loaded = json.loads(everything.stdout)
    assert [e["experiment_id"] for e in loaded["loaded"]] == [chat.directory.name]
    assert [e["experiment_id"] for e in loaded["skipped"]] == ["exp_all"]
    assert counts(pl.chats_db(), chat.directory.name)["turns"] == 1


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, pidgin_load, pidgin_load._cli; "
        "print(sorted(m for m in ('duckdb', 'click', 'rich') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_progress_is_one_rewritten_line_on_a_terminal(
    tmp_path: Path, write_experiment: Any
) -> None:
    import os
    import pty

    write_experiment(tmp_path, experiment_id="exp_tty1")
    write_experiment(tmp_path, experiment_id="exp_tty2")
    terminal, child_side = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "pidgin_load", "--all", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=child_side,
        text=True,
    )
    os.close(child_side)
    seen = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    out, _ = process.communicate(timeout=120)
    os.close(terminal)
    assert process.returncode == 0
    assert b"\r\x1b[K[1/2] exp_tty1" in seen
    assert b"\r\x1b[K[2/2] exp_tty2" in seen
    assert seen.endswith(b"\r\x1b[K")  # the line is cleared before the summary
    assert "2 loaded" in out
    assert "\x1b" not in out  # stdout is not a terminal: no escape codes there


def test_version_names_the_installed_distribution(run_cli: Any) -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"pidgin-load {pl.__version__}\n"


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("root", None),  # an output root with nothing in it yet
        ("root/experiments", "the output root is probably {root}"),  # one level too deep
        ("root/experiments/exp_deep", "{run} is a run itself, not an output root"),
        (".", "the output root is probably {root}"),  # one level too high
    ],
)
def test_all_on_a_root_without_runs_fails_unless_allowed(
    tmp_path: Path, write_experiment: Any, run_cli: Any, given: str, hint: str | None
) -> None:
    root = tmp_path / "root"
    if given == "root":
        (root / "experiments").mkdir(parents=True)
        run = None
    else:
        run = write_experiment(root, experiment_id="exp_deep")
    directory = (tmp_path / given).absolute()
    db = tmp_path / "db.duckdb"

    refused = run_cli("--all", directory, "--db", db)
    allowed = run_cli("--all", directory, "--db", db, "--allow-empty", "--json")

    assert refused.returncode == 1
    assert "0 loaded, 0 skipped, 0 failed" in refused.stdout
    warning = f"warning: no runs found under {directory}"
    assert warning in refused.stderr
    assert "pass --allow-empty if that is expected" in refused.stderr
    if hint is not None:
        assert hint.format(root=root, run=run) in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert warning in allowed.stderr
    assert json.loads(allowed.stdout)["loaded"] == []
    assert not db.exists()  # nothing was there to load: no database is made


def _into_a_closed_pipe(*args: str | Path, buffered: bool) -> subprocess.CompletedProcess[str]:
    """``python -m pidgin_load ARGS`` writing into a pipe nobody reads (``... | head`` done)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "pidgin_load", *map(str, args)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("form", [(), ("--json",)], ids=["human", "json"])
def test_a_reader_that_went_away_stops_it_quietly(
    tmp_path: Path, write_experiment: Any, query: Any, form: tuple[str, ...], buffered: bool
) -> None:
    root = tmp_path / "root"
    first = write_experiment(root, experiment_id="exp_one")
    write_experiment(root, experiment_id="exp_two")
    db = tmp_path / "db.duckdb"

    by_directory = _into_a_closed_pipe(first, "--db", db, *form, buffered=buffered)
    everything = _into_a_closed_pipe("--all", root, "--db", db, *form, buffered=buffered)

    for result in (by_directory, everything):
        assert (result.returncode, result.stderr) == (1, "")  # no BrokenPipeError traceback
    # what was loaded before the output failed stays loaded
    assert {row[0] for row in query(db, "SELECT experiment_id FROM experiments")} == {
        "exp_one",
        "exp_two",
    }
