"""Writers that die, crowd and run out of disk: nothing acknowledged is ever lost.

Every scenario runs real writer processes through ``pidgin_events`` and checks the result
with the reader, the state builder and the loader (a real DuckDB file). A writer child
acknowledges each event by appending its ``seq`` to a side file *after* ``emit`` returned,
so "written" below always means "the writer was told it was written".
"""

from __future__ import annotations

import errno
import random
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _faultlog import FaultLog, PythonProcesses

import pidgin_events as pe

# --- a writer that can be killed at any moment ------------------------------------------

KILLABLE_WRITER = """
import os, random, sys
import pidgin_events as pe

root, experiment_id, seed, ack_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
limit = int(sys.argv[5])
budget = 40 << 20  # bytes of messages; then it idles (a kill then finds it between writes)
rng = random.Random(seed)
experiment = pe.Experiment.create(
    root, name="killed", experiment_id=experiment_id, total_conversations=1
)
conversation = experiment.conversation(
    agent_a="local:test", agent_b="local:test", conversation_id="conv_" + experiment_id,
    max_turns=10**6,
)
ack = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.write(ack, b"0\\n")  # the start event, written by conversation()

def size():
    roll = rng.random()
    if roll < 0.70:
        return rng.randint(100, 2_000)
    if roll < 0.95:
        return rng.randint(2_000, 64_000)
    return rng.randint(1 << 20, 2 << 20)

def emit(event):
    seq = conversation.emit(event)
    os.write(ack, b"%d\\n" % seq)

turn = 0
written = 0
while (limit < 0 or turn < limit) and written < budget:
    emit(pe.TurnStartEvent(conversation_id=conversation.id, turn_number=turn))
    for agent in ("agent_a", "agent_b"):
        body = (str(turn) + agent) * (size() // 10)
        written += len(body)
        emit(pe.MessageCompleteEvent(
            conversation_id=conversation.id, agent_id=agent, turn_number=turn,
            message=pe.Message(role="assistant", content=body, agent_id=agent),
            prompt_tokens=1, completion_tokens=2, total_tokens=3, duration_ms=4,
        ))
    emit(pe.TurnCompleteEvent(
        conversation_id=conversation.id, turn_number=turn, convergence_score=rng.random()
    ))
    turn += 1
os.write(ack, b"idle\\n")
import time
time.sleep(600)
"""


@dataclass
class Killed:
    """One writer killed with SIGKILL, and what it had acknowledged."""

    directory: Path
    log: Path
    acknowledged: list[int]
    before_reopen: bytes

    @property
    def torn(self) -> bool:
        return bool(self.before_reopen) and not self.before_reopen.endswith(b"\n")


def read_acks(path: Path) -> list[int]:
    """The seqs a writer acknowledged; a torn last ack (killed mid-write) is not one."""
    data = path.read_bytes() if path.exists() else b""
    return [int(line) for line in data.split(b"\n")[:-1] if line.isdigit()]


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def kill_writer(
    python: PythonProcesses,
    root: Path,
    experiment_id: str,
    seed: int,
    delay: float,
    *,
    turn_limit: int = -1,
) -> Killed:
    """Start a writer, let it write for ``delay`` seconds after its first event, SIGKILL it."""
    ack = root.parent / f"{experiment_id}.acks"
    child = python.start(
        KILLABLE_WRITER, str(root), experiment_id, str(seed), str(ack), str(turn_limit)
    )
    try:
        wait_for(lambda: child.poll() is not None or read_acks(ack), "the writer's first event")
        assert child.poll() is None, child.communicate()[1].decode()
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    directory = root / "experiments" / experiment_id
    log = pe.conversation_log_path(directory, "conv_" + experiment_id)
    return Killed(directory, log, read_acks(ack), log.read_bytes())


def check_events_survived(killed: Killed) -> list[pe.Event]:
    """Every acknowledged event is readable, in order; the torn tail is kept and sealed."""
    result = pe.read_events(killed.log)
    assert result.bad_lines == []
    seqs = [event.seq for event in result.events]
    assert seqs == list(range(len(seqs))), "events are read in seq order, none missing"
    assert set(killed.acknowledged) <= set(seqs), "an acknowledged event was lost"
    # Reopening seals a torn tail without removing a byte, and numbering resumes after
    # the last complete event.
    with pe.EventWriter(killed.log) as writer:
        assert writer.next_seq == len(seqs)
    after = killed.log.read_bytes()
    assert after.startswith(killed.before_reopen), "reopening removed data"
    assert after == killed.before_reopen + (b"\n" if killed.torn else b"")
    sealed = pe.read_events(killed.log)
    assert [e.seq for e in sealed.events] == seqs
    if killed.torn:
        (bad,) = sealed.bad_lines
        assert bad.line == len(seqs) + 1
        assert str(bad).startswith(f"{killed.log}:{len(seqs) + 1}: ")
    else:
        assert sealed.bad_lines == []
    return result.events


