"""The loader under fire: killed mid-transaction, racing another loader, locked out.

Every scenario runs ``python -m pidgin_load`` (the ``pidgin-load`` command) as a real
process on real DuckDB files, and compares the database with a clean load of a copy of
the same experiment: every table must hold exactly the rows of the clean load, or none
of the experiment's rows at all. Nothing in between, ever.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _faultlog import FaultLog, PythonProcesses, RunCommand

import pidgin_events as pe

PAUSE_ENV = "PIDGIN_LOAD_TEST_PAUSE_AFTER_INSERT"
"""pidgin-load's test hook: sleep inside the transaction, after the inserts, before COMMIT."""


def write_experiment(
    root: Path, experiment_id: str, conversations: int, turns: int, size: int
) -> Path:
    with pe.Experiment.create(
        root,
        name=experiment_id.replace("_", "-"),
        experiment_id=experiment_id,
        total_conversations=conversations,
    ) as experiment:
        for number in range(conversations):
            with experiment.conversation(
                agent_a="local:test",
                agent_b="local:test",
                conversation_id=f"conv_{number}",
                max_turns=turns,
            ) as conversation:
                for turn in range(turns):
                    conversation.turn_start()
                    conversation.message("agent_a", f"a{turn} " * size, prompt_tokens=3)
                    conversation.message("agent_b", f"b{turn} " * size, completion_tokens=4)
                    conversation.turn_complete((turn + 1) / turns)
                conversation.error("TestError", "one error per conversation")
    return experiment.directory


def table_counts(db: Path, experiment_id: str) -> dict[str, int]:
    """Rows of ``experiment_id`` in every table (bookkeeping events are never loaded)."""
    import duckdb

    from pidgin_load import TABLES

    counts = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for table in TABLES:
            row = con.execute(
                f"SELECT count(*) FROM {table} WHERE experiment_id = $e",
                {"e": experiment_id},
            ).fetchone()
            counts[table] = int(row[0]) if row else 0
        duplicates = con.execute(
            "SELECT count(*) FROM (SELECT source_file, line_number FROM events "
            "WHERE experiment_id = $e GROUP BY ALL HAVING count(*) > 1)",
            {"e": experiment_id},
        ).fetchone()
    assert duplicates == (0,), "an event was loaded twice"
    return counts


def reference_load(
    directory: Path, tmp_path: Path, load: RunCommand
) -> tuple[dict[str, int], float]:
    """Row counts of a clean load of a copy of ``directory``, and how long the command took."""
    copy = tmp_path / "reference" / "experiments" / directory.name
    shutil.copytree(directory, copy)
    db = tmp_path / "reference.duckdb"
    started = time.monotonic()
    result = load(str(copy), "--db", str(db), "--json")
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    return table_counts(db, directory.name), took


def start_loader(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    import os

    base = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    base.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "pidgin_load", *args],
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def empty_counts(counts: dict[str, int]) -> dict[str, int]:
    return dict.fromkeys(counts, 0)


def committed_or_nothing(db: Path, experiment_id: str, reference: dict[str, int]) -> str:
    """After a kill: the experiment is in the database completely, or not at all."""
    if not db.exists():
        return "nothing"
    counts = table_counts(db, experiment_id)
    if counts == empty_counts(reference):
        return "nothing"
    assert counts == reference, f"a partial experiment is in the database: {counts}"
    return "all"


def forget_load(directory: Path, db: Path) -> None:
    """Back to "never loaded": no database, no markers."""
    for path in (db, db.with_name(db.name + ".wal")):
        path.unlink(missing_ok=True)
    for marker in (pe.LOADED_MARKER, pe.LOAD_FAILED_MARKER):
        (directory / marker).unlink(missing_ok=True)


