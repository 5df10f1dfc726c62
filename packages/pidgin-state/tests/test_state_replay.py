"""``pidgin_state.replay``: the history each model was sent, rebuilt from real logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pidgin_events as pe
from pidgin_state import (
    CONTRIBUTIONS,
    ChatLine,
    Replay,
    ReplayError,
    StateBuilder,
    agent_view,
    contributes,
    replay,
)

SYSTEM = "You are an AI having a conversation with another AI."


def test_every_request_pidgin_ai_recorded_is_what_replay_rebuilds(legacy_fixtures: Path) -> None:
    """pidgin-ai 1.x put the shared history into each ``MessageRequestEvent``: compare."""
    compared = 0
    for path in sorted(legacy_fixtures.glob("*/events_conv_*.jsonl")):
        state = replay(path)
        for event in pe.read_events(path).events:
            if not isinstance(event, pe.MessageRequestEvent) or not event.conversation_history:
                continue
            # pidgin-ai recorded the shared history; its providers made the agent's roles.
            sent = [
                (
                    message.role
                    if message.role == "system"
                    else "assistant"
                    if message.agent_id == event.agent_id
                    else "user",
                    message.content,
                )
                for message in event.conversation_history
            ]
            rebuilt = state.view(event.agent_id, event.turn_number)
            assert [(line.role, line.content) for line in rebuilt] == sent, (path, event.seq)
            compared += 1
    assert compared >= 200


def _conversation(root: Path, turns: int = 3) -> tuple[pe.Experiment, pe.Conversation]:
    experiment = pe.Experiment.create(root, name="replayed", total_conversations=1)
    conversation = experiment.conversation(
        agent_a="model:a", agent_b="model:b", initial_prompt="Hello", max_turns=turns
    )
    for agent in ("agent_a", "agent_b"):
        conversation.system_prompt(agent, SYSTEM)
    return experiment, conversation


def _turn(conversation: pe.Conversation, number: int) -> None:
    conversation.turn_start()
    conversation.message("agent_a", f"a{number}", prompt_tokens=10, completion_tokens=2)
    conversation.message("agent_b", f"b{number}", prompt_tokens=11, completion_tokens=3)
    conversation.turn_complete(0.1 * number)


def test_views_follow_turns_truncation_and_injections(tmp_path: Path) -> None:
    experiment, conversation = _conversation(tmp_path)
    _turn(conversation, 0)
    _turn(conversation, 1)
    conversation.emit(  # as the prompt-injection feature writes it; unknown to this version
        pe.event_from_dict(
            {
                "event_type": "PromptInjectionEvent",
                "timestamp": pe.utc_now().isoformat(),
                "conversation_id": conversation.id,
                "turn_number": 2,
                "agent_id": "agent_b",
                "role": "user",
                "content": "Only B hears this.",
            }
        )
    )
    conversation.emit(
        pe.ContextTruncationEvent(
            conversation_id=conversation.id,
            agent_id="agent_b",
            provider="p",
            model="model:b",
            turn_number=2,
            original_message_count=8,
            truncated_message_count=5,
            messages_dropped=3,
        )
    )
    _turn(conversation, 2)
    conversation.end()
    experiment.complete()
    state = replay(conversation.path)

    def lines(*pairs: tuple[str, str]) -> list[ChatLine]:
        return [ChatLine(role, content) for role, content in pairs]

    assert state.view("agent_a", 0) == lines(("system", SYSTEM), ("user", "Hello"))
    assert state.view("agent_b", 0) == lines(("system", SYSTEM), ("user", "Hello"), ("user", "a0"))
    assert state.view("agent_a", 2) == lines(
        ("system", SYSTEM),
        ("user", "Hello"),
        ("assistant", "a0"),
        ("user", "b0"),
        ("assistant", "a1"),
        ("user", "b1"),
    )
    # B's request of turn 2: the injection, then A's reply, less the three oldest messages.
    assert state.view("agent_b", 2) == lines(
        ("system", SYSTEM),
        ("user", "a1"),
        ("assistant", "b1"),
        ("user", "Only B hears this."),
        ("user", "a2"),
    )
    assert state.turns_completed == 3
    assert state.end_status == "completed"
    assert state.scores == [0.0, 0.1, 0.2]


def test_the_runner_rule_and_the_replay_are_one_function(tmp_path: Path) -> None:
    experiment, conversation = _conversation(tmp_path)
    _turn(conversation, 0)
    conversation.end()
    experiment.complete()
    state = replay(conversation.path)
    history = state.history_before(1)
    assert state.view("agent_a", 1) == agent_view(SYSTEM, history, "agent_a")


def test_a_discarded_half_turn_is_gone_from_history_state_and_counts(tmp_path: Path) -> None:
    experiment, conversation = _conversation(tmp_path, turns=4)
    _turn(conversation, 0)
    conversation.turn_start()
    conversation.message("agent_a", "half", prompt_tokens=50, completion_tokens=5)
    directory = conversation.path.parent
    # Killed here: no end. A torn last line too, as a crash mid-write leaves it.
    conversation._writer.close()
    with conversation.path.open("ab") as stream:
        stream.write(b'{"event_type":"MessageCompleteEvent","conv')
    state = replay(conversation.path)
    assert state.open_turn == 1
    assert [said.content for said in state.messages_of(1)] == ["half"]

    again = pe.Experiment.reopen(directory, experiment_id=experiment.id, name=experiment.name)
    resumed = again.resume_conversation(conversation.id, turns_completed=1)
    resumed.emit(pe.TurnDiscardedEvent(conversation_id=conversation.id, turn_number=1))
    _turn(resumed, 1)
    resumed.end()
    again.complete()

    state = replay(conversation.path)
    assert [said.content for said in state.history] == ["Hello", "a0", "b0", "a1", "b1"]
    assert state.turns_completed == 2
    assert state.end_status == "completed"
    seqs = [event.seq for event in pe.read_events(conversation.path).events]
    assert seqs == list(range(len(seqs)))

    built = StateBuilder().experiment(directory)
    (conv,) = built.conversations.values()
    assert conv.turns_completed == 2
    assert conv.message_count == 4
    assert conv.tokens["agent_a"].prompt == 20
    assert conv.status == "completed"
    assert built.status == "completed"


def test_an_unreadable_line_inside_the_history_is_refused(tmp_path: Path) -> None:
    experiment, conversation = _conversation(tmp_path)
    _turn(conversation, 0)
    conversation._writer.close()
    with conversation.path.open("ab") as stream:
        stream.write(b"not json\n")
    again = pe.Experiment.reopen(
        conversation.path.parent, experiment_id=experiment.id, name=experiment.name
    )
    writer = pe.EventWriter(conversation.path, experiment_id=experiment.id)
    writer.emit(pe.TurnStartEvent(conversation_id=conversation.id, turn_number=1))
    writer.close()
    with pytest.raises(ReplayError, match=rf"{conversation.path.name}:\d+"):
        replay(conversation.path)
    again.complete()


def test_a_new_event_type_is_one_registered_function(tmp_path: Path) -> None:
    experiment, conversation = _conversation(tmp_path)
    conversation.emit(
        pe.event_from_dict(
            {
                "event_type": "NoteEvent",
                "timestamp": pe.utc_now().isoformat(),
                "conversation_id": conversation.id,
                "text": "a researcher's note",
            }
        )
    )
    conversation.end()
    experiment.complete()
    assert [said.speaker for said in replay(conversation.path).history] == ["human"]

    @contributes("NoteEvent")
    def note(state: Replay, event: pe.Event) -> None:
        state.system_prompts["agent_a"] += " " + event.extra["text"]

    try:
        assert replay(conversation.path).view("agent_a", 0)[0].content == (
            f"{SYSTEM} a researcher's note"
        )
    finally:
        del CONTRIBUTIONS["NoteEvent"]


def test_not_a_conversation_log(tmp_path: Path) -> None:
    path = tmp_path / "x_events.jsonl"
    path.write_bytes(b"")
    with pytest.raises(ReplayError, match="no ConversationStartEvent"):
        replay(path)
    assert os.path.exists(path)
