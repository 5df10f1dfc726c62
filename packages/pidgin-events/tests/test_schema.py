"""The JSON Schema of a log line and the validator that ships with it.

jsonschema (a test dependency only) is the referee: the schema must be valid draft 2020-12,
and our validator must reach the same verdict on every line, good or broken.
"""

from __future__ import annotations

import copy
import gzip
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

import pidgin_events as pe
from pidgin_events import _codec
from pidgin_events._record import Record, fields
from pidgin_events._schema import (
    DATE_TIME_PATTERN,
    SCHEMA_DRAFT,
    SUPPORTED_ANNOTATIONS,
    _record_definition,
    json_schema,
)
from pidgin_events._validate import SchemaError, SchemaValidator
from pidgin_events._validate_log import FileTally, file_problems, validate_file, validate_line

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
VARIANTS = {"ours": False, "legacy": True}
REFEREES = {legacy: Draft202012Validator(json_schema(legacy=legacy)) for legacy in (False, True)}
OURS = {legacy: SchemaValidator(json_schema(legacy=legacy)) for legacy in (False, True)}


def message(content: str = "hi", timestamp: datetime = NOW) -> pe.Message:
    return pe.Message(role="assistant", content=content, agent_id="agent_a", timestamp=timestamp)


SAMPLE_VALUES: dict[str, Any] = {
    "str": "text",
    "str | None": "maybe",
    "int": 7,
    "int | None": 3,
    "float": 0.25,
    "float | None": 2,  # an integer where a float goes: the codec accepts it, so must we
    "bool": True,
    "bool | None": False,
    "datetime": datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
    "Mapping[str, Any]": {"key": [1, 2, {"nested": None}]},
    "Mapping[str, Any] | None": {"model": "local:test"},
    "Mapping[str, int]": {"events": 12},
    "tuple[str, ...]": ("readme", "database"),
    "Message": message(),
    "Message | None": message("yo"),
    "Turn | None": pe.Turn(agent_a_message=message("a"), agent_b_message=None),
    "tuple[Message, ...] | None": (message("be brief"), message("ok")),
}


def build(cls: type[pe.Event], *, minimal: bool) -> pe.Event:
    """``cls`` with every field set (or only the required ones) to a representative value."""
    values = {
        f.name: SAMPLE_VALUES[f.annotation]
        for f in fields(cls)
        if f.init and f.name not in ("extra", "event_type") and (f.required or not minimal)
    }
    return cls(**values)


def referee_agrees(value: Any, legacy: bool) -> bool:
    """Our verdict equals jsonschema's; returns the verdict."""
    ours = not OURS[legacy].errors(value)
    assert ours == REFEREES[legacy].is_valid(value), (value, OURS[legacy].errors(value))
    return ours


def written_lines(tmp_path: Path, events: list[pe.Event], name: str = "log.jsonl") -> Path:
    path = tmp_path / name
    with pe.EventWriter(path, experiment_id="exp_schema") as writer:
        for event in events:
            writer.emit(event)
    return path


def line_of(event: pe.Event) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(
        pe.encode_event(event, seq=0, event_id="e-0", experiment_id="exp_1")
    )
    return data


# --- the schema itself ----------------------------------------------------------------------


@pytest.mark.parametrize("legacy", VARIANTS.values(), ids=VARIANTS.keys())
def test_schema_is_valid_draft_2020_12_and_says_what_it_is(legacy: bool) -> None:
    schema = json_schema(legacy=legacy)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == SCHEMA_DRAFT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:pidgin:event-line:v1")
    assert schema["title"]
    assert "forward compatib" in schema["description"]
    assert schema["additionalProperties"] is True
    assert set(schema["$defs"]) == {*pe.EVENT_TYPES, "Message", "Turn", "UnknownEvent"}
    orjson.loads(orjson.dumps(schema))  # plain JSON, nothing Python-specific
    assert json_schema(legacy=True)["$id"] != json_schema()["$id"]


