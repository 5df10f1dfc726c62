"""The event catalogue: immutable, typed records of everything that happens in a run.

Names of event types and of their fields are those of pidgin-ai 1.1, so logs written by
either tool read the same way. Additions over pidgin-ai: the envelope (``seq``,
``event_id``, ``schema_version``, ``experiment_id`` on every line), experiment-level events
on disk, ``MessageRequestEvent.message_count`` instead of the whole history,
``MessageCompleteEvent.turn_number`` and ``ConvergenceWarningEvent``; the provider's request id,
model version, stop reason and the message's cost on ``MessageCompleteEvent``; the HTTP
status and the wait before the next attempt on ``APIErrorEvent``.
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType

from ._record import Record, field
from ._time import utc_now

TYPE_CHECKING = False  # typing costs agent code milliseconds at import; annotations need it only
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "EMPTY",
    "ERROR_EVENT_TYPES",
    "SCHEMA_VERSION",
    "APIErrorEvent",
    "ContextLimitEvent",
    "ContextTruncationEvent",
    "ConvergenceWarningEvent",
    "ConversationBranchedEvent",
    "ConversationEndEvent",
    "ConversationEvent",
    "ConversationPausedEvent",
    "ConversationResumedEvent",
    "ConversationStartEvent",
    "DatabaseLoadEvent",
    "EmptyResponseEvent",
    "ErrorEvent",
    "Event",
    "ExperimentCompleteEvent",
    "ExperimentEvent",
    "ExperimentStartEvent",
    "InterruptRequestEvent",
    "Message",
    "MessageChunkEvent",
    "MessageCompleteEvent",
    "MessageRequestEvent",
    "PostProcessingCompleteEvent",
    "PostProcessingStartEvent",
    "ProviderTimeoutEvent",
    "RateLimitPaceEvent",
    "SystemPromptEvent",
    "ThinkingCompleteEvent",
    "TokenUsageEvent",
    "Turn",
    "TurnCompleteEvent",
    "TurnStartEvent",
    "UnknownEvent",
]

SCHEMA_VERSION = 1
"""Version of the line format written by this package; readers accept any version."""

EMPTY: Mapping[str, Any] = MappingProxyType({})
"""The shared, read-only empty mapping behind every defaulted mapping field."""


class Message(Record):
    """One message as an agent said it."""

    role: str
    content: str
    agent_id: str
    timestamp: datetime = field(default_factory=utc_now)
    extra: Mapping[str, Any] = EMPTY


class Turn(Record):
    """The two messages of one turn (pidgin-ai 1.x embeds this in ``TurnCompleteEvent``)."""

    agent_a_message: Message | None = None
    agent_b_message: Message | None = None
    extra: Mapping[str, Any] = EMPTY


class Event(Record):
    """Fields every event line carries.

    ``seq``, ``event_id`` and ``schema_version`` are stamped by the writer; they are
    ``None`` on events not yet written and on lines written by pidgin-ai 1.x. ``extra``
    holds fields this version does not know, so that lines from newer writers round-trip.
    """

    event_type: str = field(default="Event", init=False)
    timestamp: datetime = field(default_factory=utc_now)
    experiment_id: str | None = None
    seq: int | None = None
    event_id: str | None = None
    schema_version: int | None = None
    extra: Mapping[str, Any] = EMPTY


class UnknownEvent(Event):
    """An event whose type this version does not know; all its fields are in ``extra``."""

    event_type: str
    conversation_id: str | None = None


class ConversationEvent(Event):
    """Base of the events that belong to one conversation."""

    conversation_id: str


class ExperimentEvent(Event):
    """Base of the events that belong to an experiment as a whole."""

    experiment_id: str


# --- conversation lifecycle -------------------------------------------------------------


class ConversationStartEvent(ConversationEvent):
    """A conversation begins. ``agent_a``/``agent_b`` describe each agent as a mapping."""

    event_type: str = field(default="ConversationStartEvent", init=False)
    agent_a: Mapping[str, Any] | None = None
    agent_b: Mapping[str, Any] | None = None
    config: Mapping[str, Any] = EMPTY
    agent_a_display_name: str | None = None
    agent_b_display_name: str | None = None
    agent_a_model: str | None = None
    agent_b_model: str | None = None
    max_turns: int | None = None
    initial_prompt: str | None = None
    temperature_a: float | None = None
    temperature_b: float | None = None


class ConversationEndEvent(ConversationEvent):
    """A conversation ended; ``status`` is completed, failed, interrupted or empty.

    ``total_turns`` counts turns that completed. pidgin-ai 1.1 wrote one more than that.
    """

    event_type: str = field(default="ConversationEndEvent", init=False)
    total_turns: int
    status: str
    reason: str | None = None
    error: str | None = None
    duration_ms: int = 0


class ConversationBranchedEvent(ConversationEvent):
    """This conversation was branched from another at ``branch_point``."""

    event_type: str = field(default="ConversationBranchedEvent", init=False)
    source_conversation_id: str
    branch_point: int
    parameter_changes: Mapping[str, Any] = EMPTY


class ConversationPausedEvent(ConversationEvent):
    """The conversation was paused."""

    event_type: str = field(default="ConversationPausedEvent", init=False)
    turn_number: int
    paused_during: str


class ConversationResumedEvent(ConversationEvent):
    """The conversation was resumed."""

    event_type: str = field(default="ConversationResumedEvent", init=False)
    turn_number: int
    """The turn it goes on with (0-based): the turns before it are in the log already."""


class InterruptRequestEvent(ConversationEvent):
    """Someone (a user, the convergence check, a context limit) asked to stop or pause."""

    event_type: str = field(default="InterruptRequestEvent", init=False)
    turn_number: int
    interrupt_source: str = "user"


# --- turns and messages -----------------------------------------------------------------


class TurnStartEvent(ConversationEvent):
    """A turn begins; turns are numbered from 0."""

    event_type: str = field(default="TurnStartEvent", init=False)
    turn_number: int


class TurnDiscardedEvent(ConversationEvent):
    """A turn left half done (its run was killed or stopped) does not count; it is re-run.

    The messages of ``turn_number`` written before this event stay in the log as what
    happened, but are not part of the conversation: no state, table or replay counts them.
    """

    event_type: str = field(default="TurnDiscardedEvent", init=False)
    turn_number: int
    messages_discarded: int = 0
    reason: str = "resume"


class TurnCompleteEvent(ConversationEvent):
    """A turn completed. ``turn`` repeats both messages and is left out by this writer."""

    event_type: str = field(default="TurnCompleteEvent", init=False)
    turn_number: int
    turn: Turn | None = None
    convergence_score: float | None = None


class ConvergenceWarningEvent(ConversationEvent):
    """A turn's convergence reached the threshold under ``--convergence-action warn``.

    Written when the score crosses the threshold upward (the first turn at or above it, or
    the first after a turn below it), so a conversation that stays converged says so once.
    Not in pidgin-ai 1.1, which recorded nothing for a warning.
    """

    event_type: str = field(default="ConvergenceWarningEvent", init=False)
    turn_number: int
    convergence_score: float
    threshold: float


class MessageRequestEvent(ConversationEvent):
    """An agent is asked for its next message.

    ``message_count`` says how many messages the request carried. pidgin-ai 1.x wrote
    the whole history instead (``conversation_history``), which made logs grow with the
    square of the number of turns; it is still read, and never written by this package.
    """

    event_type: str = field(default="MessageRequestEvent", init=False)
    agent_id: str
    turn_number: int
    message_count: int | None = None
    conversation_history: tuple[Message, ...] | None = None
    temperature: float | None = None
    allow_truncation: bool = False
    thinking_enabled: bool | None = None
    thinking_budget: int | None = None
    max_tokens: int | None = None


class MessageChunkEvent(ConversationEvent):
    """A piece of a message that is still streaming."""

    event_type: str = field(default="MessageChunkEvent", init=False)
    agent_id: str
    chunk: str
    chunk_index: int
    elapsed_ms: int


class MessageCompleteEvent(ConversationEvent):
    """A message was fully generated, with its own token counts and duration."""

    event_type: str = field(default="MessageCompleteEvent", init=False)
    agent_id: str
    message: Message
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    duration_ms: int
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    turn_number: int | None = None
    request_id: str | None = None
    """The provider's id of the request (e.g. Anthropic's ``request-id`` header)."""
    model_version: str | None = None
    """The model that answered, as the provider names it (e.g. ``gpt-4o-2024-08-06``)."""
    stop_reason: str | None = None
    """Why the reply ended, in the provider's words (``end_turn``, ``length``, ``STOP``)."""
    cost_usd: float | None = None
    """What the message cost by the catalogue's prices; None when the model has none."""


