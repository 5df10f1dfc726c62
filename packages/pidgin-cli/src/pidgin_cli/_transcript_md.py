"""A transcript as Markdown: readable as plain text, and inert when a renderer shows it.

Everything from a log is data. ``md_text`` makes it so for CommonMark and GitHub's
Markdown: control characters made visible (``safe_text``), ``& < >`` written as entities
(no raw HTML gets through: a model's ``<script>`` shows as text), the characters that
start emphasis, code, links, tables or strike-through backslash-escaped, and what would
open a block at the start of a line (a heading, a list, a quote, an indented code block,
a setext underline) escaped there. Line breaks are kept as hard breaks.
"""

from __future__ import annotations

import re

from ._output import safe_text
from ._render_text import format_cost, format_score, format_tokens
from ._transcript import ChatMessage, PromptInfo
from ._transcript_view import ConversationView, InitialPrompt, TranscriptDoc, TurnStart, agent_label

__all__ = ["md_text", "render_markdown"]

_INLINE = re.compile(r"([\\`*_\[\]|~#])")
_BLOCK_START = re.compile(r"^([-+=])|^(\d{1,9})([.)])")
_INDENT = re.compile(r"^[ \t]+")


def md_text(value: object) -> str:
    """Text from a log as Markdown that shows it literally (see the module's docstring)."""
    text = safe_text(value, multiline=True)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    lines = []
    for raw in text.split("\n"):
        line = _INLINE.sub(r"\\\1", raw.rstrip())
        line = _INDENT.sub(lambda m: "\u00a0" * len(m.group().expandtabs(4)), line)
        lines.append(_BLOCK_START.sub(_escape_block_start, line))
    # Two spaces before a newline: a hard line break; blank lines stay paragraph breaks.
    return "  \n".join(lines).replace("  \n  \n", "\n\n")


def _escape_block_start(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\" + match.group(1)
    return match.group(2) + "\\" + match.group(3)


def render_markdown(doc: TranscriptDoc) -> str:
    parts = [f"# Transcript of {md_text(doc.run.name)}", ""]
    parts.append(f"Run {md_text(doc.run.id)} ({doc.run.kind}, {doc.run.status}).")
    if not doc.conversations:
        parts += ["", "No conversation has started yet."]
    for view in doc.conversations:
        parts += ["", *_conversation(view)]
    return "\n".join(parts) + "\n"


def _conversation(view: ConversationView) -> list[str]:
    state = view.state
    out = [f"## Conversation {md_text(state.id)}", ""]
    out += [f"- {md_text(fact)}" for fact in view.facts()]
    for item in view.layout():
        if isinstance(item, InitialPrompt):
            out += ["", "**Initial prompt**", "", _quote(item.text)]
        elif isinstance(item, TurnStart):
            out += ["", _turn_heading(view, item.turn)]
        elif isinstance(item, PromptInfo):
            out += ["", *_prompt(view, item)]
        else:
            out += ["", *_message(view, item)]
    if state.status == "running":
        out += ["", "*(still running: this transcript shows what was written so far)*"]
    return out


def _turn_heading(view: ConversationView, turn: int) -> str:
    score = view.convergence_of(turn)
    shown = "" if score is None else f" · convergence {format_score(score)}"
    return f"### Turn {turn}{shown}"


def _prompt(view: ConversationView, prompt: PromptInfo) -> list[str]:
    who = md_text(agent_label(view.transcript, prompt.agent_id))
    if prompt.kind == "system":
        head = f"**System prompt for {who}**"
    else:
        role = f" as {md_text(prompt.role)}" if prompt.role else ""
        head = f"**Prompt injected for {who}{role}, before turn {prompt.turn}**"
    return [head, "", _quote(prompt.content)]


def _message(view: ConversationView, message: ChatMessage) -> list[str]:
    who = md_text(agent_label(view.transcript, message.agent_id))
    used = f"{format_tokens(message.total_tokens)} tokens"
    if message.cost_usd:
        used += f", {format_cost(message.cost_usd)}"
    out = [f"**{who}** · {used}", ""]
    if message.thinking is not None:
        count = f", {message.thinking_tokens} tokens" if message.thinking_tokens else ""
        out += [
            f"<details><summary>Thinking{count}</summary>",
            "",
            md_text(message.thinking),
            "",
            "</details>",
            "",
        ]
    out.append(md_text(message.content) if message.content else "*(empty reply)*")
    return out


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in md_text(text).split("\n"))
