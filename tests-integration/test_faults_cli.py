"""The ``pidgin`` command when runs die, are stopped, run out of disk or meet a locked database.

Experiments are started with ``pidgin run`` (a real background runner process), then
killed with SIGKILL, stopped with ``pidgin experiment stop``, starved of disk or denied
their database. Afterwards ``status``, ``list``, ``attach`` and ``monitor`` must all tell
the truth, and ``load-db --all`` must load what there is, exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _faultlog import FaultLog, PythonProcesses, RunCommand

import pidgin_events as pe


def start_experiment(pidgin: RunCommand, name: str, *args: str) -> str:
    """``pidgin run -q``: returns the experiment id once the runner has started."""
    result = pidgin(
        "run", "-a", "local:drift", "-b", "local:drift", "--seed", "7", "-n", name, "-q", *args
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def wait_for_turns(
    directory: Path, turns: int, timeout: float = 60, *, event: str = "TurnCompleteEvent"
) -> None:
    """Until the conversation logs hold ``turns`` completed turns (or ``event``s) in all."""
    head = f'{{"event_type":"{event}"'.encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = 0
        for log in directory.glob("*_events.jsonl"):
            done += sum(1 for _, raw in pe.LogReader(log).lines() if raw.startswith(head))
        if done >= turns:
            return
        time.sleep(0.05)
    raise AssertionError(f"{directory} did not reach {turns} {event}s in {timeout} s")


def runner_pid(directory: Path) -> int:
    return int((directory / "runner.pid").read_text().split()[0])


def wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # A killed child of ours stays a zombie until reaped; the runner is not our child.
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still alive")


def events_on_disk(directory: Path) -> int:
    """Complete events in the run's logs, bookkeeping of the loader left out."""
    total = 0
    for log in [*directory.glob("*_events.jsonl"), directory / pe.EXPERIMENT_LOG]:
        for event in pe.read_events(log).events:
            if event.event_type not in pe.BOOKKEEPING_EVENTS:
                total += 1
    return total


def events_in_db(db: Path, experiment_id: str) -> int:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT count(*) FROM events WHERE experiment_id = $e",  # bookkeeping is not loaded
            {"e": experiment_id},
        ).fetchone()
        duplicates = con.execute(
            "SELECT count(*) FROM (SELECT source_file, line_number FROM events "
            "WHERE experiment_id = $e GROUP BY ALL HAVING count(*) > 1)",
            {"e": experiment_id},
        ).fetchone()
    assert duplicates == (0,)
    return int(row[0]) if row else 0


