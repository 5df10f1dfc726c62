"""``pidgin experiment resume``: an experiment that stopped or died goes on where it stood.

Each conversation is judged by the replay of its log (``pidgin_state.replay``):

- ended ``completed``: untouched;
- ended ``failed``: untouched, unless ``--retry-failed``: then it goes on like the next;
- ended ``interrupted``, or no end at all (killed, crashed, rebooted): it goes on in the
  same file. A turn it was in the middle of is recorded as discarded
  (``TurnDiscardedEvent``) and run again; a ``ConversationResumedEvent`` marks the
  resume; ``seq`` continues. Its models are sent the history the replay rebuilds, by the
  rule the conductor always uses, so they see exactly what they would have;
- never started (its index has no log): started, with the seed it would have had.

The experiment's log gets an ``ExperimentResumedEvent``, then a new
``ExperimentCompleteEvent`` counting every conversation; the database load follows as
after any run. The runner process does the work (``ExperimentSpec.resume``), started in
the background and followed like ``pidgin run``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pidgin_events import plural

from ._conductor import ConversationPlan, ConversationResult, StopRequest
from ._pool import Log, run_logged, run_pool
from ._prompting import Prompting
from ._runner import (
    PID_FILE,
    RUNNER_LOG,
    ExperimentSpec,
    RunSummary,
    _print_log,
    _write_private,
)
from ._settle import settle

if TYPE_CHECKING:
    from pidgin_events import Experiment
    from pidgin_state import Replay

__all__ = [
    "ResumePlan",
    "plan_from_config",
    "resume_experiment",
    "spec_for_resume",
    "survey",
]

_PLAN_FIELDS = frozenset(plan_field.name for plan_field in fields(ConversationPlan))


class ResumeError(Exception):
    """The experiment cannot be resumed; the message says why."""


def _start_event(directory: Path) -> dict[str, Any]:
    from pidgin_events import EXPERIMENT_LOG, LogReader

    if not (directory / EXPERIMENT_LOG).is_file():
        raise ResumeError(
            f"{directory.name} has no {EXPERIMENT_LOG}: pidgin did not run it "
            "(a pidgin-ai 1.x experiment, say), so it cannot go on with it"
        )
    for item in LogReader(directory / EXPERIMENT_LOG).events():
        if getattr(item, "event_type", None) == "ExperimentStartEvent":
            return {
                "name": getattr(item, "name", None),
                "total_conversations": getattr(item, "total_conversations", 0),
                "config": dict(getattr(item, "config", {}) or {}),
            }
        break
    raise ResumeError(f"{directory / EXPERIMENT_LOG}: no ExperimentStartEvent on its first line")


def spec_for_resume(root: Path, directory: Path, *, retry_failed: bool) -> ExperimentSpec:
    """The runner spec that resumes the experiment in ``directory``, from its start event."""
    start = _start_event(directory)
    config = start["config"]
    agent_a, agent_b = config.get("agent_a_model"), config.get("agent_b_model")
    if not (isinstance(agent_a, str) and isinstance(agent_b, str)):
        raise ResumeError(
            f"{directory.name}: its start event does not name both models "
            "(a pidgin-ai 1.x experiment or another tool's cannot be resumed by pidgin)"
        )
    optional = (
        "temperature_a",
        "temperature_b",
        "convergence_threshold",
        "max_cost",
        "request_timeout",
        "prompting",
    )
    return ExperimentSpec(
        root=str(root),
        experiment_id=directory.name,
        name=str(start["name"] or directory.name),
        agent_a=agent_a,
        agent_b=agent_b,
        max_turns=int(config.get("max_turns") or 0),
        repetitions=int(config.get("repetitions") or start["total_conversations"] or 0),
        max_parallel=int(config.get("max_parallel") or 1),
        initial_prompt=config.get("custom_prompt"),
        convergence_action=config.get("convergence_action") or "stop",
        seed=int(config.get("seed") or 0),
        context_policy=config.get("context_policy") or "truncate",
        base_url=config.get("base_url"),
        provider_limits=dict(config.get("provider_limits") or {}),
        resume=True,
        retry_failed=retry_failed,
        cell_plans=list(config.get("cell_plans") or []),
        **{key: config.get(key) for key in optional},
    )


def plan_from_config(config: Mapping[str, Any]) -> ConversationPlan:
    """The plan a conversation ran with, from the config its start event records."""
    known = {key: value for key, value in config.items() if key in _PLAN_FIELDS}
    if isinstance(known.get("prompting"), Mapping):  # recorded as plain data
        known["prompting"] = Prompting.from_dict(known["prompting"])
    return ConversationPlan(**known)


@dataclass(slots=True)
class ResumePlan:
    """What resuming an experiment will do to each of its conversations."""

    resume: list[tuple[Path, Replay]] = field(default_factory=list)
    """Logs to go on with, and their replays."""
    retried: list[str] = field(default_factory=list)
    """Of those, the failed ones (``--retry-failed``)."""
    untouched: dict[str, int] = field(default_factory=dict)
    """Conversations left as they ended, counted by status."""
    unreadable: list[str] = field(default_factory=list)
    """Logs that cannot be replayed, and why (left untouched, counted as failed)."""
    never_started: list[int] = field(default_factory=list)
    """Indices of conversations that have no log."""
    not_startable: int = 0
    """Conversations of a grid's cells that never started in a run recorded before the
    cells' plans were (``cell_plans`` in the start event): resume cannot start them."""


