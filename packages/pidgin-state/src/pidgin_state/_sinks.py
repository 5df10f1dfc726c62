"""What state keeps from each log: aggregates only, never events or lines.

A conversation costs a few counters, its per-agent tokens, its last few errors and its
convergence trajectory (one float per turn), whatever the size of its log; and, while a
reply streams, that reply's text so far (its ``MessageChunkEvent`` pieces, dropped when the
message completes, its attempt fails, its turn is discarded or the conversation ends).
Handlers receive the decoded JSON object of one line and check the fields they use;
a wrong type raises ``FieldError`` and the line is reported, not counted.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

from pidgin_events import ERROR_EVENT_TYPES

from ._lines import FieldError, Handler, Presence, Report

__all__ = [
    "MAX_ERRORS_KEPT",
    "ConversationLog",
    "ErrorRecord",
    "ExperimentLog",
    "LoadRecord",
]

MAX_ERRORS_KEPT = 5

# Types a conversation log may hold whose lines state never decodes.
_CONVERSATION_SKIP = (
    b"MessageRequestEvent",
    b"SystemPromptEvent",
    b"ThinkingCompleteEvent",
    b"RateLimitPaceEvent",
    b"TokenUsageEvent",
    b"ContextTruncationEvent",
    b"InterruptRequestEvent",
    b"ConversationBranchedEvent",
    b"PromptInjectionEvent",  # what a model was told mid-conversation: replay's, not state's
)


# --- field access ---------------------------------------------------------------------


def _str(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise FieldError(f"missing field {key!r}")
        return None
    if type(value) is not str:
        raise FieldError(f"field {key!r}: expected a string, got {type(value).__name__}")
    return value


def _int(data: dict[str, Any], key: str, *, required: bool = False) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise FieldError(f"missing field {key!r}")
        return None
    if type(value) is not int:
        raise FieldError(f"field {key!r}: expected an integer, got {type(value).__name__}")
    return value


def _number(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if type(value) is float or type(value) is int:
        return float(value)
    raise FieldError(f"field {key!r}: expected a number, got {type(value).__name__}")


def _timestamp(data: dict[str, Any]) -> str:
    # Kept raw and parsed once, when a snapshot is taken: most are never looked at.
    value = data.get("timestamp")
    if type(value) is not str:
        raise FieldError("missing or non-string 'timestamp'")
    return value


class ErrorRecord:
    """One error event, as little of it as a monitor shows."""

    __slots__ = ("error_type", "event_type", "line", "message", "timestamp")

    def __init__(
        self, event_type: str, error_type: str | None, message: str, timestamp: str, line: int
    ) -> None:
        self.event_type = event_type
        self.error_type = error_type
        self.message = message
        self.timestamp = timestamp
        self.line = line


class ConversationLog:
    """The aggregates of one conversation log."""

    handlers: ClassVar[dict[bytes, tuple[str, Handler]]]
    skip: ClassVar[dict[bytes, Presence | None]]

    def __init__(self, conversation_id: str, report: Report) -> None:
        self.id = conversation_id
        self._report = report
        self.events = 0
        """Decoded events counted (the skipped types are not)."""
        self.started_ts: str | None = None
        self.agent_a_model: str | None = None
        self.agent_b_model: str | None = None
        self.max_turns: int | None = None
        self.ended = False
        self.end_status: str | None = None
        self.end_reason: str | None = None
        self.end_error: str | None = None
        self.end_ts: str | None = None
        self.end_total_turns: int | None = None
        self.turns_started = 0
        """Turns begun (``TurnStartEvent``s; their lines are not decoded)."""
        self.turn_open = False
        self.turns_done: set[int] = set()
        self.scores: list[float] = []
        self.tokens: dict[str, list[int]] = {}
        self.costs: dict[str, float] = {}
        """Per agent, the ``cost_usd`` of its messages that have one."""
        self.messages = 0
        self.last_message_ts: str | None = None
        self.error_count = 0
        self.errors: deque[ErrorRecord] = deque(maxlen=MAX_ERRORS_KEPT)
        self.paused = False
        self.last_seq: int | None = None
        self.warnings: list[tuple[int, float, float]] = []
        """(0-based turn, score, threshold) of each ``ConvergenceWarningEvent``."""
        self.streaming: dict[str, list[str]] = {}
        """Per agent, the pieces of the reply still streaming (empty when none is)."""
        self.open_turn_messages: list[tuple[str, int, int, int, float | None]] = []
        """(agent, prompt, completion, total tokens, cost) of the messages of the turn in
        progress: a ``TurnDiscardedEvent`` takes them back out of the counts."""

    def _own(self, data: dict[str, Any], line: int) -> None:
        conversation_id = data.get("conversation_id")
        if conversation_id is not None and conversation_id != self.id:
            raise FieldError(
                f"event of conversation {conversation_id!r} in the log of {self.id!r}; ignored"
            )
        seq = data.get("seq")
        if type(seq) is int:
            # A seq out of order is reported and the event counted all the same: several
            # writers appending to one file number their events independently.
            self._seq_seen(seq, line)
        self.events += 1

    def _seq_seen(self, seq: int, line: int) -> None:
        if self.last_seq is not None and seq <= self.last_seq:
            self._report(line, f"seq {seq} does not follow seq {self.last_seq}")
        else:
            self.last_seq = seq

    def _start(self, data: dict[str, Any], line: int) -> None:
        timestamp = _timestamp(data)
        model_a = _str(data, "agent_a_model") or _model_of(data.get("agent_a"))
        model_b = _str(data, "agent_b_model") or _model_of(data.get("agent_b"))
        max_turns = _int(data, "max_turns")
        named = data.get("conversation_id")
        if self.events == 0 and type(named) is str and named:
            # A log belongs to the conversation its start event names (else its file's
            # name): a foreign writer's ids need not be file names. pidgin-load's rule too.
            self.id = named
        self._own(data, line)
        if self.started_ts is None:
            self.started_ts = timestamp
        self.agent_a_model = model_a or self.agent_a_model
        self.agent_b_model = model_b or self.agent_b_model
        if max_turns is not None:
            self.max_turns = max_turns

    def _end(self, data: dict[str, Any], line: int) -> None:
        timestamp = _timestamp(data)
        status = _str(data, "status")
        reason = _str(data, "reason")
        error = _str(data, "error")
        total_turns = _int(data, "total_turns")
        self._own(data, line)
        self.ended = True
        self.turn_open = False
        self.end_status, self.end_reason, self.end_error = status, reason, error
        self.end_ts = timestamp
        self.end_total_turns = total_turns
        self.paused = False
        self.streaming.clear()

    def _turn_start(self, line: int) -> None:
        self.turns_started += 1
        self.turn_open = True
        self.open_turn_messages.clear()

    def _turn_discarded(self, data: dict[str, Any], line: int) -> None:
        turn = _int(data, "turn_number", required=True)
        self._own(data, line)
        for agent, prompt, completion, total, cost in self.open_turn_messages:
            counts = self.tokens[agent]
            counts[0] -= prompt
            counts[1] -= completion
            counts[2] -= total
            counts[3] -= 1
            if cost is not None:
                self.costs[agent] -= cost
            self.messages -= 1
        self.open_turn_messages.clear()
        self.streaming.clear()  # the half-written reply of that turn will not be its reply
        if turn not in self.turns_done and self.turns_started > len(self.turns_done):
            self.turns_started -= 1  # begun, never done, run again: counted once
        self.turn_open = False

    def _turn_complete(self, data: dict[str, Any], line: int) -> None:
        turn = data.get("turn_number")
        score = data.get("convergence_score")
        if type(turn) is not int:
            _int(data, "turn_number", required=True)
            raise FieldError("field 'turn_number': expected an integer")
        if score is not None and type(score) is not float:
            score = _number(data, "convergence_score")
        self._own(data, line)
        self.turn_open = False
        if turn in self.turns_done:
            raise FieldError(f"turn {turn} completed again; counted once")
        self.turns_done.add(turn)
        if score is not None:
            self.scores.append(score)

    def _message(self, data: dict[str, Any], line: int) -> None:
        agent = data.get("agent_id")
        prompt = data.get("prompt_tokens")
        completion = data.get("completion_tokens")
        total = data.get("total_tokens")
        timestamp = data.get("timestamp")
        if not (
            type(agent) is str
            and type(timestamp) is str
            and type(prompt) is int
            and type(completion) is int
            and type(total) is int
        ):  # the slow path says what is wrong, or fills in what may be missing
            agent = _str(data, "agent_id", required=True)
            timestamp = _timestamp(data)
            prompt = _int(data, "prompt_tokens") or 0
            completion = _int(data, "completion_tokens") or 0
            total = _int(data, "total_tokens")
            if total is None:
                total = prompt + completion
        # ``_own`` inlined: this runs for every message.
        conversation_id = data.get("conversation_id")
        if conversation_id != self.id and conversation_id is not None:
            self._own(data, line)
        seq = data.get("seq")
        if type(seq) is int:
            if self.last_seq is None or seq > self.last_seq:
                self.last_seq = seq
            else:
                self._seq_seen(seq, line)
        self.events += 1
        counts = self.tokens.get(agent)  # type: ignore[arg-type]
        if counts is None:
            counts = self.tokens[agent] = [0, 0, 0, 0]  # type: ignore[index]
        counts[0] += prompt
        counts[1] += completion
        counts[2] += total
        counts[3] += 1
        cost = data.get("cost_usd")
        if cost is not None:
            if type(cost) is not float and type(cost) is not int:
                raise FieldError("field 'cost_usd': expected a number")
            self.costs[agent] = self.costs.get(agent, 0.0) + cost  # type: ignore[arg-type,index]
        self.messages += 1
        self.last_message_ts = timestamp
        if self.streaming:
            self.streaming.pop(agent, None)  # type: ignore[arg-type]
        if self.turn_open:
            self.open_turn_messages.append((agent, prompt, completion, total, cost))  # type: ignore[arg-type]

    def _error(self, data: dict[str, Any], line: int) -> None:
        event_type = data["event_type"]
        timestamp = _timestamp(data)
        error_type = _str(data, "error_type")
        message = _str(data, "error_message")
        if message is None:
            provider = _str(data, "provider")
            message = f"{event_type}" + (f" from {provider}" if provider else "")
        self._own(data, line)
        self.error_count += 1
        self.errors.append(ErrorRecord(event_type, error_type, message, timestamp, line))
        agent = data.get("agent_id")
        if type(agent) is str:
            self.streaming.pop(agent, None)  # that attempt's text will not be the reply

    def _convergence_warning(self, data: dict[str, Any], line: int) -> None:
        turn = _int(data, "turn_number", required=True)
        score = _number(data, "convergence_score")
        threshold = _number(data, "threshold")
        if score is None or threshold is None:
            raise FieldError("missing field 'convergence_score' or 'threshold'")
        assert turn is not None
        self._own(data, line)
        self.warnings.append((turn, score, threshold))

    def _chunk(self, data: dict[str, Any], line: int) -> None:
        agent = _str(data, "agent_id", required=True)
        chunk = _str(data, "chunk", required=True)
        index = _int(data, "chunk_index")
        self._own(data, line)
        assert agent is not None
        assert chunk is not None
        pieces = self.streaming.get(agent)
        if pieces is None or index == 0:  # a retried attempt starts again at index 0
            self.streaming[agent] = [chunk]
        else:
            pieces.append(chunk)

    def _paused(self, data: dict[str, Any], line: int) -> None:
        self._own(data, line)
        self.paused = True

    def _resumed(self, data: dict[str, Any], line: int) -> None:
        self._own(data, line)
        self.paused = False
        # After its end (``pidgin experiment resume``): it runs again until it ends again.
        self.ended = False
        self.end_status = self.end_reason = self.end_error = None
        self.end_ts = None
        self.end_total_turns = None


def _model_of(agent: Any) -> str | None:
    if isinstance(agent, dict):
        model = agent.get("model")
        if isinstance(model, str):
            return model
    return None


class LoadRecord:
    """One ``DatabaseLoadEvent``."""

    __slots__ = ("db_path", "error", "rows", "status", "timestamp")

    def __init__(
        self,
        status: str,
        db_path: str | None,
        error: str | None,
        rows: dict[str, int] | None,
        timestamp: str,
    ) -> None:
        self.status = status
        self.db_path = db_path
        self.error = error
        self.rows = rows
        self.timestamp = timestamp


class ExperimentLog:
    """The aggregates of ``experiment.jsonl``: start, completion and database loads."""

    handlers: ClassVar[dict[bytes, tuple[str, Handler]]]
    skip: ClassVar[dict[bytes, Presence | None]]

    def __init__(self, report: Report) -> None:
        self._report = report
        self.events = 0
        self.experiment_id: str | None = None
        self.name: str | None = None
        self.planned: int | None = None
        self.started_ts: str | None = None
        self.max_turns: int | None = None
        self.completed = False
        self.status: str | None = None
        self.reason: str | None = None
        self.error: str | None = None
        self.completed_ts: str | None = None
        self.last_load: LoadRecord | None = None
        self.last_load_failure: LoadRecord | None = None
        self.post_processing: str | None = None
        """``started`` or ``completed``: the runner's post-processing, by its last event."""

    def _post_processing_started(self, line: int) -> None:
        self.post_processing = "started"

    def _post_processing_completed(self, line: int) -> None:
        self.post_processing = "completed"

    def _start(self, data: dict[str, Any], line: int) -> None:
        timestamp = _timestamp(data)
        experiment_id = _str(data, "experiment_id")
        name = _str(data, "name")
        planned = _int(data, "total_conversations")
        config = data.get("config")
        self.events += 1
        if self.started_ts is None:
            self.started_ts = timestamp
        self.experiment_id = experiment_id or self.experiment_id
        self.name = name or self.name
        if planned is not None:
            self.planned = planned
        if isinstance(config, dict):
            max_turns = config.get("max_turns")
            if type(max_turns) is int:
                self.max_turns = max_turns

    def _resumed(self, data: dict[str, Any], line: int) -> None:
        self.events += 1
        self.completed = False
        self.status = self.reason = self.error = self.completed_ts = None
        self.post_processing = None

    def _complete(self, data: dict[str, Any], line: int) -> None:
        timestamp = _timestamp(data)
        status = _str(data, "status")
        reason = _str(data, "reason")
        error = _str(data, "error")
        self.events += 1
        self.completed = True
        self.status, self.reason, self.error = status, reason, error
        self.completed_ts = timestamp

    def _database(self, data: dict[str, Any], line: int) -> None:
        timestamp = _timestamp(data)
        status = _str(data, "status", required=True)
        assert status is not None
        db_path = _str(data, "db_path")
        error = _str(data, "error")
        rows = data.get("rows")
        if rows is not None and not (
            isinstance(rows, dict) and all(type(v) is int for v in rows.values())
        ):
            raise FieldError("field 'rows': expected an object of integers")
        self.events += 1
        record = LoadRecord(status, db_path, error, rows, timestamp)
        self.last_load = record
        if status == "failed":
            self.last_load_failure = record