def test_envelope_is_required_in_our_format_and_relaxed_for_pidgin_ai() -> None:
    ours, legacy = json_schema(), json_schema(legacy=True)
    envelope = ["event_type", "timestamp", "experiment_id", "seq", "event_id", "schema_version"]
    assert ours["required"] == envelope
    assert legacy["required"] == ["event_type", "timestamp"]
    assert ours["properties"]["seq"] == {"type": "integer", "minimum": 0}
    assert ours["properties"]["schema_version"] == {"type": "integer", "minimum": 1}
    assert legacy["properties"]["seq"] == {"type": ["integer", "null"], "minimum": 0}
    assert ours["properties"]["timestamp"]["format"] == "date-time"


def test_every_annotation_in_the_catalogue_is_covered_the_way_the_codec_reads_it() -> None:
    records: list[type[Record]] = [
        *pe.EVENT_TYPES.values(),
        pe.Event,
        pe.UnknownEvent,
        pe.Message,
        pe.Turn,
    ]
    used = {f.annotation for cls in records for f in fields(cls) if f.init and f.name != "extra"}
    assert used <= SUPPORTED_ANNOTATIONS
    assert set(_codec._CONVERTERS) == SUPPORTED_ANNOTATIONS


def test_an_annotation_the_generator_does_not_know_is_a_clear_error() -> None:
    class Hologram(Record):
        beams: complex

    with pytest.raises(TypeError, match=r"Hologram\.beams: 'complex'.*_ANNOTATIONS"):
        _record_definition(Hologram, naive_times=False)


@pytest.mark.parametrize("name", list(pe.EVENT_TYPES))
def test_each_definition_requires_what_the_codec_requires(name: str) -> None:
    cls = pe.EVENT_TYPES[name]
    definition = json_schema()["$defs"][name]
    codec_required = set(_codec._plan(cls)[1])
    own_required = set(definition.get("required", ()))
    assert own_required <= codec_required
    assert codec_required - own_required <= {"timestamp"}  # the envelope demands it
    declared = {f.name for f in fields(cls) if f.init}
    assert set(definition["properties"]) <= declared


def test_changing_a_returned_schema_changes_nothing_else() -> None:
    schema = json_schema()
    schema["$defs"]["Message"]["properties"]["content"]["type"] = "integer"
    schema["properties"]["seq"]["minimum"] = 5
    assert json_schema()["$defs"]["Message"]["properties"]["content"] == {"type": "string"}
    assert json_schema()["properties"]["seq"]["minimum"] == 0


# --- everything the writer writes is valid ---------------------------------------------------


@pytest.mark.parametrize("minimal", [False, True], ids=["all-fields", "required-only"])
@pytest.mark.parametrize("cls", list(pe.EVENT_TYPES.values()), ids=list(pe.EVENT_TYPES))
def test_every_event_the_writer_writes_validates(
    tmp_path: Path, cls: type[pe.Event], minimal: bool
) -> None:
    path = written_lines(tmp_path, [build(cls, minimal=minimal)] * 2)
    for legacy in (False, True):
        assert validate_file(path, legacy=legacy) == []
    for raw in path.read_bytes().splitlines():
        assert validate_line(raw) == []
        for legacy in (False, True):
            assert REFEREES[legacy].is_valid(orjson.loads(raw))


def test_a_whole_log_of_every_event_validates_line_by_line(tmp_path: Path) -> None:
    events = [build(cls, minimal=m) for cls in pe.EVENT_TYPES.values() for m in (False, True)]
    path = written_lines(tmp_path, events)
    tally = FileTally()
    assert list(file_problems(path, OURS[False], tally=tally)) == []
    assert tally.lines == len(events)
    assert tally.problems == tally.bad_lines == 0