def survey(directory: Path, spec: ExperimentSpec) -> ResumePlan:
    """Judge every conversation of the experiment in ``directory``; see the module docstring."""
    from pidgin_events import conversation_id_of_log
    from pidgin_state import ReplayError, replay

    found = ResumePlan()
    started: set[int] = set()
    for path in sorted(directory.iterdir()):
        if conversation_id_of_log(path.name) is None:
            continue
        try:
            state = replay(path)
        except (ReplayError, OSError) as exc:
            found.unreadable.append(str(exc))
            found.untouched["failed"] = found.untouched.get("failed", 0) + 1
            continue
        seed = (state.start.get("config") or {}).get("seed")
        if isinstance(seed, int):
            started.add(seed - spec.seed)
        status = state.end_status
        if status == "completed" or (status == "failed" and not spec.retry_failed):
            found.untouched[status] = found.untouched.get(status, 0) + 1
            continue
        if status == "failed":
            found.retried.append(state.conversation_id or path.name)
        found.resume.append((path, state))
    planned = _start_event(directory)["total_conversations"] or spec.repetitions
    missing = [index for index in range(planned) if index not in started]
    if planned == spec.conversations:  # a grid's cells' plans are in its start event
        found.never_started = missing
    else:  # a grid run by a pidgin that did not record its cells' plans
        found.not_startable = len(missing)
    return found


def resume_experiment(
    spec: ExperimentSpec, stop: StopRequest, *, log: Log = _print_log
) -> RunSummary:
    """In the runner process: go on with the experiment ``spec`` names, then complete it."""
    from pidgin_events import Experiment, ExperimentResumedEvent

    directory = spec.directory
    found = survey(directory, spec)
    experiment = Experiment.reopen(
        directory, experiment_id=spec.experiment_id, name=spec.name, finished=found.untouched
    )
    summary = RunSummary(experiment.id, status="failed")

    def run() -> list[str]:
        resumed = tuple(state.conversation_id or path.name for path, state in found.resume)
        experiment.emit(
            ExperimentResumedEvent(
                experiment_id=experiment.id,
                resumed_conversations=resumed,
                retried_conversations=tuple(found.retried),
                new_conversations=len(found.never_started),
            )
        )
        _take_over_files(directory, spec)  # runner.pid last: the launcher waits for it
        log(
            f"resumed {experiment.id} ({spec.name}): {plural(len(resumed), 'conversation')} "
            f"to go on, {len(found.never_started)} never started, "
            f"{sum(found.untouched.values())} left as they ended"
        )
        if found.not_startable:
            log(
                f"{plural(found.not_startable, 'conversation')} of grid cells never started "
                "and are not started now: this run did not record its cells' plans"
            )
        for problem in found.unreadable:
            log(f"not resumed, its log cannot be replayed: {problem}")
        summary.results = _run(experiment, spec, found, stop, log)
        statuses = [result.status for result in summary.results]
        for status, count in found.untouched.items():
            statuses += [status] * count
        return statuses

    return settle(experiment, summary, stop, log, run, what="resumed run")


def _take_over_files(directory: Path, spec: ExperimentSpec) -> None:
    """Our pid in ``runner.pid``; the earlier ``runner.log`` kept as ``runner.<n>.log``."""
    with contextlib.suppress(OSError):
        earlier = directory / RUNNER_LOG
        if earlier.exists():
            number = 1
            while (directory / f"runner.{number}.log").exists():
                number += 1
            os.replace(earlier, directory / f"runner.{number}.log")
        if spec.launch_log:
            os.replace(spec.launch_log, earlier)
    _write_private(directory / PID_FILE, f"{os.getpid()}\n")


def _run(
    experiment: Experiment,
    spec: ExperimentSpec,
    found: ResumePlan,
    stop: StopRequest,
    log: Log,
) -> list[ConversationResult]:
    from pidgin_events import TurnDiscardedEvent
    from pidgin_state import replay

    settings = spec.request_settings()

    def go_on(path: Path, state: Replay) -> ConversationResult | None:
        if stop.is_set():
            return None
        conversation_id = state.conversation_id or path.name
        conversation = experiment.resume_conversation(
            conversation_id, turns_completed=state.turns_completed
        )
        if state.open_turn is not None:
            discarded = len(state.messages_of(state.open_turn))
            conversation.emit(
                TurnDiscardedEvent(
                    conversation_id=conversation_id,
                    turn_number=state.open_turn,
                    messages_discarded=discarded,
                )
            )
            log(
                f"conversation {conversation_id}: turn {state.open_turn + 1} was left half "
                f"done ({plural(discarded, 'message')}); discarded, it runs again"
            )
        again = replay(path)  # the log is the truth, discarded turn included
        plan = plan_from_config(state.start.get("config") or {})
        done = plural(again.turns_completed, "turn")
        log(f"conversation {conversation_id} resumed after {done}")
        return run_logged(conversation, plan, stop, settings, log, resume=again)

    def start(index: int) -> ConversationResult | None:
        if stop.is_set():
            return None
        plan = spec.plan(index)
        conversation = experiment.conversation(**plan.start_arguments())
        log(f"conversation {conversation.id} ({index + 1}/{spec.conversations}) started")
        return run_logged(conversation, plan, stop, settings, log)

    jobs = [partial(go_on, path, state) for path, state in found.resume]
    jobs += [partial(start, index) for index in found.never_started]
    return run_pool(jobs, spec.max_parallel, stop)
