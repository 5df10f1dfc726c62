"""A transcript as one self-contained HTML file: inline CSS, no script, nothing fetched.

Every value from a log goes through ``pidgin serve``'s ``text`` (control characters made
visible, then HTML-escaped), the same rule as its pages; nothing from a log is put in an
attribute. A Content-Security-Policy forbids scripts and any network access as well, so
even a mistake here could not run a model's ``<script>`` or load a remote image.
"""

from __future__ import annotations

from ._render_text import format_cost, format_score, format_tokens
from ._serve._pages import text
from ._transcript import ChatMessage, PromptInfo
from ._transcript_view import (
    AGENTS,
    ConversationView,
    InitialPrompt,
    TranscriptDoc,
    TurnStart,
    agent_label,
)

__all__ = ["render_html"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'"
_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.5rem;
     border-bottom: 1px solid #ddd; } h3 { font-size: 1rem; color: #555; margin-top: 1.5rem; }
.meta { color: #555; } .meta li { margin: 0.1rem 0; }
.msg { border-radius: 8px; padding: 0.6rem 0.9rem; margin: 0.6rem 0; background: #f3f4f6; }
.msg.agent_a { background: #eef4ff; margin-right: 3rem; }
.msg.agent_b { background: #f1f8ee; margin-left: 3rem; }
.who { font-weight: 600; } .used { color: #666; font-size: 0.85rem; }
.content, .prompt .content { white-space: pre-wrap; overflow-wrap: anywhere; }
.prompt { border-left: 3px solid #c9a227; padding: 0.3rem 0.8rem; margin: 0.6rem 0;
          background: #fffbea; }
details { margin: 0.3rem 0; color: #555; } summary { cursor: pointer; }
.note { color: #a15c00; }
"""


def render_html(doc: TranscriptDoc) -> str:
    title = f"Transcript of {text(doc.run.name)}"
    body = [
        f"<h1>{title}</h1>",
        f'<p class="meta">Run {text(doc.run.id)} ({text(doc.run.kind)}, '
        f"{text(doc.run.status)}).</p>",
    ]
    if not doc.conversations:
        body.append("<p>No conversation has started yet.</p>")
    for view in doc.conversations:
        body.extend(_conversation(view))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _conversation(view: ConversationView) -> list[str]:
    state = view.state
    out = ["<section>", f"<h2>Conversation {text(state.id)}</h2>", '<ul class="meta">']
    out += [f"<li>{text(fact)}</li>" for fact in view.facts()]
    out.append("</ul>")
    for item in view.layout():
        if isinstance(item, InitialPrompt):
            out.append(
                '<div class="prompt"><div class="who">Initial prompt</div>'
                f'<div class="content">{text(item.text, multiline=True)}</div></div>'
            )
        elif isinstance(item, TurnStart):
            score = view.convergence_of(item.turn)
            shown = "" if score is None else f" · convergence {format_score(score)}"
            out.append(f"<h3>Turn {item.turn}{shown}</h3>")
        elif isinstance(item, PromptInfo):
            out.append(_prompt(view, item))
        else:
            out.append(_message(view, item))
    if state.status == "running":
        out.append('<p class="note">Still running: this shows what was written so far.</p>')
    out.append("</section>")
    return out


def _prompt(view: ConversationView, prompt: PromptInfo) -> str:
    who = text(agent_label(view.transcript, prompt.agent_id))
    if prompt.kind == "system":
        head = f"System prompt for {who}"
    else:
        role = f" as {text(prompt.role)}" if prompt.role else ""
        head = f"Prompt injected for {who}{role}, before turn {prompt.turn}"
    return (
        f'<div class="prompt"><div class="who">{head}</div>'
        f'<div class="content">{text(prompt.content, multiline=True)}</div></div>'
    )


def _message(view: ConversationView, message: ChatMessage) -> str:
    who = text(agent_label(view.transcript, message.agent_id))
    used = f"{format_tokens(message.total_tokens)} tokens"
    if message.cost_usd:
        used += f", {format_cost(message.cost_usd)}"
    agent_class = message.agent_id if message.agent_id in AGENTS else "other"
    thinking = ""
    if message.thinking is not None:
        count = f", {message.thinking_tokens} tokens" if message.thinking_tokens else ""
        thinking = (
            f"<details><summary>Thinking{count}</summary>"
            f'<div class="content">{text(message.thinking, multiline=True)}</div></details>'
        )
    content = text(message.content, multiline=True) if message.content else "<em>(empty)</em>"
    return (
        f'<div class="msg {agent_class}"><div><span class="who">{who}</span> '
        f'<span class="used">{used}</span></div>{thinking}'
        f'<div class="content">{content}</div></div>'
    )
