"""Events of what the agents are told beyond their system prompt (not in pidgin-ai 1.1).

Re-exported by ``_events``, whose catalogue they belong to.
"""

from __future__ import annotations

from ._events import ConversationEvent
from ._record import field

__all__ = ["AgentNameChosenEvent", "PromptInjectionEvent"]


class PromptInjectionEvent(ConversationEvent):
    """A prompt added to an agent's history mid-conversation (custom awareness files).

    Written before the request that first carries it; from then on it stays in that
    agent's history at this place (before the agent's message of ``turn_number``).
    ``role`` is ``system`` or ``user``; ``source`` says where it came from (the awareness
    file's path or preset name). Not in pidgin-ai 1.1, which wrote a ``SystemPromptEvent``.
    """

    event_type: str = field(default="PromptInjectionEvent", init=False)
    turn_number: int
    agent_id: str
    role: str
    content: str
    source: str | None = None


class AgentNameChosenEvent(ConversationEvent):
    """An agent chose its own name (``--choose-names``), before the first turn.

    ``request`` is the message that asked for the name (sent after the agent's system
    prompt, outside the conversation's history), ``reply`` what the agent answered and
    ``chosen_name`` the name read from it. Displays show the chosen name.
    """

    event_type: str = field(default="AgentNameChosenEvent", init=False)
    agent_id: str
    chosen_name: str
    request: str | None = None
    reply: str | None = None
