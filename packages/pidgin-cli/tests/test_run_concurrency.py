"""The runner and the model registry under threads: a stop with conversations queued, and
plugin models resolved by several conversations at once."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import pidgin_events as pe
from pidgin_cli._conductor import StopRequest
from pidgin_cli._models import MODELS, ChatMessage, ModelRegistry, Reply
from pidgin_cli._runner import ExperimentSpec, run_experiment


class _Answering:
    """A model that takes its time to answer, like a remote one; says when it is asked."""

    asked = threading.Event()

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        agent_id: str,
        temperature: float | None,
        seed: int | None = None,
    ) -> Reply:
        _Answering.asked.set()
        time.sleep(0.2)
        return Reply("a considered reply", 10, 3)


MODELS.register("test:answering", _Answering, description="answers after 0.2 s")


def test_stop_while_conversations_wait_for_a_slot(tmp_path: Path) -> None:
    """One runs, three wait: the stop interrupts the one and never starts the others."""
    spec = ExperimentSpec(
        root=str(tmp_path),
        experiment_id="exp_queued",
        name="queued",
        agent_a="test:answering",
        agent_b="test:answering",
        max_turns=1000,
        repetitions=4,
        max_parallel=1,
    )
    stop = StopRequest()
    _Answering.asked.clear()

    def stop_when_answering() -> None:
        assert _Answering.asked.wait(30)
        stop.request("SIGTERM")  # while the model answers: it ends at its next step

    stopper = threading.Thread(target=stop_when_answering)
    stopper.start()
    lines: list[str] = []
    summary = run_experiment(spec, stop, log=lines.append)
    stopper.join(30)
    assert (summary.status, summary.reason, summary.error) == ("interrupted", "SIGTERM", None)
    assert [result.status for result in summary.results] == ["interrupted"]
    directory = tmp_path / "experiments" / "exp_queued"
    assert len(list(directory.glob("*_events.jsonl"))) == 1, "waiting ones never start"
    complete = [
        event
        for event in pe.read_events(directory / pe.EXPERIMENT_LOG).events
        if isinstance(event, pe.ExperimentCompleteEvent)
    ]
    assert [(c.status, c.error) for c in complete] == [("interrupted", None)], lines


PLUGIN = """
import time

from pidgin_cli._models import Reply


class Plugged:
    def generate(self, messages, *, agent_id, temperature, seed=None):
        return Reply("plugged in", 1, 1)


def register(registry):
    time.sleep(0.3)  # an import that takes a while: the others must wait for it
    registry.register("race:plugged", Plugged, description="a plugin model")
"""


def test_plugin_models_resolve_from_many_threads_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = tmp_path / "pidgin_race_models-0.0.0.dist-info"
    info.mkdir()
    (tmp_path / "pidgin_race_models.py").write_text(PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pidgin-race-models\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[pidgin.models]\nrace = pidgin_race_models:register\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pidgin_race_models", raising=False)

    registry = ModelRegistry()
    threads = 6
    barrier = threading.Barrier(threads)
    found: list[str] = []
    failures: list[BaseException] = []

    def resolve() -> None:
        barrier.wait()
        try:
            found.append(registry.resolve("race:plugged").name)
        except BaseException as exc:  # collected: an assertion in a thread is lost
            failures.append(exc)

    workers = [threading.Thread(target=resolve) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert failures == []
    assert found == ["race:plugged"] * threads
    assert "race:plugged" in [model.name for model in registry.available()]