def run_loader_kills(
    tmp_path: Path,
    out_root: Path,
    fault_log: FaultLog,
    load: RunCommand,
    *,
    paused: int,
    random_kills: int,
    conversations: int,
    size: int,
    seed: int,
) -> None:
    row = fault_log.row(
        f"loader killed with SIGKILL mid-transaction ({paused} at the commit point, "
        f"{random_kills} at random moments), then run again"
    )
    directory = write_experiment(out_root, "exp_load", conversations, turns=10, size=size)
    reference, took = reference_load(directory, tmp_path, load)
    db = out_root / "experiments" / "experiments.duckdb"
    fresh = {"nothing": 0, "all": 0}
    for _ in range(paused):
        loader = start_loader(str(directory), "--db", str(db), env={PAUSE_ENV: "60"})
        assert loader.stderr is not None
        line = loader.stderr.readline()
        assert "pausing" in line, line + loader.stderr.read()
        loader.send_signal(signal.SIGKILL)
        loader.communicate()
        assert committed_or_nothing(db, "exp_load", reference) == "nothing"
        assert not (directory / pe.LOADED_MARKER).exists()
        fresh["nothing"] += 1
    rng = random.Random(seed)
    reloads = 0
    for number in range(random_kills):
        # Half into a database without the experiment, half as a forced reload over it.
        reload = number % 2 == 1
        if reload:
            assert load(str(directory), "--db", str(db)).returncode == 0
        else:
            forget_load(directory, db)
        loader = start_loader(str(directory), "--db", str(db), "--force")
        time.sleep(rng.uniform(0.2 * took, took))
        loader.send_signal(signal.SIGKILL)
        loader.communicate()
        outcome = committed_or_nothing(db, "exp_load", reference)
        if reload:
            assert outcome == "all", "a killed reload lost the rows loaded before"
            reloads += 1
        else:
            fresh[outcome] += 1
    final = load(str(directory), "--db", str(db), "--json")
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout)
    assert len(summary["loaded"]) + len(summary["skipped"]) == 1
    assert table_counts(db, "exp_load") == reference
    again = load(str(directory), "--db", str(db), "--json")
    assert again.returncode == 0, again.stderr
    assert len(json.loads(again.stdout)["skipped"]) == 1, "an unchanged experiment was reloaded"
    assert table_counts(db, "exp_load") == reference
    events = reference["events"]
    row.add(
        written=events, recovered=table_counts(db, "exp_load")["events"], runs=paused + random_kills
    )
    row.outcome = (
        f"first loads killed: experiment absent {fresh['nothing']}x, complete {fresh['all']}x "
        f"(killed after COMMIT); forced reloads killed: previous rows intact {reloads}x; never "
        "partial. The rerun loaded it exactly once (every table equals a clean load), the "
        "next run skipped it"
    )
    assert row.lost == 0


def test_loader_killed_mid_transaction(
    tmp_path: Path, out_root: Path, fault_log: FaultLog, pidgin_load_cmd: RunCommand
) -> None:
    run_loader_kills(
        tmp_path,
        out_root,
        fault_log,
        pidgin_load_cmd,
        paused=2,
        random_kills=4,
        conversations=6,
        size=500,
        seed=3,
    )


@pytest.mark.slow
def test_loader_killed_mid_transaction_many_times(
    tmp_path: Path, out_root: Path, fault_log: FaultLog, pidgin_load_cmd: RunCommand
) -> None:
    run_loader_kills(
        tmp_path,
        out_root,
        fault_log,
        pidgin_load_cmd,
        paused=5,
        random_kills=30,
        conversations=20,
        size=5000,
        seed=25,
    )


# --- two loaders, one database ----------------------------------------------------------


