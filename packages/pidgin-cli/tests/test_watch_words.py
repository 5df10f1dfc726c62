"""What the screens say: how each conversation ended, turns after a kill, counts in words."""

from __future__ import annotations

import io
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _rows(table: str, first: str) -> dict[str, list[str]]:
    """The rows of the plain table whose header starts with ``first``, by their first cell."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        cells = re.split(r"  +", line)
        rows[cells[0]] = cells
    return rows


def test_status_shows_how_each_conversation_ended(run_cli: RunCli, make_experiment: Any) -> None:
    converged = run_cli("run", "-a", "local:test", "-b", "local:test", "-t", "10",
                        "--convergence-threshold", "0.9", "-n", "converged", "-r", "2")  # fmt: skip
    assert converged.returncode == 0, converged.stderr
    make_experiment("mixed", outcomes=["completed", "failed", "interrupted"])
    reasons: set[str] = set()
    for name in ("converged", "mixed"):
        document = json.loads(run_cli("experiment", "status", name, "--json").stdout)
        shown = run_cli("experiment", "status", name)
        assert shown.returncode == 0, shown.stderr
        rows = _rows(shown.stdout, "CONVERSATION")
        conversations = document["experiment"]["conversations"]
        assert len(rows) == len(conversations)
        for conversation in conversations:
            status, reason = conversation["status"], conversation["end_reason"]
            expected = f"{status} ({reason})" if reason else status
            assert rows[conversation["id"]][1] == expected
            if reason:
                reasons.add(reason)
    assert "high_convergence" in reasons
    assert len(reasons) >= 3  # several different endings, each shown as written


def test_attach_after_a_kill_counts_the_turns_done_not_a_plan_nobody_runs(
    output_root: Path, live_writer: Any, run_cli: RunCli
) -> None:
    from rich.console import Console

    from pidgin_cli._render_attach import attach_frame
    from pidgin_state import StateBuilder

    planned = 1000
    writer = live_writer(output_root, "killed", planned=planned)
    writer.send("conv 10", "turn 0.1", "turn 0.2", "turn 0.3")

    def frame_text() -> tuple[Any, str]:
        state = StateBuilder.from_experiment_dir(writer.directory)
        screen = io.StringIO()
        console = Console(file=screen, width=200, height=40, color_system=None)
        console.print(attach_frame(state, console))
        return state, screen.getvalue()

    running, text = frame_text()
    assert running.status == "running"
    turns_line = next(line for line in text.splitlines() if line.startswith("turns"))
    assert turns_line.rstrip().endswith(f"3/{running.timing.turns_planned}")

    writer.process.kill()  # kill -9: no end event is ever written
    writer.process.wait(30)
    ended, text = frame_text()
    assert ended.status == "interrupted"
    turns_line = next(line for line in text.splitlines() if line.startswith("turns"))
    assert turns_line.rstrip().endswith(" 3")  # what was done, not what was once planned
    assert "/" not in turns_line.split()[-1]
    attached = run_cli("experiment", "attach", "killed")
    assert attached.returncode == 1
    assert f"1/{planned} (1 interrupted, {planned - 1} not started)" in attached.stdout


def test_counts_are_said_in_the_singular_when_there_is_one(
    run_cli: RunCli, make_experiment: Any, output_root: Path
) -> None:
    experiment = make_experiment("one-of-each", outcomes=["completed"])
    (log,) = experiment.directory.glob("conv_*_events.jsonl")
    with open(log, "ab") as stream:
        stream.write(b"{torn\n")  # one bad line
    loaded = run_cli("load-db", "one-of-each")
    assert loaded.returncode == 0, loaded.stderr
    assert "1 conversation," in loaded.stdout
    assert "1 bad line " in loaded.stdout
    assert "1 conversations" not in loaded.stdout
    assert "1 bad lines" not in loaded.stdout
    started = run_cli("run", "-a", "local:test", "-b", "silent:none", "-t", "1", "--detach")
    assert started.returncode == 0, started.stderr
    assert "1 conversation of local:test vs silent:none, 1 turn each" in started.stdout