def test_unknown_event_types_and_unknown_fields_pass() -> None:
    future = {
        "event_type": "HologramEvent",
        "timestamp": "2031-05-05T00:00:00Z",
        "experiment_id": None,
        "seq": 4,
        "event_id": "e4",
        "schema_version": 9,
        "conversation_id": "conv_1",
        "beams": [1, 2, 3],
        "turn_number": "not checked: unknown types only need a valid envelope",
    }
    known = line_of(build(pe.MessageCompleteEvent, minimal=False))
    known["sentiment"] = {"score": 0.5}
    known["message"]["language"] = "en"
    for value in (future, known):
        for legacy in (False, True):
            assert referee_agrees(value, legacy)
        pe.decode_event(orjson.dumps(value))  # and the reader keeps them
    # What the reader converts for an unknown type is still checked.
    future["conversation_id"] = 5
    assert not referee_agrees(future, False)
    assert OURS[False].errors(future) == ["$.conversation_id: expected string or null, got integer"]


# --- broken lines ---------------------------------------------------------------------------

TURN_START = line_of(pe.TurnStartEvent(conversation_id="conv_1", turn_number=2, timestamp=NOW))
COMPLETE = line_of(build(pe.MessageCompleteEvent, minimal=False))
REQUEST = line_of(build(pe.MessageRequestEvent, minimal=False))
EXPERIMENT_START = line_of(build(pe.ExperimentStartEvent, minimal=True))


def changed(base: dict[str, Any], path: str, value: Any = ..., *, delete: bool = False) -> Any:
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    target: Any = data
    for step in parents:
        target = target[int(step)] if isinstance(target, list) else target[step]
    if delete:
        del target[last]
    else:
        target[int(last) if isinstance(target, list) else last] = value
    return data


BROKEN: list[tuple[str, Any, str]] = [
    (
        "wrong type",
        changed(TURN_START, "turn_number", "2"),
        "$.turn_number: expected integer, got string",
    ),
    (
        "boolean for an integer",
        changed(TURN_START, "turn_number", True),
        "$.turn_number: expected integer, got boolean",
    ),
    (
        "nested wrong type",
        changed(COMPLETE, "message.content", 5),
        "$.message.content: expected string, got integer",
    ),
    (
        "wrong type in an array",
        changed(REQUEST, "conversation_history.1.role", None),
        "$.conversation_history[1].role: expected string, got null",
    ),
    (
        "missing required field",
        changed(TURN_START, "conversation_id", delete=True),
        "$: missing required field 'conversation_id'",
    ),
    (
        "missing nested field",
        changed(COMPLETE, "message.timestamp", delete=True),
        "$.message: missing required field 'timestamp'",
    ),
    ("missing seq", changed(TURN_START, "seq", delete=True), "$: missing required field 'seq'"),
    (
        "experiment event without its experiment",
        changed(EXPERIMENT_START, "experiment_id", None),
        "$.experiment_id: expected string, got null",
    ),
    (
        "timestamp without offset",
        changed(TURN_START, "timestamp", "2026-01-02T03:04:05.678901"),
        '$.timestamp: "2026-01-02T03:04:05.678901" is not a date-time with a UTC offset',
    ),
    (
        "nested timestamp without offset",
        changed(COMPLETE, "message.timestamp", "2026-01-02T03:04:05"),
        "$.message.timestamp:",
    ),
    (
        "timestamp not a date",
        changed(TURN_START, "timestamp", "yesterday"),
        '$.timestamp: "yesterday" is not a date-time',
    ),
    ("negative seq", changed(TURN_START, "seq", -1), "$.seq: -1 is less than the minimum 0"),
    (
        "schema version 0",
        changed(TURN_START, "schema_version", 0),
        "$.schema_version: 0 is less than the minimum 1",
    ),
    ("empty event type", changed(TURN_START, "event_type", ""), "$.event_type: must not be empty"),
    (
        "event type not a string",
        changed(TURN_START, "event_type", 7),
        "$.event_type: expected string, got integer",
    ),
    (
        "null message",
        changed(COMPLETE, "message", None),
        "$.message: expected object, got null",
    ),
    ("array, not an object", [TURN_START], "expected a JSON object, got array"),
    ("string, not an object", "TurnStartEvent", "expected a JSON object, got string"),
    ("null, not an object", None, "expected a JSON object, got null"),
]


