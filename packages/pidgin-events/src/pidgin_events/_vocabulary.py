"""The words every package uses for a run: its kind, its format, how it stands.

One vocabulary for every screen (``pidgin experiment list/status``, ``pidgin monitor``),
for the StateBuilder and for the ``status`` columns of the database. pidgin-state decides
which word applies (``pidgin_state`` status rules); this module only says what the words
are. Imported on first use (see ``__init__``): agent code never needs ``typing``.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, get_args

__all__ = [
    "FINISHED_STATUSES",
    "RUN_FORMATS",
    "RUN_KINDS",
    "RUN_STATUSES",
    "ConversationStatus",
    "RunFormat",
    "RunKind",
    "RunStatus",
]

RunStatus: TypeAlias = Literal["running", "completed", "failed", "interrupted", "empty", "unknown"]
"""``running``: a writer may still add to it. ``completed``/``failed``/``interrupted``: it
ended so (``interrupted``: stopped, killed or crashed before its end). ``empty``: it ended
before anything was recorded. ``unknown``: the logs say something this version cannot read."""
ConversationStatus: TypeAlias = RunStatus
"""The same words for one conversation (``empty``: a log with no event and no live writer)."""
RunKind: TypeAlias = Literal["experiment", "chat"]
RunFormat: TypeAlias = Literal["pidgin", "pidgin-ai-1.x"]

RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
FINISHED_STATUSES: frozenset[RunStatus] = frozenset({"completed", "failed", "interrupted"})
"""Statuses of a run that ended with a verdict (``empty`` and ``unknown`` are not verdicts)."""
RUN_KINDS: tuple[RunKind, ...] = get_args(RunKind)
RUN_FORMATS: tuple[RunFormat, ...] = get_args(RunFormat)
