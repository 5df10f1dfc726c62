"""The JSON Schema of one event log line, generated from the record classes.

Agents written in other languages emit events by this schema. It is generated from the
same field declarations the codec decodes with, and each annotation maps to JSON the way
``_codec._CONVERTERS`` reads it, so the schema and the reader cannot drift apart.
"""

from __future__ import annotations

import re

from . import _events as ev
from ._codec import EVENT_TYPES
from ._record import Field, fields

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DATE_TIME_PATTERN",
    "SCHEMA_DRAFT",
    "SUPPORTED_ANNOTATIONS",
    "json_schema",
    "schema_id",
]

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"

# RFC 3339 with a mandatory offset ("Z" or ±HH:MM), the form every Pidgin timestamp takes.
# [0-9] rather than \d: Python's \d also matches non-ASCII digits. Years start at 1000 and
# seconds stop at 59 so that every timestamp the pattern accepts, Python can parse; only
# days past the end of their month (February 30) slip through a regular expression.
_DATE = r"[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
DATE_TIME_PATTERN = f"^{_DATE}T{_TIME}{_OFFSET}$"
"""What a timestamp looks like: ``2026-01-02T03:04:05.678901+00:00`` or ``...Z``."""
_LOCAL_DATE_TIME_PATTERN = f"^{_DATE}T{_TIME}{_OFFSET}?$"

# How each field annotation reads from JSON, mirroring ``_codec._CONVERTERS``: integers
# exclude booleans (JSON Schema's "integer" never matches true/false), numbers include
# integers, mappings are objects whose values the reader does not check.
_MESSAGE_REF = "#/$defs/Message"
_ANNOTATIONS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "str | None": {"type": ["string", "null"]},
    "int": {"type": "integer"},
    "int | None": {"type": ["integer", "null"]},
    "float": {"type": "number"},
    "float | None": {"type": ["number", "null"]},
    "bool": {"type": "boolean"},
    "bool | None": {"type": ["boolean", "null"]},
    "Mapping[str, Any]": {"type": "object"},
    "Mapping[str, Any] | None": {"type": ["object", "null"]},
    "Mapping[str, int]": {"type": "object"},
    "tuple[str, ...]": {"type": "array", "items": {"type": "string"}},
    # The definitions leave "type" to each use, so that one definition serves both the
    # required and the nullable form without anyOf (whose errors say little).
    "Message": {"type": "object", "$ref": _MESSAGE_REF},
    "Message | None": {"type": ["object", "null"], "$ref": _MESSAGE_REF},
    "Turn | None": {"type": ["object", "null"], "$ref": "#/$defs/Turn"},
    "tuple[Message, ...] | None": {
        "type": ["array", "null"],
        "items": {"type": "object", "$ref": _MESSAGE_REF},
    },
}
_DATETIME = "datetime"
SUPPORTED_ANNOTATIONS: frozenset[str] = frozenset({*_ANNOTATIONS, _DATETIME})
"""Every field annotation the generator knows how to express."""

# The envelope every line carries. Our writer always writes all of it; pidgin-ai 1.x wrote
# only event_type and timestamp everywhere (experiment_id on some lines, often null).
_ENVELOPE = ("event_type", "timestamp", "experiment_id", "seq", "event_id", "schema_version")
_STAMPED_BY_WRITER = ("seq", "event_id", "schema_version")
_MINIMUM = {"seq": 0, "schema_version": 1}


def schema_id(*, legacy: bool = False) -> str:
    """The ``$id`` of the schema: versioned with the line format, one per variant."""
    suffix = ":pidgin-ai-1" if legacy else ""
    return f"urn:pidgin:event-line:v{ev.SCHEMA_VERSION}{suffix}"


