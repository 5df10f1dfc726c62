"""Conversations in worker processes (``--workers N``), when one interpreter is the limit.

Why: a conversation against an API costs the runner a few milliseconds of CPU per request,
nearly all of it in the vendor SDK (HTTP and response parsing). Threads wait on sockets
in parallel, but that CPU runs under one interpreter lock: at hundreds of conversations
one process saturates one core while the others idle. Workers are processes, each with
its own interpreter, running a share of the conversations as threads.

Who does what. The runner process keeps everything experiment-level: the
``Experiment`` (``experiment.jsonl``, its start and complete events, the run lock held
until the end), the conversation ids, the ``--max-parallel`` limit, the ``--max-cost``
budget and the stop flag. It hands conversations out one at a time to the worker with
the fewest in flight. A worker (``python -m pidgin_cli._workers``) writes each of its
conversations' own JSONL log, holds the run lock while it writes, and paces each
provider to its share of the limits (limits divided by the number of workers).

The protocol is JSON lines: on a worker's stdin ``{"spec": ...}`` first, then
``{"run": index, "id": conversation_id}`` and ``{"stop": reason}``; end of input means
no more work. On its stdout: ``started``, ``cost`` (every priced message; the runner
adds them up and stops the run with reason ``budget`` at the limit), ``ended`` (the
result), ``log`` (a runner-log line) and ``crashed`` (an exception outside any
conversation). A stop (signal, budget, error) is relayed to every worker; their
conversations end as ``interrupted`` with the runner's reason.

A worker that dies (``kill -9``, out of memory) loses no data: the runner closes each
conversation it had started with a ``ConversationEndEvent`` (``failed``, reason
``worker_exited``) after the last complete event in its log, and the conversations not
started yet go to the other workers. If none is left, the run fails.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import traceback
from dataclasses import asdict, dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any

from ._conductor import ConversationResult, StopRequest
from ._pacing import Budget

if TYPE_CHECKING:
    from collections.abc import Callable

    from pidgin_events import Experiment

    from ._runner import ExperimentSpec

__all__ = ["CONVERSATIONS_PER_WORKER", "WORKER_EXITED", "run_in_workers", "worker_count"]

CONVERSATIONS_PER_WORKER = 32
"""Below this many conversations at a time, one process has CPU to spare: no workers."""
WORKER_EXITED = "worker_exited"
"""The end reason of a conversation whose worker process died under it."""
_POLL = 0.2  # seconds: the runner's main thread stays free for signal handlers


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def worker_count(
    requested: int | None, max_parallel: int, conversations: int, cores: int | None = None
) -> int:
    """How many worker processes to use; 1 means the conversations run in the runner.

    Default: one per core, but only where each gets ``CONVERSATIONS_PER_WORKER`` at a
    time (a process costs a start-up and its own SDK clients).
    """
    useful = max(1, min(max_parallel, conversations))
    if requested is not None:
        return max(1, min(requested, useful))
    cores = available_cores() if cores is None else cores
    return max(1, min(cores, useful // CONVERSATIONS_PER_WORKER))


# --- the runner's side ------------------------------------------------------------------


@dataclass(slots=True)
class _Worker:
    number: int
    process: subprocess.Popen[bytes]
    in_flight: dict[str, int] = field(default_factory=dict)
    """conversation id -> index, handed out and not ended."""
    started: set[str] = field(default_factory=set)
    alive: bool = True

    def send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        if stdin is None or not self.alive:
            return
        with contextlib.suppress(OSError, ValueError):  # it died: its reader tells us
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()

    def finish(self) -> None:
        """Nothing more to start: the worker ends once its conversations have."""
        if self.process.stdin is None or self.process.stdin.closed:
            return
        self.send({"done": True})
        with contextlib.suppress(OSError, ValueError):
            self.process.stdin.close()


def _read_messages(worker: _Worker, inbox: queue.Queue[tuple[_Worker, Any]]) -> None:
    stdout = worker.process.stdout
    assert stdout is not None
    for line in stdout:
        try:
            inbox.put((worker, json.loads(line)))
        except ValueError:  # not ours (a library printing): keep it in the runner log
            inbox.put((worker, {"log": line.decode("utf-8", "replace").rstrip()}))
    inbox.put((worker, None))


def _start_worker(number: int, spec: ExperimentSpec, parts: int) -> _Worker:
    process = subprocess.Popen(
        [sys.executable, "-m", "pidgin_cli._workers", spec.experiment_id, str(number)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        # stderr: the runner's own (runner.log), for what dies before it can report
        start_new_session=True,  # the runner relays signals; a terminal's Ctrl-C is ours
    )
    worker = _Worker(number, process)
    worker.send({"spec": spec.to_json(), "parts": parts})
    return worker


class _Dispatch:
    """The runner's loop: hand out conversations, count costs, relay stops, reap workers."""

    def __init__(
        self,
        experiment: Experiment,
        spec: ExperimentSpec,
        stop: StopRequest,
        log: Callable[[str], None],
    ) -> None:
        self.experiment = experiment
        self.spec = spec
        self.stop = stop
        self.log = log
        self.budget = None if spec.max_cost is None else Budget(spec.max_cost)
        self.results: dict[int, ConversationResult] = {}
        self.failure: str | None = None
        self.waiting = collections.deque(range(spec.conversations))
        """Indices of the conversations not handed out yet (or handed back by a dead worker)."""
        self.stop_sent = False

    def run(self, count: int) -> list[ConversationResult]:
        from pidgin_events import new_id

        inbox: queue.Queue[tuple[_Worker, Any]] = queue.Queue()
        workers = [_start_worker(number, self.spec, count) for number in range(count)]
        readers = [
            threading.Thread(target=_read_messages, args=(worker, inbox), daemon=True)
            for worker in workers
        ]
        for reader in readers:
            reader.start()
        try:
            while any(worker.alive for worker in workers):
                self._hand_out(workers, new_id)
                with contextlib.suppress(queue.Empty):
                    worker, message = inbox.get(timeout=_POLL)
                    self._receive(worker, message)
                    while True:  # drain what else arrived before handing out more
                        worker, message = inbox.get_nowait()
                        self._receive(worker, message)
        finally:
            for worker in workers:
                worker.finish()
            for worker in workers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(30)
                if worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait()
            for reader in readers:
                reader.join(5)
            for worker in workers:
                if worker.process.stdout is not None:
                    worker.process.stdout.close()
        if self.failure is not None:
            raise RuntimeError(self.failure)
        if self.waiting and not self.stop.is_set():
            raise RuntimeError("every worker process exited before the run was done")
        return [self.results[index] for index in sorted(self.results)]

    def _hand_out(self, workers: list[_Worker], new_id: Callable[[str], str]) -> None:
        if self.stop.is_set():
            if not self.stop_sent:
                self.stop_sent = True
                for worker in workers:
                    worker.send({"stop": self.stop.reason})
            for worker in workers:
                worker.finish()  # nothing more to start
            return
        alive = [worker for worker in workers if worker.alive]
        while alive and self.waiting:
            if sum(len(worker.in_flight) for worker in alive) >= self.spec.max_parallel:
                return
            worker = min(alive, key=lambda candidate: len(candidate.in_flight))
            index = self.waiting.popleft()
            conversation_id = new_id("conv")
            worker.in_flight[conversation_id] = index
            worker.send({"run": index, "id": conversation_id})
        if not self.waiting and not any(worker.in_flight for worker in alive):
            for worker in alive:
                worker.finish()  # all done: a dead worker's conversations can't come back

    def _receive(self, worker: _Worker, message: dict[str, Any] | None) -> None:
        if message is None:
            self._reap(worker)
        elif "started" in message:
            self.experiment.track(message["started"])
            worker.started.add(message["started"])
        elif "cost" in message:
            if self.budget is not None and self.budget.add(float(message["cost"])):
                self.stop.request("budget")
        elif "ended" in message:
            result = ConversationResult(**message["ended"])
            index = worker.in_flight.pop(result.conversation_id)
            worker.started.discard(result.conversation_id)
            self.experiment.record_end(result.conversation_id, result.status)
            self.results[index] = result
        elif "skipped" in message:
            worker.in_flight.pop(message["skipped"], None)
        elif "log" in message:
            self.log(f"[worker {worker.number}] {message['log']}")
        elif "crashed" in message:
            self.log(f"worker {worker.number} failed: {message['crashed']}")
            if self.failure is None:
                self.failure = f"worker {worker.number}: {message['crashed'].splitlines()[-1]}"
            self.stop.request("error")

    def _reap(self, worker: _Worker) -> None:
        """A worker's output ended: it exited; close what it left open, hand out the rest."""
        worker.alive = False
        status = worker.process.wait()
        lost = dict(worker.in_flight)
        worker.in_flight.clear()
        if not lost:
            return
        error = f"worker process {worker.number} exited with status {status}"
        self.log(f"{error}; closing its {len(lost)} conversation(s) as failed")
        for conversation_id, index in lost.items():
            result = _close_abandoned(self.experiment, self.spec, conversation_id, error)
            if result is not None:
                self.experiment.record_end(conversation_id, result.status)
                self.results[index] = result
            else:
                self.waiting.appendleft(index)  # never started: another worker takes it