def check_watchers_agree(
    pidgin: RunCommand, name: str, experiment_id: str, status: str
) -> dict[str, object]:
    """status, list, attach and monitor all say ``status``; returns status --json."""
    shown = pidgin("experiment", "status", name, "--json")
    assert shown.returncode == 0, shown.stderr
    detail: dict[str, object] = json.loads(shown.stdout)["experiment"]
    assert detail["status"] == status, detail
    assert detail["live"] is False
    listed = pidgin("experiment", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = [e for e in json.loads(listed.stdout)["experiments"] if e["id"] == experiment_id]
    assert entry["status"] == status
    attached = pidgin("experiment", "attach", name, timeout=60)
    assert attached.returncode == (0 if status == "completed" else 1), attached.stderr
    assert status in attached.stdout
    monitor = pidgin("monitor", "--once", "--json")
    assert monitor.returncode == 0, monitor.stderr
    frame = json.loads(monitor.stdout)
    assert experiment_id not in [r["id"] for r in frame["running"]]
    finished = {r["id"]: r["status"] for r in frame["recently_finished"]}
    assert finished.get(experiment_id) == status, frame["recently_finished"]
    plain = pidgin("monitor", "--once")
    assert plain.returncode == 0
    assert experiment_id in plain.stdout
    return detail


@pytest.fixture
def stop_runners() -> Iterator[list[int]]:
    """Pids of runners a test started; any still alive at the end are killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_runner_kills(
    out_root: Path,
    pidgin: RunCommand,
    fault_log: FaultLog,
    stop_runners: list[int],
    *,
    kills: int,
    seed: int,
) -> None:
    row = fault_log.row(f"background runner (`pidgin run`) killed with SIGKILL mid-run ({kills}x)")
    rng = random.Random(seed)
    db = out_root / "experiments" / "experiments.duckdb"
    for number in range(kills):
        name = f"killed-{number}"
        experiment_id = start_experiment(
            pidgin, name, "-t", "5000", "-r", "4", "--max-parallel", "2"
        )
        directory = out_root / "experiments" / experiment_id
        pid = runner_pid(directory)
        stop_runners.append(pid)
        wait_for_turns(directory, rng.randint(2, 30))
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        detail = check_watchers_agree(pidgin, name, experiment_id, "interrupted")
        conversations = detail["conversations"]
        assert isinstance(conversations, list)
        assert {c["status"] for c in conversations} == {"interrupted"}, conversations
        stopped = pidgin("experiment", "stop", name)
        assert stopped.returncode == 1
        assert "not running" in stopped.stderr
        written = events_on_disk(directory)
        loaded = pidgin("load-db", "--all", "--json")
        assert loaded.returncode == 0, loaded.stderr
        assert events_in_db(db, experiment_id) == written
        again = pidgin("load-db", "--all", "--json")
        assert again.returncode == 0, again.stderr
        assert events_in_db(db, experiment_id) == written
        row.add(written=written, recovered=events_in_db(db, experiment_id))
    row.outcome = (
        "status, list, attach (exit 1) and monitor all say `interrupted`, every conversation "
        "in flight `interrupted`; `experiment stop` says it is not running; `load-db --all` "
        "loads every event once, and again changes nothing"
    )
    assert row.lost == 0


def test_background_runner_killed(
    out_root: Path, pidgin: RunCommand, fault_log: FaultLog, stop_runners: list[int]
) -> None:
    run_runner_kills(out_root, pidgin, fault_log, stop_runners, kills=1, seed=1)


@pytest.mark.slow
def test_background_runner_killed_many_times(
    out_root: Path, pidgin: RunCommand, fault_log: FaultLog, stop_runners: list[int]
) -> None:
    run_runner_kills(out_root, pidgin, fault_log, stop_runners, kills=6, seed=6)


def stop_and_check(
    out_root: Path,
    pidgin: RunCommand,
    stop_runners: list[int],
    *,
    name: str,
    model: str,
    repetitions: int,
    parallel: int,
    release: Path | None = None,
) -> tuple[int, int, int]:
    """Start, stop mid-run, check every watcher; returns (written, in the DB, started).

    With ``release``, the model blocks until that file exists: the stop is sent while a
    reply is awaited, and the reply released a second later.
    """
    held = {} if release is None else {"PIDGIN_FAULT_RELEASE": str(release)}
    result = pidgin(
        "run", "-a", model, "-b", model, "--seed", "7", "-n", name, "-q",
        "-t", "5000", "-r", str(repetitions), "--max-parallel", str(parallel), **held,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    experiment_id = result.stdout.strip().splitlines()[-1]
    directory = out_root / "experiments" / experiment_id
    pid = runner_pid(directory)
    stop_runners.append(pid)
    if release is None:
        wait_for_turns(directory, 2 * parallel)
        stopped = pidgin("experiment", "stop", name, "--timeout", "30")
    else:
        wait_for_turns(directory, parallel, event="MessageRequestEvent")
        with ThreadPoolExecutor(max_workers=1) as pool:
            stopping = pool.submit(pidgin, "experiment", "stop", name, "--timeout", "60")
            time.sleep(1.0)
            release.touch()
            stopped = stopping.result()
    assert stopped.returncode == 0, stopped.stderr
    wait_gone(pid, timeout=90)  # it loads the experiment into DuckDB before it exits
    complete = [
        e
        for e in pe.read_events(directory / pe.EXPERIMENT_LOG).events
        if isinstance(e, pe.ExperimentCompleteEvent)
    ]
    assert [(c.status, c.error) for c in complete] == [("interrupted", None)]
    assert "interrupted" in stopped.stdout
    detail = check_watchers_agree(pidgin, name, experiment_id, "interrupted")
    conversations = detail["conversations"]
    assert isinstance(conversations, list)
    assert 1 <= len(conversations) <= parallel, "conversations not started yet never start"
    assert {c["status"] for c in conversations} == {"interrupted"}
    for conversation in conversations:
        last = pe.read_events(conversation["log"]).events[-1]
        assert isinstance(last, pe.ConversationEndEvent), "the end event was not written"
        assert last.status == "interrupted"
    load = detail["load"]
    assert isinstance(load, dict)
    assert load["state"] == "loaded", "a stopped experiment is still loaded"
    db = out_root / "experiments" / "experiments.duckdb"
    written = events_on_disk(directory)
    assert events_in_db(db, experiment_id) == written
    again = pidgin("load-db", "--all", "--json")
    assert again.returncode == 0, again.stderr
    return written, events_in_db(db, experiment_id), len(conversations)


def test_experiment_stop(
    out_root: Path, pidgin: RunCommand, fault_log: FaultLog, stop_runners: list[int]
) -> None:
    row = fault_log.row("`pidgin experiment stop` mid-run (every conversation in flight)")
    written, recovered, _ = stop_and_check(
        out_root, pidgin, stop_runners, name="stopped", model="local:drift", repetitions=2,
        parallel=2,
    )  # fmt: skip
    row.add(written=written, recovered=recovered)
    row.outcome = (
        "experiment and conversations end `interrupted` with their end events written; "
        "status, list, attach and monitor agree; loaded automatically, and `load-db --all` "
        "changes nothing"
    )
    assert row.lost == 0


SLOW_MODEL_PLUGIN = """
import os, time

def register(registry):
    from pidgin_cli._models import Reply

    class Slow:  # a remote model: answers when $PIDGIN_FAULT_RELEASE exists (if set)
        def generate(self, messages, *, agent_id, temperature, seed=None):
            release = os.environ.get("PIDGIN_FAULT_RELEASE")
            deadline = time.monotonic() + 60
            while release and not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.01)
            return Reply("a considered reply", 10, 3)

    registry.register("fault:slow", Slow, description="answers when released")
