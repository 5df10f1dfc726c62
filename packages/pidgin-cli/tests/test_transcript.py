"""``pidgin transcript``: every format shows what was said, and hostile text stays text.

Models write ``<script>``, Markdown that would break tables and headings, and terminal
escapes. The Markdown is rendered with markdown-it (CommonMark plus tables and
strike-through, as GitHub renders), the HTML opened in headless Chromium (Debian's
``chromium``), and both must show the text literally with nothing executed.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import pidgin_events as pe
from pidgin_cli._output import safe_text

SCRIPT = "<script>document.body.setAttribute('data-pwned','script');console.log('PWNED')</script>"
IMAGE = "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"
MARKDOWN = (
    "| a | b |\n|---|---|\n| 1 | 2 |\n# not a heading\n**not bold** [link](javascript:alert(1))"
)
INDENTED = "    not code\n1. not a list\n- nor this\n> nor a quote\n```\nno fence"
ANSI = "\x1b]0;pwned\x07title \x1b[2Jcleared \u202eevil \x9b31m"
HOSTILE = (SCRIPT, IMAGE, MARKDOWN, INDENTED, ANSI)
INJECTED = ("\x1b]0;pwned", "\x1b[2J", "\x07", "\u202e", "\x9b")
EXPERIMENT = "exp_hostile"
CONVERSATION = "conv_hostile"
COST = 0.00125


def _line(event: pe.Event, seq: int) -> bytes:
    return pe.encode_event(event, seq=seq, event_id=f"e{seq}", experiment_id=EXPERIMENT)


def _message(agent: str, content: str, turn: int) -> pe.MessageCompleteEvent:
    return pe.MessageCompleteEvent(
        conversation_id=CONVERSATION,
        agent_id=agent,
        message=pe.Message(role="assistant", content=content, agent_id=agent),
        prompt_tokens=10,
        completion_tokens=5,
        total_tokens=15,
        duration_ms=100,
        turn_number=turn,
        cost_usd=COST,
    )


def write_hostile_run(root: Path, *, end: bool = True) -> Path:
    """An experiment of one conversation whose every text field carries hostile text."""
    directory = root / pe.EXPERIMENTS_DIR / EXPERIMENT
    directory.mkdir(parents=True)
    start = pe.ExperimentStartEvent(experiment_id=EXPERIMENT, name="hostile", total_conversations=1)
    (directory / pe.EXPERIMENT_LOG).write_bytes(_line(start, 0))
    events: list[pe.Event] = [
        pe.ConversationStartEvent(
            conversation_id=CONVERSATION,
            agent_a_model="local:test",
            agent_b_model="local:echo",
            agent_a_display_name=SCRIPT,
            agent_b_display_name="Echo",
            max_turns=3,
            initial_prompt=MARKDOWN,
        ),
        pe.SystemPromptEvent(conversation_id=CONVERSATION, agent_id="agent_a", prompt=IMAGE),
        pe.TurnStartEvent(conversation_id=CONVERSATION, turn_number=0),
        pe.ThinkingCompleteEvent(
            conversation_id=CONVERSATION,
            turn_number=0,
            agent_id="agent_a",
            thinking_content=SCRIPT + " thought",
            thinking_tokens=7,
        ),
        _message("agent_a", SCRIPT + "\n" + IMAGE, 0),
        _message("agent_b", MARKDOWN, 0),
        pe.TurnCompleteEvent(conversation_id=CONVERSATION, turn_number=0, convergence_score=0.25),
    ]
    data = b"".join(_line(event, seq) for seq, event in enumerate(events))
    # PromptInjectionEvent is being added to pidgin_events by another branch: its line.
    injection = {
        "event_type": "PromptInjectionEvent",
        "conversation_id": CONVERSATION,
        "agent_id": "agent_b",
        "turn_number": 1,
        "role": "user",
        "prompt": INDENTED,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "seq": len(events),
    }
    data += json.dumps(injection).encode() + b"\n"
    more: list[pe.Event] = [
        pe.TurnStartEvent(conversation_id=CONVERSATION, turn_number=1),
        _message("agent_a", ANSI, 1),
        _message("agent_b", INDENTED, 1),
        pe.TurnCompleteEvent(conversation_id=CONVERSATION, turn_number=1, convergence_score=0.75),
    ]
    if end:
        more.append(
            pe.ConversationEndEvent(
                conversation_id=CONVERSATION, total_turns=2, status="completed", reason="test"
            )
        )
    data += b"".join(_line(event, len(events) + 1 + i) for i, event in enumerate(more))
    (directory / f"{CONVERSATION}_events.jsonl").write_bytes(data)
    if end:
        complete = pe.ExperimentCompleteEvent(
            experiment_id=EXPERIMENT,
            total_conversations=1,
            completed_conversations=1,
            failed_conversations=0,
            status="completed",
        )
        with open(directory / pe.EXPERIMENT_LOG, "ab") as stream:
            stream.write(_line(complete, 1))
    return directory


class _Text(HTMLParser):
    """The text of an HTML document and the tags it has (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("script", "style", "title"):
            self._skip += 1
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self._skip -= 1
        elif tag in ("p", "div", "li", "h1", "h2", "h3", "blockquote", "summary"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _text_of(html: str) -> tuple[str, list[str]]:
    parser = _Text()
    parser.feed(html)
    return "".join(parser.parts), parser.tags


def _squeeze(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


def _shows(text: str, hostile: str) -> bool:
    """Whether ``hostile`` (as a terminal-safe text) shows literally, spacing aside."""
    return _squeeze(safe_text(hostile, multiline=True)) in _squeeze(text)


@pytest.fixture
def hostile_root(output_root: Path) -> Path:
    write_hostile_run(output_root)
    return output_root


def test_markdown_shows_hostile_text_literally_when_rendered(
    hostile_root: Path, run_cli: Any
) -> None:
    from markdown_it import MarkdownIt

    done = run_cli("transcript", "hostile")
    assert done.returncode == 0, done.stderr
    assert not any(code in done.stdout for code in INJECTED)
    rendered = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(done.stdout)
    text, tags = _text_of(rendered)
    for hostile in HOSTILE:
        assert _shows(text, hostile), hostile
    assert "script" not in tags
    assert "img" not in tags
    assert "table" not in tags
    assert "pre" not in tags  # an indented line or a fence opened no code block
    assert "a" not in tags  # no link was made from a model's text
    assert tags.count("h1") == 1  # the transcript's own title only
    assert "details" in done.stdout  # thinking, collapsed
    assert "<summary>Thinking, 7 tokens</summary>" in done.stdout


def test_markdown_says_who_spoke_when_and_what_it_cost(hostile_root: Path, run_cli: Any) -> None:
    done = run_cli("transcript", EXPERIMENT, "--conversation", "conv_h")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "### Turn 1 · convergence 0.25" in out
    assert "### Turn 2 · convergence 0.75" in out
    assert "**System prompt for Agent A" in out
    assert "**Prompt injected for Agent B · Echo (local:echo) as user, before turn 2**" in out
    assert out.count("· 15 tokens, $0.0013") == 4
    assert "- Tokens: 60; cost: $0.0050" in out
    assert "- Status: completed (test); turns: 2 of 3" in out
    # Order: system prompt, initial prompt, turn 1, injection, turn 2.
    order = ["System prompt", "Initial prompt", "Turn 1", "Prompt injected", "Turn 2"]
    positions = [out.index(word) for word in order]
    assert positions == sorted(positions)


def test_json_keeps_the_true_text_in_a_documented_structure(
    hostile_root: Path, run_cli: Any
) -> None:
    done = run_cli("transcript", "hostile", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.isascii()
    document = json.loads(done.stdout)
    assert document["schema_version"] == 1
    assert document["run"] == {
        "id": EXPERIMENT,
        "name": "hostile",
        "kind": "experiment",
        "status": "completed",
    }
    (conversation,) = document["conversations"]
    assert conversation["agents"]["agent_a"]["name"] == SCRIPT
    assert conversation["agents"]["agent_b"]["total_tokens"] == 30
    assert conversation["cost_usd"] == pytest.approx(4 * COST)
    assert [t["convergence"] for t in conversation["turns"]] == [0.25, 0.75]
    kinds = [(e["type"], e["turn"], e.get("agent_id")) for e in conversation["entries"]]
    assert kinds == [
        ("system_prompt", 0, "agent_a"),
        ("message", 1, "agent_a"),
        ("message", 1, "agent_b"),
        ("prompt_injection", 2, "agent_b"),
        ("message", 2, "agent_a"),
        ("message", 2, "agent_b"),
    ]
    contents = [e["content"] for e in conversation["entries"]]
    assert contents == [IMAGE, SCRIPT + "\n" + IMAGE, MARKDOWN, INDENTED, ANSI, INDENTED]
    assert conversation["entries"][1]["thinking"] == {"content": SCRIPT + " thought", "tokens": 7}


def test_html_is_one_inert_file_that_chromium_shows_literally(
    hostile_root: Path, run_cli: Any, tmp_path: Path, chromium: Any
) -> None:
    page = tmp_path / "transcript.html"
    done = run_cli("transcript", "hostile", "--format", "html", "--to", str(page))
    assert done.returncode == 0, done.stderr
    assert "1 conversation, html" in done.stderr
    source = page.read_text(encoding="utf-8")
    assert "<script" not in source
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", source)
    assert not any(code in source for code in INJECTED)
    dom, console = chromium(page, tmp_path / "profile")
    assert not any("PWNED" in line for line in console)
    assert "<body>" in dom  # no data-pwned attribute was set on it
    text, tags = _text_of(dom)
    assert "script" not in tags
    assert "img" not in tags
    for hostile in HOSTILE:
        assert _shows(text, hostile), hostile
    assert tags.count("details") == 1
    assert "Turn 2 · convergence 0.75" in text


def test_a_live_run_has_a_transcript_of_what_was_written_so_far(
    output_root: Path, run_cli: Any
) -> None:
    write_hostile_run(output_root, end=False)
    done = run_cli("transcript", "hostile")
    assert done.returncode == 0, done.stderr
    assert "### Turn 2 · convergence 0.75" in done.stdout
    assert "still running" in done.stdout or "interrupted" in done.stdout


def test_an_unknown_conversation_is_named_with_the_known_ones(
    hostile_root: Path, run_cli: Any
) -> None:
    done = run_cli("transcript", "hostile", "--conversation", "nope")
    assert done.returncode == 1
    assert "no conversation 'nope' in exp_hostile" in done.stderr
    assert CONVERSATION in done.stderr


def test_a_damaged_line_is_shown_repaired_or_named_never_dropped_in_silence(
    output_root: Path, run_cli: Any
) -> None:
    """One stray byte in a message keeps the message (U+FFFD in its place); a line that is
    no JSON at all is named with its number in the document and on standard error."""
    directory = write_hostile_run(output_root)
    log = directory / f"{CONVERSATION}_events.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    said = next(i for i, line in enumerate(lines) if b"MessageCompleteEvent" in line)
    lines[said] = lines[said].replace(b"<script>", b"<scr\xffpt>", 1)
    assert b"\xff" in lines[said]
    lines.insert(said + 1, b'{"event_type": "MessageCompleteEvent", "conversa\n')
    log.write_bytes(b"".join(lines))
    byte_column = lines[said].index(b"\xff") + 1
    damaged, torn = said + 1, said + 2

    done = run_cli("transcript", "hostile")
    assert done.returncode == 0, done.stderr
    assert "scr\ufffdpt" in done.stdout  # the message is there, its bad byte replaced
    repaired = (
        f"line {damaged} of {log.name}: not valid UTF-8: byte 0xff at column {byte_column}; "
        "shown with U+FFFD for those bytes"
    )
    left_out = f"line {torn} of {log.name}: not valid JSON: "
    assert repaired in done.stderr
    assert left_out in done.stderr
    assert "; left out" in done.stderr
    assert done.stderr.count("warning: ") == 2
    # the document says it too, where the conversation's facts are (escaped as Markdown)
    assert f"Unreadable: line {damaged} of " in done.stdout
    assert f"Unreadable: line {torn} of " in done.stdout
    assert "shown with U+FFFD for those bytes" in done.stdout

    as_json = run_cli("transcript", "hostile", "--format", "json")
    (conversation,) = json.loads(as_json.stdout)["conversations"]
    assert [(p["line"], p["repaired"]) for p in conversation["problems"]] == [
        (damaged, True),
        (torn, False),
    ]
    assert conversation["problems"][0]["log"] == log.name
    said_texts = [entry.get("content", "") for entry in conversation["entries"]]
    assert any(text.startswith("<scr\ufffdpt>") for text in said_texts)
