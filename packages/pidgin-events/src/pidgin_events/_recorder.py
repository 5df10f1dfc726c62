"""The API agent code uses: experiments and conversations that log themselves correctly.

Start and end events are written for you; leaving a ``with`` block through an exception
ends the conversation as ``failed`` (``interrupted`` for Ctrl-C) with the error recorded.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from ._events import (
    ConversationEndEvent,
    ConversationResumedEvent,
    ConversationStartEvent,
    ErrorEvent,
    Event,
    ExperimentCompleteEvent,
    ExperimentStartEvent,
    Message,
    MessageCompleteEvent,
    MessageRequestEvent,
    SystemPromptEvent,
    TurnCompleteEvent,
    TurnStartEvent,
)
from ._fileio import make_private_dir
from ._ids import new_id, validate_id
from ._layout import EXPERIMENT_LOG, EXPERIMENTS_DIR, conversation_log_path, output_root
from ._liveness import RunLock
from ._time import utc_now
from ._writer import EventWriter, FsyncPolicy

TYPE_CHECKING = False  # typing costs agent code milliseconds at import
if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime
    from types import TracebackType
    from typing import Any

__all__ = ["Conversation", "Experiment"]

_INTERRUPTS = (KeyboardInterrupt, SystemExit, GeneratorExit)


def _agent(agent: str | Mapping[str, Any], agent_id: str) -> dict[str, Any]:
    if isinstance(agent, str):
        return {"id": agent_id, "model": agent, "display_name": None, "temperature": None}
    described = dict(agent)
    described.setdefault("id", agent_id)
    return described


class Conversation:
    """One conversation's event log. Use it as a context manager; see ``Experiment``."""

    def __init__(
        self,
        directory: Path,
        *,
        conversation_id: str,
        agent_a: str | Mapping[str, Any],
        agent_b: str | Mapping[str, Any],
        experiment_id: str | None = None,
        max_turns: int | None = None,
        initial_prompt: str | None = None,
        config: Mapping[str, Any] | None = None,
        fsync: FsyncPolicy = "close",
        lock: RunLock | None = None,
        on_end: Any = None,
        resume_at: int | None = None,
    ) -> None:
        """``resume_at``: reopen an existing log to go on at that turn (see ``resume``)."""
        self.id = validate_id(conversation_id, "conversation id")
        self.directory = directory
        self.experiment_id = experiment_id
        self.path = conversation_log_path(directory, self.id)
        self.turns_completed = 0
        self.status: str | None = None
        self._turn: int | None = None
        self._started = time.monotonic()
        self._lock = lock
        self._on_end = on_end
        self._writer = EventWriter(self.path, experiment_id=experiment_id, fsync=fsync)
        if resume_at is not None:
            self.turns_completed = resume_at
            self.emit(ConversationResumedEvent(conversation_id=self.id, turn_number=resume_at))
            return
        a, b = _agent(agent_a, "agent_a"), _agent(agent_b, "agent_b")
        config = dict(config or {})
        self.emit(
            ConversationStartEvent(
                conversation_id=self.id,
                agent_a=a,
                agent_b=b,
                config=config,
                agent_a_model=a.get("model"),
                agent_b_model=b.get("model"),
                agent_a_display_name=a.get("display_name"),
                agent_b_display_name=b.get("display_name"),
                temperature_a=a.get("temperature"),
                temperature_b=b.get("temperature"),
                max_turns=max_turns,
                initial_prompt=initial_prompt,
            )
        )

    @property
    def ended(self) -> bool:
        return self.status is not None

    def emit(self, event: Event) -> int:
        """Append any event to this conversation's log; returns its ``seq``."""
        return self._writer.emit(event)

    def system_prompt(self, agent_id: str, prompt: str) -> None:
        self.emit(SystemPromptEvent(conversation_id=self.id, agent_id=agent_id, prompt=prompt))

    def turn_start(self) -> int:
        """Begin the next turn (numbered from 0) and return its number."""
        self._turn = self.turns_completed
        self.emit(TurnStartEvent(conversation_id=self.id, turn_number=self._turn))
        return self._turn

    def request(self, agent_id: str, *, message_count: int, **options: Any) -> None:
        """Record that ``agent_id`` was asked for a message carrying ``message_count`` messages."""
        self.emit(
            MessageRequestEvent(
                conversation_id=self.id,
                agent_id=agent_id,
                turn_number=self._current_turn(),
                message_count=message_count,
                **options,
            )
        )

    def message(
        self,
        agent_id: str,
        content: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        duration_ms: int = 0,
        role: str = "assistant",
        timestamp: datetime | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        request_id: str | None = None,
        model_version: str | None = None,
        stop_reason: str | None = None,
        cost_usd: float | None = None,
    ) -> Message:
        """Record a complete message from ``agent_id`` and return it.

        The keywords after ``timestamp`` are what a provider's API reports about the
        reply; leave them out for models that report nothing.
        """
        message = Message(
            role=role, content=content, agent_id=agent_id, timestamp=timestamp or utc_now()
        )
        self.emit(
            MessageCompleteEvent(
                conversation_id=self.id,
                agent_id=agent_id,
                message=message,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
                duration_ms=duration_ms,
                turn_number=self._turn,
                cache_read_tokens=cache_read_tokens,
                cache_write_tokens=cache_write_tokens,
                request_id=request_id,
                model_version=model_version,
                stop_reason=stop_reason,
                cost_usd=cost_usd,
            )
        )
        return message

    def turn_complete(self, convergence_score: float | None = None) -> None:
        """End the current turn, with its convergence score if one was computed."""
        self.emit(
            TurnCompleteEvent(
                conversation_id=self.id,
                turn_number=self._current_turn(),
                convergence_score=convergence_score,
            )
        )
        self.turns_completed += 1
        self._turn = None

    def error(self, error_type: str, error_message: str, context: str | None = None) -> None:
        self.emit(
            ErrorEvent(
                conversation_id=self.id,
                error_type=error_type,
                error_message=error_message,
                context=context,
            )
        )

    def end(
        self, status: str = "completed", *, reason: str | None = None, error: str | None = None
    ) -> None:
        """Write the end event and close the log. Later calls do nothing."""
        if self.status is not None:
            return
        self.status = status
        try:
            self.emit(
                ConversationEndEvent(
                    conversation_id=self.id,
                    total_turns=self.turns_completed,
                    status=status,
                    reason=reason,
                    error=error,
                    duration_ms=int((time.monotonic() - self._started) * 1000),
                )
            )
        finally:
            self._writer.close()
            if self._lock is not None:
                self._lock.release()
            if self._on_end is not None:
                self._on_end(self)

    def _current_turn(self) -> int:
        return self.turns_completed if self._turn is None else self._turn

    def __enter__(self) -> Conversation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end("completed")
        elif isinstance(exc, _INTERRUPTS):
            self.end("interrupted", reason=type(exc).__name__)
        else:
            message = f"{type(exc).__name__}: {exc}"
            try:
                if not self.ended:
                    self.error(type(exc).__name__, str(exc))
            finally:
                # Even when the error cannot be written (a full disk), the conversation
                # must end: its log closes and its run lock is released.
                self.end("failed", reason="exception", error=message)


