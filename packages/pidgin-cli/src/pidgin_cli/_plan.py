"""What decides how one conversation runs (its plan), and the flag that stops it.

Kept apart from ``_conductor`` (which re-exports all of it), so that the conductor holds
only the turn loop.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ._awareness import presets
from ._models import MODELS, ModelRegistry
from ._prompting import DEFAULT_AWARENESS, Prompting
from ._requests import ContextPolicy

__all__ = [
    "AGENTS",
    "BASIC_SYSTEM_PROMPT",
    "CONVERGENCE_ACTIONS",
    "ConvergenceAction",
    "ConversationPlan",
    "StopRequest",
    "agent_names",
]

AGENTS = ("agent_a", "agent_b")
BASIC_SYSTEM_PROMPT = presets()[DEFAULT_AWARENESS].system
"""The default ("basic" awareness) system prompt, given to both agents."""

ConvergenceAction = Literal["stop", "warn", "continue"]
CONVERGENCE_ACTIONS: tuple[ConvergenceAction, ...] = ("stop", "warn", "continue")


class StopRequest(threading.Event):
    """A ``threading.Event`` that also says why it was set (e.g. ``"SIGTERM"``)."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = "interrupted"

    def request(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
        self.set()


@dataclass(frozen=True, slots=True)
class ConversationPlan:
    """Everything that decides how one conversation runs; recorded in its config."""

    agent_a: str
    agent_b: str
    max_turns: int
    initial_prompt: str | None = None
    temperature_a: float | None = None
    temperature_b: float | None = None
    convergence_threshold: float | None = None
    convergence_action: ConvergenceAction = "stop"
    seed: int | None = None
    prompting: Prompting = field(default_factory=Prompting)
    """What each agent is told (awareness), whether it picks a name and thinks."""
    context_policy: ContextPolicy = "truncate"
    """When a view outgrows the model's context window: drop the oldest turns, or end."""
    retries: int = 5
    """How often a retryable ``ModelError`` is retried before the conversation fails."""
    retry_delay: float = 1.0
    """Seconds before the first retry; doubled for each further one, with jitter."""

    def temperature(self, agent_id: str) -> float | None:
        return self.temperature_a if agent_id == "agent_a" else self.temperature_b

    def model(self, agent_id: str) -> str:
        return self.agent_a if agent_id == "agent_a" else self.agent_b

    def config(self) -> dict[str, Any]:
        hidden = ("retries", "retry_delay", "prompting")
        config = {key: value for key, value in asdict(self).items() if key not in hidden}
        return {**config, **self.prompting.config(), "prompting": self.prompting.to_dict()}

    def start_arguments(self, registry: ModelRegistry = MODELS) -> dict[str, Any]:
        """Keyword arguments for ``Experiment.conversation`` / ``Chat.create``."""
        names = agent_names({agent: self.model(agent) for agent in AGENTS}, registry)
        agents = {}
        for agent_id in AGENTS:
            info = registry.resolve(self.model(agent_id))
            agents[agent_id] = {
                "id": agent_id,
                "model": info.name,
                "display_name": names[agent_id],
                "model_display_name": info.display_name,
                "temperature": self.temperature(agent_id),
            }
        return {
            "agent_a": agents["agent_a"],
            "agent_b": agents["agent_b"],
            "max_turns": self.max_turns,
            "initial_prompt": self.initial_prompt,
            "config": self.config(),
        }


def agent_names(models: Mapping[str, str], registry: ModelRegistry = MODELS) -> dict[str, str]:
    """Each agent's display name: its model's, with -A/-B when both run the same model."""
    same = models["agent_a"] == models["agent_b"]
    names = {}
    for agent_id, suffix in zip(AGENTS, ("A", "B"), strict=True):
        display = registry.resolve(models[agent_id]).display_name
        names[agent_id] = f"{display}-{suffix}" if same else display
    return names
