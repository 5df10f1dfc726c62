"""``--workers``: conversations in real worker processes against the fake provider server.

The runner runs in this process (``run_experiment``) or as its own process
(``python -m pidgin_cli._runner``, for real signals); its workers are always real
processes (``python -m pidgin_cli._workers``), killed with a real ``SIGKILL`` where a
test needs a dead one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pidgin_cli._conductor import StopRequest
from pidgin_cli._pacing import PacerLimits
from pidgin_cli._runner import ExperimentSpec, RunSummary, run_experiment
from pidgin_cli._workers import WORKER_EXITED, worker_count
from pidgin_events import EXPERIMENT_LOG, new_id, validate_file

MODEL = "openai-compatible:llama-3.1-8b"


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["event_type"] == kind]


def _spec(root: Path, **options: Any) -> ExperimentSpec:
    values: dict[str, Any] = {
        "root": str(root),
        "experiment_id": new_id("exp"),
        "name": "workers",
        "agent_a": MODEL,
        "agent_b": MODEL,
        "max_turns": 2,
        "chunk_interval": 0.0,
        "workers": 2,
    }
    values.update(options)
    return ExperimentSpec(**values)


def _conversation_ends(directory: Path) -> dict[str, dict[str, Any]]:
    """Conversation id -> its one end event; every log is valid and has exactly one."""
    ends = {}
    for log in sorted(directory.glob("conv_*_events.jsonl")):
        assert validate_file(log) == [], log
        (end,) = _of(_events(log), "ConversationEndEvent")
        ends[end["conversation_id"]] = end
    return ends


def _complete(directory: Path) -> dict[str, Any]:
    (complete,) = _of(_events(directory / EXPERIMENT_LOG), "ExperimentCompleteEvent")
    return complete


def test_workers_share_the_conversations_and_the_runner_completes_the_experiment(
    providers: Any, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, repetitions=6, max_parallel=4)
    lines: list[str] = []
    summary = run_experiment(spec, StopRequest(), log=lines.append)
    assert (summary.status, summary.reason, summary.error) == ("completed", None, None)
    ends = _conversation_ends(spec.directory)
    assert sorted(ends) == sorted(result.conversation_id for result in summary.results)
    assert len(ends) == spec.repetitions
    assert {end["status"] for end in ends.values()} == {"completed"}
    assert all(end["total_turns"] == spec.max_turns for end in ends.values())
    generations = [request for request in providers.requests if request.facts is not None]
    assert len(generations) == spec.repetitions * spec.max_turns * 2
    complete = _complete(spec.directory)
    assert (complete["completed_conversations"], complete["total_conversations"]) == (6, 6)
    assert any(line.startswith("[worker 0] ") for line in lines)
    assert any(line.startswith("[worker 1] ") for line in lines)
    # Seeds follow the conversation's index, whichever worker ran it.
    seeds = sorted(
        _of(_events(log), "ConversationStartEvent")[0]["config"]["seed"]
        for log in spec.directory.glob("conv_*_events.jsonl")
    )
    assert seeds == list(range(spec.seed, spec.seed + spec.repetitions))


def test_the_budget_is_counted_across_workers(providers: Any, tmp_path: Path) -> None:
    providers.behaviour.latency = 0.05
    max_cost = 0.0005
    spec = _spec(
        tmp_path,
        agent_a="gpt-4o",
        agent_b="gpt-4o",
        repetitions=6,
        max_parallel=6,
        max_turns=40,
        max_cost=max_cost,
    )
    summary = run_experiment(spec, StopRequest(), log=lambda line: None)
    assert (summary.status, summary.reason) == ("interrupted", "budget")
    spent = 0.0
    turns = 0
    for log in spec.directory.glob("conv_*_events.jsonl"):
        events = _of(_events(log), "MessageCompleteEvent")
        spent += sum(event["cost_usd"] for event in events)
        turns += len(events) // 2
    one_message = spent / max(1, turns * 2)
    assert spent >= max_cost
    # Past the limit only by messages already asked for when it was reached.
    assert spent < max_cost + one_message * spec.max_parallel * 2
    ends = _conversation_ends(spec.directory)
    assert {end["reason"] for end in ends.values() if end["status"] == "interrupted"} == {"budget"}
    assert all(end["total_turns"] < spec.max_turns for end in ends.values())


def _worker_pids() -> dict[int, int]:
    """Worker number -> pid of this process's ``pidgin_cli._workers`` children."""
    workers = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        children = (task / "children").read_text().split()
        for pid in map(int, children):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"pidgin_cli._workers" in argv:
                workers[int(argv[argv.index(b"pidgin_cli._workers") + 2])] = pid
    return workers