"""


@pytest.fixture
def slow_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``fault:slow``: a model provider plugin (the ``pidgin.models`` entry point group).

    It answers once the file ``$PIDGIN_FAULT_RELEASE`` exists (at once when unset).
    """
    plugins = tmp_path / "plugins"
    info = plugins / "pidgin_fault_models-0.0.0.dist-info"
    info.mkdir(parents=True)
    (plugins / "pidgin_fault_models.py").write_text(SLOW_MODEL_PLUGIN)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pidgin-fault-models\nVersion: 0.0.0\n"
    )
    (info / "entry_points.txt").write_text("[pidgin.models]\nslow = pidgin_fault_models:register\n")
    monkeypatch.syspath_prepend(str(plugins))  # the commands' PYTHONPATH comes from sys.path
    return "fault:slow"


def test_experiment_stop_with_conversations_waiting(
    out_root: Path,
    tmp_path: Path,
    *,
    pidgin: RunCommand,
    fault_log: FaultLog,
    stop_runners: list[int],
    slow_model: str,
) -> None:
    row = fault_log.row(
        "`pidgin experiment stop` while a model is answering and conversations wait for a "
        "slot (--max-parallel 1)"
    )
    release = tmp_path / "release"
    written, recovered, started = stop_and_check(
        out_root, pidgin, stop_runners, name="queued", model=slow_model, repetitions=4,
        parallel=1, release=release,
    )  # fmt: skip
    row.add(written=written, recovered=recovered)
    row.outcome = f"{started} conversation(s) started, the rest never; all `interrupted`"


