"""Hostile ids and names: refused with a clear message, or carried safely; nobody gets out.

Ids and names become directory names, file names, command arguments and database values.
Each hostile value below goes through the Python API (``ValueError``) and through every
``pidgin`` command that takes a name or an id (exit status 1 or 2 and a message). The
directory around the output root is snapshotted before and after: nothing may appear,
change or disappear outside the output root. Strings that reach the database inside logs
(names, conversation ids, message text, directory names made by hand) must come back out
of DuckDB exactly, with every table intact: no SQL is built by pasting strings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from _faultlog import FaultLog, RunCommand, tree_snapshot

import pidgin_events as pe

HOSTILE: dict[str, str] = {
    "slash": "a/b",
    "parent": "../escape",
    "deep-parent": "../../../../../../tmp/pidgin-escape",
    "dotdot": "..",
    "dot": ".",
    "absolute": "/etc",
    "backslash": "a\\b",
    "nul": "exp\x00hidden",
    "newline": "exp\nforged line",
    "carriage-return": "exp\rforged",
    "tab": "exp\tx",
    "shell-subst": "$(touch pwned)",
    "backticks": "`touch pwned`",
    "shell-chain": "x; touch pwned",
    "pipe": "x|touch pwned",
    "sql": "'; DROP TABLE events; --",
    "quote": "O'Brien",
    "double-quote": 'say "hi"',
    "glob": "exp_*",
    "tilde": "~",
    "option-like": "-rf",
    "long-option-like": "--help",
    "empty": "",
    "space": " ",
    "too-long": "a" * 129,
    "very-long": "a" * 100_000,
    "fullwidth-solidus": "a\uff0fb",
    "one-dot-leader": "\u2024\u2024",
    "two-dot-leader": "\u2025",
    "fullwidth-letters": "\uff21\uff22\uff23",
    "rtl-override": "exp\u202egpj.exe",
    "zero-width": "exp\u200b1",
    "cyrillic-lookalike": "\u0435xp_1",
}
"""Values that must be refused wherever an id or a name is expected."""

ACCEPTED = ("a" * 128, "a.b-c_d", "Exp-2026.01")
"""Unusual but valid: accepted, and used as they are."""


def assert_refused(call: Callable[[], object], value: str) -> str:
    with pytest.raises(ValueError, match="invalid") as caught:
        call()
    message = str(caught.value)
    assert repr(value)[:60].rstrip("'") in message or len(value) > 1000, message
    return message


def test_hostile_ids_refused_by_the_api(out_root: Path, sandbox: Path, fault_log: FaultLog) -> None:
    row = fault_log.row(
        "hostile ids and names through the Python API (`/`, `..`, NUL, newlines, shell and "
        "SQL metacharacters, 100 kB names, Unicode lookalikes)"
    )
    outside = tree_snapshot(sandbox, skip=out_root)
    cwd_before = sorted(os.listdir(Path.cwd()))
    experiment = pe.Experiment.create(out_root, name="host", experiment_id="exp_host")
    for value in HOSTILE.values():
        assert_refused(partial(pe.validate_id, value, "experiment id"), value)
        assert_refused(partial(pe.Experiment.create, out_root, name=value), value)
        assert_refused(
            partial(pe.Experiment.create, out_root, name="ok", experiment_id=value), value
        )
        assert_refused(
            partial(experiment.conversation, agent_a="a", agent_b="b", conversation_id=value),
            value,
        )
        assert_refused(
            partial(pe.Chat.create, out_root, agent_a="a", agent_b="b", conversation_id=value),
            value,
        )
        assert_refused(partial(pe.conversation_log_path, experiment.directory, value), value)
    for value in ACCEPTED:
        with experiment.conversation(
            agent_a="local:test", agent_b="local:test", conversation_id=value
        ) as conversation:
            assert conversation.path.parent == experiment.directory
    experiment.complete()
    assert tree_snapshot(sandbox, skip=out_root) == outside, "something changed outside the root"
    assert sorted(os.listdir(Path.cwd())) == cwd_before
    inside = sorted(str(p.relative_to(out_root)) for p in out_root.rglob("*"))
    expected = {f"{pe.EXPERIMENTS_DIR}/exp_host", pe.EXPERIMENTS_DIR, pe.CHATS_DIR}
    assert {p for p in inside if p.count("/") <= 1} <= expected
    names = [p.name for p in (out_root / "experiments" / "exp_host").iterdir()]
    assert sorted(names) == sorted(
        [pe.EXPERIMENT_LOG, pe.RUN_LOCK, *(f"{v}_events.jsonl" for v in ACCEPTED)]
    )
    row.add(runs=len(HOSTILE) * 6)
    row.outcome = (
        f"all {len(HOSTILE)} values refused by validate_id, Experiment.create (name and id), "
        "conversation(), Chat.create and conversation_log_path with a ValueError quoting "
        "the value; nothing created outside the output root"
    )


CLI_COMMANDS: dict[str, tuple[str, ...]] = {
    "run -n": ("run", "-a", "local:test", "-b", "local:test", "-t", "1", "-q", "-n"),
    "experiment status": ("experiment", "status"),
    "experiment attach": ("experiment", "attach"),
    "experiment stop": ("experiment", "stop"),
    "load-db": ("load-db",),
}


def test_hostile_ids_refused_by_the_cli(
    out_root: Path, sandbox: Path, fault_log: FaultLog, pidgin: RunCommand
) -> None:
    row = fault_log.row("hostile ids and names as `pidgin` arguments (`-n NAME`, ID arguments)")
    # A real experiment, so that ID lookups have something to (not) match.
    with pe.Experiment.create(out_root, name="real", experiment_id="exp_real"):
        pass
    before = tree_snapshot(sandbox)
    # NUL cannot be passed in argv at all (the OS refuses it), so the CLI never sees it.
    values = {key: value for key, value in HOSTILE.items() if "\x00" not in value}
    jobs = [
        (command, key, (*prefix, value))
        for command, prefix in CLI_COMMANDS.items()
        for key, value in values.items()
    ]

    def run(job: tuple[str, str, tuple[str, ...]]) -> tuple[str, str, int, str, str]:
        command, key, args = job
        result = pidgin(*args, timeout=60)
        return command, key, result.returncode, result.stdout, result.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, jobs))
    failures = []
    for command, key, code, stdout, stderr in results:
        value = values[key]
        if key == "long-option-like" and code == 0 and "Usage:" in stdout:
            continue  # '--help' is read as the help option: help printed, nothing done
        if code not in (1, 2) or "Traceback" in stderr or not stderr.strip():
            failures.append(f"{command} {value[:40]!r}: exit {code}, stderr {stderr[:200]!r}")
    assert not failures, "\n".join(failures)
    assert tree_snapshot(sandbox) == before, "a refused command changed files"
    assert not list(sandbox.rglob("pwned"))
    assert not Path("pwned").exists()
    row.add(runs=len(jobs))
    row.outcome = (
        f"{len(jobs)} invocations ({len(CLI_COMMANDS)} commands x {len(values)} values; "
        "NUL cannot be put in argv): every one exit 1 or 2 with a message, no traceback, "
        "no file touched"
    )


# --- strings that reach the database inside logs ----------------------------------------

SQL_BAIT = "O'Brien'); DROP TABLE events; --"
"""A name with quotes: valid JSON, refused as an id, must round-trip as a value."""


def bait_experiment(root: Path, directory_name: str, bait: str) -> Path:
    """An experiment whose logs carry ``bait`` in every free-text and id field.

    A foreign writer (not ``pidgin_events``) made it, so the ids in the lines and the
    directory name were never validated.
    """
    directory = root / pe.EXPERIMENTS_DIR / directory_name
    directory.mkdir(parents=True)
    experiment_log = directory / pe.EXPERIMENT_LOG
    with pe.EventWriter(experiment_log, experiment_id=bait) as writer:
        writer.emit(
            pe.ExperimentStartEvent(
                experiment_id=bait, name=bait, total_conversations=1, config={bait: bait}
            )
        )
    with pe.EventWriter(directory / "conv_bait_events.jsonl", experiment_id=bait) as writer:
        writer.emit(
            pe.ConversationStartEvent(
                conversation_id=bait,
                agent_a={"model": bait},
                agent_b={"model": "local:test"},
                agent_a_model=bait,
                agent_b_model="local:test",
                initial_prompt=bait,
            )
        )
        writer.emit(pe.TurnStartEvent(conversation_id=bait, turn_number=0))
        for agent in ("agent_a", "agent_b"):
            writer.emit(
                pe.MessageCompleteEvent(
                    conversation_id=bait,
                    agent_id=agent,
                    turn_number=0,
                    message=pe.Message(role="assistant", content=bait, agent_id=agent),
                    prompt_tokens=1,
                    completion_tokens=1,
                    total_tokens=2,
                    duration_ms=1,
                )
            )
        writer.emit(
            pe.TurnCompleteEvent(conversation_id=bait, turn_number=0, convergence_score=0.5)
        )
        writer.emit(pe.ErrorEvent(conversation_id=bait, error_type=bait, error_message=bait))
        writer.emit(
            pe.ConversationEndEvent(
                conversation_id=bait, total_turns=1, status="completed", reason=bait
            )
        )
    with pe.EventWriter(experiment_log, experiment_id=bait) as writer:
        writer.emit(
            pe.ExperimentCompleteEvent(
                experiment_id=bait,
                total_conversations=1,
                completed_conversations=1,
                failed_conversations=0,
                interrupted_conversations=0,
                status="completed",
            )
        )
    return directory


BAITS = {
    "sql-quote": ("exp_sql", SQL_BAIT),
    "newline": ("exp_newline", "line one\nline two\r\n\x1b[31mred\x1b[0m"),
    "lookalike": ("exp_lookalike", "exp\u2024\u2024\uff0fetc\uff0fpasswd"),
    "dir-with-quote": ("exp_o'brien; DROP TABLE events; --", "exp_o'brien"),
    "dir-with-glob": ("exp_[ab]*?", "exp_glob"),
    "dir-with-space": ("exp with spaces", "exp_spaces"),
}
"""Directory name and bait string of each experiment made by the foreign writer."""


def test_hostile_strings_in_logs_reach_duckdb_intact(
    out_root: Path, sandbox: Path, home: Path, fault_log: FaultLog, pidgin: RunCommand
) -> None:
    import duckdb

    from pidgin_load import TABLES, load_all

    row = fault_log.row(
        "SQL metacharacters, newlines and lookalikes inside logs and in directory names "
        "(loader and commands)"
    )
    directories = {
        key: bait_experiment(out_root, name, bait) for key, (name, bait) in BAITS.items()
    }
    outside = tree_snapshot(sandbox, skip=out_root)
    db = out_root / "experiments" / "experiments.duckdb"
    summary = load_all(out_root, db, include_chats=False)
    assert summary.ok, summary.failed
    assert len(summary.loaded) == len(BAITS)
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {
            name
            for (name,) in con.execute(
                "SELECT table_name FROM information_schema.tables"
            ).fetchall()
        }
        assert set(TABLES) <= tables, "a table went missing"
        for key, (_, bait) in BAITS.items():
            experiment_id = con.execute(
                "SELECT experiment_id FROM experiments WHERE run_dir = $d",
                {"d": str(directories[key].absolute())},
            ).fetchone()
            assert experiment_id is not None, key
            (eid,) = experiment_id
            names = con.execute(
                "SELECT name FROM experiments WHERE experiment_id = $e", {"e": eid}
            ).fetchall()
            contents = con.execute(
                "SELECT content FROM messages WHERE experiment_id = $e", {"e": eid}
            ).fetchall()
            events = con.execute(
                "SELECT count(*) FROM events WHERE experiment_id = $e", {"e": eid}
            ).fetchone()
            assert names == [(bait,)], key
            assert contents == [(bait,), (bait,)], key
            assert events == (9,), key
        total = con.execute("SELECT count(*) FROM events").fetchone()
    assert total == (9 * len(BAITS),)
    listed = pidgin("experiment", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert len(shown["experiments"]) == len(BAITS)
    loaded_again = pidgin("load-db", "--all")
    assert loaded_again.returncode == 0, loaded_again.stderr
    assert tree_snapshot(sandbox, skip=out_root) == outside
    assert not (home / ".pidgin").exists() or not list((home / ".pidgin").iterdir())
    row.add(written=9 * len(BAITS), recovered=total[0] if total else 0, runs=len(BAITS))
    row.outcome = (
        "loaded with every table intact; names and message text come back byte for byte "
        "(bound parameters, no pasted SQL); `pidgin experiment list --json` and "
        "`pidgin load-db --all` exit 0"
    )
    assert row.lost == 0


# --- terminal control sequences inside logs ---------------------------------------------

TERMINAL_BAIT = "evil\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x08\rX"
"""Sets the terminal title, clears the screen, turns text red, moves the cursor back."""
INJECTED = ("\x1b]0;pwned", "\x1b[2J", "\x07", "\x08")


def control_bait_experiment(root: Path) -> None:
    """A run whose name, model and errors carry terminal control sequences.

    Error messages come from model providers and models name themselves, so this text is
    not Pidgin's to trust.
    """
    directory = root / pe.EXPERIMENTS_DIR / "exp_terminal"
    directory.mkdir(parents=True)
    with pe.EventWriter(directory / pe.EXPERIMENT_LOG) as writer:
        writer.emit(
            pe.ExperimentStartEvent(
                experiment_id="exp_terminal", name=TERMINAL_BAIT, total_conversations=1
            )
        )
    with pe.EventWriter(directory / "conv_t_events.jsonl") as writer:
        writer.emit(
            pe.ConversationStartEvent(
                conversation_id="conv_t",
                agent_a={"model": TERMINAL_BAIT},
                agent_b=None,
                agent_a_model=TERMINAL_BAIT,
            )
        )
        writer.emit(
            pe.ErrorEvent(
                conversation_id="conv_t", error_type=TERMINAL_BAIT, error_message=TERMINAL_BAIT
            )
        )
    with pe.EventWriter(directory / pe.EXPERIMENT_LOG) as writer:
        writer.emit(
            pe.ExperimentCompleteEvent(
                experiment_id="exp_terminal",
                total_conversations=1,
                completed_conversations=0,
                failed_conversations=1,
                interrupted_conversations=0,
                status="failed",
                error=TERMINAL_BAIT,
            )
        )


def on_a_terminal(env: dict[str, str], *args: str) -> str:
    """Run ``pidgin ARGS`` with a pseudo-terminal as stdout (rich output), return it."""
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "pidgin_cli", *args],
            env={**env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "TERM": "xterm"},
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command exited and closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(60) == 0
    finally:
        os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_terminal_control_sequences_from_logs_are_neutralised(
    out_root: Path, fault_log: FaultLog, pidgin: RunCommand, command_env: dict[str, str]
) -> None:
    row = fault_log.row(
        "terminal control sequences (ESC, BEL, BS) in names, models and errors inside logs: "
        "`pidgin experiment list/status`, `monitor --once`, piped and on a terminal"
    )
    control_bait_experiment(out_root)
    commands = [
        ("experiment", "list"),
        ("experiment", "status", "exp_terminal"),
        ("monitor", "--once"),
    ]
    leaks = []
    for args in commands:
        piped = pidgin(*args)
        assert piped.returncode == 0, piped.stderr
        tty = on_a_terminal(command_env, *args)
        for where, text in (("piped", piped.stdout + piped.stderr), ("terminal", tty)):
            found = [repr(seq) for seq in INJECTED if seq in text]
            if found:
                leaks.append(f"pidgin {' '.join(args)} ({where}): {', '.join(found)}")
        as_json = pidgin(*args, "--json")
        assert as_json.returncode == 0, as_json.stderr
        assert "\x1b" not in as_json.stdout  # JSON escapes control characters
    row.add(runs=len(commands) * 3)
    row.outcome = "; ".join(leaks) or "every control character escaped or dropped"
    assert not leaks, "\n".join(leaks)
