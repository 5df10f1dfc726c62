"""Turning events into JSON lines and back, keeping every field this version does not know."""

from __future__ import annotations

from functools import cache
from types import MappingProxyType

import orjson

from . import _events as ev
from ._record import fields
from ._time import parse_timestamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = [
    "EVENT_TYPES",
    "EventDecodeError",
    "decode_event",
    "encode_event",
    "event_encoder",
    "event_from_dict",
    "event_to_dict",
    "json_type",
    "unreadable_reason",
]


class EventDecodeError(ValueError):
    """A line is not a valid event; the message says why, without file or line."""


_CONCRETE: tuple[type[ev.Event], ...] = (
    ev.ConversationStartEvent,
    ev.ConversationEndEvent,
    ev.ConversationBranchedEvent,
    ev.ConversationPausedEvent,
    ev.ConversationResumedEvent,
    ev.InterruptRequestEvent,
    ev.TurnStartEvent,
    ev.TurnCompleteEvent,
    ev.TurnDiscardedEvent,
    ev.ConvergenceWarningEvent,
    ev.MessageRequestEvent,
    ev.MessageChunkEvent,
    ev.MessageCompleteEvent,
    ev.SystemPromptEvent,
    ev.PromptInjectionEvent,
    ev.AgentNameChosenEvent,
    ev.ThinkingCompleteEvent,
    ev.ErrorEvent,
    ev.APIErrorEvent,
    ev.ProviderTimeoutEvent,
    ev.ContextLimitEvent,
    ev.EmptyResponseEvent,
    ev.RateLimitPaceEvent,
    ev.TokenUsageEvent,
    ev.ContextTruncationEvent,
    ev.ExperimentStartEvent,
    ev.ExperimentCompleteEvent,
    ev.ExperimentResumedEvent,
    ev.PostProcessingStartEvent,
    ev.PostProcessingCompleteEvent,
    ev.DatabaseLoadEvent,
)

EVENT_TYPES: Mapping[str, type[ev.Event]] = MappingProxyType(
    {cls.__record_fields__[0].default: cls for cls in _CONCRETE}
)
"""Every known ``event_type`` name and its class."""

_DUMP_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_APPEND_NEWLINE


# --- encoding ---------------------------------------------------------------------------

# How a field's value becomes JSON, by annotation; anything not listed is passed as it is
# (orjson encodes str, int, float, bool, None, datetime, dict, list and tuple natively).
_ENCODE_AS = {
    # Inlined (see _compiled): a call per message costs a tenth of a write.
    "Message": "(_to_dict_Message({v}) if {v}.extra else {{{message_fields}}})",
    "Message | None": "(None if {v} is None else _to_dict_Message({v}))",
    "Turn | None": "(None if {v} is None else _to_dict_Turn({v}))",
    "tuple[Message, ...] | None": "(None if {v} is None else [_to_dict_Message(m) for m in {v}])",
    "Mapping[str, Any]": "_plain_mapping({v})",
    "Mapping[str, Any] | None": "(None if {v} is None else _plain_mapping({v}))",
    "Mapping[str, int]": "_plain_mapping({v})",
}


def _plain_mapping(value: Mapping[str, Any]) -> Any:
    return value if type(value) is dict else dict(value)