def test_plugin_model_with_parallel_conversations(
    out_root: Path, pidgin: RunCommand, fault_log: FaultLog, slow_model: str
) -> None:
    row = fault_log.row("a model provider plugin in parallel conversations (--max-parallel 2)")
    result = pidgin(
        "run", "-a", slow_model, "-b", slow_model, "-t", "1", "-r", "2", "--max-parallel", "2",
        "-n", "plugin",
    )  # fmt: skip
    shown = json.loads(pidgin("experiment", "status", "plugin", "--json").stdout)["experiment"]
    row.add(runs=1)
    row.outcome = f"experiment {shown['status']}: {shown['error']}"
    assert result.returncode == 0, result.stdout + result.stderr
    assert shown["status"] == "completed"
    row.outcome = "both conversation threads resolve the plugin model; experiment `completed`"


# --- a full disk under the runner -------------------------------------------------------


def fill_leaving(ballast: Path, free: int) -> None:
    """Grow ``ballast`` until the disk is full, then give back ``free`` bytes."""
    chunk = b"\0" * (64 << 10)
    with open(ballast, "wb") as stream:
        try:
            while True:
                stream.write(chunk)
                stream.flush()
        except OSError:
            pass
        size = stream.tell()
    with open(ballast, "r+b") as stream:
        stream.truncate(max(0, size - free))


