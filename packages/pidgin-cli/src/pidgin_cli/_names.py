"""``--choose-names``: each agent picks its own name before the first turn.

Each agent is sent its awareness system prompt and the name request (``awareness.toml``'s
``[names] request``), outside the conversation's history. The name is read from the reply
(``read_name``), recorded as an ``AgentNameChosenEvent`` with the request and the reply,
and both names are then told to both agents in their system prompts. When two agents
pick the same name, each keeps it with its agent's letter (``Nova-A``, ``Nova-B``), as
displays do for two agents of the same model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pidgin_events import AgentNameChosenEvent

from ._awareness import name_wording
from ._models import ChatMessage, Reply

if TYPE_CHECKING:
    from ._conductor import _Driver
    from ._prompting import Prompting

__all__ = [
    "OFFLINE_NAMES",
    "choose_names",
    "is_name_request",
    "offline_name",
    "read_name",
    "told_names",
]

MAX_NAME = 24
_AGENTS = ("agent_a", "agent_b")
_NAME = r"([A-Za-z][\w'-]{1,23})"
_PHRASES = (
    rf"\b(?:call me|my name is|name me|i am|i'm|i'll be|i will be|i'll go by|i go by|"
    rf"i choose|i pick|i'll take|i select)\s+[\"'*_`\[]*{_NAME}",
    rf"\bname\s*[:=-]\s*[\"'*_`\[]*{_NAME}",
)
_QUOTED = re.compile(rf"[\"“*`\[]+{_NAME}[\"”*`\]]+")
_WORD = re.compile(_NAME)
_FILLER = frozenset({
    "a", "an", "the", "i", "im", "ill", "my", "name", "call", "me", "okay", "ok", "sure",
    "hello", "hi", "well", "yes", "alright", "here",
})  # fmt: skip

OFFLINE_NAMES = (
    "Nova", "Ember", "Quill", "Sable", "Orrin", "Lumen", "Wren", "Tamsin",
    "Cobalt", "Juniper", "Vesper", "Halcyon", "Marlo", "Isolde", "Rook", "Tiber",
)  # fmt: skip
"""What the offline models answer to a name request."""


def read_name(reply: str) -> str | None:
    """The name in an agent's answer to the name request, else None.

    Tried in order: a phrase that introduces a name ("Call me Nova", "My name is **Nova**",
    "Name: Nova"), a quoted, bold or bracketed word, then the first word of the reply that
    is not filler ("Sure! Nova." gives Nova). Names are 2-24 characters: letters, digits,
    ``'``, ``-`` and ``_``, starting with a letter.
    """
    text = reply.strip()
    for phrase in _PHRASES:
        match = re.search(phrase, text, re.IGNORECASE)
        if match:
            return _clean(match.group(1))
    match = _QUOTED.search(text)
    if match:
        return _clean(match.group(1))
    for match in _WORD.finditer(text):
        if match.group(1).lower().replace("'", "") not in _FILLER:
            return _clean(match.group(1))
    return None


def _clean(name: str) -> str:
    return name.strip("'-_")[:MAX_NAME]


def is_name_request(messages: Sequence[ChatMessage]) -> bool:
    """Whether ``messages`` is a name request (offline models answer it with a name)."""
    return bool(messages) and messages[-1].content == name_wording().request


def offline_name(agent_id: str, seed: int | None) -> str:
    """A deterministic name for an offline model: same agent and seed, same name."""
    import hashlib

    digest = hashlib.sha256(f"name|{seed}|{agent_id}".encode()).digest()
    return OFFLINE_NAMES[int.from_bytes(digest[:4], "big") % len(OFFLINE_NAMES)]


def told_names(names: Mapping[str, str], agent_id: str) -> str:
    """The sentence appended to ``agent_id``'s system prompt."""
    partner = "agent_b" if agent_id == "agent_a" else "agent_a"
    template = name_wording().told
    return template.replace("{self}", names[agent_id]).replace("{partner}", names[partner])


def choose_names(driver: _Driver, prompting: Prompting) -> dict[str, str]:
    """Ask both agents for a name, record each answer; ``agent_id -> name``."""
    conversation = driver.conversation
    request = name_wording().request
    replies: dict[str, str] = {}
    chosen: dict[str, str] = {}
    for agent in _AGENTS:
        driver.check_stop()
        system = prompting.prompts(agent).system
        messages = [ChatMessage("system", system)] if system else []
        messages.append(ChatMessage("user", request))
        reply = driver.generate(agent, 0, messages)
        driver.requester.spend(_cost(driver, agent, reply))
        replies[agent] = reply.content
        fallback = "Agent-A" if agent == "agent_a" else "Agent-B"
        chosen[agent] = read_name(reply.content) or fallback
    if chosen["agent_a"].lower() == chosen["agent_b"].lower():
        chosen = {agent: f"{chosen[agent]}-{agent[-1].upper()}" for agent in _AGENTS}
    for agent in _AGENTS:
        conversation.emit(
            AgentNameChosenEvent(
                conversation_id=conversation.id,
                agent_id=agent,
                chosen_name=chosen[agent],
                request=request,
                reply=replies[agent],
            )
        )
    return chosen


def _cost(driver: _Driver, agent: str, reply: Reply) -> float | None:
    from ._conductor import _cost as message_cost

    return message_cost(driver.plan.model(agent), reply)