def _merge_extra(plain: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        plain.setdefault(key, value)
    return plain


def _inline_fields(cls: type, variable: str) -> str:
    return ", ".join(f"{f.name!r}: {variable}.{f.name}" for f in fields(cls) if f.name != "extra")


# Envelope fields as ``encode`` fills them: the writer's values where the event has none.
_ENVELOPE_AS = {
    "experiment_id": "(experiment_id if o.experiment_id is None else o.experiment_id)",
    "seq": "(o.seq if seq is None else seq)",
    "event_id": "(event_id if o.event_id is None else o.event_id)",
    "schema_version": f"({ev.SCHEMA_VERSION} if o.schema_version is None else o.schema_version)",
}


@cache
def _compiled(cls: type) -> tuple[Callable[..., dict[str, Any]], Callable[..., bytes]]:
    """Compile, on first use, the two functions that turn one record class into JSON.

    ``to_dict(o)`` gives a plain dict; ``encode(o, seq, event_id, experiment_id)`` gives the
    line. A generic ``getattr`` loop costs microseconds per event, and the writer's whole
    budget is about the cost of its ``write`` system call.
    """
    plain, envelope = [], []
    for f in fields(cls):
        if f.name == "extra":
            continue
        value = _ENCODE_AS.get(f.annotation, "{v}").format(
            v=f"o.{f.name}", message_fields=_inline_fields(ev.Message, f"o.{f.name}")
        )
        plain.append(f"{f.name!r}: {value}")
        envelope.append(f"{f.name!r}: {_ENVELOPE_AS.get(f.name, value)}")
    # An unknown event's conversation_id exists only if its line had one.
    drop_absent = "    if d['conversation_id'] is None: del d['conversation_id']\n"
    tail = (
        f"{drop_absent if cls is ev.UnknownEvent else ''}    if o.extra: _merge_extra(d, o.extra)\n"
    )
    source = (
        f"def to_dict(o):\n    d = {{{', '.join(plain)}}}\n{tail}    return d\n"
        f"def encode(o, seq, event_id, experiment_id):\n"
        f"    d = {{{', '.join(envelope)}}}\n{tail}    return _dumps(d, option=_OPTIONS)\n"
    )
    scope: dict[str, Any] = {
        "_plain_mapping": _plain_mapping,
        "_merge_extra": _merge_extra,
        "_dumps": orjson.dumps,
        "_OPTIONS": _DUMP_OPTIONS,
    }
    if cls is not ev.Message:
        scope["_to_dict_Message"] = _compiled(ev.Message)[0]
    if cls is not ev.Turn and cls is not ev.Message:
        scope["_to_dict_Turn"] = _compiled(ev.Turn)[0]
    exec(compile(source, f"<pidgin_events encoder for {cls.__name__}>", "exec"), scope)
    return scope["to_dict"], scope["encode"]


def event_to_dict(event: ev.Event) -> dict[str, Any]:
    """The event as a plain, JSON-ready dict, unknown fields included."""
    return _compiled(type(event))[0](event)


def encode_event(
    event: ev.Event,
    *,
    seq: int | None = None,
    event_id: str | None = None,
    experiment_id: str | None = None,
) -> bytes:
    """One JSON line, newline included.

    ``seq`` replaces the event's own; ``event_id``, ``experiment_id`` and the schema version
    are filled in only where the event has none, so a line read from another log keeps
    its identity.
    """
    return _compiled(type(event))[1](event, seq, event_id, experiment_id)


_ENCODERS: dict[type, Callable[[Any, int | None, str | None, str | None], bytes]] = {}


def event_encoder(cls: type) -> Callable[[Any, int | None, str | None, str | None], bytes]:
    """The compiled ``encode(event, seq, event_id, experiment_id)`` of one event class.

    Writers look it up per event, so it is kept in a plain dict, the cheapest lookup.
    """
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        encoder = _ENCODERS[cls] = _compiled(cls)[1]
    return encoder


# --- decoding ---------------------------------------------------------------------------


def _typed(*kinds: type) -> Callable[[Any, str], Any]:
    allow_none = type(None) in kinds
    integral = int in kinds and float not in kinds
    label = " or ".join(_JSON_NAMES[k] for k in kinds if not (k is int and float in kinds))

    def convert(value: Any, name: str) -> Any:
        if value is None and allow_none:
            return None
        # JSON booleans are Python ints; an integer field must not accept them.
        if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
            return value
        # JSON has one number type: 3.0 is the integer 3 to encoders in other languages.
        if integral and isinstance(value, float) and value.is_integer():
            return int(value)
        raise EventDecodeError(f"field {name!r}: expected {label}, got {json_type(value)}")

    return convert


_JSON_NAMES: Mapping[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value (``integer``, ``object``...), as messages say it."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _timestamp(value: Any, name: str) -> Any:
    if not isinstance(value, str):
        raise EventDecodeError(
            f"field {name!r}: expected an ISO 8601 string, got {json_type(value)}"
        )
    try:
        return parse_timestamp(value)
    except ValueError:
        raise EventDecodeError(
            f"field {name!r}: {value[:40]!r} is not an ISO 8601 timestamp"
        ) from None


def _mapping(optional: bool) -> Callable[[Any, str], Any]:
    def convert(value: Any, name: str) -> Any:
        if isinstance(value, dict) or (optional and value is None):
            return value
        raise EventDecodeError(f"field {name!r}: expected an object, got {json_type(value)}")

    return convert


def _str_tuple(value: Any, name: str) -> Any:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise EventDecodeError(f"field {name!r}: expected an array of strings")


def _nested(cls: type[Any]) -> Callable[[Any, str], Any]:
    def convert(value: Any, name: str) -> Any:
        if not isinstance(value, dict):
            raise EventDecodeError(f"field {name!r}: expected an object, got {json_type(value)}")
        return _build(cls, value, f"{name}.")

    return convert


def _optional(convert: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def optional(value: Any, name: str) -> Any:
        return None if value is None else convert(value, name)

    return optional


def _messages(value: Any, name: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, list):
        raise EventDecodeError(f"field {name!r}: expected an array, got {json_type(value)}")
    message = _nested(ev.Message)
    return tuple(message(item, f"{name}[{i}]") for i, item in enumerate(value))


# Field annotations (strings, under ``from __future__ import annotations``) to converters.
_CONVERTERS: Mapping[str, Callable[[Any, str], Any]] = {
    "str": _typed(str),
    "str | None": _typed(str, type(None)),
    "int": _typed(int),
    "int | None": _typed(int, type(None)),
    "float": _typed(float, int),
    "float | None": _typed(float, int, type(None)),
    "bool": _typed(bool),
    "bool | None": _typed(bool, type(None)),
    "datetime": _timestamp,
    "Mapping[str, Any]": _mapping(optional=False),
    "Mapping[str, Any] | None": _mapping(optional=True),
    "Mapping[str, int]": _mapping(optional=False),
    "tuple[str, ...]": _str_tuple,
    "Message": _nested(ev.Message),
    "Message | None": _optional(_nested(ev.Message)),
    "Turn | None": _optional(_nested(ev.Turn)),
    "tuple[Message, ...] | None": _messages,
}


@cache
def _plan(cls: type) -> tuple[dict[str, Callable[[Any, str], Any]], frozenset[str]]:
    converters: dict[str, Callable[[Any, str], Any]] = {}
    required: set[str] = set()
    for f in fields(cls):
        if f.name == "extra" or not f.init:
            continue
        converters[f.name] = _CONVERTERS[f.annotation]
        if f.name == "timestamp" or f.required:
            required.add(f.name)
    return converters, frozenset(required)


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    converters, required = _plan(cls)
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        convert = converters.get(key)
        if convert is not None:
            kwargs[key] = convert(value, prefix + key)
        elif key != "event_type":
            extra[key] = value
    missing = required - kwargs.keys()
    if missing:
        raise EventDecodeError(
            f"{cls.__name__}: missing field{'s' if len(missing) > 1 else ''} "
            + ", ".join(repr(prefix + name) for name in sorted(missing))
        )
    if extra:
        kwargs["extra"] = MappingProxyType(extra)
    return cls(**kwargs)


def event_from_dict(data: Mapping[str, Any]) -> ev.Event:
    """Build the typed event for a decoded JSON object; unknown types become ``UnknownEvent``."""
    if not isinstance(data, dict):
        data = dict(data)
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise EventDecodeError("no 'event_type' string")
    cls = EVENT_TYPES.get(event_type, ev.UnknownEvent)
    event: ev.Event = _build(cls, data)
    return event


def unreadable_reason(line: bytes | str, error: orjson.JSONDecodeError) -> str:
    """Why a line is not JSON, in the words every reader of logs uses: bytes that are not
    UTF-8 are named with their column (orjson calls them surrogates), anything else is
    orjson's own message."""
    if isinstance(line, bytes):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            return f"not valid UTF-8: byte 0x{line[bad.start]:02x} at column {bad.start + 1}"
    return f"not valid JSON: {error}"


def decode_event(line: bytes | str) -> ev.Event:
    """Parse one JSON line into an event, raising ``EventDecodeError`` with the reason."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(unreadable_reason(line, exc)) from None
    if not isinstance(data, dict):
        raise EventDecodeError(f"expected a JSON object, got {json_type(data)}")
    return event_from_dict(data)
