"""What the server knows about an output root: live run states and transcripts, from JSONL.

Nothing here opens DuckDB (that is ``_history``): everything live comes from the logs,
through the StateBuilder and ``TranscriptReader``, like every other display of Pidgin.

Two StateBuilders, since one is not thread-safe and the jobs differ: the *scan* builder
refreshes the whole root, in the request thread the first time and then in one
background thread at most, never more often than every ``scan_interval`` seconds nor
busier than a third of a core (the next scan waits twice as long as the last one took);
requests read the newest finished scan and never wait for the next. The *detail* builder
refreshes the one run a page or a stream is looking at, so that is always current.
Transcripts are kept for the ``transcript_cache`` most recently viewed conversations.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._transcript import Transcript, TranscriptReader
from ._pages import conversation_url

if TYPE_CHECKING:
    from pidgin_load import ReadTarget
    from pidgin_state import ConversationState, ExperimentState

__all__ = ["Catalog", "SearchHit"]

SEARCH_LIMIT = 200


@dataclass(frozen=True, slots=True)
class SearchHit:
    experiment_id: str
    experiment_name: str
    conversation_id: str
    index: int
    turn: int
    agent_id: str
    agent_name: str
    content: str
    url: str
    """The conversation page, at this message."""


class Catalog:
    """Live state of every run under ``root``, refreshed incrementally from the logs."""

    def __init__(
        self,
        root: Path,
        *,
        scan_interval: float = 1.0,
        transcript_cache: int = 64,
        history: ReadTarget | None = None,
    ) -> None:
        from pidgin_state import StateBuilder

        self.root = root
        self.history = history
        """Where finished runs are read (``_history``): None for each run's local database."""
        self.scan_interval = scan_interval
        self._scan_builder = StateBuilder()
        self._scan_lock = threading.Lock()
        self._scan_thread: threading.Thread | None = None
        self._runs: list[ExperimentState] = []
        self._by_id: dict[str, ExperimentState] = {}
        self._next_scan = 0.0
        self._scanned = False
        self._detail_builder = StateBuilder()
        self._detail_lock = threading.Lock()
        self._readers: OrderedDict[Path, TranscriptReader] = OrderedDict()
        self._readers_lock = threading.Lock()
        self._transcript_cache = transcript_cache

    # --- the whole root ------------------------------------------------------------------

    def runs(self) -> list[ExperimentState]:
        """Every run, newest first, as of the newest scan (the first call scans)."""
        if not self._scanned:
            self._scan()
        elif time.monotonic() >= self._next_scan:
            self._scan_in_background()
        return self._runs

    def scan_now(self) -> list[ExperimentState]:
        """Scan in this thread, now (for tests and benchmarks that need a known state)."""
        self._scan()
        return self._runs

    def _scan(self) -> None:
        with self._scan_lock:
            started = time.monotonic()
            runs = self._scan_builder.output_root(self.root) if self.root.is_dir() else []
            by_id: dict[str, ExperimentState] = {}
            for state in runs:
                by_id.setdefault(state.directory.name, state)
            for state in runs:
                by_id.setdefault(state.id, state)  # the id wins over another run's dir name
            self._runs, self._by_id, self._scanned = runs, by_id, True
            took = time.monotonic() - started
            self._next_scan = time.monotonic() + max(self.scan_interval, 2 * took)

    def _scan_in_background(self) -> None:
        if self._scan_thread is not None and self._scan_thread.is_alive():
            return
        self._scan_thread = threading.Thread(target=self._scan, name="pidgin-serve-scan")
        self._scan_thread.daemon = True
        self._scan_thread.start()

    # --- one run -------------------------------------------------------------------------

    def experiment(self, run_id: str) -> ExperimentState | None:
        """One run by id or directory name, refreshed now; None if there is none such."""
        from pidgin_state import NotAnExperimentError

        known = self._by_id.get(run_id)
        if known is None:
            self.runs()
            known = self._by_id.get(run_id)
            if known is None:
                return None
        with self._detail_lock:
            try:
                if known.kind == "chat":
                    return self._detail_builder.chat(known.directory)
                return self._detail_builder.experiment(known.directory)
            except NotAnExperimentError:
                return None

    def conversation(
        self, run_id: str, conversation_id: str
    ) -> tuple[ExperimentState, ConversationState, Transcript] | None:
        """A conversation's live state and transcript, or None if either id is unknown."""
        state = self.experiment(run_id)
        if state is None:
            return None
        conversation = state.conversations.get(conversation_id)
        if conversation is None:
            return None
        return state, conversation, self.reader(conversation).refresh()

    def reader(self, conversation: ConversationState) -> TranscriptReader:
        """The transcript reader of a conversation, kept for the most recently viewed ones."""
        path = conversation.log_path
        with self._readers_lock:
            reader = self._readers.get(path)
            if reader is None:
                reader = TranscriptReader(conversation.id, path)
                self._readers[path] = reader
                while len(self._readers) > self._transcript_cache:
                    self._readers.popitem(last=False)
            else:
                self._readers.move_to_end(path)
            return reader

    # --- search --------------------------------------------------------------------------

    def search(self, text: str, *, run_id: str | None = None, first: int = 50) -> list[SearchHit]:
        """Messages containing ``text`` (case-insensitive), newest runs first.

        Each log is first matched as bytes, so only logs that contain the text are parsed.
        """
        import orjson

        wanted = text.casefold()
        if not wanted.strip():
            return []
        # The text as it appears inside a JSON string, for the byte-level pre-filter; it
        # is exact for ASCII only (bytes.lower leaves other letters alone).
        needle = orjson.dumps(wanted)[1:-1] if wanted.isascii() else None
        runs = self.runs()
        if run_id is not None:
            runs = [s for s in runs if run_id in (s.id, s.directory.name)]
        hits: list[SearchHit] = []
        for state in runs:
            for conversation in state.conversations.values():
                if needle is not None and not _contains(conversation.log_path, needle):
                    continue
                transcript = TranscriptReader(conversation.id, conversation.log_path).refresh()
                page = conversation_url(state.id, conversation.id)
                for message in transcript.messages:
                    if not message.discarded and wanted in message.content.casefold():
                        hits.append(
                            SearchHit(
                                experiment_id=state.id,
                                experiment_name=state.name,
                                conversation_id=conversation.id,
                                index=message.index,
                                turn=message.turn,
                                agent_id=message.agent_id,
                                agent_name=transcript.name_of(message.agent_id),
                                content=message.content,
                                url=f"{page}#m{message.index}",
                            )
                        )
                        if len(hits) >= first:
                            return hits
        return hits


def _contains(path: Path, needle: bytes) -> bool:
    from pidgin_events import open_log

    try:
        with open_log(path) as stream:
            return needle in stream.read().lower()
    except (OSError, RuntimeError):  # RuntimeError: a .zst log without zstandard
        return False