def check_state_interrupted(killed: Killed, events: list[pe.Event]) -> None:
    from pidgin_state import StateBuilder

    state = StateBuilder.from_experiment_dir(killed.directory)
    conversation = state.conversations["conv_" + killed.directory.name]
    assert state.live is False
    assert conversation.status == "interrupted", (conversation, state.problems)
    assert state.status == "interrupted"
    assert state.progress.interrupted == 1
    turns = sum(isinstance(e, pe.TurnCompleteEvent) for e in events)
    assert conversation.turns_completed == turns
    messages = sum(isinstance(e, pe.MessageCompleteEvent) for e in events)
    assert conversation.message_count == messages
    expected_problems = 1 if killed.torn else 0
    assert state.problem_count == expected_problems, state.problems


def check_loaded(killed: Killed, events: list[pe.Event], db: Path) -> int:
    """Load the killed experiment; return how many acknowledged events DuckDB holds."""
    import duckdb

    from pidgin_load import load_experiment

    summary = load_experiment(killed.directory, db)
    assert summary.ok, summary.failed
    assert len(summary.loaded) == 1
    assert summary.bad_lines == (1 if killed.torn else 0)
    conversation_id = "conv_" + killed.directory.name
    with duckdb.connect(str(db), read_only=True) as con:
        seqs = [
            row[0]
            for row in con.execute(
                "SELECT seq FROM events WHERE experiment_id = $e AND conversation_id = $c "
                "ORDER BY seq",
                {"e": killed.directory.name, "c": conversation_id},
            ).fetchall()
        ]
        status = con.execute(
            "SELECT status FROM conversations WHERE conversation_id = $c", {"c": conversation_id}
        ).fetchall()
        bad = con.execute(
            "SELECT source_file, line_number FROM load_errors WHERE experiment_id = $e",
            {"e": killed.directory.name},
        ).fetchall()
    assert seqs == [e.seq for e in events]
    assert status == [("interrupted",)]  # the StateBuilder's word for it, as on every screen
    if killed.torn:
        assert bad == [(killed.log.name, len(events) + 1)]
    return len(set(killed.acknowledged) & set(seqs))


def run_kills(
    python: PythonProcesses, tmp_path: Path, fault_log: FaultLog, kills: int, seed: int
) -> None:
    row = fault_log.row(f"writer killed with SIGKILL at random moments ({kills}x)")
    rng = random.Random(seed)
    root = tmp_path / "out"
    torn = 0
    for number in range(kills):
        experiment_id = f"exp_kill{number:03d}"
        # Mostly mid-stream; now and then right after the first event.
        delay = 0.0 if rng.random() < 0.1 else rng.uniform(0.0, 0.06)
        killed = kill_writer(python, root, experiment_id, rng.randrange(2**31), delay)
        events = check_events_survived(killed)
        check_state_interrupted(killed, events)
        db = tmp_path / f"{experiment_id}.duckdb"
        in_db = check_loaded(killed, events, db)
        torn += killed.torn
        row.add(written=len(killed.acknowledged), recovered=in_db)
        assert row.lost == 0
        # Bounded disk: a kill can leave tens of megabytes behind.
        db.unlink()
        for path in killed.directory.iterdir():
            path.unlink()
    row.outcome = (
        f"every acknowledged event read back by the reader, the state builder and DuckDB; "
        f"{torn} kill(s) left a torn tail, sealed on reopen with no byte removed and "
        "reported as one line in load_errors; state `interrupted`"
    )


def test_writer_killed_at_random_moments(
    python: PythonProcesses, tmp_path: Path, fault_log: FaultLog
) -> None:
    run_kills(python, tmp_path, fault_log, kills=5, seed=20260101)


@pytest.mark.slow
def test_writer_killed_at_random_moments_50_times(
    python: PythonProcesses, tmp_path: Path, fault_log: FaultLog
) -> None:
    run_kills(python, tmp_path, fault_log, kills=50, seed=50)