def test_two_loaders_at_once(
    tmp_path: Path, out_root: Path, fault_log: FaultLog, pidgin_load_cmd: RunCommand
) -> None:
    row = fault_log.row("two loaders started at once on the same database")
    first = write_experiment(out_root, "exp_first", conversations=3, turns=4, size=20)
    second = write_experiment(out_root, "exp_second", conversations=3, turns=4, size=20)
    ref_first, _ = reference_load(first, tmp_path / "a", pidgin_load_cmd)
    ref_second, _ = reference_load(second, tmp_path / "b", pidgin_load_cmd)
    db = out_root / "experiments" / "experiments.duckdb"
    # Both at the same instant, each loading both experiments in the opposite order.
    loaders = [
        start_loader(str(first), str(second), "--db", str(db), "--json"),
        start_loader(str(second), str(first), "--db", str(db), "--json"),
    ]
    outputs = [loader.communicate(timeout=120) for loader in loaders]
    for loader, (out, err) in zip(loaders, outputs, strict=True):
        assert loader.returncode == 0, err
        assert json.loads(out)["ok"] is True
    # One holds the database in its transaction while the other starts and waits.
    holder = start_loader(str(first), "--db", str(db), "--force", env={PAUSE_ENV: "1"})
    assert holder.stderr is not None
    assert "pausing" in holder.stderr.readline()
    waiter = start_loader(str(second), str(first), "--db", str(db), "--force", "--json")
    for process in (holder, waiter):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    # A loader that may not wait long fails cleanly, naming the database; the one holding
    # it is then killed inside its transaction (a forced reload): the old rows stay.
    holder = start_loader(str(first), "--db", str(db), "--force", env={PAUSE_ENV: "600"})
    assert holder.stderr is not None
    assert "pausing" in holder.stderr.readline()
    impatient = pidgin_load_cmd(str(second), "--db", str(db), "--force", "--lock-timeout", "0.3")
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=120)
    assert impatient.returncode == 1, impatient.stderr
    assert str(db) in impatient.stderr
    assert "locked" in impatient.stderr
    assert "Traceback" not in impatient.stderr
    counts = table_counts(db, "exp_first"), table_counts(db, "exp_second")
    assert counts == (ref_first, ref_second)
    events = ref_first["events"] + ref_second["events"]
    row.add(written=events, recovered=counts[0]["events"] + counts[1]["events"], runs=6)
    row.outcome = (
        "side by side both exit 0; one waits for the other's transaction and then loads; one "
        "with --lock-timeout 0.3 exits 1 naming the locked file; every experiment loaded "
        "exactly once"
    )
    assert row.lost == 0


# --- a notebook holds the database ------------------------------------------------------

NOTEBOOK = """
import os, sys, time
import duckdb
con = duckdb.connect(sys.argv[1])  # read-write, as a notebook opens it
print(con.execute("SELECT count(*) FROM events").fetchone()[0], flush=True)
while not os.path.exists(sys.argv[2]):  # hold it until told to let go
    time.sleep(0.01)
con.close()
"""


def test_notebook_holds_the_database_during_a_load(
    tmp_path: Path, out_root: Path, python: PythonProcesses, fault_log: FaultLog
) -> None:
    """The load fails cleanly, is recorded as pending, and load_all picks it up later."""
    from pidgin_load import DatabaseLockedError, load_all, load_experiment, record_load_failure
    from pidgin_state import StateBuilder

    row = fault_log.row("a notebook process holds the database open during a load")
    first = write_experiment(out_root, "exp_before", conversations=2, turns=3, size=10)
    late = write_experiment(out_root, "exp_late", conversations=2, turns=3, size=10)
    db = out_root / "experiments" / "experiments.duckdb"
    assert load_experiment(first, db).ok
    release = tmp_path / "release"
    notebook = python.start(NOTEBOOK, str(db), str(release))
    assert notebook.stdout is not None
    try:
        before = int(notebook.stdout.readline())
        with pytest.raises(DatabaseLockedError) as caught:
            load_experiment(late, db, lock_timeout=0.5)
        message = str(caught.value)
        assert str(db) in message
        assert "load-db --all" in message or "--all" in message
        record_load_failure(late, caught.value, db)
        assert (late / pe.LOAD_FAILED_MARKER).exists()
        state = StateBuilder.from_experiment_dir(late)
        assert state.status == "completed", "a failed load never changes the outcome"
        assert state.database.failed is True
        assert state.database.loaded is False
        assert str(db) in (state.database.error or "")
    finally:
        release.touch()
        notebook.communicate(timeout=30)
    assert notebook.returncode == 0
    summary = load_all(out_root)
    assert summary.ok, summary.failed
    assert [outcome.experiment_id for outcome in summary.loaded] == ["exp_late"]
    assert not (late / pe.LOAD_FAILED_MARKER).exists()
    state = StateBuilder.from_experiment_dir(late)
    assert state.database.loaded is True
    assert state.database.failed is False
    counts = table_counts(db, "exp_late")
    expected = sum(len(pe.read_events(p).events) for p in late.glob("conv_*_events.jsonl")) + 2
    row.add(
        written=expected + before,
        recovered=counts["events"] + table_counts(db, "exp_before")["events"],
    )
    row.outcome = (
        "DatabaseLockedError naming the file after a bounded wait; `.load_failed` recorded "
        "and shown by the state builder (experiment still `completed`); `load_all` loaded it "
        "once the notebook let go"
    )
    assert counts["events"] == expected


