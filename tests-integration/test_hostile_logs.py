"""Broken, foreign and future logs: reported with file and line, never a crash, no loss.

Each case writes a real experiment with ``pidgin_events`` (two conversations of good
events), damages it the way a crash, a bad tool or a newer Pidgin would, and then reads
it four ways: the reader, the state builder, the loader (a real DuckDB file) and the two
commands people run on it (``pidgin experiment status``, ``pidgin-load``). Every good
event must come out of each of them, and every bad line must be named by file and line.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from _faultlog import FaultLog, RunCommand

import pidgin_events as pe

EXPERIMENT_ID = "exp_logs"
TURNS = 3
EVENTS_PER_CONVERSATION = 1 + TURNS * 4 + 1
"""Start, (turn start, two messages, turn complete) per turn, end."""


def write_experiment(
    root: Path,
    *,
    experiment_id: str = EXPERIMENT_ID,
    conversations: tuple[str, ...] = ("conv_a", "conv_b"),
    big_message: int = 0,
) -> Path:
    with pe.Experiment.create(
        root,
        name=experiment_id.replace("_", "-"),
        experiment_id=experiment_id,
        total_conversations=len(conversations),
    ) as experiment:
        for conversation_id in conversations:
            with experiment.conversation(
                agent_a="local:test",
                agent_b="local:test",
                conversation_id=conversation_id,
                max_turns=TURNS,
            ) as conversation:
                for turn in range(TURNS):
                    conversation.turn_start()
                    conversation.message("agent_a", f"a{turn}", prompt_tokens=1)
                    body = "x" * big_message if big_message and turn == 1 else f"b{turn}"
                    conversation.message("agent_b", body, completion_tokens=2)
                    conversation.turn_complete(0.1 * (turn + 1))
    return experiment.directory


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def insert_lines(path: Path, after: int, new: list[bytes]) -> None:
    """Put ``new`` lines after line ``after`` (1-based), keeping every other byte."""
    lines = lines_of(path)
    path.write_bytes(b"".join(line + b"\n" for line in [*lines[:after], *new, *lines[after:]]))


@dataclass
class Damage:
    """What a case did to the experiment, and what every reader must make of it."""

    good: dict[str, int]
    """Good events per file name (what must come out of the reader and the loader)."""
    bad: list[tuple[str, int]] = field(default_factory=list)
    """``(file, line)`` of each line that is not an event (reader, loader's load_errors)."""
    misplaced: list[tuple[str, int]] = field(default_factory=list)
    """Valid events that do not belong where they are: the reader yields them (it reads
    lines, not conversations); the state builder and the loader (load_errors) report them,
    and the loader may keep them in ``events`` too."""
    torn: list[tuple[str, int]] = field(default_factory=list)
    """A last line without its newline: the reader waits for the rest (a live writer may
    finish it); the loader, reading a finished run, reports it in load_errors."""
    problems: list[tuple[str, int | None]] = field(default_factory=list)
    """``(file, line)`` the state builder must name (line None: the file is enough)."""
    messages: dict[str, int] = field(default_factory=dict)
    """Messages the state builder must count per conversation."""
    statuses: dict[str, str] = field(default_factory=dict)


def baseline() -> Damage:
    files = {"conv_a_events.jsonl": EVENTS_PER_CONVERSATION}
    files["conv_b_events.jsonl"] = EVENTS_PER_CONVERSATION
    files[pe.EXPERIMENT_LOG] = 2
    return Damage(
        good=files,
        messages={"conv_a": 2 * TURNS, "conv_b": 2 * TURNS},
        statuses={"conv_a": "completed", "conv_b": "completed"},
    )


# --- the damage -------------------------------------------------------------------------


def malformed(directory: Path) -> Damage:
    damage = baseline()
    insert_lines(
        directory / "conv_a_events.jsonl",
        5,
        [b'{"event_type":"TurnStartEvent","timestamp":', b"this is not json", b"[1, 2, 3]"],
    )
    damage.bad = [("conv_a_events.jsonl", n) for n in (6, 7, 8)]
    damage.problems = list(damage.bad)
    return damage


def non_utf8(directory: Path) -> Damage:
    damage = baseline()
    insert_lines(
        directory / "conv_a_events.jsonl",
        5,
        [
            b'{"event_type":"ErrorEvent","timestamp":"2026-01-01T00:00:00Z",'
            b'"conversation_id":"conv_a","error_type":"x","error_message":"\xff\xfe\xc3("}',
            b"caf\xe9 cr\xe8me",
        ],
    )
    damage.bad = [("conv_a_events.jsonl", 6), ("conv_a_events.jsonl", 7)]
    damage.problems = list(damage.bad)
    return damage


HUGE = 17 << 20
"""Past DuckDB's default ``maximum_object_size`` (16 MB)."""


def huge_lines(directory: Path) -> Damage:
    # conv_a already holds a valid 17 MB message (written by the API, turn 1); add an
    # unterminated 17 MB line after it.
    damage = baseline()
    insert_lines(
        directory / "conv_a_events.jsonl",
        9,
        [b'{"event_type":"MessageCompleteEvent","message":{"content":"' + b"y" * HUGE],
    )
    damage.bad = [("conv_a_events.jsonl", 10)]
    damage.problems = list(damage.bad)
    return damage


def duplicated_seq(directory: Path) -> Damage:
    damage = baseline()
    log = directory / "conv_a_events.jsonl"
    insert_lines(log, 5, [lines_of(log)[4]])  # line 6 repeats line 5, seq and all
    damage.misplaced = [("conv_a_events.jsonl", 6)]
    damage.problems = list(damage.misplaced)
    return damage


def missing_start(directory: Path) -> Damage:
    damage = baseline()
    log = directory / "conv_a_events.jsonl"
    log.write_bytes(b"".join(line + b"\n" for line in lines_of(log)[1:]))
    damage.good["conv_a_events.jsonl"] -= 1
    damage.problems = [("conv_a_events.jsonl", None)]
    return damage


def missing_end(directory: Path) -> Damage:
    damage = baseline()
    log = directory / "conv_a_events.jsonl"
    log.write_bytes(b"".join(line + b"\n" for line in lines_of(log)[:-1]))
    damage.good["conv_a_events.jsonl"] -= 1
    damage.statuses["conv_a"] = "interrupted"  # no end event and nobody writing
    return damage


def wrong_file(directory: Path) -> Damage:
    damage = baseline()
    stray = pe.ErrorEvent(conversation_id="conv_b", error_type="stray", error_message="conv_b's")
    insert_lines(directory / "conv_a_events.jsonl", 5, [pe.encode_event(stray, seq=5).rstrip()])
    damage.misplaced = [("conv_a_events.jsonl", 6)]
    damage.problems = list(damage.misplaced)
    return damage


def binary_log(directory: Path) -> Damage:
    damage = baseline()
    noise = random.Random(7).randbytes(64 << 10)
    (directory / "conv_bin_events.jsonl").write_bytes(noise)
    lines = noise.split(b"\n")
    # Every non-blank line of noise is bad; the last one has no newline (a torn tail).
    damage.bad = [
        ("conv_bin_events.jsonl", number)
        for number, line in enumerate(lines[:-1], start=1)
        if line.strip()
    ]
    if lines[-1].strip():
        damage.torn = [("conv_bin_events.jsonl", len(lines))]
    damage.problems = [("conv_bin_events.jsonl", None)]
    damage.good["conv_bin_events.jsonl"] = 0
    return damage


def empty_log(directory: Path) -> Damage:
    damage = baseline()
    (directory / "conv_empty_events.jsonl").write_bytes(b"")
    damage.good["conv_empty_events.jsonl"] = 0
    damage.statuses["conv_empty"] = "empty"
    return damage


CASES: dict[str, tuple[str, Callable[[Path], Damage]]] = {
    "malformed": ("malformed JSON lines mid-log (truncated object, prose, an array)", malformed),
    "non-utf8": ("lines with bytes that are not UTF-8", non_utf8),
    "huge": ("a valid 17 MB event and an unterminated 17 MB line (> DuckDB's 16 MB)", huge_lines),
    "duplicate-seq": ("a duplicated line (same seq, same event_id)", duplicated_seq),
    "missing-start": ("a conversation log without its ConversationStartEvent", missing_start),
    "missing-end": ("a conversation log without its ConversationEndEvent", missing_end),
    "wrong-file": ("an event of another conversation in a conversation's log", wrong_file),
    "binary": ("a binary file named like a conversation log", binary_log),
    "empty": ("an empty conversation log", empty_log),
}


# --- the four readers -------------------------------------------------------------------


def misplaced_in(name: str, damage: Damage) -> int:
    return sum(1 for file, _ in damage.misplaced if file == name)


def check_reader(directory: Path, damage: Damage) -> int:
    """Read every file; returns the good events read."""
    recovered = 0
    for name, good in damage.good.items():
        result = pe.read_events(directory / name)
        assert len(result.events) == good + misplaced_in(name, damage), name
        recovered += len(result.events) - misplaced_in(name, damage)
        assert [bad.line for bad in result.bad_lines] == [n for f, n in damage.bad if f == name]
        for bad in result.bad_lines:
            assert str(bad).startswith(f"{directory / name}:{bad.line}: ")
    return recovered


def check_state(directory: Path, damage: Damage) -> None:
    from pidgin_state import StateBuilder

    state = StateBuilder.from_experiment_dir(directory)
    for conversation_id, count in damage.messages.items():
        assert state.conversations[conversation_id].message_count == count, conversation_id
    for conversation_id, status in damage.statuses.items():
        assert state.conversations[conversation_id].status == status, conversation_id
    text = "\n".join(state.problems)
    assert state.problem_count >= len(damage.problems)
    for name, line in damage.problems:
        where = f"{name}:{line}:" if line is not None else f"{name}"
        assert where in text, f"state does not report {where}: {state.problems}"


def check_loader(directory: Path, damage: Damage, db: Path) -> int:
    """Load, then compare DuckDB with the damage; returns the good events DuckDB holds."""
    import duckdb

    from pidgin_load import load_experiment

    summary = load_experiment(directory, db)
    assert summary.ok, summary.failed
    with duckdb.connect(str(db), read_only=True) as con:
        per_file = dict(
            con.execute(
                "SELECT source_file, count(*) FROM events WHERE experiment_id = $e GROUP BY 1",
                {"e": EXPERIMENT_ID},
            ).fetchall()
        )
        errors = con.execute(
            "SELECT source_file, line_number FROM load_errors WHERE experiment_id = $e "
            "ORDER BY 1, 2",
            {"e": EXPERIMENT_ID},
        ).fetchall()
    expected = {name: count for name, count in damage.good.items() if count}
    for name, count in expected.items():
        # A misplaced event may be kept in ``events`` as long as it is reported too.
        assert count <= per_file.get(name, 0) <= count + misplaced_in(name, damage), name
    assert sorted(errors) == sorted(damage.bad + damage.torn + damage.misplaced)
    assert summary.bad_lines == len(errors)
    return sum(min(per_file.get(name, 0), count) for name, count in expected.items())


def check_commands(
    directory: Path, damage: Damage, pidgin: RunCommand, pidgin_load: RunCommand, db: Path
) -> None:
    """``pidgin experiment status`` and ``pidgin-load`` on the damaged run: no crash."""
    status = pidgin("experiment", "status", EXPERIMENT_ID, "--json")
    assert status.returncode == 0, status.stderr
    assert "Traceback" not in status.stderr
    shown = json.loads(status.stdout)["experiment"]
    assert shown["id"] == EXPERIMENT_ID
    text = json.dumps(shown)
    for name, _ in damage.problems:
        assert name in text, f"status --json does not mention {name}"
    loaded = pidgin_load(str(directory), "--db", str(db), "--json")
    assert loaded.returncode == 0, loaded.stderr
    assert "Traceback" not in loaded.stderr
    summary = json.loads(loaded.stdout)
    assert summary["ok"] is True
    assert summary["bad_lines"] >= len(damage.bad) + len(damage.torn)


@pytest.mark.parametrize("case", list(CASES))
def test_broken_logs(
    case: str,
    out_root: Path,
    tmp_path: Path,
    fault_log: FaultLog,
    *,
    pidgin: RunCommand,
    pidgin_load_cmd: RunCommand,
) -> None:
    title, damage_it = CASES[case]
    row = fault_log.row(f"broken log: {title}")
    directory = write_experiment(out_root, big_message=HUGE if case == "huge" else 0)
    damage = damage_it(directory)
    written = sum(damage.good.values())
    assert check_reader(directory, damage) == written
    check_state(directory, damage)
    in_db = check_loader(directory, damage, tmp_path / "logs.duckdb")
    check_commands(directory, damage, pidgin, pidgin_load_cmd, tmp_path / "cli.duckdb")
    row.add(written=written, recovered=in_db)
    reported = len(damage.bad) + len(damage.torn) + len(damage.misplaced)
    statuses = [f"{c} `{s}`" for c, s in damage.statuses.items() if s != "completed"]
    row.outcome = (
        f"loader: {reported} line(s) in load_errors with file and line; reader: "
        f"{len(damage.bad)} bad line(s); state builder: {len(damage.problems)} problem(s) "
        f"named by file{' and line' if all(n for _, n in damage.problems) else ''}"
        + (f", {', '.join(statuses)}" if statuses else "")
        + "; every good event kept by all three; `pidgin experiment status` and "
        "`pidgin-load` exit 0"
    )
    assert row.lost == 0


# --- a newer Pidgin wrote this ----------------------------------------------------------

FUTURE_LINES: list[dict[str, Any]] = [
    # An event type this version does not know, with nested fields.
    {
        "event_type": "AgentReflectionEvent",
        "timestamp": "2031-05-01T10:00:00.000001Z",
        "experiment_id": EXPERIMENT_ID,
        "seq": None,
        "event_id": "future-1",
        "schema_version": 7,
        "conversation_id": "conv_a",
        "reflection": {"depth": 3, "notes": ["\u00e9t\u00e9", "\u4e2d"], "score": 0.25},
    },
    # A known type carrying fields this version does not know.
    {
        "event_type": "TurnStartEvent",
        "timestamp": "2031-05-01T10:00:01Z",
        "experiment_id": EXPERIMENT_ID,
        "seq": None,
        "event_id": "future-2",
        "schema_version": 7,
        "conversation_id": "conv_a",
        "turn_number": 3,
        "scheduler": {"slot": 12, "priority": "high"},
        "tags": ["retry", None, 1.5],
    },
]


def same_instant(records: list[dict[str, object]]) -> list[dict[str, object]]:
    """Records with their timestamps parsed: ``Z`` and ``+00:00`` are the same instant."""
    return [{**r, "timestamp": pe.parse_timestamp(str(r["timestamp"]))} for r in records]


def test_newer_schema_round_trips(out_root: Path, tmp_path: Path, fault_log: FaultLog) -> None:
    """Unknown event types and fields survive the reader, the writer and the loader."""
    import duckdb

    from pidgin_load import load_experiment
    from pidgin_state import StateBuilder

    row = fault_log.row("events from a newer schema (unknown type, unknown fields)")
    directory = write_experiment(out_root)
    log = directory / "conv_a_events.jsonl"
    # A newer writer appends them (seqs follow on); this version's writer re-encodes them.
    written = []
    with pe.EventWriter(log) as writer:
        for line in FUTURE_LINES:
            event = pe.decode_event(orjson.dumps(line))
            seq = writer.emit(event)
            written.append({**line, "seq": seq})
    on_disk = [orjson.loads(raw) for raw in lines_of(log)[-2:]]
    expected = same_instant(written)
    assert same_instant(on_disk) == expected, "the writer dropped or changed a field"
    read = pe.read_events(log).events[-2:]
    assert same_instant([pe.event_to_dict(event) for event in read]) == expected
    assert same_instant([orjson.loads(pe.encode_event(event)) for event in read]) == expected
    assert isinstance(read[0], pe.UnknownEvent)
    assert read[1].extra["scheduler"] == {"slot": 12, "priority": "high"}

    state = StateBuilder.from_experiment_dir(directory)
    conversation = state.conversations["conv_a"]
    assert conversation.message_count == 2 * TURNS
    assert conversation.status == "completed"
    assert any("AgentReflectionEvent" in problem for problem in state.problems), state.problems

    db = tmp_path / "future.duckdb"
    summary = load_experiment(directory, db)
    assert summary.ok
    assert summary.unknown_events == 1
    with duckdb.connect(str(db), read_only=True) as con:
        payloads = [
            orjson.loads(payload)
            for (payload,) in con.execute(
                "SELECT payload FROM events "
                "WHERE payload->>'event_id' IN ('future-1', 'future-2') ORDER BY seq"
            ).fetchall()
        ]
    assert same_instant(payloads) == expected
    row.add(written=len(written), recovered=len(payloads))
    row.outcome = (
        "kept field for field by the writer and the reader (round trip), counted as "
        "unknown by the state builder (reported, not guessed at), stored whole in DuckDB's "
        "raw events table"
    )
    assert row.lost == 0


# --- symlinks that lead out of the output root ------------------------------------------


LINKED_NAMES = ("conv_leak_events.jsonl", "conv_passwd_events.jsonl", "events_conv_legacy.jsonl")


def plant_symlinks(directory: Path, sandbox: Path) -> None:
    """Logs that are symlinks to a file beside the output root and to /etc/passwd."""
    secret_dir = sandbox / "elsewhere"
    secret_dir.mkdir()
    secret = secret_dir / "secret_events.jsonl"
    with pe.EventWriter(secret) as writer:
        writer.emit(
            pe.ErrorEvent(
                conversation_id="conv_leak", error_type="x", error_message="SECRET-OUTSIDE"
            )
        )
    targets = (secret, Path("/etc/passwd"), secret)
    for name, target in zip(LINKED_NAMES, targets, strict=True):
        (directory / name).symlink_to(target)


def test_symlinks_out_of_the_output_root_state(
    out_root: Path, sandbox: Path, fault_log: FaultLog, pidgin: RunCommand
) -> None:
    from pidgin_state import StateBuilder

    row = fault_log.row("symlinked logs pointing outside the output root: state builder")
    directory = write_experiment(out_root)
    plant_symlinks(directory, sandbox)
    state = StateBuilder.from_experiment_dir(directory)
    text = json.dumps(state.to_dict())
    assert "SECRET-OUTSIDE" not in text
    assert "root:x:" not in text
    for conversation_id in ("conv_leak", "conv_passwd", "conv_legacy"):
        conversation = state.conversations.get(conversation_id)
        assert conversation is None or conversation.message_count == 0
    for name in LINKED_NAMES:
        assert any(name in problem and "not followed" in problem for problem in state.problems), (
            f"state does not report the symlink {name}: {state.problems}"
        )
    assert state.conversations["conv_a"].message_count == 2 * TURNS
    status = pidgin("experiment", "status", EXPERIMENT_ID, "--json")
    assert status.returncode == 0, status.stderr
    assert "SECRET-OUTSIDE" not in status.stdout
    assert "root:x:" not in status.stdout
    row.add(
        written=EVENTS_PER_CONVERSATION * 2 + 2, recovered=EVENTS_PER_CONVERSATION * 2 + 2, runs=3
    )
    row.outcome = (
        "not followed; each reported by name; `pidgin experiment status` shows nothing of them"
    )
    assert row.lost == 0


def test_symlinks_out_of_the_output_root_loader(
    out_root: Path, sandbox: Path, tmp_path: Path, fault_log: FaultLog
) -> None:
    import duckdb

    from pidgin_load import load_experiment

    row = fault_log.row("symlinked logs pointing outside the output root: loader")
    directory = write_experiment(out_root)
    plant_symlinks(directory, sandbox)
    db = tmp_path / "links.duckdb"
    summary = load_experiment(directory, db)
    with duckdb.connect(str(db), read_only=True) as con:
        leaked = con.execute(
            "SELECT count(*) FROM events WHERE list_contains($names, source_file) "
            "OR payload LIKE '%SECRET-OUTSIDE%'",
            {"names": list(LINKED_NAMES)},
        ).fetchone()
        excerpts = con.execute(
            "SELECT count(*) FROM load_errors WHERE list_contains($names, source_file)",
            {"names": list(LINKED_NAMES)},
        ).fetchone()
        good = con.execute("SELECT count(*) FROM events").fetchone()
    expected = EVENTS_PER_CONVERSATION * 2 + 2
    row.add(written=expected, recovered=min(expected, good[0] if good else 0), runs=3)
    row.outcome = f"{leaked[0] if leaked else '?'} event(s) read through the links into DuckDB"
    assert leaked == (0,), "the loader followed a symlink out of the output root"
    assert excerpts == (0,), "the loader copied lines of a file outside the root"
    reported = " ".join(summary.warnings)
    for name in LINKED_NAMES:
        assert name in reported, f"the loader does not report the symlink {name}: {reported}"
    assert good == (expected,)
    row.outcome = "not followed; each reported in the summary's warnings"
