"""Text read from logs reaches the screen shown, never obeyed: no escape, no markup.

Names, models and error messages come from providers, models and other programs. An ESC
in one would set the terminal's title or clear it; brackets would be read as rich markup
(an unbalanced closing tag aborts the command). ``--json`` keeps the true values.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pidgin_events as pe
from pidgin_cli._commands_chat import _ChatPrinter
from pidgin_cli._conductor import ConversationPlan
from pidgin_cli._output import plain_table, rich_text, safe_text

RunCli = Callable[..., subprocess.CompletedProcess[str]]

BAIT = "\x1b]0;pwned\x07 [bold red]loud[/] [/oops] \x1b[2Jgone\x08 \u202eevil \x9b31m"
"""Sets the title, rings, markup, a stray closing tag, clears, backspaces, bidi, C1 CSI."""
INJECTED = ("\x1b]0;pwned", "\x1b[2J", "\x07", "\x08", "\u202e", "\x9b")


def write_bait(root: Path) -> Path:
    """A failed run whose name, model, error events and outcome all carry ``BAIT``."""
    directory = root / pe.EXPERIMENTS_DIR / "exp_bait"
    directory.mkdir(parents=True)
    with pe.EventWriter(directory / pe.EXPERIMENT_LOG) as writer:
        writer.emit(
            pe.ExperimentStartEvent(experiment_id="exp_bait", name=BAIT, total_conversations=1)
        )
    with pe.EventWriter(directory / "conv_bait_events.jsonl") as writer:
        writer.emit(
            pe.ConversationStartEvent(
                conversation_id="conv_bait", agent_a_model=BAIT, agent_b_model="b\nforged"
            )
        )
        writer.emit(pe.ErrorEvent(conversation_id="conv_bait", error_type=BAIT, error_message=BAIT))
        writer.emit(
            pe.ConversationEndEvent(
                conversation_id="conv_bait", total_turns=0, status="failed", error=BAIT
            )
        )
    with pe.EventWriter(directory / pe.EXPERIMENT_LOG) as writer:
        writer.emit(
            pe.ExperimentCompleteEvent(
                experiment_id="exp_bait",
                total_conversations=1,
                completed_conversations=0,
                failed_conversations=1,
                status="failed",
                error=BAIT,
            )
        )
    return directory


COMMANDS = (["experiment", "list"], ["experiment", "status", "exp_bait"], ["monitor", "--once"])


def test_safe_text_shows_control_characters_as_escapes() -> None:
    assert safe_text(BAIT) == (
        "\\x1b]0;pwned\\x07 [bold red]loud[/] [/oops] \\x1b[2Jgone\\x08 \\u202eevil \\x9b31m"
    )
    assert safe_text("a\r\nb\tc\nd\x0be") == "a b c d e"  # a value cannot forge a line
    assert safe_text("a\r\nb\tc\x1b", multiline=True) == "a\nb\tc\\x1b"
    assert safe_text("\udcff.jsonl") == "\\udcff.jsonl"  # undecodable file name bytes
    plain = "naïve 中文 ✓ [ok]"
    assert safe_text(plain) is plain
    assert safe_text(safe_text(BAIT)) == safe_text(BAIT)
    assert rich_text(BAIT).plain == safe_text(BAIT)
    assert rich_text("[bold]x[/]").spans == []  # brackets are text, not markup
    assert plain_table(["A"], [[BAIT]]).splitlines()[1] == safe_text(BAIT)


def test_piped_output_neutralises_and_json_keeps_the_truth(
    run_cli: RunCli, output_root: Path
) -> None:
    write_bait(output_root)
    for args in COMMANDS:
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        shown = result.stdout + result.stderr
        assert [seq for seq in INJECTED if seq in shown] == [], args
        assert "\\x1b]0;pwned\\x07" in shown, args  # shown, as an escape
        assert "[/oops]" in shown, args
    status = run_cli("experiment", "status", "exp_bait").stdout
    assert "forged" in status
    assert not any(line.startswith("forged") for line in status.splitlines())
    document = json.loads(run_cli("experiment", "status", "exp_bait", "--json").stdout)
    experiment = document["experiment"]
    assert experiment["name"] == BAIT
    assert experiment["error"] == BAIT
    assert experiment["conversations"][0]["agent_a_model"] == BAIT
    assert experiment["last_errors"][0]["message"] == BAIT


def test_terminal_output_neutralises_and_reads_no_markup(
    output_root: Path, cli_env: Any, pty_process: Any
) -> None:
    write_bait(output_root)
    for args in COMMANDS:
        command = [sys.executable, "-m", "pidgin_cli", *args]
        status, shown = pty_process(command, cli_env(output_root, TERM="xterm-256color")).wait()
        assert status == 0, shown  # "[/oops]" read as markup would abort with MarkupError
        assert "\x1b[" in shown  # rich drew it, in colour
        assert [seq for seq in INJECTED if seq in shown] == [], args
        visible = re.sub(r"\x1b\[[0-9;]*m", "", shown)  # rich's own styling
        assert "[/oops]" in visible, args
        assert "\\x1b]0;pwned\\x07" in visible, args


def test_ambiguous_prefix_lists_names_safely(run_cli: RunCli, output_root: Path) -> None:
    write_bait(output_root)
    other = output_root / pe.EXPERIMENTS_DIR / "exp_bait2"
    other.mkdir()
    with pe.EventWriter(other / pe.EXPERIMENT_LOG) as writer:
        writer.emit(
            pe.ExperimentStartEvent(
                experiment_id="exp_bait2", name=BAIT + "2", total_conversations=1
            )
        )
    result = run_cli("experiment", "status", "exp_b")
    assert result.returncode == 1
    assert "is ambiguous" in result.stderr
    assert "\\x1b]0;pwned" in result.stderr
    assert [seq for seq in INJECTED if seq in result.stderr] == []


def test_chat_shows_what_a_model_says_without_obeying_it(capsys: Any) -> None:
    plan = ConversationPlan(agent_a="local:test", agent_b="silent:none", max_turns=1)
    printer = _ChatPrinter(plan)
    assert printer.console is None  # pytest captures stdout: plain lines
    printer.message("agent_a", f"first line\n{BAIT}", 0)
    printer.say(f"Conversation failed: {BAIT}")
    out = capsys.readouterr().out
    assert [seq for seq in INJECTED if seq in out] == []
    assert "first line\n\\x1b]0;pwned" in out  # a reply keeps its lines
    assert "Conversation failed: \\x1b]0;pwned" in out
