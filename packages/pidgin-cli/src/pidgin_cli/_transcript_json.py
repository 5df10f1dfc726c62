"""A transcript as JSON: a stable structure for scripts (``docs/transcripts.md``).

``{"schema_version": 1, "run": {...}, "conversations": [{..., "entries": [...]}]}``.
Keys are only ever added, never renamed or removed, under schema version 1. Text is the
true text of the log (JSON escapes it; the file is written ASCII-only, so no character in
it can act on a terminal). Turns are numbered from 1, as every screen shows them.
"""

from __future__ import annotations

import json
from typing import Any

from ._render_text import iso
from ._transcript import ChatMessage, PromptInfo
from ._transcript_view import AGENTS, ConversationView, TranscriptDoc

__all__ = ["TRANSCRIPT_SCHEMA_VERSION", "render_json", "transcript_json"]

TRANSCRIPT_SCHEMA_VERSION = 1


def render_json(doc: TranscriptDoc) -> str:
    return json.dumps(transcript_json(doc), indent=2, ensure_ascii=True) + "\n"


def transcript_json(doc: TranscriptDoc) -> dict[str, Any]:
    run = doc.run
    return {
        "schema_version": TRANSCRIPT_SCHEMA_VERSION,
        "run": {"id": run.id, "name": run.name, "kind": run.kind, "status": run.status},
        "conversations": [_conversation(view) for view in doc.conversations],
    }


def _conversation(view: ConversationView) -> dict[str, Any]:
    state, t = view.state, view.transcript
    agents = {}
    for agent in AGENTS:
        tokens = state.tokens.get(agent)
        agents[agent] = {
            "name": t.agent_names.get(agent),
            "chosen_name": t.chosen_names.get(agent),
            "model": t.agent_models.get(agent),
            "prompt_tokens": tokens.prompt if tokens else 0,
            "completion_tokens": tokens.completion if tokens else 0,
            "total_tokens": tokens.total if tokens else 0,
            "cost_usd": tokens.cost_usd if tokens else 0.0,
        }
    return {
        "id": state.id,
        "status": state.status,
        "end_reason": state.end_reason,
        "error": state.error,
        "max_turns": state.max_turns,
        "turns_completed": state.turns_completed,
        "started_at": iso(state.started_at),
        "ended_at": iso(state.ended_at),
        "initial_prompt": t.initial_prompt,
        "agents": agents,
        "total_tokens": sum((c.total for c in state.tokens.values()), 0),
        "cost_usd": sum((c.cost_usd for c in state.tokens.values()), 0.0),
        "turns": [
            {"turn": number, "completed": info.completed, "convergence": info.convergence}
            for number, info in sorted(t.turns.items())
        ],
        "entries": [_entry(item) for item in view.timeline()],
        "problems": [
            {"log": t.log_path.name, "line": p.line, "reason": p.reason, "repaired": p.repaired}
            for p in t.problems
        ],
    }


def _entry(item: PromptInfo | ChatMessage) -> dict[str, Any]:
    if isinstance(item, PromptInfo):
        return {
            "type": "system_prompt" if item.kind == "system" else "prompt_injection",
            "agent_id": item.agent_id,
            "turn": item.turn,
            "role": item.role,
            "content": item.content,
            "line": item.line,
        }
    thinking = None
    if item.thinking is not None:
        thinking = {"content": item.thinking, "tokens": item.thinking_tokens}
    return {
        "type": "message",
        "agent_id": item.agent_id,
        "turn": item.turn,
        "role": item.role,
        "content": item.content,
        "thinking": thinking,
        "prompt_tokens": item.prompt_tokens,
        "completion_tokens": item.completion_tokens,
        "total_tokens": item.total_tokens,
        "cost_usd": item.cost_usd,
        "duration_ms": item.duration_ms,
        "timestamp": iso(item.timestamp),
        "line": item.line,
    }
