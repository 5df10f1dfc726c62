"""Pidgin's event schema and its crash-safe JSONL event writer.

Agent code records a run with ``Experiment``/``Chat`` and ``Conversation``; tools read logs
with ``LogReader`` or ``read_events``. Everything here depends on orjson only.
"""

from __future__ import annotations

from ._codec import (
    EVENT_TYPES,
    EventDecodeError,
    decode_event,
    encode_event,
    event_from_dict,
    event_to_dict,
    json_type,
)
from ._events import (
    ERROR_EVENT_TYPES,
    SCHEMA_VERSION,
    APIErrorEvent,
    ContextLimitEvent,
    ContextTruncationEvent,
    ConvergenceWarningEvent,
    ConversationBranchedEvent,
    ConversationEndEvent,
    ConversationEvent,
    ConversationPausedEvent,
    ConversationResumedEvent,
    ConversationStartEvent,
    DatabaseLoadEvent,
    EmptyResponseEvent,
    ErrorEvent,
    Event,
    ExperimentCompleteEvent,
    ExperimentEvent,
    ExperimentStartEvent,
    InterruptRequestEvent,
    Message,
    MessageChunkEvent,
    MessageCompleteEvent,
    MessageRequestEvent,
    PostProcessingCompleteEvent,
    PostProcessingStartEvent,
    ProviderTimeoutEvent,
    RateLimitPaceEvent,
    SystemPromptEvent,
    ThinkingCompleteEvent,
    TokenUsageEvent,
    Turn,
    TurnCompleteEvent,
    TurnStartEvent,
    UnknownEvent,
)
from ._fileio import DIR_MODE, FILE_MODE, make_private_dir
from ._ids import new_id, validate_id
from ._layout import (
    CHATS_DIR,
    EXPERIMENT_LOG,
    EXPERIMENTS_DIR,
    LOAD_FAILED_MARKER,
    LOADED_MARKER,
    RUN_LOCK,
    conversation_id_of_log,
    conversation_log_path,
    output_root,
)
from ._liveness import RunLock, is_running
from ._reader import BadLine, LogReader, ReadResult, open_log, read_events
from ._run import Chat, Conversation, Experiment
from ._time import parse_timestamp, utc_now
from ._writer import EventWriteError, EventWriter, FsyncPolicy

TYPE_CHECKING = False  # see _events.py: typing is for type checkers only
if TYPE_CHECKING:
    from typing import Any

    from ._schema import json_schema
    from ._validate import SchemaError, SchemaValidator, validate_file, validate_line
    from ._words import plural

# Loaded on first use: validating is for tools, and agent code should not pay for it.
_LAZY = {
    "json_schema": "_schema",
    "SchemaError": "_validate",
    "SchemaValidator": "_validate",
    "validate_file": "_validate",
    "validate_line": "_validate",
    "plural": "_words",
}

__all__ = [
    "CHATS_DIR",
    "DIR_MODE",
    "ERROR_EVENT_TYPES",
    "EVENT_TYPES",
    "EXPERIMENTS_DIR",
    "EXPERIMENT_LOG",
    "FILE_MODE",
    "LOADED_MARKER",
    "LOAD_FAILED_MARKER",
    "RUN_LOCK",
    "SCHEMA_VERSION",
    "APIErrorEvent",
    "BadLine",
    "Chat",
    "ContextLimitEvent",
    "ContextTruncationEvent",
    "ConvergenceWarningEvent",
    "Conversation",
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
    "EventDecodeError",
    "EventWriteError",
    "EventWriter",
    "Experiment",
    "ExperimentCompleteEvent",
    "ExperimentEvent",
    "ExperimentStartEvent",
    "FsyncPolicy",
    "InterruptRequestEvent",
    "LogReader",
    "Message",
    "MessageChunkEvent",
    "MessageCompleteEvent",
    "MessageRequestEvent",
    "PostProcessingCompleteEvent",
    "PostProcessingStartEvent",
    "ProviderTimeoutEvent",
    "RateLimitPaceEvent",
    "ReadResult",
    "RunLock",
    "SchemaError",
    "SchemaValidator",
    "SystemPromptEvent",
    "ThinkingCompleteEvent",
    "TokenUsageEvent",
    "Turn",
    "TurnCompleteEvent",
    "TurnStartEvent",
    "UnknownEvent",
    "conversation_id_of_log",
    "conversation_log_path",
    "decode_event",
    "encode_event",
    "event_from_dict",
    "event_to_dict",
    "is_running",
    "json_schema",
    "json_type",
    "make_private_dir",
    "new_id",
    "open_log",
    "output_root",
    "parse_timestamp",
    "plural",
    "read_events",
    "utc_now",
    "validate_file",
    "validate_id",
    "validate_line",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        from importlib import import_module

        value = getattr(import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    # importlib.metadata costs milliseconds; agent code that never asks does not pay them.
    if name == "__version__":
        from importlib.metadata import version

        return version("pidgin-events")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
