"""Encoding and decoding: every event round-trips, unknown things are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

import pidgin_events as pe
from pidgin_events._record import fields

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

SAMPLE_VALUES: dict[str, Any] = {
    "str": "text",
    "str | None": "maybe",
    "int": 7,
    "int | None": 3,
    "float": 0.25,
    "float | None": 0.75,
    "bool": True,
    "bool | None": False,
    "datetime": NOW,
    "Mapping[str, Any]": {"key": [1, 2, {"nested": None}]},
    "Mapping[str, Any] | None": {"model": "local:test"},
    "Mapping[str, int]": {"events": 12},
    "tuple[str, ...]": ("readme", "database"),
    "Message": pe.Message(role="assistant", content="hi", agent_id="agent_a", timestamp=NOW),
    "Message | None": pe.Message(role="user", content="yo", agent_id="agent_b", timestamp=NOW),
    "Turn | None": pe.Turn(
        agent_a_message=pe.Message(role="assistant", content="a", agent_id="agent_a", timestamp=NOW)
    ),
    "tuple[Message, ...] | None": (
        pe.Message(role="system", content="be brief", agent_id="system", timestamp=NOW),
    ),
}


def full_event(cls: type[pe.Event]) -> pe.Event:
    """An instance of ``cls`` with every field set to a non-default value."""
    values = {
        f.name: SAMPLE_VALUES[f.annotation]
        for f in fields(cls)
        if f.init and f.name not in ("extra", "event_type")
    }
    return cls(**values)


@pytest.mark.parametrize("cls", list(pe.EVENT_TYPES.values()), ids=list(pe.EVENT_TYPES))
def test_every_event_round_trips(cls: type[pe.Event]) -> None:
    event = full_event(cls)
    line = pe.encode_event(event)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    decoded = pe.decode_event(line)
    assert type(decoded) is cls
    assert decoded == pe.decode_event(pe.encode_event(decoded))
    assert pe.event_to_dict(decoded) == pe.event_to_dict(event)


def test_event_type_names_match_class_names() -> None:
    for name, cls in pe.EVENT_TYPES.items():
        assert cls.__name__ == name
        assert fields(cls)[0].name == "event_type"


def test_line_starts_with_the_event_type_so_readers_can_sniff_it() -> None:
    line = pe.encode_event(pe.TurnStartEvent(conversation_id="c", turn_number=0), seq=0)
    assert line.startswith(b'{"event_type":"TurnStartEvent","timestamp":"')


def test_timestamps_carry_an_offset_everywhere() -> None:
    naive = datetime(2026, 1, 1, 12, 0, 0)
    aware = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    event = pe.MessageCompleteEvent(
        conversation_id="c",
        agent_id="agent_a",
        message=pe.Message(role="assistant", content="x", agent_id="agent_a", timestamp=naive),
        prompt_tokens=1,
        completion_tokens=2,
        total_tokens=3,
        duration_ms=4,
        timestamp=aware,
    )
    data = orjson.loads(pe.encode_event(event))
    assert data["timestamp"] == "2026-01-01T12:00:00+02:00"
    assert data["message"]["timestamp"] == "2026-01-01T12:00:00+00:00"
    assert pe.Message(role="a", content="b", agent_id="c").timestamp.tzinfo is UTC


def test_unknown_event_types_and_fields_round_trip() -> None:
    line = (
        b'{"event_type":"HologramEvent","timestamp":"2031-05-05T00:00:00+00:00",'
        b'"experiment_id":"exp_1","seq":4,"event_id":"e4","schema_version":9,'
        b'"conversation_id":"conv_1","beams":[1,2,3],"nested":{"deep":true}}\n'
    )
    event = pe.decode_event(line)
    assert isinstance(event, pe.UnknownEvent)
    assert event.event_type == "HologramEvent"
    assert event.conversation_id == "conv_1"
    assert event.seq == 4
    assert event.extra == {"beams": [1, 2, 3], "nested": {"deep": True}}
    assert orjson.loads(pe.encode_event(event)) == orjson.loads(line)

    without_conversation = b'{"event_type":"X","timestamp":"2031-05-05T00:00:00+00:00","seq":1}'
    again = orjson.loads(pe.encode_event(pe.decode_event(without_conversation)))
    assert "conversation_id" not in again


def test_unknown_fields_of_known_events_are_kept_nested_ones_too() -> None:
    original: dict[str, Any] = orjson.loads(
        pe.encode_event(full_event(pe.MessageCompleteEvent), seq=3, event_id="id-3")
    )
    original["sentiment"] = {"score": 0.5}
    original["message"]["language"] = "en"
    event = pe.decode_event(orjson.dumps(original))
    assert event.extra == {"sentiment": {"score": 0.5}}
    assert isinstance(event, pe.MessageCompleteEvent)
    assert event.message.extra == {"language": "en"}
    assert orjson.loads(pe.encode_event(event)) == original


def test_message_requests_name_a_count_instead_of_repeating_history() -> None:
    event = pe.MessageRequestEvent(
        conversation_id="c", agent_id="agent_a", turn_number=9, message_count=19
    )
    data = orjson.loads(pe.encode_event(event))
    assert data["message_count"] == 19
    assert data["conversation_history"] is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, got array"),
        (b'{"timestamp": "2026-01-01T00:00:00+00:00"}', "no 'event_type' string"),
        (
            b'{"event_type":"TurnStartEvent","timestamp":"2026-01-01T00:00:00+00:00",'
            b'"conversation_id":"c"}',
            "TurnStartEvent: missing field 'turn_number'",
        ),
        (
            b'{"event_type":"TurnStartEvent","timestamp":"yesterday","conversation_id":"c",'
            b'"turn_number":1}',
            "field 'timestamp': 'yesterday' is not an ISO 8601 timestamp",
        ),
        (
            b'{"event_type":"TurnStartEvent","timestamp":"2026-01-01T00:00:00+00:00",'
            b'"conversation_id":"c","turn_number":true}',
            "field 'turn_number': expected integer, got boolean",
        ),
        (
            b'{"event_type":"MessageCompleteEvent","timestamp":"2026-01-01T00:00:00+00:00",'
            b'"conversation_id":"c","agent_id":"a","message":{"role":"r","agent_id":"a"},'
            b'"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"duration_ms":1}',
            "Message: missing fields 'message.content', 'message.timestamp'",
        ),
        # the byte and its column, not orjson's "surrogates not allowed"
        (
            b'{"event_type":"TurnStartEvent","timestamp":"\xff\xfe"}',
            "not valid UTF-8: byte 0xff at column 45",
        ),
    ],
)
def test_bad_lines_say_why(line: bytes, reason: str) -> None:
    with pytest.raises(pe.EventDecodeError) as caught:
        pe.decode_event(line)
    assert reason in str(caught.value)


def test_records_are_immutable_and_keyword_only() -> None:
    # Each ignore marks a misuse made on purpose, for the runtime to refuse it as mypy does.
    event = pe.TurnStartEvent(conversation_id="c", turn_number=1)
    with pytest.raises(AttributeError, match="immutable"):
        event.turn_number = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="required keyword-only argument: 'turn_number'"):
        pe.TurnStartEvent(conversation_id="c")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        pe.TurnStartEvent(conversation_id="c", turn_number=1, colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        pe.TurnStartEvent("c", 1)  # type: ignore[call-arg, arg-type]


def test_legacy_fixture_lines_all_decode(legacy_fixtures: Path) -> None:
    files = sorted(legacy_fixtures.glob("*/events_*.jsonl"))
    assert len(files) == 6
    counts: dict[str, int] = {}
    for path in files:
        for raw in path.read_bytes().splitlines():
            event = pe.decode_event(raw)
            assert not isinstance(event, pe.UnknownEvent)
            counts[event.event_type] = counts.get(event.event_type, 0) + 1
    assert counts["ConversationStartEvent"] == counts["ConversationEndEvent"] == 6
    assert counts["TurnCompleteEvent"] == 5 * 20 + 10
    assert counts["MessageCompleteEvent"] == 2 * counts["TurnCompleteEvent"]