READER = """
import os, sys, time
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM events").fetchone()[0], flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
print(con.execute("SELECT count(*) FROM messages").fetchone()[0], flush=True)
"""


def test_readers_query_while_nothing_loads(
    tmp_path: Path, out_root: Path, python: PythonProcesses, fault_log: FaultLog
) -> None:
    """Read-only connections from several processes at once; a loader meanwhile waits."""
    from pidgin_load import DatabaseLockedError, load_experiment

    row = fault_log.row("reader processes querying the database while nothing is loading")
    directory = write_experiment(out_root, "exp_read", conversations=2, turns=3, size=10)
    other = write_experiment(out_root, "exp_other", conversations=1, turns=1, size=1)
    db = out_root / "experiments" / "experiments.duckdb"
    assert load_experiment(directory, db).ok
    expected = table_counts(db, "exp_read")
    release = tmp_path / "release"
    readers = [python.start(READER, str(db), str(release)) for _ in range(2)]
    try:
        counts = []
        for reader in readers:
            assert reader.stdout is not None
            counts.append(int(reader.stdout.readline()))
        assert counts == [expected["events"]] * 2
        # Readers hold a shared lock: a writer cannot get in, and says so cleanly.
        with pytest.raises(DatabaseLockedError, match=re.escape(str(db))):
            load_experiment(other, db, lock_timeout=0.3)
    finally:
        release.touch()
        outputs = [reader.communicate(timeout=30) for reader in readers]
    for reader, (out, err) in zip(readers, outputs, strict=True):
        assert reader.returncode == 0, err.decode()
        assert int(out.split()[-1]) == expected["messages"]
    assert load_experiment(other, db).ok
    assert table_counts(db, "exp_read") == expected
    row.add(written=expected["events"], recovered=expected["events"], runs=2)
    row.outcome = (
        "two read-only connections query at once; a load meanwhile fails cleanly "
        "(DatabaseLockedError) and succeeds once they close"
    )


# --- a big log --------------------------------------------------------------------------


def test_a_96_mb_conversation_log_loads(
    out_root: Path, tmp_path: Path, fault_log: FaultLog, pidgin_load_cmd: RunCommand
) -> None:
    """A long conversation between verbose models: 48 messages of 2 MB in one log."""
    row = fault_log.row("a 96 MB conversation log (48 messages of 2 MB) loaded with the defaults")
    with (
        pe.Experiment.create(out_root, name="big", experiment_id="exp_big") as experiment,
        experiment.conversation(
            agent_a="local:test", agent_b="local:test", conversation_id="conv_big"
        ) as conversation,
    ):
        for _ in range(24):
            conversation.turn_start()
            conversation.message("agent_a", "a" * (2 << 20))
            conversation.message("agent_b", "b" * (2 << 20))
            conversation.turn_complete(0.5)
    logs = list(experiment.directory.glob("*.jsonl"))
    written = sum(len(pe.read_events(p).events) for p in logs)
    db = tmp_path / "big.duckdb"
    result = pidgin_load_cmd(str(experiment.directory), "--db", str(db), "--json")
    failed = json.loads(result.stdout)["failed"] if result.stdout.startswith("{") else []
    reason = failed[0]["reason"].split(" failed: ")[-1].splitlines()[0] if failed else ""
    row.outcome = f"not loaded ({reason[:120] or result.stderr[-120:]}); the log itself intact"
    assert result.returncode == 0, result.stdout + result.stderr
    loaded = table_counts(db, "exp_big")["events"]
    # Counted in DuckDB: the load's own DatabaseLoadEvent, appended afterwards, is not there.
    row.add(written=written, recovered=loaded)
    assert loaded == written
    row.outcome = "loaded whole, every event once"