class SystemPromptEvent(ConversationEvent):
    """The system prompt given to an agent."""

    event_type: str = field(default="SystemPromptEvent", init=False)
    agent_id: str
    prompt: str
    agent_display_name: str | None = None


class ThinkingCompleteEvent(ConversationEvent):
    """A model finished a reasoning phase whose trace the provider exposes."""

    event_type: str = field(default="ThinkingCompleteEvent", init=False)
    turn_number: int
    agent_id: str
    thinking_content: str
    thinking_tokens: int | None = None
    duration_ms: int | None = None


# --- errors -----------------------------------------------------------------------------


class ErrorEvent(ConversationEvent):
    """Something went wrong in a conversation."""

    event_type: str = field(default="ErrorEvent", init=False)
    error_type: str
    error_message: str
    context: str | None = None


class APIErrorEvent(ErrorEvent):
    """A provider's API call failed."""

    event_type: str = field(default="APIErrorEvent", init=False)
    agent_id: str
    provider: str
    error_code: str | None = None
    retryable: bool = False
    retry_count: int = 0
    status_code: int | None = None
    """The HTTP status of the failed attempt; None for timeouts and dropped connections."""
    wait_seconds: float | None = None
    """How long the caller waits before the next attempt; None when it does not retry."""


class ProviderTimeoutEvent(ErrorEvent):
    """A provider did not answer in time."""

    event_type: str = field(default="ProviderTimeoutEvent", init=False)
    agent_id: str
    provider: str
    timeout_seconds: float