HUGE_EVENT_WRITER = """
import os, sys
import pidgin_events as pe
path, size = sys.argv[1], int(sys.argv[2])
writer = pe.EventWriter(path)
for n in range(3):
    writer.emit(pe.ErrorEvent(conversation_id="conv_1", error_type="small", error_message=str(n)))
body = "x" * size
print("writing", flush=True)
writer.emit(pe.ErrorEvent(conversation_id="conv_1", error_type="huge", error_message=body))
print("written", flush=True)
"""


def test_writer_killed_inside_one_huge_write(
    python: PythonProcesses, tmp_path: Path, fault_log: FaultLog
) -> None:
    """SIGKILL during a single 256 MB ``write``: the kernel stops it part way (a torn tail)."""
    row = fault_log.row("writer killed inside a single 256 MB write (torn tail)")
    torn = 0
    for attempt in range(5):
        log = tmp_path / f"conv_{attempt}_events.jsonl"
        child = python.start(HUGE_EVENT_WRITER, str(log), str(256 << 20))
        assert child.stdout is not None
        assert child.stdout.readline() == b"writing\n"
        small = log.stat().st_size
        # Kill as soon as the huge line starts reaching the file.
        wait_for(lambda: log.stat().st_size > small, "the huge write to start")  # noqa: B023
        child.send_signal(signal.SIGKILL)
        child.communicate()
        before = log.read_bytes()
        events = pe.read_events(log)
        assert [e.seq for e in events.events][:3] == [0, 1, 2]
        assert events.bad_lines == []
        with pe.EventWriter(log) as writer:
            after_seq = writer.emit(
                pe.ErrorEvent(conversation_id="conv_1", error_type="after", error_message="")
            )
        after = log.read_bytes()
        assert after.startswith(before), "reopening removed data"
        again = pe.read_events(log)
        row.add(written=3, recovered=sum(e.seq in (0, 1, 2) for e in again.events))
        if before.endswith(b"\n"):
            # The write finished before the kill landed: the huge event is whole.
            assert after_seq == 4
            assert [e.seq for e in again.events] == [0, 1, 2, 3, 4]
            continue
        torn += 1
        assert after_seq == 3, "numbering resumes after the last complete event"
        (bad,) = again.bad_lines
        assert bad.line == 4
        assert [e.seq for e in again.events] == [0, 1, 2, 3]
        break
    assert torn == 1, "no kill landed inside the huge write in 5 attempts"
    row.outcome = (
        "the torn part of the line kept byte for byte and sealed by the next writer, which "
        "resumes numbering after the last complete event; the sealed line is reported"
    )
    assert row.lost == 0


# --- many writers on one file ----------------------------------------------------------

APPENDER = """
import os, random, sys, time
import pidgin_events as pe
path, tag, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = random.Random(tag)

def size(i):
    if i == 0:
        return 1 << 20
    if i == 1:
        return 100
    roll = rng.random()
    if roll < 0.90:
        return rng.randint(100, 4_000)
    if roll < 0.99:
        return rng.randint(4_000, 64_000)
    return rng.randint(512_000, 1 << 20)

with pe.EventWriter(path, fsync="never") as writer:
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(count):
        # The body carries its own tag and length, so a glued or torn line cannot pass.
        n = size(i)
        head = f"{tag}:{i}:{n}:"
        body = head + tag[-1] * (n - len(head))
        event = pe.ErrorEvent(conversation_id="conv_shared", error_type=tag, error_message=body)
        writer.emit(event)
print(count, flush=True)
"""


def run_appenders(
    python: PythonProcesses, tmp_path: Path, fault_log: FaultLog, processes: int, count: int
) -> None:
    row = fault_log.row(
        f"{processes} processes appending to one conversation log at once, "
        f"{count:,} events each, 100 B to 1 MB"
    )
    log = tmp_path / "conv_shared_events.jsonl"
    go = tmp_path / "go"
    tags = [f"writer{n}" for n in range(processes)]
    children = [python.start(APPENDER, str(log), tag, str(count), str(go)) for tag in tags]
    go.touch()
    acknowledged = 0
    for child in children:
        out, err = child.communicate(timeout=1800)
        assert child.returncode == 0, err.decode()
        acknowledged += int(out)
    seen: dict[str, set[int]] = {tag: set() for tag in tags}
    lines = 0
    for item in pe.LogReader(log).events():
        assert not isinstance(item, pe.BadLine), str(item)
        assert isinstance(item, pe.ErrorEvent)
        tag, index, size, _ = item.error_message.split(":", 3)
        assert tag == item.error_type
        assert len(item.error_message) == int(size), "a line was torn or glued"
        assert item.error_message.endswith(tag[-1] * 10)
        assert int(index) not in seen[tag], "an event was written twice"
        seen[tag].add(int(index))
        lines += 1
    assert log.read_bytes().endswith(b"\n")
    for tag in tags:
        assert seen[tag] == set(range(count)), f"{tag} lost events"
    row.add(written=acknowledged, recovered=lines, runs=processes)
    row.outcome = f"all {lines:,} lines parse, each exactly once, none torn or glued"
    assert row.lost == 0


