"""The experiment runner: conversations in parallel under one ``Experiment``, then the load.

``python -m pidgin_cli._runner`` is the background process ``pidgin run`` starts: it reads
its ``ExperimentSpec`` as JSON on stdin (so prompts never show in ``ps``), writes
``runner.pid`` and ``runner.log`` into the experiment directory, and runs.

Conversations run as threads of this process, or with ``--workers N`` as threads of N
worker processes (``_workers.py``); either way the experiment-level events, the budget,
the stop flag and the run lock stay here.

SIGTERM and SIGINT set the stop flag: conversations in flight end as ``interrupted`` at
their next step, conversations not started yet are never started, and the experiment
completes as ``interrupted``. SIGHUP is ignored (the terminal that started us may close).

After the experiment completes, whatever its status, it is loaded into DuckDB, wrapped in
``PostProcessingStartEvent``/``PostProcessingCompleteEvent``. A failed load is recorded
(``.load_failed`` and a failed ``DatabaseLoadEvent``) and never changes the experiment's
status or the runner's exit status.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pidgin_events import plural

from ._conductor import (
    ConvergenceAction,
    ConversationPlan,
    ConversationResult,
    StopRequest,
)
from ._pool import Log, run_logged, run_pool
from ._prompting import Prompting
from ._requests import ContextPolicy, RequestSettings
from ._settle import settle

if TYPE_CHECKING:
    from pidgin_events import Experiment

__all__ = [
    "LOCK_WAIT_LOG",
    "PID_FILE",
    "RUNNER_LOG",
    "ExperimentSpec",
    "LoadOutcome",
    "RunSummary",
    "load_run",
    "main",
    "post_process",
    "run_experiment",
]

PID_FILE = "runner.pid"
RUNNER_LOG = "runner.log"
LOCK_WAIT_LOG = "database load waiting: "
"""How the runner log starts the line saying the load waits for a locked database;
``pidgin run``, following, looks for it to say so at once."""
LOAD_TASK = "database_load"


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """An experiment to run, as ``pidgin run`` hands it to the runner process."""

    root: str
    experiment_id: str
    name: str
    agent_a: str
    agent_b: str
    max_turns: int
    repetitions: int = 1
    max_parallel: int = 1
    initial_prompt: str | None = None
    temperature_a: float | None = None
    temperature_b: float | None = None
    convergence_threshold: float | None = None
    convergence_action: ConvergenceAction = "stop"
    seed: int = 0
    launch_log: str | None = None
    """Where the launcher pointed our stdout/stderr; moved into the experiment directory."""
    # --- real providers (see _requests.py and _pacing.py) ---
    max_cost: float | None = None
    """US dollars: no new turn starts once the experiment has spent this."""
    context_policy: ContextPolicy = "truncate"
    chunk_interval: float = 0.5
    base_url: str | None = None
    """The openai-compatible server (``--base-url``); recorded without any user:password."""
    request_timeout: float | None = None
    provider_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    """provider -> {requests_per_minute, tokens_per_minute, max_concurrency} overrides."""
    prompting: dict[str, Any] | None = None
    """``Prompting.to_dict()``: awareness resolved at launch, names, thinking (None: defaults)."""
    workers: int | None = None
    """Processes running the conversations (``--workers``); None: from the cores."""
    # --- pidgin experiment resume (see _resume.py) ---
    resume: bool = False
    """Go on with the existing experiment ``experiment_id`` instead of creating it."""
    branch: dict[str, Any] | None = None
    """``pidgin branch``: each conversation starts as the parent's first turns (_branch.py)."""
    retry_failed: bool = False
    """When resuming: failed conversations go on too."""
    record: dict[str, Any] = field(default_factory=dict)
    """How to run it again: options, spec, models, versions (``_spec.run_record``)."""
    cell_plans: list[dict[str, Any]] = field(default_factory=list)
    """A grid's cells (``grid_mode: conversations``): ``repetitions`` conversations each."""

    @property
    def conversations(self) -> int:
        return self.repetitions * max(1, len(self.cell_plans))

    @property
    def models(self) -> list[str]:
        cells = [[cell["agent_a"], cell["agent_b"]] for cell in self.cell_plans]
        return list(dict.fromkeys(sum(cells, [self.agent_a, self.agent_b])))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ExperimentSpec:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the experiment spec must be a JSON object")
        known = {spec_field.name for spec_field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys in the experiment spec: {', '.join(unknown)}")
        return cls(**data)

    @property
    def directory(self) -> Path:
        from pidgin_events import EXPERIMENTS_DIR

        return Path(self.root) / EXPERIMENTS_DIR / self.experiment_id

    def plan(self, index: int) -> ConversationPlan:
        """The plan of conversation ``index``; its seed is the experiment's seed + index."""
        if self.cell_plans:
            fields = dict(self.cell_plans[index // self.repetitions])
            fields["prompting"] = Prompting.from_dict(fields["prompting"])
            cell = ConversationPlan(**fields)
            return replace(cell, seed=self.seed + index)
        return ConversationPlan(
            agent_a=self.agent_a,
            agent_b=self.agent_b,
            max_turns=self.max_turns,
            initial_prompt=self.initial_prompt,
            temperature_a=self.temperature_a,
            temperature_b=self.temperature_b,
            convergence_threshold=self.convergence_threshold,
            convergence_action=self.convergence_action,
            seed=self.seed + index,
            context_policy=self.context_policy,
            prompting=self._prompting(),
        )

    def _prompting(self) -> Prompting:
        return Prompting() if self.prompting is None else Prompting.from_dict(self.prompting)

    def config(self) -> dict[str, Any]:
        """What ``ExperimentStartEvent.config`` records (pidgin-ai's key names)."""
        return {
            "name": self.name,
            "agent_a_model": self.agent_a,
            "agent_b_model": self.agent_b,
            "custom_prompt": self.initial_prompt,
            "max_turns": self.max_turns,
            "repetitions": self.repetitions,
            "temperature_a": self.temperature_a,
            "temperature_b": self.temperature_b,
            "max_parallel": self.max_parallel,
            "convergence_threshold": self.convergence_threshold,
            "convergence_action": self.convergence_action,
            "seed": self.seed,
            **self._prompting().config(),
            **({"prompting": self.prompting} if self.prompting is not None else {}),
            **self._provider_config(),
            **self.record,
            **({"cell_plans": self.cell_plans} if self.cell_plans else {}),
            **({"branched_from": self.branch["source"]} if self.branch else {}),
        }

    def _provider_config(self) -> dict[str, Any]:
        """The provider settings worth recording, only where they differ from the defaults."""
        from ._providers import describe_url

        config: dict[str, Any] = {}
        if self.max_cost is not None:
            config["max_cost"] = self.max_cost
        if self.context_policy != "truncate":
            config["context_policy"] = self.context_policy
        if self.base_url is not None:
            config["base_url"] = describe_url(self.base_url)
        if self.request_timeout is not None:
            config["request_timeout"] = self.request_timeout
        if self.provider_limits:
            config["provider_limits"] = self.provider_limits
        return config

    def request_settings(self) -> RequestSettings:
        """The pacers, budget and policies every conversation of this run shares."""
        from ._run_options import request_settings

        return request_settings(
            max_cost=self.max_cost,
            context_policy=self.context_policy,
            chunk_interval=self.chunk_interval,
            base_url=self.base_url,
            request_timeout=self.request_timeout,
            provider_limits=self.provider_limits,
        )


@dataclass(slots=True)
class RunSummary:
    """How an experiment ended, as written in its ``ExperimentCompleteEvent``."""

    experiment_id: str
    status: str
    reason: str | None = None
    error: str | None = None
    results: list[ConversationResult] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    """The automatic load of one run: loaded (or already loaded), or why not."""

    ok: bool
    db_path: Path | str | None  # a file, or a lake's label
    error: str | None = None
    detail: str = ""


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _print_log(message: str) -> None:
    # runner.log is a courtesy: on a full disk, failing to log must not stop the runner
    # from recording how the experiment ended.
    with contextlib.suppress(OSError):
        print(f"{_stamp()} {message}", flush=True)


def run_experiment(spec: ExperimentSpec, stop: StopRequest, *, log: Log = _print_log) -> RunSummary:
    """Create the experiment, run its conversations, complete it; returns how it ended."""
    from pidgin_events import Experiment

    experiment = Experiment.create(
        spec.root,
        name=spec.name,
        total_conversations=spec.conversations,
        config=spec.config(),
        experiment_id=spec.experiment_id,
    )
    summary = RunSummary(experiment.id, status="failed")

    def run() -> list[str] | None:
        _write_private(experiment.directory / PID_FILE, f"{os.getpid()}\n")
        if spec.launch_log:
            # The open descriptors follow the file; the launcher reads it by descriptor.
            with contextlib.suppress(OSError):
                os.replace(spec.launch_log, experiment.directory / RUNNER_LOG)
        log(
            f"started {experiment.id} ({spec.name}): "
            f"{plural(spec.conversations, 'conversation')} of "
            f"{spec.agent_a} vs {spec.agent_b}, {plural(spec.max_turns, 'turn')}, "
            f"{spec.max_parallel} at a time, seed {spec.seed}"
        )
        problems = _preflight(spec, log)
        if problems:
            summary.status, summary.reason = "failed", "provider_check"
            summary.error = "; ".join(problems)
            log(f"not starting any conversation: {summary.error}")
            experiment.complete("failed", reason="provider_check", error=summary.error)
            return None
        summary.results = _run_conversations(experiment, spec, stop, log)
        return [result.status for result in summary.results]

    return settle(experiment, summary, stop, log, run, what="run")


def _preflight(spec: ExperimentSpec, log: Log) -> list[str]:
    """What would fail every conversation (bad key, unknown model), found with one request."""
    from ._models import MODELS
    from ._providers import preflight

    spec.request_settings()  # applies --base-url and the timeout before the first client
    problems = preflight(spec.models, MODELS)
    if not problems:
        log(f"provider check passed for {' and '.join(spec.models)}")
    return problems


def _run_conversations(
    experiment: Experiment, spec: ExperimentSpec, stop: StopRequest, log: Log
) -> list[ConversationResult]:
    from ._workers import run_in_workers, worker_count

    workers = worker_count(spec.workers, spec.max_parallel, spec.conversations)
    if workers > 1 and spec.branch is None:  # a branch's conversations start in the runner
        log(f"{workers} worker processes share the conversations")
        return run_in_workers(experiment, spec, stop, log, workers)
    settings = spec.request_settings()

    def one(index: int) -> ConversationResult | None:
        if stop.is_set():
            return None  # never started: no log file, no start event
        plan = spec.plan(index)
        conversation = experiment.conversation(**plan.start_arguments())
        log(f"conversation {conversation.id} ({index + 1}/{spec.conversations}) started")
        resume = None
        if spec.branch is not None:
            from ._branch import start_branch

            try:
                resume = start_branch(conversation, plan, spec.branch)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log(f"conversation {conversation.id} could not branch: {error}")
                conversation.error(type(exc).__name__, str(exc), "branch")
                conversation.end("failed", reason="branch", error=error)
                return ConversationResult(conversation.id, "failed", "branch", 0, error=error)
        return run_logged(conversation, plan, stop, settings, log, resume=resume)

    jobs = [partial(one, index) for index in range(spec.conversations)]
    return run_pool(jobs, spec.max_parallel, stop)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(text)


# --- after the run ----------------------------------------------------------------------


def load_run(run_dir: Path, db_path: Path | None = None, *, log: Log = _print_log) -> LoadOutcome:
    """Load a finished run into DuckDB; on failure record why in the run directory.

    Never raises for a failed load: the outcome says what happened.
    """
    try:
        import pidgin_load
    except ImportError as exc:
        error = f"pidgin-load is not installed: {exc}"
        log(f"database load skipped: {error}")
        _record_without_loader(run_dir, error, db_path)
        return LoadOutcome(False, db_path, error)
    # Without a db_path, $PIDGIN_LOAD_TARGET may send the load to a lake (issue 16).
    target = db_path if db_path is not None else pidgin_load.default_target(run_dir)
    try:
        summary = pidgin_load.load_experiment(
            run_dir,
            db_path,  # None: $PIDGIN_LOAD_TARGET may name a lake
            allow_running=True,
            on_lock_wait=lambda message: log(LOCK_WAIT_LOG + message),
        )
        if summary.failed:
            raise pidgin_load.LoadError("; ".join(outcome.reason for outcome in summary.failed))
    except Exception as exc:
        error = str(exc) or type(exc).__name__
        log(f"database load failed: {error}")
        try:
            pidgin_load.record_load_failure(run_dir, exc, target)
        except Exception as record_exc:
            log(f"could not record the failed load: {record_exc}")
        return LoadOutcome(False, target, error)
    detail = str(summary)
    log(f"database load: {detail} into {target}")
    return LoadOutcome(True, target, None, detail)


def _record_without_loader(run_dir: Path, error: str, db_path: Path | None) -> None:
    """Without pidgin-load, write what its ``record_load_failure`` would, as best we can."""
    from pidgin_events import LOAD_FAILED_MARKER

    document = {
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "db_path": None if db_path is None else str(db_path),
        "error": error,
        "error_type": "ImportError",
    }
    with contextlib.suppress(OSError):
        _write_private(run_dir / LOAD_FAILED_MARKER, json.dumps(document, indent=2) + "\n")


def _emit_experiment_event(directory: Path, experiment_id: str, event: Any) -> None:
    """Append one event to experiment.jsonl with a fresh writer.

    A fresh writer per event: the loader appends its own ``DatabaseLoadEvent`` in between,
    and a writer opened earlier would not know about it and repeat its ``seq``.
    """
    from pidgin_events import EXPERIMENT_LOG, EventWriter

    with EventWriter(directory / EXPERIMENT_LOG, experiment_id=experiment_id) as writer:
        writer.emit(event)


def post_process(directory: Path, experiment_id: str, *, log: Log = _print_log) -> LoadOutcome:
    """The work after an experiment: its automatic database load, recorded as events."""
    from pidgin_events import PostProcessingCompleteEvent, PostProcessingStartEvent

    started = time.monotonic()
    try:
        _emit_experiment_event(
            directory,
            experiment_id,
            PostProcessingStartEvent(experiment_id=experiment_id, tasks=(LOAD_TASK,)),
        )
    except OSError as exc:
        log(f"could not record the start of post-processing: {exc}")
    outcome = load_run(directory, log=log)
    try:
        _emit_experiment_event(
            directory,
            experiment_id,
            PostProcessingCompleteEvent(
                experiment_id=experiment_id,
                tasks_completed=(LOAD_TASK,) if outcome.ok else (),
                tasks_failed=() if outcome.ok else (LOAD_TASK,),
                duration_ms=int((time.monotonic() - started) * 1000),
            ),
        )
    except OSError as exc:
        log(f"could not record the end of post-processing: {exc}")
    return outcome


# --- the process ------------------------------------------------------------------------


def _install_signal_handlers(stop: StopRequest) -> None:
    def request_stop(signum: int, _frame: object) -> None:
        stop.request(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    """Run the experiment described on stdin; exit status 0 unless the run itself failed."""
    del argv  # the spec comes on stdin; arguments are only there to show in ``ps``
    stop = StopRequest()
    _install_signal_handlers(stop)
    try:
        spec = ExperimentSpec.from_json(sys.stdin.read())
    except (ValueError, TypeError) as exc:
        _print_log(f"invalid experiment spec: {exc}")
        return 2
    if spec.resume:
        from ._resume import resume_experiment

        summary = resume_experiment(spec, stop)
    else:
        summary = run_experiment(spec, stop)
    # Whatever the status: what a failed or stopped run left is still worth querying.
    post_process(spec.directory, summary.experiment_id)
    return 1 if summary.status == "failed" and summary.error is not None else 0


if __name__ == "__main__":
    threading.current_thread().name = "runner"
    sys.exit(main(sys.argv[1:]))
