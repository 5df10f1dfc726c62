"""``--tail``: the raw events of a run, printed as they are appended (pidgin-ai's ``--tail``).

Each log is followed by its own ``LogReader`` kept for the session, so a refresh reads only
what was appended. Lines are printed as written, one per line, except that characters a
terminal would obey (any that JSON leaves unescaped, in a line another program wrote) are
shown as escapes by ``safe_text``. A torn last line waits for its newline.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pidgin_events import EXPERIMENT_LOG, LogReader

from ._output import safe_text
from ._transcript_view import pick_conversation

if TYPE_CHECKING:
    from pidgin_state import ExperimentState

__all__ = ["TailDisplay"]


class TailDisplay:
    """An ``AttachDisplay`` printing every appended event line of the run (or of one
    conversation, with ``conversation``)."""

    done: str | None = None

    def __init__(self, directory: Path, conversation: str | None) -> None:
        self.directory = directory
        self.wanted = conversation
        self.readers: dict[Path, LogReader] = {}

    def update(self, state: ExperimentState) -> None:
        out: list[str] = []
        for path in self._logs(state):
            reader = self.readers.get(path)
            if reader is None:
                reader = self.readers[path] = LogReader(path)
            try:
                out.extend(safe_text(raw.decode("utf-8", "replace")) for _, raw in reader.lines())
            except FileNotFoundError:
                continue
        if out:
            click.echo("\n".join(out))
            sys.stdout.flush()

    def _logs(self, state: ExperimentState) -> list[Path]:
        if self.wanted is not None:
            if not state.conversations:
                return []
            chosen = state.conversations[pick_conversation(state, self.wanted)]
            return [Path(chosen.log_path)]
        logs = [Path(c.log_path) for c in state.conversations.values()]
        experiment_log = self.directory / EXPERIMENT_LOG
        first = [experiment_log] if experiment_log.exists() else []
        return first + sorted(logs)

    def close(self) -> None:
        sys.stdout.flush()

    def summary(self, state: ExperimentState) -> None:
        from ._render_attach import summary_line

        click.echo(summary_line(state), err=True)