def test_concurrent_appenders(python: PythonProcesses, tmp_path: Path, fault_log: FaultLog) -> None:
    run_appenders(python, tmp_path, fault_log, processes=8, count=300)


@pytest.mark.slow
def test_concurrent_appenders_80000_events(
    python: PythonProcesses, tmp_path: Path, fault_log: FaultLog
) -> None:
    run_appenders(python, tmp_path, fault_log, processes=8, count=10_000)


# --- a full disk ------------------------------------------------------------------------


def message(conversation_id: str, size: int, turn: int = 0) -> pe.MessageCompleteEvent:
    return pe.MessageCompleteEvent(
        conversation_id=conversation_id,
        agent_id="agent_a",
        turn_number=turn,
        message=pe.Message(role="assistant", content="m" * size, agent_id="agent_a"),
        prompt_tokens=1,
        completion_tokens=1,
        total_tokens=2,
        duration_ms=1,
    )


def fill_until_full(conversation: pe.Conversation) -> tuple[list[int], pe.EventWriteError]:
    acknowledged: list[int] = []
    for turn in range(10_000):
        try:
            acknowledged.append(conversation.emit(message(conversation.id, 50_000, turn)))
        except pe.EventWriteError as exc:
            return acknowledged, exc
    raise AssertionError("a 2 MB disk never filled up")


def test_full_disk_writer(small_disk: Path, fault_log: FaultLog) -> None:
    """ENOSPC mid-line: a clear error naming the file; the partial line is sealed later."""
    row = fault_log.row("full disk (2 MB tmpfs) under the event writer, then space freed")
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * 200_000)
    experiment = pe.Experiment.create(small_disk, name="full", experiment_id="exp_full")
    conversation = experiment.conversation(
        agent_a="local:test", agent_b="local:test", conversation_id="conv_full"
    )
    acknowledged, error = fill_until_full(conversation)
    acknowledged.insert(0, 0)  # the start event
    assert error.errno == errno.ENOSPC
    assert str(conversation.path) in str(error)
    assert "earlier events are intact" in str(error)
    before = conversation.path.read_bytes()
    read = pe.read_events(conversation.path)
    assert [e.seq for e in read.events] == acknowledged
    assert read.bad_lines == []
    # Space comes back: the same writer seals whatever partial line is there first, and
    # carries on with the seq that failed.
    ballast.unlink()
    assert conversation.emit(message(conversation.id, 100)) == len(acknowledged)
    conversation.end("failed", reason="disk full")
    experiment.complete()
    after = conversation.path.read_bytes()
    assert after.startswith(before), "sealing removed data"
    final = pe.read_events(conversation.path)
    assert [e.seq for e in final.events] == [
        *acknowledged,
        len(acknowledged),
        len(acknowledged) + 1,
    ]
    torn = not before.endswith(b"\n")
    assert len(final.bad_lines) == (1 if torn else 0)
    complete = pe.read_events(experiment.directory / pe.EXPERIMENT_LOG).events[-1]
    assert isinstance(complete, pe.ExperimentCompleteEvent)
    assert complete.failed_conversations == 1
    row.add(written=len(acknowledged), recovered=len(acknowledged))
    row.outcome = (
        "EventWriteError (ENOSPC) naming the file; "
        + ("the partial line was kept and sealed" if torn else "no partial line")
        + "; every earlier event readable; the writer carries on once space is freed"
    )
    assert row.lost == 0


def test_full_disk_next_event_is_a_clear_error(small_disk: Path, fault_log: FaultLog) -> None:
    row = fault_log.row("full disk: the event after the first failure fails clearly too")
    with pe.EventWriter(small_disk / "conv_full_events.jsonl") as writer:
        count = 0
        try:
            while True:
                writer.emit(message("conv_full", 50_000, count))
                count += 1
        except pe.EventWriteError:
            pass
        row.add(written=count, recovered=len(pe.read_events(writer.path).events))
        row.outcome = "the retry raised something other than EventWriteError"
        with pytest.raises(pe.EventWriteError, match=re.escape(str(writer.path))):
            writer.emit(message("conv_full", 50_000))
        row.outcome = "EventWriteError naming the file again"