def _close_abandoned(
    experiment: Experiment, spec: ExperimentSpec, conversation_id: str, error: str
) -> ConversationResult | None:
    """End a dead worker's conversation after its last complete event; None if it has no log."""
    from pidgin_events import (
        ConversationEndEvent,
        EventWriter,
        TurnCompleteEvent,
        conversation_log_path,
        read_events,
    )

    path = conversation_log_path(experiment.directory, conversation_id)
    if not path.exists():
        return None
    experiment.track(conversation_id)
    events = read_events(path).events
    turns = sum(isinstance(event, TurnCompleteEvent) for event in events)
    for event in events:
        if isinstance(event, ConversationEndEvent):  # it ended; only its report was lost
            return ConversationResult(
                conversation_id, event.status, event.reason, turns, error=event.error
            )
    with EventWriter(path, experiment_id=spec.experiment_id) as writer:  # seals a torn tail
        writer.emit(
            ConversationEndEvent(
                conversation_id=conversation_id,
                total_turns=turns,
                status="failed",
                reason=WORKER_EXITED,
                error=error,
            )
        )
    return ConversationResult(conversation_id, "failed", WORKER_EXITED, turns, error=error)


def run_in_workers(
    experiment: Experiment,
    spec: ExperimentSpec,
    stop: StopRequest,
    log: Callable[[str], None],
    workers: int,
) -> list[ConversationResult]:
    """Run ``spec``'s conversations in ``workers`` processes; see the module docstring."""
    dispatch = _Dispatch(experiment, spec, stop, log)
    return dispatch.run(workers)


