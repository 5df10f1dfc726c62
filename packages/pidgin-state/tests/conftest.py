"""Helpers for pidgin-state tests: real run directories written through pidgin_events.

Tests run with ``--import-mode=importlib``, so helpers reach them as the ``logs`` fixture.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

import pidgin_events as pe


def write_experiment(
    root: Path,
    *,
    experiment_id: str = "exp_test",
    conversations: int = 2,
    turns: int = 3,
    planned: int | None = None,
    message: str = "hello there",
) -> Path:
    """A finished experiment in our format; scores are ``0.1 * (turn + 1)``."""
    with pe.Experiment.create(
        root,
        name="test",
        total_conversations=conversations if planned is None else planned,
        experiment_id=experiment_id,
    ) as exp:
        for index in range(conversations):
            with exp.conversation(
                agent_a="model:a",
                agent_b="model:b",
                max_turns=turns,
                conversation_id=f"conv_{index:03d}",
            ) as conv:
                write_turns(conv, turns, message=message)
    return exp.directory


def write_turns(conv: pe.Conversation, turns: int, *, message: str = "hello there") -> None:
    for turn in range(turns):
        conv.turn_start()
        conv.request("agent_a", message_count=2 * turn + 1)
        conv.message("agent_a", message, prompt_tokens=10, completion_tokens=3)
        conv.request("agent_b", message_count=2 * turn + 2)
        conv.message("agent_b", message, prompt_tokens=20, completion_tokens=4)
        conv.turn_complete(convergence_score=round(0.1 * (turn + 1), 3))


def legacy_line(event_type: str, **fields: Any) -> bytes:
    """A line as pidgin-ai 1.1 wrote it: ``event_type`` near the end, no seq."""
    fields.setdefault("timestamp", "2026-01-01T00:00:00.000000+00:00")
    fields["event_type"] = event_type
    fields.setdefault("experiment_id", None)
    return orjson.dumps(fields) + b"\n"


def our_line(event: pe.Event, seq: int = 0) -> bytes:
    return pe.encode_event(event, seq=seq, event_id=f"e{seq}", experiment_id="exp_test")


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def conversation_events(conversation_id: str, turns: int, *, end: bool = True) -> bytes:
    """A whole conversation in our format, as bytes."""
    events: list[pe.Event] = [
        pe.ConversationStartEvent(
            conversation_id=conversation_id,
            agent_a_model="model:a",
            agent_b_model="model:b",
            max_turns=turns,
        )
    ]
    for turn in range(turns):
        events.append(pe.TurnStartEvent(conversation_id=conversation_id, turn_number=turn))
        for agent in ("agent_a", "agent_b"):
            events.append(
                pe.MessageCompleteEvent(
                    conversation_id=conversation_id,
                    agent_id=agent,
                    message=pe.Message(role="assistant", content="hi", agent_id=agent),
                    prompt_tokens=5,
                    completion_tokens=2,
                    total_tokens=7,
                    duration_ms=1,
                    turn_number=turn,
                )
            )
        events.append(
            pe.TurnCompleteEvent(
                conversation_id=conversation_id, turn_number=turn, convergence_score=0.5
            )
        )
    if end:
        events.append(
            pe.ConversationEndEvent(
                conversation_id=conversation_id, total_turns=turns, status="completed"
            )
        )
    return b"".join(our_line(event, seq) for seq, event in enumerate(events))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """An empty experiment directory (no run lock: nobody is writing)."""
    directory = tmp_path / "experiments" / "exp_test"
    directory.mkdir(parents=True)
    return directory


def set_mtime(path: Path, seconds_ago: float) -> None:
    import time

    when = time.time() - seconds_ago
    os.utime(path, (when, when))


class Logs:
    """The helpers above, as one object for the ``logs`` fixture."""

    write_experiment = staticmethod(write_experiment)
    write_turns = staticmethod(write_turns)
    legacy_line = staticmethod(legacy_line)
    our_line = staticmethod(our_line)
    append = staticmethod(append)
    conversation_events = staticmethod(conversation_events)
    set_mtime = staticmethod(set_mtime)


@pytest.fixture
def logs() -> type[Logs]:
    return Logs
