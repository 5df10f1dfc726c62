"""Pidgin's event schema and its crash-safe JSONL event writer.

Agent code records a run with ``Experiment``/``Chat`` and ``Conversation``; tools read logs
with ``LogReader`` or ``read_events``. Everything here depends on orjson only.
"""

from __future__ import annotations

from ._chat import Chat
from ._codec import (
    EVENT_TYPES,
    EventDecodeError,
    decode_event,
    encode_event,
    event_from_dict,
    event_to_dict,
    json_type,
    unreadable_reason,
)
from ._events import (
    ERROR_EVENT_TYPES,
    SCHEMA_VERSION,
    AgentNameChosenEvent,
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
    ExperimentResumedEvent,
    ExperimentStartEvent,
    InterruptRequestEvent,
    Message,
    MessageChunkEvent,
    MessageCompleteEvent,
    MessageRequestEvent,
    PostProcessingCompleteEvent,
    PostProcessingStartEvent,
    PromptInjectionEvent,
    ProviderTimeoutEvent,
    RateLimitPaceEvent,
    SystemPromptEvent,
    ThinkingCompleteEvent,
    TokenUsageEvent,
    Turn,
    TurnCompleteEvent,
    TurnDiscardedEvent,
    TurnStartEvent,
    UnknownEvent,
)
from ._fileio import DIR_MODE, FILE_MODE, make_private_dir, open_for_reading
from ._ids import new_id, validate_id
from ._layout import (
    CHATS_DIR,
    EVENT_LINE_PREFIX,
    EXPERIMENT_LOG,
    EXPERIMENTS_DIR,
    LOAD_FAILED_MARKER,
    LOADED_MARKER,
    MANIFEST,
    OUTPUT_ENV,
    RUN_DIRS,
    RUN_LOCK,
    conversation_id_of_log,
    conversation_log_path,
    output_root,
    run_kind_of,
)
from ._liveness import RunLock, is_running
from ._reader import (
    ARCHIVE_BLOCK,
    LOG_BLOCK,
    BadLine,
    LogReader,
    ReadResult,
    open_log,
    read_events,
)
from ._recorder import Conversation, Experiment
from ._time import parse_timestamp, utc_now
from ._writer import EventWriteError, EventWriter, FsyncPolicy

TYPE_CHECKING = False  # see _events.py: typing is for type checkers only
if TYPE_CHECKING:
    from typing import Any

    from ._load_contract import (
        BOOKKEEPING_EVENTS,
        BOOKKEEPING_PREFIXES,
        FileStat,
        LoadedMarker,
        changes_since_load,
        choose_logs,
        files_a_load_reads,
        fingerprint,
        only_bookkeeping_after,
        read_marker,
        stat_files,
        write_json_atomic,
        write_loaded_marker,
    )
    from ._schema import json_schema
    from ._validate import SchemaError, SchemaValidator
    from ._validate_log import validate_file, validate_line
    from ._vocabulary import (
        FINISHED_STATUSES,
        RUN_FORMATS,
        RUN_KINDS,
        RUN_STATUSES,
        ConversationStatus,
        RunFormat,
        RunKind,
        RunStatus,
    )
    from ._words import plural

_LOAD_CONTRACT = (
    "BOOKKEEPING_EVENTS",
    "BOOKKEEPING_PREFIXES",
    "FileStat",
    "LoadedMarker",
    "changes_since_load",
    "choose_logs",
    "files_a_load_reads",
    "fingerprint",
    "only_bookkeeping_after",
    "read_marker",
    "stat_files",
    "write_json_atomic",
    "write_loaded_marker",
)
_VOCABULARY = (
    "FINISHED_STATUSES",
    "RUN_FORMATS",
    "RUN_KINDS",
    "RUN_STATUSES",
    "ConversationStatus",
    "RunFormat",
    "RunKind",
    "RunStatus",
)

# Loaded on first use: validating, loading and status words are for tools and readers;
# agent code that only records should not pay for them (``typing``, ``hashlib``, ``json``).
_LAZY = {
    **dict.fromkeys(_LOAD_CONTRACT, "_load_contract"),
    **dict.fromkeys(_VOCABULARY, "_vocabulary"),
    "json_schema": "_schema",
    "SchemaError": "_validate",
    "SchemaValidator": "_validate",
    "validate_file": "_validate_log",
    "validate_line": "_validate_log",
    "plural": "_words",
}

__all__ = [
    "ARCHIVE_BLOCK",
    "BOOKKEEPING_EVENTS",
    "BOOKKEEPING_PREFIXES",
    "CHATS_DIR",
    "DIR_MODE",
    "ERROR_EVENT_TYPES",
    "EVENT_LINE_PREFIX",
    "EVENT_TYPES",
    "EXPERIMENTS_DIR",
    "EXPERIMENT_LOG",
    "FILE_MODE",
    "FINISHED_STATUSES",
    "LOADED_MARKER",
    "LOAD_FAILED_MARKER",
    "LOG_BLOCK",
    "MANIFEST",
    "OUTPUT_ENV",
    "RUN_DIRS",
    "RUN_FORMATS",
    "RUN_KINDS",
    "RUN_LOCK",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "APIErrorEvent",
    "AgentNameChosenEvent",
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
    "ConversationStatus",
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
    "ExperimentResumedEvent",
    "ExperimentStartEvent",
    "FileStat",
    "FsyncPolicy",
    "InterruptRequestEvent",
    "LoadedMarker",
    "LogReader",
    "Message",
    "MessageChunkEvent",
    "MessageCompleteEvent",
    "MessageRequestEvent",
    "PostProcessingCompleteEvent",
    "PostProcessingStartEvent",
    "PromptInjectionEvent",
    "ProviderTimeoutEvent",
    "RateLimitPaceEvent",
    "ReadResult",
    "RunFormat",
    "RunKind",
    "RunLock",
    "RunStatus",
    "SchemaError",
    "SchemaValidator",
    "SystemPromptEvent",
    "ThinkingCompleteEvent",
    "TokenUsageEvent",
    "Turn",
    "TurnCompleteEvent",
    "TurnDiscardedEvent",
    "TurnStartEvent",
    "UnknownEvent",
    "changes_since_load",
    "choose_logs",
    "conversation_id_of_log",
    "conversation_log_path",
    "decode_event",
    "encode_event",
    "event_from_dict",
    "event_to_dict",
    "files_a_load_reads",
    "fingerprint",
    "is_running",
    "json_schema",
    "json_type",
    "make_private_dir",
    "new_id",
    "only_bookkeeping_after",
    "open_for_reading",
    "open_log",
    "output_root",
    "parse_timestamp",
    "plural",
    "read_events",
    "read_marker",
    "run_kind_of",
    "stat_files",
    "unreadable_reason",
    "utc_now",
    "validate_file",
    "validate_id",
    "validate_line",
    "write_json_atomic",
    "write_loaded_marker",
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