# --- the worker's side ------------------------------------------------------------------


class _Outbox:
    """The worker's stdout, one JSON line per message, from any thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._guard = threading.Lock()

    def send(self, **message: Any) -> None:
        line = json.dumps(message).encode() + b"\n"
        with self._guard, contextlib.suppress(OSError, ValueError):
            self._stream.write(line)
            self._stream.flush()


class _ReportingBudget(Budget):
    """Tells the runner each message's cost; the runner alone decides the budget is spent."""

    def __init__(self, outbox: _Outbox) -> None:
        super().__init__(float("inf"))
        self._outbox = outbox

    def add(self, cost_usd: float) -> bool:
        self._outbox.send(cost=cost_usd)
        return False


def _serve(spec: ExperimentSpec, parts: int, commands: IO[bytes], outbox: _Outbox) -> None:
    import concurrent.futures

    from pidgin_events import Conversation, RunLock

    from ._pool import run_logged

    stop = StopRequest()
    settings = spec.request_settings()
    settings.pacers = replace(settings.pacers, parts=parts)
    if spec.max_cost is not None:
        settings.budget = _ReportingBudget(outbox)

    def log(text: str) -> None:
        outbox.send(log=text)

    def one(index: int, conversation_id: str) -> None:
        if stop.is_set():
            outbox.send(skipped=conversation_id)
            return
        plan = spec.plan(index)
        conversation = Conversation(
            spec.directory,
            conversation_id=conversation_id,
            experiment_id=spec.experiment_id,
            **plan.start_arguments(),
        )
        outbox.send(started=conversation_id)
        log(f"conversation {conversation_id} ({index + 1}/{spec.conversations}) started")
        result = run_logged(conversation, plan, stop, settings, log)
        outbox.send(ended=asdict(result))

    def guarded(index: int, conversation_id: str) -> None:
        try:
            one(index, conversation_id)
        except BaseException:
            outbox.send(crashed=traceback.format_exc())
            raise

    with (
        RunLock(spec.directory),
        concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, spec.max_parallel), thread_name_prefix="conversation"
        ) as pool,
    ):
        for line in commands:
            command = json.loads(line)
            if "run" in command:
                pool.submit(guarded, int(command["run"]), str(command["id"]))
            elif "stop" in command:
                stop.request(str(command["stop"]))
            elif "done" in command:
                return
        # Input ended without "done": the runner is gone; end ours as interrupted.
        stop.request("runner_exited")


def main() -> int:
    """A worker process: read the spec, then run what the runner hands out until EOF."""
    from ._runner import ExperimentSpec

    # The runner relays stops; a worker only ignores what would kill it mid-write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    commands = sys.stdin.buffer
    outbox = _Outbox(sys.stdout.buffer)
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol
    try:
        first = json.loads(commands.readline())
        spec = ExperimentSpec.from_json(first["spec"])
        _serve(spec, int(first["parts"]), commands, outbox)
    except BaseException:
        outbox.send(crashed=traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "worker"
    sys.exit(main())
