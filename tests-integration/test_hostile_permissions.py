"""Other users on the machine must not read conversation content: files 0600, dirs 0700.

Logs hold everything the agents said, so every file Pidgin creates (logs, the run lock,
the loader's markers, the databases) is readable by its owner only, and every directory
it creates is listable by its owner only. This is a documented choice (see the
pidgin-events README); a group that needs to share results copies or loads them.

The writers run with ``umask 000`` here, so the modes come from Pidgin and not from a
careful umask. (The tests run as root, which reads anything anyway: what is checked is
the mode bits a normal user's files would get.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from _faultlog import FaultLog, PythonProcesses, RunCommand

WRITE_EVERYTHING = """
import os, sys
os.umask(0)
import pidgin_events as pe
from pidgin_load import load_experiment, load_all
root, home_db = sys.argv[1], sys.argv[2]
with pe.Experiment.create(root, name="private", experiment_id="exp_private") as exp:
    with exp.conversation(agent_a="a", agent_b="b", conversation_id="conv_p") as c:
        c.turn_start(); c.message("agent_a", "secret"); c.turn_complete(0.5)
chat = pe.Chat.create(root, agent_a="local:test", agent_b="local:test", conversation_id="conv_chat")
chat.end()
load_experiment(os.path.join(root, "experiments", "exp_private"))
load_all(root, None)  # the chat, into $PIDGIN_CHATS_DB
print(chat.directory)
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def exposed(paths: list[Path]) -> list[str]:
    """Paths whose group or other bits are set."""
    return [f"{p}: {oct(mode(p))}" for p in paths if mode(p) & 0o077]


def test_files_and_directories_are_private(
    out_root: Path,
    home: Path,
    python: PythonProcesses,
    fault_log: FaultLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = fault_log.row("permissions of everything written (umask 000): files 0600, dirs 0700")
    root = out_root / "fresh"  # created by Pidgin itself
    chats_db = home / ".pidgin" / "chats.duckdb"
    monkeypatch.setenv("PIDGIN_CHATS_DB", str(chats_db))
    result = python.run(WRITE_EVERYTHING, str(root), str(chats_db))
    assert result.returncode == 0, result.stderr.decode()
    chat_dir = Path(result.stdout.decode().strip())
    experiment = root / "experiments" / "exp_private"
    expected_files = [
        experiment / "experiment.jsonl",
        experiment / "conv_p_events.jsonl",
        experiment / ".pidgin.lock",
        experiment / ".loaded_to_db",
        root / "experiments" / "experiments.duckdb",
        chat_dir / "conv_chat_events.jsonl",
        chat_dir / ".loaded_to_db",
        chats_db,
    ]
    for path in expected_files:
        assert path.exists(), path
    files = [p for p in root.rglob("*") if p.is_file()] + [chats_db]
    dirs = [p for p in root.rglob("*") if p.is_dir()] + [chats_db.parent]
    assert not exposed(files), exposed(files)
    assert not exposed(dirs), exposed(dirs)
    row.add(runs=len(files) + len(dirs))
    row.outcome = (
        f"{len(files)} files (logs, run lock, markers, both databases) 0600 and {len(dirs)} "
        "directories 0700, whatever the umask"
    )


def test_database_side_files_are_private_during_a_load(
    out_root: Path,
    sandbox: Path,
    python: PythonProcesses,
    fault_log: FaultLog,
) -> None:
    """Whatever DuckDB creates beside the database while loading holds the rows loaded.

    The default database sits in ``experiments/`` (0700), which hides its side files; a
    database given with ``--db`` in a shared directory (0755) has only its own modes. The
    directory is watched for the whole of a first load and of a forced reload.
    """
    row = fault_log.row(
        "permissions of the database and DuckDB's side files (WAL) while loads run, --db in "
        "a shared directory (umask 000)"
    )
    made = python.run(
        """
import sys
import pidgin_events as pe
with pe.Experiment.create(sys.argv[1], name="wal", experiment_id="exp_wal") as exp:
    with exp.conversation(agent_a="a", agent_b="b", conversation_id="conv_w") as c:
        for turn in range(400):
            c.message("agent_a", "secret " * 2000)
""",
        str(out_root),
    )
    assert made.returncode == 0, made.stderr.decode()
    shared = sandbox / "shared"
    shared.mkdir(mode=0o755)
    db = shared / "results.duckdb"
    seen: dict[str, int] = {}
    for extra in ([], ["--force"]):
        loader = python.start(
            """
import os, sys
os.umask(0)
from pidgin_load._cli import main
sys.exit(main(sys.argv[1:]))
""",
            str(out_root / "experiments" / "exp_wal"),
            "--db",
            str(db),
            *extra,
        )
        while loader.poll() is None:
            with os.scandir(shared) as entries:
                for entry in entries:
                    try:
                        seen[entry.name] = seen.get(entry.name, 0) | mode(Path(entry.path))
                    except FileNotFoundError:
                        continue  # gone between the listing and the stat
        _, err = loader.communicate()
        assert loader.returncode == 0, err.decode()
    row.add(runs=2)
    row.outcome = "seen during the loads: " + ", ".join(
        f"{name} {oct(bits)}" for name, bits in sorted(seen.items())
    )
    assert db.name in seen
    assert {name: oct(bits) for name, bits in seen.items() if bits & 0o077} == {}


def test_cli_runs_are_private(
    out_root: Path, home: Path, pidgin: RunCommand, fault_log: FaultLog
) -> None:
    """``pidgin run`` (background runner, runner.log, runner.pid) and ``pidgin chat``."""
    row = fault_log.row("permissions of what `pidgin run` and `pidgin chat` write (umask 000)")
    root = out_root / "fresh"
    old = os.umask(0)  # inherited by the commands and the runner they start
    try:
        ran = pidgin("-o", str(root), "run", "-a", "local:test", "-b", "local:test", "-t", "2")
        chatted = pidgin("-o", str(root), "chat", "-a", "local:test", "-b", "local:test", "-t", "1")
    finally:
        os.umask(old)
    assert ran.returncode == 0, ran.stderr
    assert chatted.returncode == 0, chatted.stderr
    (experiment,) = (root / "experiments").glob("exp_*")
    for name in ("runner.log", "runner.pid", ".loaded_to_db", "experiment.jsonl"):
        assert (experiment / name).exists(), name
    chats_db = home / ".pidgin" / "chats.duckdb"
    assert chats_db.exists()
    files = [p for p in [*root.rglob("*"), *chats_db.parent.rglob("*")] if p.is_file()]
    dirs = [p for p in [*root.rglob("*"), chats_db.parent] if p.is_dir()]
    assert not exposed(files), exposed(files)
    assert not exposed(dirs), exposed(dirs)
    row.add(runs=len(files) + len(dirs))
    row.outcome = f"{len(files)} files 0600 and {len(dirs)} directories 0700"


def test_output_root_created_by_pidgin_is_private(
    out_root: Path, python: PythonProcesses, fault_log: FaultLog
) -> None:
    row = fault_log.row(
        "permissions of an output root (and its parents) Pidgin creates (umask 000)"
    )
    root = out_root / "new" / "nested" / "root"
    made = python.run(
        """
import os, sys
os.umask(0)
import pidgin_events as pe
with pe.Experiment.create(sys.argv[1], name="n"):
    pass
""",
        str(root),
    )
    assert made.returncode == 0, made.stderr.decode()
    created = [out_root / "new", out_root / "new" / "nested", root]
    row.add(runs=len(created))
    row.outcome = ", ".join(f"{p.relative_to(out_root)} {oct(mode(p))}" for p in created)
    assert not exposed(created), exposed(created)