def test_full_disk_conversation_block_still_ends(small_disk: Path, fault_log: FaultLog) -> None:
    row = fault_log.row("full disk inside a `with conversation` block: the run lock is released")
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * 200_000)
    conversation = pe.Chat.create(small_disk, agent_a="local:test", agent_b="local:test")

    acknowledged = [0]  # the start event

    def agent_gives_up() -> None:
        with conversation:
            acknowledged.extend(fill_until_full(conversation)[0])
            raise pe.EventWriteError(errno.ENOSPC, "the agent gives up on a full disk")

    with pytest.raises(OSError, match=r"No space left|full disk"):
        agent_gives_up()
    ballast.unlink()
    read = [e.seq for e in pe.read_events(conversation.path).events]
    row.add(written=len(acknowledged), recovered=len(set(acknowledged) & set(read)))
    assert row.lost == 0
    running = pe.is_running(conversation.directory)
    row.outcome = f"after the block: closed={conversation.ended}, run lock held={running}"
    assert running is False
    assert conversation.ended


# --- a clock that jumps backwards -------------------------------------------------------


def test_clock_jumps_backwards(tmp_path: Path, fault_log: FaultLog) -> None:
    """Timestamps that go back in time: order comes from ``seq`` everywhere."""
    import duckdb

    from pidgin_load import load_experiment
    from pidgin_state import StateBuilder

    row = fault_log.row("clock jumps backwards between events")
    root = tmp_path / "out"
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    # Each turn is stamped earlier than the one before it; scores rise turn by turn.
    stamps = [base - timedelta(hours=turn) for turn in range(6)]
    scores = [0.1 * (turn + 1) for turn in range(6)]
    with (
        pe.Experiment.create(root, name="clock", experiment_id="exp_clock") as experiment,
        experiment.conversation(
            agent_a="local:test", agent_b="local:test", conversation_id="conv_clock"
        ) as conversation,
    ):
        for turn, (stamp, score) in enumerate(zip(stamps, scores, strict=True)):
            conversation.emit(
                pe.TurnStartEvent(conversation_id="conv_clock", turn_number=turn, timestamp=stamp)
            )
            conversation.emit(
                pe.TurnCompleteEvent(
                    conversation_id="conv_clock",
                    turn_number=turn,
                    convergence_score=score,
                    timestamp=stamp + timedelta(seconds=1),
                )
            )
        conversation.turns_completed = 6  # turns were emitted by hand, with timestamps
    directory = root / "experiments" / "exp_clock"
    events = pe.read_events(directory / "conv_clock_events.jsonl").events
    assert [e.seq for e in events] == list(range(len(events)))
    state = StateBuilder.from_experiment_dir(directory)
    conv = state.conversations["conv_clock"]
    assert conv.convergence == pytest.approx(tuple(scores))
    assert conv.latest_convergence == pytest.approx(scores[-1])
    assert conv.turns_completed == 6
    assert conv.status == "completed"
    db = tmp_path / "clock.duckdb"
    summary = load_experiment(directory, db)
    assert summary.ok
    with duckdb.connect(str(db), read_only=True) as con:
        by_seq = con.execute(
            "SELECT seq, event_type FROM events WHERE conversation_id = 'conv_clock' ORDER BY seq"
        ).fetchall()
        final = con.execute(
            "SELECT final_convergence, turns FROM conversations "
            "WHERE conversation_id = 'conv_clock'"
        ).fetchone()
        turns = con.execute(
            "SELECT turn_number, convergence_score FROM turns ORDER BY turn_number"
        ).fetchall()
    assert [s for s, _ in by_seq] == [e.seq for e in events]
    assert [t for _, t in by_seq] == [e.event_type for e in events]
    assert final is not None
    assert final[0] == pytest.approx(scores[-1])
    assert final[1] == 6
    assert [score for _, score in turns] == pytest.approx(scores)
    row.add(written=len(events), recovered=len(by_seq))
    row.outcome = (
        "reader, state (convergence trajectory, latest score) and DuckDB (seq, turns, "
        "final convergence) all follow seq, not the clock"
    )
    assert row.lost == 0
