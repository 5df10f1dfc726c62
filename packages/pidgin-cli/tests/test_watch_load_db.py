"""``pidgin load-db`` and how ``list``/``status`` show what the loader did."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _loaded_column(run_cli: RunCli) -> dict[str, str]:
    result = run_cli("experiment", "list")
    assert result.returncode == 0, result.stderr
    rows = [re.split(r"  +", line) for line in result.stdout.splitlines()[1:]]
    return {row[0]: row[5] for row in rows}


def _db(root: Path) -> Path:
    return root / "experiments" / "experiments.duckdb"


def _experiment_ids(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return sorted(
            row[0] for row in con.execute("SELECT experiment_id FROM experiments").fetchall()
        )


@pytest.fixture
def held_database(output_root: Path) -> Iterator[Path]:
    """The experiments database, held open for writing by another process."""
    db = _db(output_root)
    db.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    yield db
    holder.kill()
    holder.wait(30)
    holder.stdout.close()


def test_load_all_then_skip_then_force(
    run_cli: RunCli, output_root: Path, make_experiment: Any
) -> None:
    make_experiment("first", experiment_id="exp_first")
    make_experiment("second", experiment_id="exp_second", outcomes=["completed", "failed"])
    assert _loaded_column(run_cli) == {"exp_first": "no", "exp_second": "no"}

    result = run_cli("load-db", "--all")
    assert result.returncode == 0, result.stderr
    assert "2 loaded" in result.stdout
    assert "rows: " in result.stdout
    assert _experiment_ids(_db(output_root)) == ["exp_first", "exp_second"]
    assert _loaded_column(run_cli) == {"exp_first": "yes", "exp_second": "yes"}
    status = json.loads(run_cli("experiment", "status", "first", "--json").stdout)
    load = status["experiment"]["load"]
    assert load["state"] == "loaded"
    assert Path(load["db_path"]).resolve() == _db(output_root).resolve()
    assert load["loaded_at"] is not None

    again = run_cli("load-db", "--all", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["ok"] is True
    assert summary["loaded"] == []
    assert len(summary["skipped"]) == 2

    forced = json.loads(run_cli("load-db", "first", "--force", "--json").stdout)
    assert [outcome["experiment_id"] for outcome in forced["loaded"]] == ["exp_first"]
    assert _experiment_ids(_db(output_root)) == ["exp_first", "exp_second"]


def test_load_by_ids_into_another_database(
    run_cli: RunCli, output_root: Path, tmp_path: Path, make_experiment: Any
) -> None:
    make_experiment("alpha", experiment_id="exp_alpha")
    make_experiment("beta", experiment_id="exp_beta")
    make_experiment("gamma", experiment_id="exp_gamma")
    other = tmp_path / "copy.duckdb"
    result = run_cli("load-db", "alpha", "exp_gam", "--db", str(other))
    assert result.returncode == 0, result.stderr
    assert _experiment_ids(other) == ["exp_alpha", "exp_gamma"]
    assert not _db(output_root).exists()


def test_no_metrics_loads_without_them_for_recompute_to_fill(
    run_cli: RunCli, output_root: Path, make_experiment: Any
) -> None:
    make_experiment("alpha", experiment_id="exp_alpha")
    assert run_cli("load-db", "alpha", "--no-metrics").returncode == 0
    db = _db(output_root)

    def counts() -> tuple[Any, ...] | None:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute(
                "SELECT (SELECT count(*) FROM turns), (SELECT count(*) FROM turn_metrics)"
            ).fetchone()

    turns, metrics = counts() or (0, 0)
    assert turns > 0
    assert metrics == 0
    both = run_cli("load-db", "--all", "--no-metrics", "--recompute-metrics")
    assert both.returncode == 2
    assert "not both" in both.stderr
    assert run_cli("load-db", "--all", "--recompute-metrics").returncode == 0
    assert counts() == (turns, turns)


def test_a_bad_id_loads_nothing(run_cli: RunCli, output_root: Path, make_experiment: Any) -> None:
    make_experiment("alpha", experiment_id="exp_alpha")
    result = run_cli("load-db", "alpha", "exp_nope")
    assert result.returncode == 1
    assert "no experiment or chat matches 'exp_nope'" in result.stderr
    assert not _db(output_root).exists()


def test_usage_errors(run_cli: RunCli) -> None:
    for args in (
        ["load-db"],
        ["load-db", "x", "--all"],
        ["load-db", "x", "--no-chats"],
        ["load-db", "x", "--allow-empty"],
    ):
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert "Usage:" in result.stderr


def test_load_all_on_a_root_without_runs_fails_unless_allowed(
    run_cli: RunCli, output_root: Path, make_experiment: Any
) -> None:
    make_experiment("deep", experiment_id="exp_deep")
    too_deep = output_root / "experiments"  # the folder of experiments, not the output root

    refused = run_cli("-o", str(too_deep), "load-db", "--all")
    allowed = run_cli("-o", str(too_deep), "load-db", "--all", "--allow-empty")

    assert refused.returncode == 1
    assert f"no runs found under {too_deep}" in refused.stderr
    assert f"the output root is probably {output_root}" in refused.stderr
    assert "pass --allow-empty if that is expected" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert "0 loaded, 0 skipped, 0 failed" in allowed.stdout
    assert not _db(output_root).exists()  # nothing was loaded anywhere


def test_running_experiment_is_refused_unless_forced(
    run_cli: RunCli, output_root: Path, live_writer: Any
) -> None:
    writer = live_writer(output_root, "busy", planned=1)
    writer.send("conv 5", "turn 0.5")
    result = run_cli("load-db", "busy")
    assert result.returncode == 1
    assert "still running" in result.stderr
    everything = json.loads(run_cli("load-db", "--all", "--json").stdout)
    assert everything["ok"] is True  # --all leaves running runs for later
    assert [Path(o["run_dir"]).name for o in everything["skipped"]] == [writer.experiment_id]
    forced = run_cli("load-db", "busy", "--force")
    assert forced.returncode == 0, forced.stderr
    writer.finish()


def test_locked_database_fails_clearly_and_list_shows_the_failure(
    run_cli: RunCli,
    output_root: Path,
    make_experiment: Any,
    held_database: Path,
    cli_env: Any,
) -> None:
    make_experiment("waiting", experiment_id="exp_waiting")
    env = cli_env(output_root, PIDGIN_LOAD_LOCK_TIMEOUT="0.5")
    result = run_cli("load-db", "waiting", env=env)
    assert result.returncode == 1
    assert str(held_database.name) in result.stderr
    assert "locked" in result.stderr
    assert "1 failed" in result.stdout
    assert _loaded_column(run_cli) == {"exp_waiting": "no"}

    # What the runner does after a failed automatic load: record why.
    from pidgin_load import record_load_failure

    record_load_failure(
        output_root / "experiments" / "exp_waiting", "database is locked", held_database
    )
    assert _loaded_column(run_cli) == {"exp_waiting": "failed: database is locked"}
    status = json.loads(run_cli("experiment", "status", "waiting", "--json").stdout)
    assert status["experiment"]["load"]["state"] == "failed"
    assert status["experiment"]["load"]["reason"] == "database is locked"
    plain = run_cli("experiment", "status", "waiting").stdout
    assert "load failed: database is locked" in plain
    assert "pidgin load-db exp_waiting" in plain


def test_failed_load_is_retried_by_load_all(
    run_cli: RunCli, output_root: Path, make_experiment: Any
) -> None:
    from pidgin_load import record_load_failure

    make_experiment("retry", experiment_id="exp_retry")
    directory = output_root / "experiments" / "exp_retry"
    record_load_failure(directory, "database is locked", _db(output_root))
    assert _loaded_column(run_cli) == {"exp_retry": "failed: database is locked"}
    result = run_cli("load-db", "--all")
    assert result.returncode == 0, result.stderr
    assert _loaded_column(run_cli) == {"exp_retry": "yes"}


def test_changed_after_load_shows_stale_and_reloads(
    run_cli: RunCli, output_root: Path, make_experiment: Any
) -> None:
    from pidgin_events import ErrorEvent, EventWriter

    make_experiment("changing", experiment_id="exp_changing")
    assert run_cli("load-db", "changing").returncode == 0
    assert _loaded_column(run_cli) == {"exp_changing": "yes"}
    directory = output_root / "experiments" / "exp_changing"
    (log,) = directory.glob("conv_*_events.jsonl")
    conversation_id = log.name.removesuffix("_events.jsonl")
    with EventWriter(log, experiment_id="exp_changing") as writer:
        writer.emit(
            ErrorEvent(conversation_id=conversation_id, error_type="Late", error_message="late")
        )
    assert _loaded_column(run_cli) == {"exp_changing": "stale"}
    summary = json.loads(run_cli("load-db", "--all", "--json").stdout)
    assert [o["experiment_id"] for o in summary["stale"]] == ["exp_changing"]
    assert _loaded_column(run_cli) == {"exp_changing": "yes"}


def test_legacy_directories_load(run_cli: RunCli, legacy_root: Path) -> None:
    result = run_cli("load-db", "--all", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert len(summary["loaded"]) == 2
    assert set(_loaded_column(run_cli).values()) == {"yes"}


def test_stale_is_the_loaders_verdict(
    run_cli: RunCli, output_root: Path, make_experiment: Any
) -> None:
    """Watchers and the loader agree: bookkeeping appended after a load is not a change, a
    log touched without a byte written is (the loader reloads it)."""
    from pidgin_events import EventWriter, PostProcessingCompleteEvent

    make_experiment("judged", experiment_id="exp_judged")
    directory = output_root / "experiments" / "exp_judged"
    assert run_cli("load-db", "judged").returncode == 0
    with EventWriter(directory / "experiment.jsonl", experiment_id="exp_judged") as writer:
        writer.emit(PostProcessingCompleteEvent(experiment_id="exp_judged", tasks_completed=()))
    assert _loaded_column(run_cli) == {"exp_judged": "yes"}
    load = json.loads(run_cli("experiment", "list", "--json").stdout)["experiments"][0]["load"]
    assert (load["state"], load["stale"], load["stale_reason"]) == ("loaded", False, None)
    summary = json.loads(run_cli("load-db", "--all", "--json").stdout)
    assert [o["experiment_id"] for o in summary["skipped"]] == ["exp_judged"]

    (log,) = directory.glob("conv_*_events.jsonl")
    info = log.stat()
    os.utime(log, ns=(info.st_atime_ns, info.st_mtime_ns + 2_000_000_000))
    assert _loaded_column(run_cli) == {"exp_judged": "stale"}
    status = json.loads(run_cli("experiment", "status", "judged", "--json").stdout)
    load = status["experiment"]["load"]
    assert (load["state"], load["stale"]) == ("stale", True)
    assert load["stale_reason"] == f"changed since its load: {log.name} was modified"
    shown = run_cli("experiment", "status", "judged").stdout
    assert f"{log.name} was modified" in shown
    assert re.search(r"reload with: \S*pidgin load-db exp_judged$", shown, flags=re.MULTILINE)
    summary = json.loads(run_cli("load-db", "--all", "--json").stdout)
    assert [o["experiment_id"] for o in summary["stale"]] == ["exp_judged"]
    assert _loaded_column(run_cli) == {"exp_judged": "yes"}