@pytest.mark.parametrize(("value", "reason"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_lines_are_rejected_by_both_validators(value: Any, reason: str) -> None:
    assert not REFEREES[False].is_valid(value)
    problems = validate_line(orjson.dumps(value))
    assert any(problem.startswith(reason) for problem in problems), problems
    if isinstance(value, dict):
        assert not referee_agrees(value, False)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event_type": "TurnStartEvent", ', "not valid JSON: "),
        (b"TurnStartEvent", "not valid JSON: "),
        (b'{"event_type": NaN}', "not valid JSON: "),
        (b'{"event_type": "Turn\xff"}', "not valid UTF-8: byte 0xff at column 21"),
        (b"\xef\xbb\xbf{}", "not valid JSON: "),
    ],
)
def test_lines_that_are_not_json_objects_say_why(raw: bytes, reason: str) -> None:
    [problem] = validate_line(raw)
    assert problem.startswith(reason)


def test_legacy_variant_relaxes_only_what_pidgin_ai_lacks() -> None:
    legacy_line = changed(COMPLETE, "message.timestamp", "2026-01-02T03:04:05.5")
    for name in ("seq", "event_id", "schema_version", "experiment_id"):
        del legacy_line[name]
    assert referee_agrees(legacy_line, True)
    assert not referee_agrees(legacy_line, False)
    # Envelope timestamps had an offset in pidgin-ai too; types still hold.
    assert not referee_agrees(changed(legacy_line, "timestamp", "2026-01-02T03:04:05"), True)
    assert not referee_agrees(changed(legacy_line, "seq", "1"), True)
    assert referee_agrees(changed(legacy_line, "seq", None), True)


def test_a_timestamp_followed_by_a_newline_is_rejected_like_ecma_regex_does() -> None:
    # Python's "$" also matches before a final newline; JSON Schema patterns are ECMA-262.
    value = changed(TURN_START, "timestamp", "2026-01-02T03:04:05+00:00\n")
    assert OURS[False].errors(value)
    with pytest.raises(pe.EventDecodeError):
        pe.decode_event(orjson.dumps(value))


# --- property: our verdict is jsonschema's, and schema-valid lines are readable ------------

TIMESTAMPS = [
    "2026-01-02T03:04:05+00:00",
    "2026-01-02T03:04:05.123456789Z",
    "2026-12-31T23:59:59-11:30",
    "2026-01-02T03:04:05",
    "2026-01-02T03:04:05.5",
    "2026-01-02 03:04:05+00:00",
    "2026-13-02T03:04:05Z",
    "2026-01-02T24:00:00Z",
    "2026-01-02T03:04:60Z",
    "2026-01-02T03:04:05+0000",
    "0999-01-02T03:04:05Z",
    "26-01-02T03:04:05Z",
    "yesterday",
    "",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([0.5, -2.5, 1.5e-300, 2.0]),
    st.sampled_from(["", "x", "agent_a", "TurnStartEvent", *TIMESTAMPS]),
)
VALUES = st.one_of(
    SCALARS,
    st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["role", "k"]), inner)
        ),
        max_leaves=4,
    ),
)
BASES = [
    line_of(build(cls, minimal=minimal))
    for cls in pe.EVENT_TYPES.values()
    for minimal in (False, True)
]


