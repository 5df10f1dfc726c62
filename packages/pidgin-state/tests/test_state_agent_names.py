"""``AgentNameChosenEvent``s reach ``ConversationState.agent_a_name``/``agent_b_name``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pidgin_events as pe
from pidgin_state import StateBuilder


def _name(conv: pe.Conversation, agent: str, name: str) -> None:
    conv.emit(pe.AgentNameChosenEvent(conversation_id=conv.id, agent_id=agent, chosen_name=name))


def test_chosen_names_are_read_while_live_and_after(tmp_path: Path, logs: Any) -> None:
    with pe.Experiment.create(tmp_path, name="named", total_conversations=2) as exp:
        builder = StateBuilder()
        with exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=2) as named:
            _name(named, "agent_a", "Nova")
            (live,) = builder.experiment(exp.directory).conversations.values()
            assert (live.agent_a_name, live.agent_b_name) == ("Nova", None)
            _name(named, "agent_b", "Wren <b>")  # data, displayed neutralised by the CLI
            logs.write_turns(named, 2)
        with exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=1) as plain:
            logs.write_turns(plain, 1)
    state = StateBuilder.from_experiment_dir(exp.directory)
    names = {c.id: (c.agent_a_name, c.agent_b_name) for c in state.conversations.values()}
    assert names == {named.id: ("Nova", "Wren <b>"), plain.id: (None, None)}
    assert state.problems == ()


def test_a_name_event_without_its_name_is_a_problem(tmp_path: Path, logs: Any) -> None:
    with (
        pe.Experiment.create(tmp_path, name="broken", total_conversations=1) as exp,
        exp.conversation(agent_a="m:a", agent_b="m:b", max_turns=1) as conv,
    ):
        logs.write_turns(conv, 1)
        log = conv.path
    with open(log, "ab") as stream:
        stream.write(
            b'{"event_type":"AgentNameChosenEvent","timestamp":"2026-01-01T00:00:00+00:00",'
            b'"conversation_id":"' + conv.id.encode() + b'","agent_id":"agent_a"}\n'
        )
    state = StateBuilder.from_experiment_dir(exp.directory)
    (conversation,) = state.conversations.values()
    assert conversation.agent_a_name is None
    assert any("chosen_name" in problem for problem in state.problems)
