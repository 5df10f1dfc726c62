"""The entry point: ``StateBuilder``, cold (class methods) or incremental (an instance)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from pidgin_events import RUN_DIRS, output_root

from ._errors import NotAnExperimentError
from ._model import ExperimentState, RunKind
from ._status import DEFAULT_STALE_AFTER
from ._summaries import unlistable_state
from ._tracker import RunDirTracker, UnlistableRunError

__all__ = ["StateBuilder"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class StateBuilder:
    """Rebuilds experiment and chat state from their JSONL logs.

    One-off: ``StateBuilder.from_experiment_dir(path)``. To refresh every second, keep an
    instance: ``builder.experiment(path)`` then reads only the bytes appended to each log
    since the previous call, and returns the very same snapshot object when nothing
    changed. An instance is not thread-safe; use one per thread.

    Args:
        stale_after: seconds after which a conversation without an end event counts as
            interrupted when no signal tells whether its writer is alive (pidgin-ai 1.x
            runs without a pid file, a run lock that cannot be probed): its log must
            have been written, and its newest event written, within that time.
    """

    def __init__(self, *, stale_after: float = DEFAULT_STALE_AFTER) -> None:
        self.stale_after = stale_after
        self._trackers: dict[tuple[str, RunKind], RunDirTracker] = {}
        self._bytes_read_before = 0

    # --- cold ----------------------------------------------------------------------------

    @classmethod
    def from_experiment_dir(cls, path: str | os.PathLike[str]) -> ExperimentState:
        """The state of one experiment directory (ours or pidgin-ai 1.x).

        Raises:
            NotAnExperimentError: the path does not exist, is not a directory, cannot be
                listed, or holds no event log, ``manifest.json`` or run lock.
        """
        return cls().experiment(path)

    @classmethod
    def from_chat_dir(cls, path: str | os.PathLike[str]) -> ExperimentState:
        """The state of one chat directory, as a run of ``kind="chat"`` (id: the dir name)."""
        return cls().chat(path)

    @classmethod
    def from_output_root(cls, root: str | os.PathLike[str] | None = None) -> list[ExperimentState]:
        """Every experiment and chat under an output root, newest first."""
        return cls().output_root(root)

    # --- incremental ---------------------------------------------------------------------

    def experiment(self, path: str | os.PathLike[str]) -> ExperimentState:
        """Refresh one experiment directory; see ``from_experiment_dir``."""
        return self._refresh((os.path.abspath(path), "experiment"))

    def chat(self, path: str | os.PathLike[str]) -> ExperimentState:
        """Refresh one chat directory; see ``from_chat_dir``."""
        return self._refresh((os.path.abspath(path), "chat"))

    def output_root(self, root: str | os.PathLike[str] | None = None) -> list[ExperimentState]:
        """Refresh every run under ``root`` (default: ``$PIDGIN_OUTPUT`` or ``./pidgin_output``).

        Directories under ``experiments/`` and ``chats/`` that hold nothing of a run are
        left out; one that cannot be listed is shown with status ``unknown`` and why.
        A missing root gives an empty list.
        """
        base = os.path.abspath(output_root(root))
        parents = {}
        states: list[ExperimentState] = []
        seen: set[tuple[str, RunKind]] = set()
        for kind, folder in RUN_DIRS.items():
            parent = os.path.join(base, folder)
            parents[parent] = kind
            try:
                with os.scandir(parent) as listing:
                    entries = [e for e in listing if _is_dir(e)]
            except OSError:
                continue
            for entry in entries:
                key: tuple[str, RunKind] = (entry.path, kind)
                seen.add(key)
                try:
                    states.append(self._refresh(key))
                except UnlistableRunError as exc:
                    states.append(unlistable_state(entry.path, key[1], exc.reason))
                except NotAnExperimentError:
                    continue
        for key in [k for k in self._trackers if os.path.dirname(k[0]) in parents]:
            if key not in seen:
                self.forget(key[0])
        states.sort(key=_newest_first)
        return states

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop what is cached for a run directory (the next call reads it from scratch)."""
        absolute = os.path.abspath(path)
        for key in [k for k in self._trackers if k[0] == absolute]:
            self._bytes_read_before += self._trackers.pop(key).bytes_read

    @property
    def bytes_read(self) -> int:
        """Bytes read from logs by this builder so far (to see that a refresh read nothing)."""
        return self._bytes_read_before + sum(t.bytes_read for t in self._trackers.values())

    def _refresh(self, key: tuple[str, RunKind]) -> ExperimentState:
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = RunDirTracker(key[0], key[1], self.stale_after)
        try:
            state = tracker.refresh()
        except NotAnExperimentError:
            self.forget(key[0])
            raise
        self._trackers[key] = tracker
        return state


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows a symlink: experiments may live on another disk
    except OSError:
        return False


def _newest_first(state: ExperimentState) -> tuple[float, str]:
    timing = state.timing
    when = timing.created or timing.started or timing.last_event or _EPOCH
    return (-when.timestamp(), state.id)
