"""``experiment list`` and ``experiment status`` over real runs in every state."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RunCli = Callable[..., subprocess.CompletedProcess[str]]
ANSI = re.compile(r"\x1b[\[\]()#;?]*[0-9;]*[A-Za-z]?")

SUMMARY_KEYS = {
    "id",
    "name",
    "kind",
    "status",
    "directory",
    "progress",
    "created",
    "started",
    "last_event",
    "completed",
    "age_seconds",
    "elapsed_seconds",
    "eta_seconds",
    "turns_completed",
    "turns_planned",
    "convergence",
    "tokens",
    "cost_usd",
    "error_count",
    "load",
}
DETAIL_KEYS = SUMMARY_KEYS | {
    "format",
    "live",
    "end_reason",
    "error",
    "last_errors",
    "problems",
    "problem_count",
    "notes",
    "conversations",
}
CONVERSATION_KEYS = {
    "id",
    "status",
    "current_turn",
    "turns_completed",
    "max_turns",
    "agent_a_model",
    "agent_b_model",
    "agent_a_name",
    "agent_b_name",
    "convergence",
    "tokens",
    "started",
    "ended",
    "last_message_at",
    "end_reason",
    "error",
    "error_count",
    "log",
}


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _rows(stdout: str) -> dict[str, list[str]]:
    """Plain tables: columns split on two or more spaces, keyed by the first column."""
    lines = stdout.splitlines()
    return {cells[0]: cells for cells in (re.split(r"  +", line) for line in lines[1:])}


def test_list_completed_failed_and_interrupted(run_cli: RunCli, make_experiment: Any) -> None:
    make_experiment("all-good", experiment_id="exp_good", outcomes=["completed", "completed"])
    make_experiment(
        "one-failed", experiment_id="exp_onefail", outcomes=["completed", "failed", "completed"]
    )
    make_experiment("broke", experiment_id="exp_broke", outcomes=["failed"], status="failed")
    make_experiment("cut", experiment_id="exp_cut", outcomes=["completed", "interrupted"])
    make_experiment("short", experiment_id="exp_short", planned=4, outcomes=["completed"])

    result = run_cli("experiment", "list")
    assert result.returncode == 0, result.stderr
    assert not ANSI.search(result.stdout)
    header, *_ = result.stdout.splitlines()
    assert re.split(r"  +", header) == ["ID", "NAME", "STATUS", "PROGRESS", "AGE", "LOADED"]
    rows = _rows(result.stdout)
    assert rows["exp_good"][1:4] == ["all-good", "completed", "2/2"]
    assert rows["exp_onefail"][2:4] == ["completed", "3/3 (1 failed)"]
    assert rows["exp_broke"][2:4] == ["failed", "1/1 (1 failed)"]
    assert rows["exp_cut"][2:4] == ["interrupted", "2/2 (1 interrupted)"]
    assert rows["exp_short"][3] == "1/4 (3 not started)"
    assert {row[5] for row in rows.values()} == {"no"}
    # newest first
    assert list(rows) == ["exp_short", "exp_cut", "exp_broke", "exp_onefail", "exp_good"]

    document = _json(run_cli("experiment", "list", "--json"))
    assert document["schema_version"] == 1
    assert [e["id"] for e in document["experiments"]] == list(rows)
    for entry in document["experiments"]:
        assert set(entry) == SUMMARY_KEYS
        assert entry["load"]["state"] == "not_loaded"
        assert entry["started"].endswith("+00:00")
    by_id = {e["id"]: e for e in document["experiments"]}
    assert by_id["exp_onefail"]["progress"]["failed"] == 1
    assert by_id["exp_cut"]["status"] == "interrupted"
    assert by_id["exp_broke"]["status"] == "failed"

    only_failed = _json(run_cli("experiment", "list", "--json", "--status", "failed"))
    assert [e["id"] for e in only_failed["experiments"]] == ["exp_broke"]
    limited = _json(run_cli("experiment", "list", "--json", "-n", "2"))
    assert [e["id"] for e in limited["experiments"]] == ["exp_short", "exp_cut"]


def test_list_of_an_empty_or_missing_root(run_cli: RunCli, output_root: Path, cli_env: Any) -> None:
    result = run_cli("experiment", "list")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "No experiments under" in result.stderr
    missing = output_root / "nowhere"
    document = _json(run_cli("-o", str(missing), "experiment", "list", "--json"))
    assert document["experiments"] == []
    assert not missing.exists()  # watching never creates anything


def test_output_option_precedence(
    run_cli: RunCli, output_root: Path, tmp_path: Path, cli_env: Any
) -> None:
    from pidgin_events import Experiment

    other = tmp_path / "other"
    with Experiment.create(other, name="elsewhere", experiment_id="exp_elsewhere"):
        pass
    env = cli_env(output_root)  # PIDGIN_OUTPUT points at the empty root
    assert _json(run_cli("experiment", "list", "--json", env=env))["experiments"] == []
    for args in (
        ["-o", str(other), "experiment", "list", "--json"],
        ["experiment", "list", "--json", "-o", str(other)],
        ["-o", str(output_root), "experiment", "list", "--json", "--output", str(other)],
    ):
        document = _json(run_cli(*args, env=env))
        assert [e["id"] for e in document["experiments"]] == ["exp_elsewhere"], args


def test_list_all_includes_chats(run_cli: RunCli, output_root: Path, make_experiment: Any) -> None:
    from pidgin_events import Chat

    make_experiment("exp-one", experiment_id="exp_one")
    with Chat.create(output_root, agent_a="local:test", agent_b="local:test") as chat:
        chat.turn_start()
        chat.turn_complete(0.3)
    default = _json(run_cli("experiment", "list", "--json"))
    assert [e["kind"] for e in default["experiments"]] == ["experiment"]
    everything = _json(run_cli("experiment", "list", "--json", "--all"))
    assert sorted(e["kind"] for e in everything["experiments"]) == ["chat", "experiment"]


def test_status_in_detail(run_cli: RunCli, make_experiment: Any) -> None:
    make_experiment(
        "detailed",
        experiment_id="exp_detail",
        outcomes=["completed", "failed"],
        turns=3,
        max_turns=5,
        scores=(0.1, 0.4, 0.9),
        errors=1,
    )
    result = run_cli("experiment", "status", "detailed")
    assert result.returncode == 0, result.stderr
    assert not ANSI.search(result.stdout)
    facts = dict(
        re.split(r"  +", line, maxsplit=1)
        for line in result.stdout.split("\n\n")[0].splitlines()
        if re.search(r"  +", line)
    )
    assert facts["id"] == "exp_detail"
    assert facts["status"] == "completed"
    assert facts["progress"] == "2/2 (1 failed)"
    assert facts["database"] == "not loaded"
    assert "CONVERSATION" in result.stdout
    assert "local:test / local:echo" in result.stdout
    assert "3/5" in result.stdout
    assert "0.90" in result.stdout  # latest convergence
    assert "boom 0" in result.stdout  # recent errors
    assert "the model fell over" in result.stdout

    document = _json(run_cli("experiment", "status", "exp_det", "--json"))
    assert document["schema_version"] == 1
    experiment = document["experiment"]
    assert set(experiment) == DETAIL_KEYS
    assert experiment["progress"]["completed"] == 1
    assert experiment["progress"]["failed"] == 1
    assert len(experiment["conversations"]) == 2
    for conversation in experiment["conversations"]:
        assert set(conversation) == CONVERSATION_KEYS
        assert conversation["turns_completed"] == 3
        assert conversation["max_turns"] == 5
        assert conversation["convergence"]["trajectory"] == [0.1, 0.4, 0.9]
        assert conversation["convergence"]["latest"] == 0.9
        assert conversation["tokens"]["agent_a"]["prompt"] == 9
    statuses = sorted(c["status"] for c in experiment["conversations"])
    assert statuses == ["completed", "failed"]
    assert experiment["error_count"] >= 2
    assert any("boom" in e["message"] for e in experiment["last_errors"])


def test_status_of_a_chat(run_cli: RunCli, output_root: Path) -> None:
    from pidgin_events import Chat

    with Chat.create(output_root, agent_a="local:test", agent_b="silent:none") as chat:
        chat.turn_start()
        chat.message("agent_a", "hello")
        chat.turn_complete(0.5)
    (directory,) = (output_root / "chats").iterdir()
    document = _json(run_cli("experiment", "status", directory.name[:10], "--json"))
    assert document["experiment"]["kind"] == "chat"
    assert document["experiment"]["status"] == "completed"
    assert document["experiment"]["conversations"][0]["agent_b_model"] == "silent:none"


def test_running_then_kill_9_turns_interrupted(
    run_cli: RunCli, output_root: Path, live_writer: Any
) -> None:
    writer = live_writer(output_root, "live-one", planned=3)
    writer.send("conv 10", "turn 0.2", "turn 0.4")
    document = _json(run_cli("experiment", "list", "--json"))
    (entry,) = document["experiments"]
    assert entry["id"] == writer.experiment_id
    assert entry["status"] == "running"
    assert entry["progress"]["running"] == 1
    assert entry["load"]["state"] == "running"
    result = run_cli("experiment", "list")
    assert _rows(result.stdout)[writer.experiment_id][2:4] == ["running", "0/3 (1 running)"]
    status = _json(run_cli("experiment", "status", "live-one", "--json"))["experiment"]
    assert status["live"] is True
    assert status["conversations"][0]["status"] == "running"
    assert status["conversations"][0]["turns_completed"] == 2
    assert status["conversations"][0]["convergence"]["trajectory"] == [0.2, 0.4]

    os.kill(writer.process.pid, signal.SIGKILL)
    writer.process.wait(30)
    status = _json(run_cli("experiment", "status", "live-one", "--json"))["experiment"]
    assert status["status"] == "interrupted"
    assert status["conversations"][0]["status"] == "interrupted"
    assert status["conversations"][0]["turns_completed"] == 2
    result = run_cli("experiment", "list")
    assert _rows(result.stdout)[writer.experiment_id][2] == "interrupted"


def test_legacy_pidgin_ai_directories(run_cli: RunCli, legacy_root: Path) -> None:
    document = _json(run_cli("experiment", "list", "--json"))
    by_name = {e["name"]: e for e in document["experiments"]}
    assert set(by_name) == {"exp-5x20-full", "chat-silent-10turn"}
    full = by_name["exp-5x20-full"]
    assert full["status"] == "completed"
    assert full["progress"]["planned"] == 5
    assert full["progress"]["completed"] == 5
    detail = _json(run_cli("experiment", "status", "exp-5x20-full", "--json"))["experiment"]
    assert detail["format"] == "pidgin-ai-1.x"
    assert len(detail["conversations"]) == 5
    assert {c["turns_completed"] for c in detail["conversations"]} == {20}
    result = run_cli("experiment", "status", "chat-silent")
    assert result.returncode == 0, result.stderr
    assert "silent:none" in result.stdout


def test_watching_works_while_the_database_is_held(
    run_cli: RunCli, output_root: Path, make_experiment: Any, live_writer: Any
) -> None:
    make_experiment("done", experiment_id="exp_done")
    writer = live_writer(output_root, "busy", planned=1)
    writer.send("conv 5", "turn 0.3")
    db = output_root / "experiments" / "experiments.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "con.execute('CREATE TABLE IF NOT EXISTS held (x INTEGER)')\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        # The file really is locked for anyone else who would open it.
        probe = subprocess.run(
            [sys.executable, "-c", "import sys, duckdb; duckdb.connect(sys.argv[1])", str(db)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert probe.returncode != 0
        assert "lock" in probe.stderr.lower()
        listed = _json(run_cli("experiment", "list", "--json"))
        assert {e["id"] for e in listed["experiments"]} == {"exp_done", writer.experiment_id}
        assert _json(run_cli("experiment", "status", "busy", "--json"))["experiment"]["status"] == (
            "running"
        )
        frame = _json(run_cli("monitor", "--once", "--json"))
        assert [e["id"] for e in frame["running"]] == [writer.experiment_id]
        result = run_cli("monitor", "--once")
        assert result.returncode == 0, result.stderr
        assert writer.experiment_id in result.stdout
    finally:
        holder.kill()
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_no_color_and_pipes_have_no_escapes(
    run_cli: RunCli, output_root: Path, make_experiment: Any, cli_env: Any
) -> None:
    make_experiment("plain", experiment_id="exp_plain", errors=1)
    for env in (cli_env(output_root), cli_env(output_root, NO_COLOR="1", TERM="xterm")):
        for args in (
            ["experiment", "list"],
            ["experiment", "status", "plain"],
            ["monitor", "--once"],
        ):
            result = run_cli(*args, env=env)
            assert result.returncode == 0, result.stderr
            assert "\x1b" not in result.stdout, args
            assert "\x1b" not in result.stderr, args


def test_terminal_gets_rich_tables_and_no_color_removes_escapes(
    output_root: Path, make_experiment: Any, cli_env: Any, pty_process: Any
) -> None:
    make_experiment("shiny", experiment_id="exp_shiny", scores=(0.1, 0.5, 0.9))
    command = [sys.executable, "-m", "pidgin_cli", "experiment", "status", "shiny"]
    status, shown = pty_process(command, cli_env(output_root, TERM="xterm-256color")).wait()
    assert status == 0, shown
    assert "\x1b[" in shown  # colour on a terminal
    assert "▁▅█" in shown  # the convergence sparkline
    env = cli_env(output_root, TERM="xterm-256color", NO_COLOR="1")
    status, shown = pty_process(command, env).wait()
    assert status == 0, shown
    assert "\x1b" not in shown
    assert "▁▅█" in shown
    assert "exp_shiny" in shown
