"""``experiment attach`` and ``monitor`` against experiments written live by other processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _pidgin(root: Path, cli_env: Any, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pidgin_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(root),
    )


def _readline(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, "the process ended before printing a line"
    return line


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_attach_follows_until_the_writer_finishes(
    output_root: Path, cli_env: Any, live_writer: Any
) -> None:
    writer = live_writer(output_root, "followed", planned=2)
    writer.send("conv 3", "turn 0.1")
    attach = _pidgin(output_root, cli_env, "experiment", "attach", "followed")
    try:
        assert _readline(attach).startswith(f"attached to {writer.experiment_id} (followed)")
        first = _readline(attach)
        assert "running" in first
        assert "turns 1/3" in first
        writer.send("turn 0.5", "turn 0.9", "endconv")
        writer.send("conv 3", "turn 0.3", "endconv")
        writer.finish()
        status, out, err = _finish(attach)
    finally:
        attach.kill()
    assert status == 0, err
    assert "convergence 0.90" in out
    assert f"{writer.experiment_id} completed: 2/2" in out
    assert f"pidgin experiment status {writer.experiment_id}" in out


def test_attach_ctrl_c_detaches_and_leaves_the_writer_running(
    output_root: Path, cli_env: Any, live_writer: Any, run_cli: RunCli
) -> None:
    writer = live_writer(output_root, "detached", planned=1)
    writer.send("conv 10", "turn 0.2")
    attach = _pidgin(output_root, cli_env, "experiment", "attach", writer.experiment_id[:8])
    try:
        assert _readline(attach).startswith("attached to")
        attach.send_signal(signal.SIGINT)
        status, _out, err = _finish(attach)
    finally:
        attach.kill()
    assert status == 0, err
    assert "Detached from" in err
    assert f"pidgin experiment attach {writer.experiment_id}" in err
    assert f"pidgin experiment stop {writer.experiment_id}" in err
    assert "Traceback" not in err
    assert writer.process.poll() is None  # the experiment was not stopped
    writer.send("turn 0.4")
    document = json.loads(run_cli("experiment", "status", "detached", "--json").stdout)
    assert document["experiment"]["status"] == "running"
    assert document["experiment"]["conversations"][0]["turns_completed"] == 2
    writer.finish()


def test_attach_to_finished_runs_reports_their_outcome(
    run_cli: RunCli, make_experiment: Any
) -> None:
    make_experiment("fine", experiment_id="exp_fine")
    make_experiment("broken", experiment_id="exp_broken", outcomes=["failed"], status="failed")
    result = run_cli("experiment", "attach", "fine")
    assert result.returncode == 0, result.stderr
    assert "exp_fine completed: 1/1" in result.stdout
    result = run_cli("experiment", "attach", "broken")
    assert result.returncode == 1
    assert "exp_broken failed" in result.stdout


def test_attach_to_a_run_killed_with_sigkill_ends_interrupted(
    output_root: Path, cli_env: Any, live_writer: Any
) -> None:
    writer = live_writer(output_root, "doomed", planned=1)
    writer.send("conv 10", "turn 0.2")
    attach = _pidgin(output_root, cli_env, "experiment", "attach", "doomed")
    try:
        assert _readline(attach).startswith("attached to")
        os.kill(writer.process.pid, signal.SIGKILL)
        writer.process.wait(30)
        status, out, _err = _finish(attach)
    finally:
        attach.kill()
    assert status == 1
    assert f"{writer.experiment_id} interrupted" in out


def test_attach_experiment_waits_for_a_run_that_is_about_to_start(
    output_root: Path, cli_env: Any, live_writer: Any
) -> None:
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from pidgin_cli import attach_experiment
        sys.exit(attach_experiment(Path(sys.argv[1]), sys.argv[2]))
        """
    )
    attach = subprocess.Popen(
        [sys.executable, "-c", code, str(output_root), "exp_later"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(output_root),
    )
    try:
        writer = live_writer(output_root, "later", planned=1, experiment_id="exp_later")
        writer.send("conv 2", "turn 0.5", "turn 0.6", "endconv")
        writer.finish()
        status, out, err = _finish(attach)
    finally:
        attach.kill()
    assert status == 0, err
    assert "exp_later completed: 1/1" in out


def test_attach_on_a_terminal_draws_bars_and_ends(
    output_root: Path, cli_env: Any, live_writer: Any, pty_process: Any
) -> None:
    writer = live_writer(output_root, "drawn", planned=1)
    writer.send("conv 4", "turn 0.2")
    env = cli_env(output_root, TERM="xterm-256color")
    attach = pty_process([sys.executable, "-m", "pidgin_cli", "experiment", "attach", "drawn"], env)
    attach.read_until("Ctrl-C detaches")
    writer.send("turn 0.4", "turn 0.6", "turn 0.8", "endconv")
    writer.finish()
    status, shown = attach.wait()
    assert status == 0, shown
    assert "━" in shown  # rich progress bars
    assert "4/4" in shown
    assert f"{writer.experiment_id} completed" in shown


def test_monitor_once_plain_and_json(
    run_cli: RunCli, output_root: Path, make_experiment: Any, live_writer: Any
) -> None:
    make_experiment("finished-ok", experiment_id="exp_finished", errors=1)
    writer = live_writer(output_root, "in-flight", planned=3)
    writer.send("conv 5", "turn 0.25", "error quota exceeded")

    result = run_cli("monitor", "--once")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    sections = result.stdout.split("\n\n")
    assert sections[0].startswith("pidgin monitor")
    assert "1 running" in sections[0]
    running, errors, finished = sections[1], sections[2], sections[3]
    assert running.startswith("RUNNING\nID")
    assert writer.experiment_id in running
    assert "0/3 (1 running)" in running
    assert errors.startswith("RECENT ERRORS")
    assert "quota exceeded" in errors
    assert "boom 0" in errors
    assert finished.startswith("RECENTLY FINISHED")
    assert "exp_finished" in finished

    document = json.loads(run_cli("monitor", "--once", "--json").stdout)
    assert set(document) == {
        "schema_version",
        "output_root",
        "generated_at",
        "running",
        "recent_errors",
        "recently_finished",
    }
    (running_entry,) = document["running"]
    assert running_entry["id"] == writer.experiment_id
    assert running_entry["active_conversations"][0]["turns_completed"] == 1
    assert [e["id"] for e in document["recently_finished"]] == ["exp_finished"]
    messages = [e["message"] for e in document["recent_errors"]]
    assert messages[0] == "quota exceeded"  # newest first
    assert "boom 0" in messages
    assert {e["run_id"] for e in document["recent_errors"]} == {
        writer.experiment_id,
        "exp_finished",
    }
    writer.finish()


def test_monitor_of_an_empty_root(run_cli: RunCli) -> None:
    result = run_cli("monitor", "--once")
    assert result.returncode == 0, result.stderr
    assert "RUNNING\n(none)" in result.stdout
    document = json.loads(run_cli("monitor", "--once", "--json").stdout)
    assert document["running"] == []


def test_monitor_json_needs_once(run_cli: RunCli) -> None:
    result = run_cli("monitor", "--json")
    assert result.returncode == 2
    assert "--json needs --once" in result.stderr


def test_monitor_keeps_refreshing_until_ctrl_c(
    output_root: Path, cli_env: Any, live_writer: Any
) -> None:
    writer = live_writer(output_root, "watched", planned=1)
    writer.send("conv 5", "turn 0.1")
    monitor = _pidgin(output_root, cli_env, "monitor", "--interval", "0.2")
    try:
        assert _readline(monitor).startswith("pidgin monitor")
        writer.send("turn 0.2", "endconv")
        writer.finish()
        # Frames keep coming; one of them shows the experiment finished.
        for _ in range(500):
            line = _readline(monitor)
            if line.startswith("RECENTLY FINISHED"):
                following = _readline(monitor)
                if following.startswith("ID"):
                    assert writer.experiment_id in _readline(monitor)
                    break
        else:
            raise AssertionError("the finished experiment never showed up")
        monitor.send_signal(signal.SIGINT)
        status, _out, err = _finish(monitor)
    finally:
        monitor.kill()
    assert status == 0, err
    assert "Traceback" not in err


def test_attach_reads_every_byte_once_however_often_it_refreshes(
    output_root: Path, live_writer: Any
) -> None:
    import threading

    from pidgin_cli._commands_watch import _attach
    from pidgin_state import StateBuilder

    writer = live_writer(output_root, "incremental", planned=2)
    writer.send("conv 30")
    builder = StateBuilder()
    outcome: list[int] = []
    thread = threading.Thread(
        target=lambda: outcome.append(_attach(writer.directory, 0.01, builder)), daemon=True
    )
    thread.start()
    for _ in range(30):
        writer.send("turn 0.5")
    writer.send("endconv", "conv 3", "turn 0.7", "endconv")
    writer.finish()
    thread.join(60)
    assert outcome == [0]
    logs = [path for path in writer.directory.iterdir() if path.suffix == ".jsonl"]
    assert len(logs) == 3
    # Many refreshes happened while the logs grew; each byte was still read only once.
    assert builder.bytes_read == sum(path.stat().st_size for path in logs)
