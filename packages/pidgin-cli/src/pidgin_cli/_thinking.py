"""Extended thinking: which models may think, and the trace a reply brings back.

A model thinks when its catalogue entry lists the ``extended_thinking`` capability, or when
it is a built-in whose class says ``can_think = True`` (``local:drift`` writes a
deterministic trace, which keeps tests offline). Traces are recorded as
``ThinkingCompleteEvent`` before the message they precede and never join its text.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "THINKING_CAPABILITY",
    "ThinkingUnsupportedError",
    "Thought",
    "can_think",
    "check_can_think",
]

THINKING_CAPABILITY = "extended_thinking"


class ThinkingUnsupportedError(ValueError):
    """Thinking was asked of a model that cannot do it."""


@dataclass(frozen=True, slots=True)
class Thought:
    """One reasoning trace of a reply, as the provider returned it.

    ``signature`` is Anthropic's seal: the trace must go back with it, unchanged, in the
    agent's later requests.
    """

    content: str
    tokens: int | None = None
    signature: str | None = None


def can_think(model: str) -> bool:
    from ._models import MODELS
    from ._providers import entry_for

    entry = entry_for(model)
    if entry is not None:
        return THINKING_CAPABILITY in entry.capabilities
    return bool(getattr(MODELS.resolve(model).factory, "can_think", False))


_SHOWN = 6
"""Models named in the refusal of one that cannot think; the rest are counted."""


def check_can_think(model: str) -> None:
    """Refuse a model that cannot think, naming the ones of its provider that can.

    Only its own provider's (or the offline ones, for a model of neither): the whole
    catalogue would be dozens of names; 'pidgin models' marks every one.
    """
    if not can_think(model):
        from ._models import MODELS
        from ._providers import catalogue

        provider = model.partition(":")[0]
        offline = [info.name for info in MODELS.available() if can_think(info.name)]
        same = [
            entry.aliases[0] if entry.aliases else name
            for name, entry in catalogue().models.items()
            if entry.provider == provider and THINKING_CAPABILITY in entry.capabilities
        ]
        can = same or offline
        more = f" and {len(can) - _SHOWN} more" if len(can) > _SHOWN else ""
        raise ThinkingUnsupportedError(
            f"{model} cannot think (its catalogue entry lacks {THINKING_CAPABILITY!r}); "
            f"models that can: {', '.join(can[:_SHOWN])}{more} ('pidgin models' marks them all)"
        )
