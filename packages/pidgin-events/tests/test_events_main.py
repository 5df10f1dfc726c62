"""``python -m pidgin_events``: schema, validate and example, run as real subprocesses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator

import pidgin_events as pe
from pidgin_events._schema import json_schema
from pidgin_events._validate_log import validate_file


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the package's command with this interpreter; PYTHONPATH is inherited."""
    return subprocess.run(
        [sys.executable, "-m", "pidgin_events", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def good_log(path: Path, events: int = 3) -> Path:
    with pe.EventWriter(path, experiment_id="exp_cli") as writer:
        for turn in range(events):
            writer.emit(pe.TurnStartEvent(conversation_id="conv_1", turn_number=turn))
    return path


# --- schema ----------------------------------------------------------------------------------


def test_schema_prints_the_schema_as_json(tmp_path: Path) -> None:
    ours = run("schema", cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert json.loads(ours.stdout) == json_schema()
    assert ours.stdout.startswith('{\n  "$schema"')  # pretty, for people reading it
    legacy = run("schema", "--legacy", cwd=tmp_path)
    assert legacy.returncode == 0
    assert json.loads(legacy.stdout) == json_schema(legacy=True)


def test_schema_output_writes_a_file_usable_by_other_validators(tmp_path: Path) -> None:
    target = tmp_path / "event.schema.json"
    result = run("schema", "--output", target, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    schema = json.loads(target.read_text())
    Draft202012Validator.check_schema(schema)
    log = good_log(tmp_path / "conv_1_events.jsonl")
    validator = Draft202012Validator(schema)
    assert all(validator.is_valid(orjson.loads(line)) for line in log.read_bytes().splitlines())


def test_schema_output_to_an_unwritable_place_fails_clearly(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "schema.json"
    result = run("schema", "-o", target, cwd=tmp_path)
    assert result.returncode == 1
    assert f"{target}: cannot write: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


# --- validate --------------------------------------------------------------------------------


def test_validate_a_good_log_exits_0_and_prints_nothing_on_stdout(tmp_path: Path) -> None:
    log = good_log(tmp_path / "conv_1_events.jsonl", events=3)
    result = run("validate", log, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout == ""
    assert result.stderr == "valid: checked 1 file, 3 lines\n"


def test_validate_prints_each_problem_as_file_line_reason_and_exits_1(tmp_path: Path) -> None:
    log = good_log(tmp_path / "conv_1_events.jsonl", events=2)
    with log.open("ab") as file:
        file.write(b'{"event_type":"TurnStartEvent","timestamp":"2026-01-01T00:00:00","seq":-1}\n')
        file.write(b"garbage\n")
        file.write(b'{"event_type":"TurnSt')  # torn
    result = run("validate", log, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f'{log}:3: $.timestamp: "2026-01-01T00:00:00" is not a date-time with a UTC offset, '
        "like 2026-01-02T03:04:05.678+00:00"
    )
    assert f"{log}:3: $.seq: -1 is less than the minimum 0" in lines
    assert f"{log}:3: $: missing required fields 'experiment_id', 'event_id', 'schema_version'" in (
        lines
    )
    assert any(line.startswith(f"{log}:4: not valid JSON: ") for line in lines)
    assert lines[-1].startswith(f"{log}:5: last line has no trailing newline")
    assert all(re.match(rf"{re.escape(str(log))}:\d+: ", line) for line in lines)
    assert result.stderr.startswith("invalid: ")
    assert "3 bad lines" in result.stderr


def test_a_missing_file_is_an_error_and_the_others_are_still_checked(tmp_path: Path) -> None:
    missing = tmp_path / "nope_events.jsonl"
    log = good_log(tmp_path / "conv_1_events.jsonl")
    result = run("validate", missing, log, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == f"{missing}: cannot read: No such file or directory\n"
    assert "checked 1 file, 3 lines" in result.stderr


def test_a_directory_stands_for_the_event_logs_under_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "experiments" / "exp_1"
    run_dir.mkdir(parents=True)
    good_log(run_dir / "conv_1_events.jsonl", events=2)
    good_log(run_dir / pe.EXPERIMENT_LOG, events=1)
    (run_dir / "notes.txt").write_text("not a log, not checked")
    result = run("validate", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stderr == "valid: checked 2 files, 3 lines\n"

    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("validate", empty, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith(f"{empty}: no event logs in this directory")


def test_pidgin_ai_logs_pass_with_legacy_and_fail_without(
    tmp_path: Path, legacy_fixtures: Path
) -> None:
    legacy = run("validate", "--legacy", legacy_fixtures, cwd=tmp_path)
    assert legacy.returncode == 0, legacy.stdout[:2000]
    assert legacy.stdout == ""
    assert legacy.stderr.startswith("valid (legacy schema): checked 6 files, ")

    ours = run("validate", legacy_fixtures, cwd=tmp_path)
    assert ours.returncode == 1
    first = ours.stdout.splitlines()[0]
    assert re.fullmatch(
        r".*/events_conv_\w+\.jsonl:1: \$: missing required fields 'seq', 'event_id', "
        r"'schema_version'",
        first,
    ), first
    assert ours.stderr.startswith("invalid: ")


def test_validate_stops_quietly_when_its_reader_goes_away(
    tmp_path: Path, legacy_fixtures: Path
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pidgin_events", "validate", str(legacy_fixtures)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.readline()  # like `| head -1`
    process.stdout.close()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert b"Traceback" not in stderr
    assert b"BrokenPipeError" not in stderr


# --- usage -----------------------------------------------------------------------------------


def test_usage_errors_exit_2_with_a_usage_line(tmp_path: Path) -> None:
    for args in (
        (),
        ("validate",),
        ("transmogrify",),
        ("schema", "--pretty"),
        ("example", "--turns", "0"),
        ("example", "--conversations", "many"),
        ("example", "--delay", "-1"),
    ):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        assert result.stderr.startswith("usage: python -m pidgin_events"), args
        assert result.stdout == ""


def test_help_is_short_and_shows_examples(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "examples:" in result.stdout
    assert "python -m pidgin_events validate" in result.stdout
    assert len(result.stdout.splitlines()) < 30


# --- example ---------------------------------------------------------------------------------


def example_run(tmp_path: Path, root: Path, *args: str) -> tuple[Path, str]:
    result = run("example", "--root", root, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [directory] = (root / "experiments").iterdir()
    return directory, result.stdout


def test_example_writes_an_experiment_whose_every_line_validates(tmp_path: Path) -> None:
    directory, output = example_run(
        tmp_path, tmp_path / "out", "--conversations", "3", "--turns", "5"
    )
    logs = sorted(directory.glob("*_events.jsonl"))
    assert len(logs) == 3
    assert (directory / pe.EXPERIMENT_LOG).is_file()
    referee = Draft202012Validator(json_schema())
    for log in [*logs, directory / pe.EXPERIMENT_LOG]:
        assert validate_file(log) == []
        for line in log.read_bytes().splitlines():
            assert referee.is_valid(orjson.loads(line))
    result = run("validate", directory, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr == f"valid: checked 4 files, {2 + 3 * (3 + 5 * 6 + 1)} lines\n"

    # What it says: where the files are, their first lines, and how to look at them.
    assert str(directory) in output
    assert all(log.name in output for log in logs)
    assert '{"event_type":"ConversationStartEvent"' in output
    assert "jq -c " in output
    assert "tail -f " in output
    assert f"python -m pidgin_events validate {directory}" in output


def _conversations(directory: Path) -> list[list[Any]]:
    """Each conversation as (event_type, content or score) steps, in seq order."""
    found = []
    for log in sorted(directory.glob("*_events.jsonl")):
        result = pe.read_events(log)
        assert result.bad_lines == []
        steps: list[Any] = []
        for event in result.events:
            if isinstance(event, pe.MessageCompleteEvent):
                steps.append((event.agent_id, event.message.content, event.turn_number))
            elif isinstance(event, pe.TurnCompleteEvent):
                steps.append(("score", event.convergence_score))
            elif isinstance(event, pe.ConversationEndEvent):
                steps.append(("end", event.status, event.total_turns))
        found.append(steps)
    return found


def test_example_replies_are_canned_and_converge(tmp_path: Path) -> None:
    first, _ = example_run(tmp_path, tmp_path / "one", "--conversations", "2", "--turns", "4")
    second, _ = example_run(tmp_path, tmp_path / "two", "--conversations", "2", "--turns", "4")
    assert first.name != second.name  # a new experiment each time
    runs = _conversations(first)
    assert sorted(map(repr, runs)) == sorted(map(repr, _conversations(second)))
    for steps in runs:
        assert steps[-1] == ("end", "completed", 4)
        scores = [step[1] for step in steps if step[0] == "score"]
        assert len(scores) == 4
        assert all(0.0 <= score <= 1.0 for score in scores)
        assert scores == sorted(scores)  # the canned replies drift together
        assert scores[0] < scores[-1]
    complete = pe.read_events(first / pe.EXPERIMENT_LOG).events[-1]
    assert isinstance(complete, pe.ExperimentCompleteEvent)
    assert (complete.status, complete.completed_conversations) == ("completed", 2)


def test_example_uses_pidgin_output_by_default(tmp_path: Path) -> None:
    result = run("example", "--conversations", "1", "--turns", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [directory] = (tmp_path / "pidgin_output" / "experiments").iterdir()
    assert validate_file(directory / pe.EXPERIMENT_LOG) == []


def test_example_into_an_unusable_root_fails_without_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run("example", "--root", blocker, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("python -m pidgin_events example: ")
    assert str(blocker) in result.stderr
    assert "Traceback" not in result.stderr


def test_importing_the_package_does_not_import_the_schema_or_validator(tmp_path: Path) -> None:
    code = "import sys, pidgin_events; print(sorted(m for m in sys.modules if 'pidgin' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.strip().strip("[]").replace("'", "").split(", "))
    assert "pidgin_events" in loaded
    lazy = ("_schema", "_validate", "_validate_log", "_example", "__main__")
    for module in (*lazy, "_load_contract", "_vocabulary"):
        assert f"pidgin_events.{module}" not in loaded
