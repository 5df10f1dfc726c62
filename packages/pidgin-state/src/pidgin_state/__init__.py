"""Live state of Pidgin experiments and chats, rebuilt from their JSONL event logs.

``StateBuilder.from_experiment_dir(path)`` gives an ``ExperimentState``; a
``StateBuilder`` kept across calls refreshes incrementally (only appended bytes are
read). Reads logs written by ``pidgin_events`` and by pidgin-ai 1.x; depends on
pidgin-events only.
"""

from __future__ import annotations

from typing import Any

from ._builder import StateBuilder
from ._errors import NotAnExperimentError
from ._model import (
    Convergence,
    ConvergenceWarning,
    ConversationState,
    ConversationStatus,
    DatabaseState,
    ErrorInfo,
    ExperimentState,
    Progress,
    RunFormat,
    RunKind,
    RunStatus,
    Timing,
    TokenCount,
    TokenTotals,
    to_jsonable,
)
from ._replay import (
    COLD_START,
    CONTRIBUTIONS,
    ChatLine,
    Replay,
    ReplayError,
    Said,
    agent_view,
    contributes,
    replay,
    replay_events,
)
from ._status import DEFAULT_STALE_AFTER

__all__ = [
    "COLD_START",
    "CONTRIBUTIONS",
    "DEFAULT_STALE_AFTER",
    "ChatLine",
    "Convergence",
    "ConvergenceWarning",
    "ConversationState",
    "ConversationStatus",
    "DatabaseState",
    "ErrorInfo",
    "ExperimentState",
    "NotAnExperimentError",
    "Progress",
    "Replay",
    "ReplayError",
    "RunFormat",
    "RunKind",
    "RunStatus",
    "Said",
    "StateBuilder",
    "Timing",
    "TokenCount",
    "TokenTotals",
    "agent_view",
    "contributes",
    "replay",
    "replay_events",
    "to_jsonable",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("pidgin-state")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