def _table(*entries: tuple[str, Handler]) -> dict[bytes, tuple[str, Handler]]:
    return {name.encode(): (name, handler) for name, handler in entries}


ConversationLog.handlers = _table(
    ("ConversationStartEvent", ConversationLog._start),
    ("ConversationEndEvent", ConversationLog._end),
    ("TurnCompleteEvent", ConversationLog._turn_complete),
    ("MessageCompleteEvent", ConversationLog._message),
    ("ConversationPausedEvent", ConversationLog._paused),
    ("ConversationResumedEvent", ConversationLog._resumed),
    ("TurnDiscardedEvent", ConversationLog._turn_discarded),
    ("ConvergenceWarningEvent", ConversationLog._convergence_warning),
    ("MessageChunkEvent", ConversationLog._chunk),
    *((name, ConversationLog._error) for name in sorted(ERROR_EVENT_TYPES)),
)
# Lines whose presence is all that matters: a turn began.
ConversationLog.skip = {
    **dict.fromkeys(_CONVERSATION_SKIP),
    b"TurnStartEvent": ConversationLog._turn_start,
}
ExperimentLog.handlers = _table(
    ("ExperimentStartEvent", ExperimentLog._start),
    ("ExperimentCompleteEvent", ExperimentLog._complete),
    ("ExperimentResumedEvent", ExperimentLog._resumed),
    ("DatabaseLoadEvent", ExperimentLog._database),
)
ExperimentLog.skip = {
    b"PostProcessingStartEvent": ExperimentLog._post_processing_started,
    b"PostProcessingCompleteEvent": ExperimentLog._post_processing_completed,
}