class ContextLimitEvent(ConversationEvent):
    """The context window is full; the conversation ends here."""

    event_type: str = field(default="ContextLimitEvent", init=False)
    agent_id: str
    turn_number: int
    error_message: str
    provider: str


class EmptyResponseEvent(ConversationEvent):
    """A provider returned an empty message; the conversation ends here."""

    event_type: str = field(default="EmptyResponseEvent", init=False)
    agent_id: str
    turn_number: int
    provider: str


# --- pacing, tokens, context --------------------------------------------------------------


class RateLimitPaceEvent(ConversationEvent):
    """The run waited ``wait_time`` seconds to respect a provider's rate limits."""

    event_type: str = field(default="RateLimitPaceEvent", init=False)
    provider: str
    wait_time: float
    reason: str


class TokenUsageEvent(ConversationEvent):
    """Token consumption as reported by a provider."""

    event_type: str = field(default="TokenUsageEvent", init=False)
    provider: str
    tokens_used: int
    tokens_per_minute_limit: int
    current_usage_rate: float
    agent_id: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


class ContextTruncationEvent(ConversationEvent):
    """Old messages were dropped to fit the context window."""

    event_type: str = field(default="ContextTruncationEvent", init=False)
    agent_id: str
    provider: str
    model: str
    turn_number: int
    original_message_count: int
    truncated_message_count: int
    messages_dropped: int


# --- experiments (pidgin-ai kept these in memory only) ------------------------------------


class ExperimentStartEvent(ExperimentEvent):
    """An experiment begins, with the number of conversations it plans and its config."""

    event_type: str = field(default="ExperimentStartEvent", init=False)
    name: str
    total_conversations: int
    config: Mapping[str, Any] = EMPTY


class ExperimentCompleteEvent(ExperimentEvent):
    """All conversations of an experiment ended; ``status`` is completed, failed or interrupted."""

    event_type: str = field(default="ExperimentCompleteEvent", init=False)
    total_conversations: int
    completed_conversations: int
    failed_conversations: int
    status: str
    interrupted_conversations: int = 0
    reason: str | None = None
    error: str | None = None


class ExperimentResumedEvent(ExperimentEvent):
    """``pidgin experiment resume``: the experiment runs again after it stopped or died.

    Until a later ``ExperimentCompleteEvent``, the experiment is running again.
    """

    event_type: str = field(default="ExperimentResumedEvent", init=False)
    resumed_conversations: tuple[str, ...] = ()
    """Conversations that go on where they stood (their turns so far are kept)."""
    retried_conversations: tuple[str, ...] = ()
    """Failed conversations started again (``--retry-failed``)."""
    new_conversations: int = 0
    """Conversations never started before, started now."""


class PostProcessingStartEvent(ExperimentEvent):
    """Work after the run begins (transcripts, database load, ...)."""

    event_type: str = field(default="PostProcessingStartEvent", init=False)
    tasks: tuple[str, ...] = ()


class PostProcessingCompleteEvent(ExperimentEvent):
    """Work after the run ended; failed tasks never change the experiment's status."""

    event_type: str = field(default="PostProcessingCompleteEvent", init=False)
    tasks_completed: tuple[str, ...] = ()
    tasks_failed: tuple[str, ...] = ()
    duration_ms: int = 0


class DatabaseLoadEvent(ExperimentEvent):
    """The outcome of loading the experiment into DuckDB: loaded, skipped or failed."""

    event_type: str = field(default="DatabaseLoadEvent", init=False)
    status: str
    db_path: str | None = None
    error: str | None = None
    rows: Mapping[str, int] = EMPTY
    duration_ms: int = 0


ERROR_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "ErrorEvent",
        "APIErrorEvent",
        "ProviderTimeoutEvent",
        "ContextLimitEvent",
        "EmptyResponseEvent",
    }
)
"""Event types that report an error; monitors count these."""