def run_until_disk_full(
    small_disk: Path, pidgin: RunCommand, stop_runners: list[int]
) -> tuple[Path, dict[str, object], int]:
    """``pidgin run`` on a nearly full disk until the runner gives up; its status --json."""
    root = small_disk / "out"
    ballast = small_disk / "ballast"
    fill_leaving(ballast, 48 << 10)
    result = pidgin(
        "-o",
        str(root),
        "run",
        "-a",
        "local:drift",
        "-b",
        "local:drift",
        "--seed",
        "3",
        "-t",
        "100000",
        "-r",
        "1",
        "-n",
        "full",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    experiment_id = result.stdout.strip().splitlines()[-1]
    directory = root / "experiments" / experiment_id
    pid = runner_pid(directory)
    stop_runners.append(pid)
    wait_gone(pid, timeout=120)
    written = events_on_disk(directory)
    ballast.unlink()  # space comes back
    shown = pidgin("-o", str(root), "experiment", "status", "full", "--json")
    assert shown.returncode == 0, shown.stderr
    detail: dict[str, object] = json.loads(shown.stdout)["experiment"]
    return directory, detail, written


def test_full_disk_under_the_runner(
    small_disk: Path, pidgin: RunCommand, fault_log: FaultLog, stop_runners: list[int]
) -> None:
    """The runner meets ENOSPC: the experiment ends `failed` with the reason, nothing lost."""
    row = fault_log.row("full disk (2 MB tmpfs) under `pidgin run`")
    directory, detail, written = run_until_disk_full(small_disk, pidgin, stop_runners)
    row.add(written=written, recovered=written)
    row.outcome = f"status {detail['status']}: {detail['error']} ({detail['end_reason']})"
    assert detail["status"] == "failed", detail
    assert "No space left" in str(detail["error"]), detail
    conversations = detail["conversations"]
    assert isinstance(conversations, list)
    (conversation,) = conversations
    # Its end event could not be written either: without it, and with the writer gone,
    # the conversation reads as interrupted (or failed, had the end event fitted).
    assert conversation["status"] in ("failed", "interrupted")
    log_path = Path(conversation["log"])
    before = log_path.read_bytes()
    read = pe.read_events(log_path)
    assert read.events, "the events written before the disk filled are gone"
    with pe.EventWriter(log_path):
        pass  # the next writer seals a partial line, if one was left
    after = log_path.read_bytes()
    assert after.startswith(before)
    assert after.endswith(b"\n")
    assert events_on_disk(directory) == written
    row.outcome = (
        "the runner catches the write error: experiment `failed` with the ENOSPC reason; "
        f"conversation `{conversation['status']}` (no room for its end event); every event "
        "written before readable; a partial line is sealed by the next writer"
    )


def test_full_disk_runner_reason_names_the_file(
    small_disk: Path, pidgin: RunCommand, fault_log: FaultLog, stop_runners: list[int]
) -> None:
    row = fault_log.row("full disk under `pidgin run`: the failure reason names the file")
    _, detail, written = run_until_disk_full(small_disk, pidgin, stop_runners)
    row.add(written=written, recovered=written)
    conversations = detail["conversations"]
    assert isinstance(conversations, list)
    log = str(conversations[0]["log"])
    row.outcome = f"reason does not name the log: {detail['error']}"
    assert log in str(detail["error"])
    shown = str(detail["error"]).replace(str(Path(log).parent) + "/", "")
    row.outcome = f"the recorded reason names the log: `{shown[:160]}`"


# --- a notebook holds the database during the automatic load ----------------------------

NOTEBOOK = """
import os, sys, time
import duckdb
con = duckdb.connect(sys.argv[1])
print("open", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
con.close()
"""


def test_notebook_holds_the_database_during_the_automatic_load(
    out_root: Path, tmp_path: Path, python: PythonProcesses, pidgin: RunCommand, fault_log: FaultLog
) -> None:
    row = fault_log.row("a notebook holds the database during `pidgin run`'s automatic load")
    first = pidgin("run", "-a", "local:test", "-b", "local:test", "-t", "2", "-n", "first")
    assert first.returncode == 0, first.stderr
    db = out_root / "experiments" / "experiments.duckdb"
    release = tmp_path / "release"
    notebook = python.start(NOTEBOOK, str(db), str(release))
    assert notebook.stdout is not None
    try:
        assert notebook.stdout.readline() == b"open\n"
        run = pidgin(
            "run",
            "-a",
            "local:test",
            "-b",
            "local:test",
            "-t",
            "3",
            "-r",
            "2",
            "-n",
            "late",
            PIDGIN_LOAD_LOCK_TIMEOUT="1",
        )
        assert run.returncode == 0, run.stderr  # the experiment itself succeeded
        assert "Not loaded" in run.stdout
        assert str(db) in run.stdout or "locked" in run.stdout
        shown = pidgin("experiment", "status", "late", "--json")
        detail = json.loads(shown.stdout)["experiment"]
        assert detail["status"] == "completed"
        assert detail["load"]["state"] == "failed", detail["load"]
        assert str(db) in detail["load"]["reason"]
        directory = Path(detail["directory"])
        assert (directory / pe.LOAD_FAILED_MARKER).exists()
        listed = pidgin("experiment", "list", "--json")
        (entry,) = [e for e in json.loads(listed.stdout)["experiments"] if e["name"] == "late"]
        assert entry["load"]["state"] == "failed"
        # The watching commands never open the database: they work while it is held.
        assert pidgin("monitor", "--once").returncode == 0
    finally:
        release.touch()
        notebook.communicate(timeout=30)
    loaded = pidgin("load-db", "--all", "--json")
    assert loaded.returncode == 0, loaded.stderr
    assert not (directory / pe.LOAD_FAILED_MARKER).exists()
    detail = json.loads(pidgin("experiment", "status", "late", "--json").stdout)["experiment"]
    assert detail["load"]["state"] == "loaded"
    written = events_on_disk(directory)
    recovered = events_in_db(db, str(detail["id"]))
    row.add(written=written, recovered=recovered)
    row.outcome = (
        "the experiment completes (exit 0), its load fails after a bounded wait with the "
        "locked file named; `.load_failed` shown by status and list; `load-db --all` loads "
        "it once the notebook closes"
    )
    assert row.lost == 0