def near_misses(current: Any) -> list[Any]:
    """Values one step from ``current``: where a validator that is almost right goes wrong."""
    if isinstance(current, bool):
        return [not current, int(current), None, "true"]
    if isinstance(current, int):
        return [current - 1, -current - 1, current + 0.5, str(current), True, False, None]
    if isinstance(current, float):
        return [int(current), -current, str(current), True, None]
    if isinstance(current, str):
        return [*TIMESTAMPS, current + " ", 1, None, [current]]
    if isinstance(current, list):
        return [[], [None], [1], {}, None, "x", [*current, 1]]
    if isinstance(current, dict):
        return [{}, None, [], "x", {"role": 1}]
    return [0, "", False, {}, [], "x"]


def _slots(value: Any, trail: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value that a mutation can touch."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((*trail, key))
            found.extend(_slots(item, (*trail, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((*trail, index))
            found.extend(_slots(item, (*trail, index)))
    return found


@st.composite
def mutated_lines(draw: st.DrawFn) -> Any:
    value = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        slots = _slots(value)
        if not slots:
            break
        *parents, last = draw(st.sampled_from(slots))
        target = value
        for step in parents:
            target = target[step]
        action = draw(st.sampled_from(["near", "near", "near", "set", "delete", "add", "retype"]))
        if action == "near":
            target[last] = draw(st.sampled_from(near_misses(target[last])))
        elif action == "delete":
            del target[last]
        elif action == "set":
            target[last] = draw(VALUES)
        elif action == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(["novel", "Ünïcode key", "a.b"]))] = draw(VALUES)
        elif action == "retype":
            value["event_type"] = draw(st.sampled_from([*pe.EVENT_TYPES, "FutureEvent", ""]))
    return value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=mutated_lines(), legacy=st.booleans())
def test_verdicts_match_jsonschema_and_valid_lines_are_readable(value: Any, legacy: bool) -> None:
    if referee_agrees(value, legacy):
        pe.decode_event(orjson.dumps(value))


def test_an_integral_float_in_an_integer_field_is_valid_and_readable() -> None:
    # JSON Schema counts 2.0 as an integer, and encoders in other languages may write it.
    value = changed(TURN_START, "turn_number", 2.0)
    assert referee_agrees(value, False)
    event = pe.decode_event(orjson.dumps(value))
    assert isinstance(event, pe.TurnStartEvent)
    assert event.turn_number == 2
    assert type(event.turn_number) is int


# --- files -----------------------------------------------------------------------------------


def test_each_bad_line_of_a_file_is_reported_with_its_line_number(tmp_path: Path) -> None:
    good = pe.encode_event(
        pe.TurnStartEvent(conversation_id="c", turn_number=0), seq=0, event_id="e"
    )
    bad_type = orjson.dumps(changed(TURN_START, "turn_number", "2")) + b"\n"
    path = tmp_path / "mixed_events.jsonl"
    path.write_bytes(
        good  # 1
        + b"\n"  # 2: blank lines are skipped, as readers skip them
        + bad_type  # 3
        + b"{not json\n"  # 4
        + b"[1, 2]\n"  # 5
        + b'{"event_type": "\xff"}\n'  # 6
        + good  # 7
        + b'{"event_type":"TurnSt'  # 8: torn, no newline
    )
    problems = validate_file(path)
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:{n}" for n in (3, 4, 5, 6, 8)]
    assert problems[0] == f"{path}:3: $.turn_number: expected integer, got string"
    assert problems[1].startswith(f"{path}:4: not valid JSON: ")
    assert problems[2] == f"{path}:5: expected a JSON object, got array"
    assert problems[3] == f"{path}:6: not valid UTF-8: byte 0xff at column 17"
    assert problems[4].startswith(f"{path}:8: last line has no trailing newline")
    # Every block size sees the same lines: lines are reassembled across reads.
    for block_size in (1, 7, 64, 1 << 20):
        tally = FileTally()
        again = list(file_problems(path, OURS[False], tally=tally, block_size=block_size))
        assert again == problems
        assert (tally.lines, tally.bad_lines, tally.problems) == (7, 5, 5)


def test_a_file_ending_without_a_newline_is_reported_even_if_the_line_is_valid(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(pe.encode_event(pe.TurnStartEvent(conversation_id="c", turn_number=0))[:-1])
    [problem] = validate_file(path, legacy=True)
    assert problem.startswith(f"{path}:1: last line has no trailing newline")


def test_a_sixteen_megabyte_line_validates(tmp_path: Path) -> None:
    big = pe.MessageCompleteEvent(
        conversation_id="c",
        agent_id="agent_a",
        message=message("x" * (16 << 20)),
        prompt_tokens=1,
        completion_tokens=1,
        total_tokens=2,
        duration_ms=1,
    )
    path = written_lines(tmp_path, [big, big])
    assert validate_file(path) == []
    with path.open("ab") as file:
        file.write(orjson.dumps(changed(line_of(big), "message.content", 1)) + b"\n")
    assert validate_file(path) == [f"{path}:3: $.message.content: expected string, got integer"]


def test_lines_over_the_limit_are_reported_without_being_held(tmp_path: Path) -> None:
    good = pe.encode_event(
        pe.TurnStartEvent(conversation_id="c", turn_number=0), seq=0, event_id="e"
    )
    path = tmp_path / "log.jsonl"
    path.write_bytes(good + b'{"x": "' + b"y" * 5000 + b'"}\n' + good + b"z" * 3000)
    problems = validate_file(path, max_line_bytes=1000)
    assert problems == [
        f"{path}:2: line longer than 1000 bytes, not checked",
        f"{path}:4: last line has no trailing newline: a write in progress or cut short by "
        "a crash; readers skip it until it ends",
    ]


def test_files_that_cannot_be_read_are_one_problem_not_an_exception(tmp_path: Path) -> None:
    missing = tmp_path / "nope_events.jsonl"
    assert validate_file(missing) == [f"{missing}: cannot read: No such file or directory"]
    assert validate_file(tmp_path) == [f"{tmp_path}: cannot read: Is a directory"]


def test_compressed_logs_validate_and_a_truncated_archive_is_reported(tmp_path: Path) -> None:
    plain = written_lines(tmp_path, [build(cls, minimal=False) for cls in pe.EVENT_TYPES.values()])
    packed = tmp_path / "conv_1_events.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes() * 20))
    assert validate_file(packed) == []
    cut = tmp_path / "conv_2_events.jsonl.gz"
    cut.write_bytes(packed.read_bytes()[: os.path.getsize(packed) // 2])
    problems = validate_file(cut)
    assert problems
    assert all(p.startswith(f"{cut}:") for p in problems)


def test_pidgin_ai_fixtures_validate_only_with_the_legacy_schema(legacy_fixtures: Path) -> None:
    logs = sorted(legacy_fixtures.glob("*/events_*.jsonl"))
    assert len(logs) == 6
    for log in logs:
        assert validate_file(log, legacy=True) == []
        problems = validate_file(log)
        line_count = len(log.read_bytes().splitlines())
        missing = [p for p in problems if "missing required fields 'seq', 'event_id'" in p]
        assert [p.split(": ", 1)[0] for p in missing] == [
            f"{log}:{n}" for n in range(1, line_count + 1)
        ]
        # pidgin-ai wrote message times without an offset; our format does not allow that.
        assert any(".message.timestamp: " in p for p in problems)


# --- the validator refuses schemas it cannot fully check ------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {"oneOf": [{"type": "string"}]},
        {"type": "object", "additionalProperties": False},
        {"$ref": "https://example.com/other.json"},
        {"$ref": "#/$defs/Missing"},
        {"type": "text"},
        {"items": [{"type": "string"}]},
        {"pattern": "("},
    ],
)
def test_keywords_outside_the_subset_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaError):
        SchemaValidator(schema)


def test_date_time_pattern_is_exported_for_other_tools() -> None:
    assert DATE_TIME_PATTERN.startswith("^")
    assert DATE_TIME_PATTERN.endswith("$")
