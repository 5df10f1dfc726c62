"""Watching a conversation live: the chat view, ``--tail``, and pidgin-ai's command names.

Every case is a real ``pidgin`` subprocess against a real background runner; expected
output is derived from the logs the runner wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pidgin_cli._output import safe_text
from pidgin_cli._render_text import format_score

RunCli = Callable[..., subprocess.CompletedProcess[str]]
DEADLINE = 120.0


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _experiment(root: Path) -> Path:
    (directory,) = (root / "experiments").glob("exp_*")
    return directory


def _logs(directory: Path) -> list[Path]:
    return sorted(directory.glob("conv_*_events.jsonl"))


def _wait(what: str, condition: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _chat_of(log: Path) -> list[str]:
    """The lines the chat view prints for a log's messages and scores, in order."""
    lines = []
    for event in _events(log):
        if event["event_type"] == "TurnStartEvent":
            lines.append(f"── Turn {event['turn_number'] + 1} ──")
        elif event["event_type"] == "MessageCompleteEvent":
            content = safe_text(event["message"]["content"], multiline=True)
            lines.append(": " + content.replace("\n", "\n  "))
        elif event["event_type"] == "TurnCompleteEvent":
            lines.append(f"   convergence {format_score(event['convergence_score'])}")
    return lines


def _in_order(text: str, pieces: list[str]) -> bool:
    position = 0
    for piece in pieces:
        found = text.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def test_run_of_one_conversation_shows_it_as_a_chat(output_root: Path, run_cli: RunCli) -> None:
    done = run_cli(
        "run", "-a", "local:drift", "-b", "local:test", "-t", "3", "-p", "Hi \x1b[2J<b>",
        timeout=DEADLINE,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (log,) = _logs(_experiment(output_root))
    out = done.stdout
    assert "Agent A · Local Drift (local:drift) vs Agent B · Local Test (local:test)" in out
    assert "[initial prompt] Hi \\x1b[2J<b>" in out  # shown, not obeyed
    assert "[system prompt for Agent A" in out
    assert _in_order(out, _chat_of(log))
    assert out.count("── Turn") == 3
    assert "Conversation completed (max_turns): 3 turns" in out


def test_attach_follows_one_conversation_of_a_live_experiment(
    output_root: Path, run_cli: RunCli
) -> None:
    started = run_cli(
        "run", "-a", "local:drift", "-b", "local:drift", "-r", "2", "--max-parallel", "2",
        "-t", "12", "-q", "-n", "pair",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    directory = _experiment(output_root)
    logs = _wait("both conversations", lambda: len(_logs(directory)) == 2 and _logs(directory))
    second = logs[1].name.removesuffix("_events.jsonl")
    attached = run_cli("experiment", "attach", "pair", "--conversation", second[:12])
    assert attached.returncode == 0, attached.stderr
    out = attached.stdout
    assert out.startswith(f"Conversation {second}: ")
    assert _in_order(out, _chat_of(logs[1]))
    assert "Conversation completed (max_turns): 12 turns" in out
    first = logs[0].name.removesuffix("_events.jsonl")
    assert first not in out


def test_tail_prints_the_lines_as_they_are_appended(output_root: Path, run_cli: RunCli) -> None:
    done = run_cli("run", "-a", "local:drift", "-b", "local:drift", "-t", "3", "--tail")
    assert done.returncode == 0, done.stderr
    assert "Started experiment" in done.stderr  # stdout carries the events only
    printed = done.stdout.splitlines()
    directory = _experiment(output_root)
    experiment_lines = (directory / "experiment.jsonl").read_text(encoding="utf-8").splitlines()
    complete = next(i for i, line in enumerate(experiment_lines) if "ExperimentComplete" in line)
    # It stops once the run recorded its end: what followed (the load's events) may be cut.
    shown = sum(1 for line in printed if line in set(experiment_lines))
    assert shown >= complete + 1
    expected = {
        "experiment": experiment_lines[:shown],
        **{log.name: log.read_text(encoding="utf-8").splitlines() for log in _logs(directory)},
    }
    # Each log's lines appear in their order, all of them, and nothing else.
    assert sorted(printed) == sorted(line for lines in expected.values() for line in lines)
    for lines in expected.values():
        assert [line for line in printed if line in set(lines)] == lines


def test_attach_tail_of_one_conversation(output_root: Path, run_cli: RunCli) -> None:
    done = run_cli("run", "-a", "local:drift", "-b", "local:drift", "-r", "2", "-t", "2", "-q")
    assert done.returncode == 0, done.stderr
    directory = _experiment(output_root)
    _wait(
        "the end", lambda: "ExperimentCompleteEvent" in (directory / "experiment.jsonl").read_text()
    )
    log = _logs(directory)[0]
    tail = run_cli("experiment", "attach", done.stdout.strip(), "--tail", "-c", log.name[:12])
    assert tail.returncode == 0, tail.stderr
    assert tail.stdout.splitlines() == log.read_text(encoding="utf-8").splitlines()


def test_pidgin_stop_is_experiment_stop(output_root: Path, run_cli: RunCli) -> None:
    started = run_cli(
        "run", "-a", "local:drift", "-b", "local:drift", "-t", "1000", "-q", "-n", "long-one"
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    directory = _experiment(output_root)
    _wait("a turn", lambda: any("TurnCompleteEvent" in p.read_text() for p in _logs(directory)))
    stopped = run_cli("stop", "long")
    assert stopped.returncode == 0, stopped.stderr
    assert "interrupted (0 completed, 1 interrupted, 0 failed)" in stopped.stdout


def test_pidgin_import_is_a_hidden_load_db(
    output_root: Path, run_cli: RunCli, make_experiment: Callable[..., Any]
) -> None:
    make_experiment("imported")
    listed = run_cli("--help")
    assert " import " not in listed.stdout  # pidgin-ai's name; --help lists load-db
    assert " load-db " in listed.stdout
    db = output_root / "elsewhere.duckdb"
    loaded = run_cli("import", "imported", "--db", str(db))
    assert loaded.returncode == 0, loaded.stderr
    import duckdb

    with duckdb.connect(str(db), read_only=True) as connection:
        (count,) = connection.execute("select count(*) from messages").fetchone() or (0,)
    assert count == 6  # 3 turns of two messages, as write_experiment writes them


def test_a_streaming_reply_grows_on_a_terminal(
    output_root: Path,
    provider_server: Any,
    provider_env: Callable[..., dict[str, str]],
    pty_process: Callable[..., Any],
) -> None:
    provider_server.reset()
    provider_server.behaviour.words = 60
    provider_server.behaviour.chunk_delay = 0.05  # 20 pieces: about a second per reply
    env = provider_env(provider_server, output_root)
    shown = pty_process(
        [sys.executable, "-m", "pidgin_cli", "run", "-a", "sonnet", "-b", "gpt-4o", "-t", "1",
         "--chunk-interval", "0.1"],
        env,
    )  # fmt: skip
    shown.read_until("(writing…)")
    status, text = shown.wait(DEADLINE)
    assert status == 0, text
    (log,) = _logs(_experiment(output_root))
    events = _events(log)
    chunks = [e for e in events if e["event_type"] == "MessageChunkEvent"]
    assert len(chunks) >= 2
    # What was shown while writing was the reply so far: its first piece, before the end.
    first = chunks[0]["chunk"].split()[0]
    writing = text.index("(writing…)")
    assert first in text[writing : writing + 400]
    replies = [e["message"]["content"] for e in events if e["event_type"] == "MessageCompleteEvent"]
    assert all(" ".join(reply.split()[-3:]) in " ".join(text.split()) for reply in replies)


def test_attach_shows_each_step_of_a_live_conversation_once(
    output_root: Path, live_writer: Callable[..., Any], cli_env: Callable[..., dict[str, str]]
) -> None:
    writer = live_writer(output_root, "stepwise", planned=1)
    writer.send("conv 3")
    (log,) = _logs(writer.directory)
    with subprocess.Popen(
        [sys.executable, "-m", "pidgin_cli", "experiment", "attach", "stepwise", "-c", "conv_"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(output_root),
    ) as attach:
        try:
            assert attach.stdout is not None
            assert attach.stderr is not None
            header = attach.stdout.readline()  # from the start event alone, before any turn
            assert header.startswith(f"Conversation {log.name.removesuffix('_events.jsonl')}: ")
            writer.send("turn 0.25")
            assert attach.stdout.readline() == "── Turn 1 ──\n"
            writer.send("turn 0.5", "endconv")
            writer.finish()
            out = attach.stdout.read()  # what readline left buffered is in it
            attach.wait(DEADLINE)
            err = attach.stderr.read()
        finally:
            if attach.poll() is None:
                attach.kill()
    assert attach.returncode == 0, err
    assert "Conversation conv_" not in out  # the header was shown once
    assert _in_order(header + "── Turn 1 ──\n" + out, _chat_of(log))
    assert "   convergence 0.25\n" in out
    assert "\nConversation completed: 2 turns, 20 tokens, cost -\n" in out