def _wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_worker_fails_its_conversations_and_the_others_finish(
    providers: Any, tmp_path: Path
) -> None:
    providers.behaviour.latency = 0.25
    spec = _spec(tmp_path, repetitions=6, max_parallel=4, max_turns=4)
    outcome: list[RunSummary] = []
    runner = threading.Thread(
        target=lambda: outcome.append(run_experiment(spec, StopRequest(), log=lambda _: None))
    )
    runner.start()
    try:
        _wait_for(lambda: len(list(spec.directory.glob("conv_*_events.jsonl"))) == 4)
        _wait_for(lambda: len(_worker_pids()) == 2)
        time.sleep(0.6)  # some turns written
        os.kill(_worker_pids()[0], signal.SIGKILL)
    finally:
        runner.join(120)
    (summary,) = outcome
    assert summary.status == "completed"
    ends = _conversation_ends(spec.directory)
    assert len(ends) == spec.repetitions  # the two never started ran on the other worker
    lost = [end for end in ends.values() if end["reason"] == WORKER_EXITED]
    assert lost
    assert all(end["status"] == "failed" for end in lost)
    assert all("worker process 0 exited with status -9" in end["error"] for end in lost)
    finished = [end for end in ends.values() if end["reason"] != WORKER_EXITED]
    assert {end["status"] for end in finished} == {"completed"}
    assert len(lost) + len(finished) == spec.repetitions
    for end in lost:  # the turns written before the kill are kept and counted
        log = spec.directory / f"{end['conversation_id']}_events.jsonl"
        assert end["total_turns"] == len(_of(_events(log), "TurnCompleteEvent"))
    complete = _complete(spec.directory)
    assert complete["failed_conversations"] == len(lost)
    assert complete["completed_conversations"] == len(finished)
    results = {result.conversation_id: result for result in summary.results}
    assert all(results[end["conversation_id"]].reason == WORKER_EXITED for end in lost)


def _start_runner(spec: ExperimentSpec) -> subprocess.Popen[str]:
    """``python -m pidgin_cli._runner`` as ``pidgin run`` starts it, the spec on stdin."""
    runner = subprocess.Popen(
        [sys.executable, "-m", "pidgin_cli._runner"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert runner.stdin is not None
    runner.stdin.write(spec.to_json())
    runner.stdin.close()
    runner.stdin = None  # given; communicate() has nothing more to send
    return runner


def test_sigterm_to_the_runner_interrupts_every_workers_conversations(
    providers: Any, tmp_path: Path
) -> None:
    providers.behaviour.latency = 0.2
    spec = _spec(tmp_path, repetitions=8, max_parallel=4, max_turns=30)
    runner = _start_runner(spec)
    try:
        _wait_for(lambda: len(list(spec.directory.glob("conv_*_events.jsonl"))) == 4)
        time.sleep(0.5)
        runner.send_signal(signal.SIGTERM)
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, output
    complete = _complete(spec.directory)
    assert (complete["status"], complete["reason"]) == ("interrupted", "SIGTERM")
    ends = _conversation_ends(spec.directory)
    assert len(ends) == 4  # those waiting for a slot never started
    assert {(end["status"], end["reason"]) for end in ends.values()} == {("interrupted", "SIGTERM")}
    assert complete["interrupted_conversations"] == 4
    assert "2 worker processes share the conversations" in output


def test_workers_of_a_killed_runner_end_their_conversations_and_exit(
    providers: Any, tmp_path: Path
) -> None:
    from pidgin_events import is_running

    providers.behaviour.latency = 0.2
    spec = _spec(tmp_path, repetitions=4, max_parallel=4, max_turns=30)
    runner = _start_runner(spec)
    try:
        _wait_for(lambda: len(list(spec.directory.glob("conv_*_events.jsonl"))) == 4)
        time.sleep(0.5)
        runner.kill()
        runner.communicate(timeout=60)
        # Their stdin closed without "done": the workers end what they run, then exit.
        _wait_for(lambda: is_running(spec.directory) is False)
    finally:
        if runner.poll() is None:
            runner.kill()
    ends = _conversation_ends(spec.directory)
    assert len(ends) == 4
    assert {(end["status"], end["reason"]) for end in ends.values()} == {
        ("interrupted", "runner_exited")
    }
    assert _of(_events(spec.directory / EXPERIMENT_LOG), "ExperimentCompleteEvent") == []


def test_a_providers_concurrency_limit_holds_across_workers(providers: Any, tmp_path: Path) -> None:
    providers.behaviour.latency = 0.15
    limit = 4
    spec = _spec(
        tmp_path,
        repetitions=8,
        max_parallel=8,
        max_turns=3,
        provider_limits={"openai-compatible": {"max_concurrency": limit}},
    )
    summary = run_experiment(spec, StopRequest(), log=lambda line: None)
    assert summary.status == "completed"
    # Eight conversations at once would put eight requests in flight; each of the two
    # workers paces to half of the limit.
    assert 1 < providers.peak_in_flight <= limit
    paces = [
        pace
        for log in spec.directory.glob("conv_*_events.jsonl")
        for pace in _of(_events(log), "RateLimitPaceEvent")
    ]
    assert paces
    assert {pace["reason"] for pace in paces} == {"concurrency"}


def test_limits_are_shared_between_workers() -> None:
    limits = PacerLimits(requests_per_minute=50, tokens_per_minute=0, max_concurrency=3)
    assert limits.share(1) is limits
    assert limits.share(2) == PacerLimits(25, 0, 1)
    assert limits.share(8) == PacerLimits(6, 0, 1)  # never 0, which would mean no limit


@pytest.mark.parametrize(
    ("requested", "max_parallel", "conversations", "cores", "expected"),
    [
        (None, 256, 256, 2, 2),
        (None, 16, 256, 2, 1),  # too few at a time for a second process to pay off
        (None, 256, 40, 2, 1),
        (4, 2, 100, 2, 2),  # never more workers than conversations at a time
        (3, 256, 256, 2, 3),
    ],
)
def test_worker_count(
    requested: int | None,
    max_parallel: int,
    conversations: int,
    cores: int,
    expected: int,
) -> None:
    assert worker_count(requested, max_parallel, conversations, cores) == expected
