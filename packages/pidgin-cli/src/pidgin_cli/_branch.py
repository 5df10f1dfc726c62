"""``pidgin branch``: new conversations whose first N turns are another's, then their own.

A branch is a new experiment (its name given with ``-n`` or generated) of ``-r``
conversations. Each branch conversation's log begins like any other (start event with
its own plan, its system prompts), then records where it comes from
(``ConversationBranchedEvent``: parent conversation, branch turn, what changed), then
holds the parent's first N turns, rebuilt by replaying the parent's log: the same
messages, byte for byte, with zero tokens and no cost (they were not asked for again).
A ``--prompt`` is injected at the branch point (a ``PromptInjectionEvent`` per agent, as
the prompt-injection feature writes them). From turn N on the conductor goes on with the
branch's own models, temperatures and seed, its history being the replay of the branch's
own log, so what the models are sent is exactly what replay says.

The experiment's start event records ``branched_from`` (parent experiment, conversation
and turn); the loader puts ``parent_conversation_id`` and ``branch_turn`` on each
branch conversation's row.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pidgin_events import (
    CHATS_DIR,
    EXPERIMENTS_DIR,
    Conversation,
    ConversationBranchedEvent,
    conversation_id_of_log,
    event_from_dict,
    utc_now,
)

from ._conductor import AGENTS, ConversationPlan

if TYPE_CHECKING:
    from pidgin_state import Replay

__all__ = ["BranchError", "find_conversation", "start_branch"]

INJECTION_EVENT = "PromptInjectionEvent"


class BranchError(Exception):
    """The conversation cannot be branched as asked; the message says why."""


def find_conversation(root: Path, text: str) -> Path:
    """The log of the conversation ``text`` names (its id or a unique prefix) under ``root``."""
    found: dict[str, Path] = {}
    for kind in (EXPERIMENTS_DIR, CHATS_DIR):
        parent = root / kind
        if not parent.is_dir():
            continue
        for directory in parent.iterdir():
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                conversation_id = conversation_id_of_log(path.name)
                if conversation_id is not None and conversation_id.startswith(text):
                    if conversation_id == text:
                        return path
                    found[conversation_id] = path
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise BranchError(f"no conversation {text!r} under {root}")
    names = ", ".join(sorted(found)[:5])
    raise BranchError(f"{text!r} is the start of several conversations ({names}); give more")


def start_branch(
    conversation: Conversation, plan: ConversationPlan, branch: Mapping[str, Any]
) -> Replay:
    """Write the branch's opening into its just-started log; its replay, to go on from.

    ``branch``: ``log`` (the parent's log), ``turn`` (N), ``prompt`` (injected or None),
    ``changes`` (what differs from the parent, recorded).
    """
    from pidgin_state import replay

    parent = replay(branch["log"], until_turn=branch["turn"])
    turn = int(branch["turn"])
    if parent.turns_completed < turn:
        raise BranchError(
            f"{parent.conversation_id} has {parent.turns_completed} complete turns; "
            f"cannot branch at turn {turn}"
        )
    conversation.emit(
        ConversationBranchedEvent(
            conversation_id=conversation.id,
            source_conversation_id=parent.conversation_id or "",
            branch_point=turn,
            parameter_changes=dict(branch.get("changes") or {}),
        )
    )
    if plan.system_prompt:
        for agent in AGENTS:
            conversation.system_prompt(agent, plan.system_prompt)
    scores = iter(parent.scores)
    for number in range(turn):
        conversation.turn_start()
        for said in parent.messages_of(number):
            conversation.message(said.speaker, said.content)
        conversation.turn_complete(next(scores, None))
    prompt = branch.get("prompt")
    if prompt:
        for agent in AGENTS:
            conversation.emit(
                event_from_dict(
                    {
                        "event_type": INJECTION_EVENT,
                        "timestamp": utc_now().isoformat(),
                        "conversation_id": conversation.id,
                        "turn_number": turn,
                        "agent_id": agent,
                        "role": "user",
                        "content": prompt,
                    }
                )
            )
    return replay(conversation.path)