def json_schema(*, legacy: bool = False) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one line of a Pidgin event log.

    It describes the format this package writes: ``seq``, ``event_id``,
    ``schema_version`` and ``experiment_id`` are on every line. ``legacy=True`` relaxes
    exactly what pidgin-ai 1.x logs lack: those fields may be absent or null, and
    timestamps inside messages may have no offset (pidgin-ai wrote naive local times).
    Unknown event types and unknown properties are valid everywhere, so that logs written
    by newer versions still validate. A new dict is returned on each call.
    """
    envelope, required = _envelope(legacy)
    defs: dict[str, Any] = {
        "Message": _record_definition(ev.Message, naive_times=legacy),
        "Turn": _record_definition(ev.Turn, naive_times=legacy),
    }
    branches: list[dict[str, Any]] = []
    for name, cls in EVENT_TYPES.items():
        defs[name] = _record_definition(cls, naive_times=False)
        branches.append(
            {
                "if": {"properties": {"event_type": {"const": name}}, "required": ["event_type"]},
                "then": {"$ref": f"#/$defs/{name}"},
            }
        )
    # An unknown type still has to carry the fields the reader converts for it.
    unknown = _record_definition(ev.UnknownEvent, naive_times=False)
    unknown["description"] = (
        "Any event_type not listed here: valid when the envelope is, so that logs written by"
        " newer versions validate; a conversation_id, if present, is a string or null."
    )
    defs["UnknownEvent"] = unknown
    branches.append(
        {
            "if": {
                "properties": {"event_type": {"enum": list(EVENT_TYPES)}},
                "required": ["event_type"],
            },
            "else": {"$ref": "#/$defs/UnknownEvent"},
        }
    )
    if legacy:
        title = "Pidgin event log line (also pidgin-ai 1.x)"
        variant = (
            " This variant also accepts logs written by pidgin-ai 1.x: experiment_id, seq,"
            " event_id and schema_version may be absent or null, and timestamps inside"
            " messages may lack a UTC offset."
        )
    else:
        title = "Pidgin event log line"
        variant = (
            " Lines written by pidgin-ai 1.x lack seq, event_id and schema_version; check"
            " them with the legacy variant (python -m pidgin_events schema --legacy)."
        )
    return {
        "$schema": SCHEMA_DRAFT,
        "$id": schema_id(legacy=legacy),
        "title": title,
        "description": (
            "One line of a Pidgin event log: a JSON object, UTF-8, ending with a newline,"
            " in <conversation_id>_events.jsonl or experiment.jsonl. event_type names the"
            f" event; the fields of each known type are under $defs. Schema version"
            f" {ev.SCHEMA_VERSION}. Unknown event types and unknown properties are allowed"
            " (forward compatibility); readers keep them." + variant
        ),
        "type": "object",
        "properties": envelope,
        "required": required,
        "additionalProperties": True,
        "allOf": branches,
        "$defs": defs,
    }


def _envelope(legacy: bool) -> tuple[dict[str, Any], list[str]]:
    declared = {f.name: f for f in fields(ev.Event)}
    properties: dict[str, Any] = {}
    for name in _ENVELOPE:
        if name == "event_type":
            schema: dict[str, Any] = {"type": "string", "minLength": 1}
        else:
            schema = _field_schema(ev.Event, declared[name], naive_times=False)
            if not legacy and name in _STAMPED_BY_WRITER:
                schema["type"] = next(t for t in schema["type"] if t != "null")
        if name in _MINIMUM:
            schema["minimum"] = _MINIMUM[name]
        properties[name] = schema
    required = ["event_type", "timestamp"] if legacy else list(_ENVELOPE)
    return properties, required


def _record_definition(cls: type, *, naive_times: bool) -> dict[str, Any]:
    """The properties and required fields of one record class.

    Events list only what differs from the envelope, which the root schema checks for
    every line; ``required`` follows the codec (fields without a default, and
    ``timestamp``, which the codec always demands).
    """
    envelope = {f.name: f for f in fields(ev.Event)} if issubclass(cls, ev.Event) else {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for spec in fields(cls):
        if spec.name == "extra" or not spec.init:
            continue
        is_required = spec.required or spec.name == "timestamp"
        inherited = envelope.get(spec.name)
        if (
            inherited is not None
            and inherited.annotation == spec.annotation
            and (inherited.required or inherited.name == "timestamp") == is_required
        ):
            continue
        properties[spec.name] = _field_schema(cls, spec, naive_times=naive_times)
        if is_required:
            required.append(spec.name)
    definition: dict[str, Any] = {
        "title": cls.__name__,
        "description": _summary(cls),
        "properties": properties,
    }
    if required:
        definition["required"] = required
    definition["additionalProperties"] = True
    return definition


def _field_schema(cls: type, spec: Field, *, naive_times: bool) -> dict[str, Any]:
    if spec.annotation == _DATETIME:
        if naive_times:
            return {
                "type": "string",
                "pattern": _LOCAL_DATE_TIME_PATTERN,
                "description": "ISO 8601 date-time; pidgin-ai 1.x wrote these without offset",
            }
        return {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN}
    template = _ANNOTATIONS.get(spec.annotation)
    if template is None:
        raise TypeError(
            f"pidgin_events._schema: no JSON Schema for {cls.__name__}.{spec.name}: "
            f"{spec.annotation!r}; add the annotation to _ANNOTATIONS in _schema.py, "
            "the way _codec._CONVERTERS reads it"
        )
    return _copy(template)


def _copy(schema: dict[str, Any]) -> dict[str, Any]:
    # Callers may edit what json_schema() returns; the templates must stay as they are.
    return {
        key: _copy(value)
        if isinstance(value, dict)
        else list(value)
        if isinstance(value, list)
        else value
        for key, value in schema.items()
    }


def _summary(cls: type) -> str:
    first_paragraph = (cls.__doc__ or cls.__name__).strip().split("\n\n")[0]
    return re.sub(r"\s+", " ", first_paragraph).replace("``", "")