_RESERVE = ".pidgin.reserve"
_RESERVE_BYTES = 8 * 1024  # an end event is under 1 KB; a few pages are plenty


def _reserve_space(directory: Path) -> Path:
    """Hold a little disk space that ``complete`` frees to record the outcome on a full disk."""
    path = directory / _RESERVE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if os.write(fd, bytes(_RESERVE_BYTES)) != _RESERVE_BYTES:
                raise OSError("short write")
        finally:
            os.close(fd)
    except OSError:  # no room even for this: hold nothing rather than take the last bytes
        with contextlib.suppress(OSError):
            path.unlink()
    return path


class Experiment:
    """An experiment directory: many conversations and an experiment-level event log.

    ::

        with Experiment.create(root, name="greetings", total_conversations=2) as exp:
            for _ in range(2):
                with exp.conversation(agent_a="local:test", agent_b="local:test") as conv:
                    conv.turn_start()
                    conv.message("agent_a", "Hello")
                    conv.message("agent_b", "Hi")
                    conv.turn_complete(convergence_score=0.4)
    """

    def __init__(
        self,
        directory: Path,
        *,
        experiment_id: str,
        name: str,
        fsync: FsyncPolicy = "close",
    ) -> None:
        self.id = experiment_id
        self.name = name
        self.directory = directory
        self._fsync: FsyncPolicy = fsync
        self._guard = threading.Lock()
        self._outcomes: dict[str, int] = {}
        self._open: set[str] = set()
        self._lock = RunLock(directory)
        self._reserve = _reserve_space(directory)
        self._writer = EventWriter(
            directory / EXPERIMENT_LOG, experiment_id=experiment_id, fsync=fsync
        )
        self.status: str | None = None

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str] | None = None,
        *,
        name: str,
        total_conversations: int = 0,
        config: Mapping[str, Any] | None = None,
        experiment_id: str | None = None,
        fsync: FsyncPolicy = "close",
    ) -> Experiment:
        """Create ``<root>/experiments/<experiment_id>/`` and write the start event.

        ``root`` defaults to ``$PIDGIN_OUTPUT`` or ``./pidgin_output``; ``name`` must be a
        valid id too, since people refer to experiments by name.
        """
        validate_id(name, "experiment name")
        experiment_id = validate_id(
            new_id("exp") if experiment_id is None else experiment_id, "experiment id"
        )
        directory = output_root(root) / EXPERIMENTS_DIR / experiment_id
        make_private_dir(directory.parent)
        os.mkdir(directory, 0o700)  # fails if it exists: never mix two experiments' logs
        experiment = cls(directory, experiment_id=experiment_id, name=name, fsync=fsync)
        experiment.emit(
            ExperimentStartEvent(
                experiment_id=experiment_id,
                name=name,
                total_conversations=total_conversations,
                config=dict(config or {}),
            )
        )
        return experiment

    @classmethod
    def reopen(
        cls,
        directory: str | os.PathLike[str],
        *,
        experiment_id: str,
        name: str,
        finished: Mapping[str, int] | None = None,
        fsync: FsyncPolicy = "close",
    ) -> Experiment:
        """Open an existing experiment to write more of it (``pidgin experiment resume``).

        ``finished``: how many of its conversations ended earlier, by status, and are not
        run again; the completion event counts them with those run now.
        """
        experiment = cls(Path(directory), experiment_id=experiment_id, name=name, fsync=fsync)
        experiment._outcomes.update(finished or {})
        return experiment

    def emit(self, event: Event) -> int:
        """Append an experiment-level event to ``experiment.jsonl``."""
        return self._writer.emit(event)

    def conversation(
        self,
        *,
        agent_a: str | Mapping[str, Any],
        agent_b: str | Mapping[str, Any],
        conversation_id: str | None = None,
        max_turns: int | None = None,
        initial_prompt: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Conversation:
        """Start a conversation in this experiment (its start event is written now)."""
        conversation_id = new_id("conv") if conversation_id is None else conversation_id
        with self._guard:
            if self.status is not None:
                raise ValueError(f"experiment {self.id} has ended")
            self._open.add(conversation_id)
        return Conversation(
            self.directory,
            conversation_id=conversation_id,
            agent_a=agent_a,
            agent_b=agent_b,
            experiment_id=self.id,
            max_turns=max_turns,
            initial_prompt=initial_prompt,
            config=config,
            fsync=self._fsync,
            on_end=self._conversation_ended,
        )

    def resume_conversation(self, conversation_id: str, *, turns_completed: int) -> Conversation:
        """Reopen a conversation's log to go on after ``turns_completed`` turns.

        Nothing of the log is rewritten: a ``ConversationResumedEvent`` is appended and
        ``seq`` continues (the writer seals a torn last line first). What a half-done turn
        left must be recorded first, with ``TurnDiscardedEvent``.
        """
        with self._guard:
            if self.status is not None:
                raise ValueError(f"experiment {self.id} has ended")
            self._open.add(conversation_id)
        return Conversation(
            self.directory,
            conversation_id=conversation_id,
            agent_a="",
            agent_b="",
            experiment_id=self.id,
            fsync=self._fsync,
            on_end=self._conversation_ended,
            resume_at=turns_completed,
        )

    def track(self, conversation_id: str) -> None:
        """Count a conversation that another process writes (a runner's worker) as open."""
        with self._guard:
            if self.status is not None:
                raise ValueError(f"experiment {self.id} has ended")
            self._open.add(conversation_id)

    def record_end(self, conversation_id: str, status: str) -> None:
        """Count the end of a conversation registered with ``track``."""
        with self._guard:
            if conversation_id in self._open:
                self._open.discard(conversation_id)
                self._outcomes[status] = self._outcomes.get(status, 0) + 1

    def _conversation_ended(self, conversation: Conversation) -> None:
        with self._guard:
            self._open.discard(conversation.id)
            status = conversation.status or "failed"
            self._outcomes[status] = self._outcomes.get(status, 0) + 1

    def complete(
        self, status: str | None = None, *, reason: str | None = None, error: str | None = None
    ) -> None:
        """Write the completion event, close the log and release the run lock."""
        with self._guard:
            if self.status is not None:
                return
            counts = dict(self._outcomes)
            unfinished = len(self._open)
        if status is None:
            status = "interrupted" if counts.get("interrupted") or unfinished else "completed"
        self.status = status
        # Give back the space held in reserve, so that even on a full disk the outcome
        # (failed, and why) can be written.
        with contextlib.suppress(OSError):
            self._reserve.unlink()
        try:
            self.emit(
                ExperimentCompleteEvent(
                    experiment_id=self.id,
                    total_conversations=sum(counts.values()) + unfinished,
                    completed_conversations=counts.get("completed", 0),
                    failed_conversations=counts.get("failed", 0),
                    interrupted_conversations=counts.get("interrupted", 0) + unfinished,
                    status=status,
                    reason=reason,
                    error=error,
                )
            )
        finally:
            self._writer.close()
            self._lock.release()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.complete()
        elif isinstance(exc, _INTERRUPTS):
            self.complete("interrupted", reason=type(exc).__name__)
        else:
            self.complete("failed", reason="exception", error=f"{type(exc).__name__}: {exc}")
