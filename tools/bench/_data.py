"""Generated logs in our format; runs in a child process with Pidgin importable.

Two sources, so that the comparisons are fair:
- ``translate_legacy`` rewrites a pidgin-ai 1.1 experiment event by event through
  ``EventWriter``: the same messages, tokens and timestamps, in our format (requests name how
  many messages they carried instead of repeating the history). Size, state and loading are
  compared on exactly the same content.
- ``synthetic`` writes an experiment through the ``Experiment`` API that agent code uses,
  with text sliced from a seeded pool, for data pidgin-ai cannot make quickly (100
  conversations, 100 experiments, 1 GB).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SYSTEM_PROMPT = "You are an AI having a conversation with another AI."
_PHRASES = (
    "building on that idea we might consider perhaps explore this topic in more depth the "
    "points you have raised connect to broader themes in our discussion to expand on this "
    "further interesting perspective what if we looked at it from another angle patterns "
    "emerge when language meets structure and meaning drifts toward shared ground"
)
_WORDS = _PHRASES.split()


def _pool(seed: int, size: int = 1 << 20) -> str:
    """About ``size`` characters of word salad; messages are slices of it."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 18)))
        sentence = sentence[0].upper() + sentence[1:] + ". "
        parts.append(sentence)
        total += len(sentence)
    return "".join(parts)


def synthetic(
    root: str,
    *,
    name: str,
    conversations: int,
    turns: int,
    message_bytes: int,
    seed: int = 0,
    experiment_id: str | None = None,
) -> dict[str, Any]:
    """One experiment of ``conversations`` x ``turns``, messages of about ``message_bytes``."""
    import pidgin_events as pe

    rng = random.Random(seed)
    pool = _pool(seed)
    limit = len(pool) - message_bytes * 2 - 1

    def text() -> str:
        size = max(16, int(message_bytes * rng.uniform(0.8, 1.2)))
        start = rng.randrange(0, max(1, limit))
        return pool[start : start + size]

    config = {"agent_a_model": "local:test", "agent_b_model": "local:test", "max_turns": turns}
    with pe.Experiment.create(
        root,
        name=name,
        total_conversations=conversations,
        config=config,
        experiment_id=experiment_id,
        fsync="never",
    ) as exp:
        for number in range(conversations):
            with exp.conversation(
                agent_a="local:test",
                agent_b="local:test",
                max_turns=turns,
                conversation_id=f"conv_{seed:02d}{number:05d}",
            ) as conv:
                conv.system_prompt("agent_a", SYSTEM_PROMPT)
                conv.system_prompt("agent_b", SYSTEM_PROMPT)
                drift = rng.uniform(0.4, 0.8)
                for turn in range(turns):
                    conv.turn_start()
                    for index, agent in enumerate(("agent_a", "agent_b")):
                        conv.request(agent, message_count=2 * turn + index + 1)
                        content = text()
                        conv.message(
                            agent,
                            content,
                            prompt_tokens=20 + turn * 40,
                            completion_tokens=len(content) // 4,
                            duration_ms=rng.randint(50, 400),
                        )
                    score = min(1.0, drift * (turn + 1) / turns + rng.uniform(0.0, 0.2))
                    conv.turn_complete(convergence_score=round(score, 4))
        directory = exp.directory
    return {"dir": str(directory), "bytes": _size(directory)}


def synthetic_many(
    root: str, count: int, conversations: int, turns: int, message_bytes: int
) -> dict[str, Any]:
    """``count`` small experiments under one output root (for ``pidgin experiment list``)."""
    dirs = [
        synthetic(
            root,
            name=f"bench-{n:03d}",
            conversations=conversations,
            turns=turns,
            message_bytes=message_bytes,
            seed=n,
        )["dir"]
        for n in range(count)
    ]
    return {"dirs": dirs}


def translate_legacy(source: str, root: str) -> dict[str, Any]:
    """Rewrite the pidgin-ai 1.1 experiment ``source`` in our format under ``root``."""
    import orjson

    import pidgin_events as pe

    src = Path(source)
    manifest: dict[str, Any] = {}
    if (src / "manifest.json").is_file():
        manifest = json.loads((src / "manifest.json").read_text())
    experiment_id = str(manifest.get("experiment_id") or src.name)
    name = str(manifest.get("name") or src.name.rsplit("_", 1)[0])
    directory = Path(root) / pe.EXPERIMENTS_DIR / experiment_id
    pe.make_private_dir(directory)
    first = last = None
    outcomes: dict[str, int] = {}
    logs = sorted(p for p in src.iterdir() if pe.conversation_id_of_log(p.name))
    for log in logs:
        conversation_id = pe.conversation_id_of_log(log.name)
        assert conversation_id is not None
        result = pe.read_events(log)
        if result.bad_lines:
            raise ValueError(f"{result.bad_lines[0]}")
        turns_done = 0
        path = pe.conversation_log_path(directory, conversation_id)
        with pe.EventWriter(path, experiment_id=experiment_id, fsync="never") as writer:
            for original in result.events:
                event = original
                if isinstance(original, pe.MessageRequestEvent) and original.conversation_history:
                    data = pe.event_to_dict(original)
                    data["message_count"] = len(original.conversation_history)
                    data["conversation_history"] = None
                    event = pe.decode_event(orjson.dumps(data))
                elif isinstance(original, pe.TurnCompleteEvent):
                    turns_done += 1
                elif isinstance(original, pe.ConversationEndEvent):
                    data = pe.event_to_dict(original)
                    data["total_turns"] = turns_done  # pidgin-ai wrote one more than happened
                    event = pe.decode_event(orjson.dumps(data))
                    outcomes[original.status] = outcomes.get(original.status, 0) + 1
                writer.emit(event)
                first = event.timestamp if first is None else min(first, event.timestamp)
                last = event.timestamp if last is None else max(last, event.timestamp)
    if first is None or last is None:
        raise ValueError(f"{src}: no conversation events to rewrite")
    start = pe.ExperimentStartEvent(
        experiment_id=experiment_id,
        name=name,
        total_conversations=int(manifest.get("total_conversations") or len(logs)),
        config=dict(manifest.get("config") or {}),
        timestamp=first,
    )
    complete = pe.ExperimentCompleteEvent(
        experiment_id=experiment_id,
        total_conversations=len(logs),
        completed_conversations=outcomes.get("completed", 0),
        failed_conversations=outcomes.get("failed", 0),
        interrupted_conversations=outcomes.get("interrupted", 0),
        status="completed",
        timestamp=last,
    )
    with pe.EventWriter(
        directory / pe.EXPERIMENT_LOG, experiment_id=experiment_id, fsync="never"
    ) as w:
        w.emit(start)
        w.emit(complete)
    return {"dir": str(directory), "bytes": _size(directory)}


def pidgin_ai_shaped(directory: str, conversations: int, turns: int) -> dict[str, Any]:
    """A pidgin-ai-1.1-shaped experiment, for when no real one is at hand."""
    write_pidgin_ai_shaped(Path(directory), conversations=conversations, turns=turns)
    return {"dir": directory, "bytes": _size(Path(directory))}


# pidgin-ai-shaped text: a fixed phrase, so generated experiments stay byte-for-byte the same.
_SHAPED_PHRASE = (
    "building on that idea we might consider perhaps we could explore this topic in more "
    "depth the points you have raised connect to broader themes in our discussion"
)


def _shaped_text(seed: int, words: int) -> str:
    vocabulary = _SHAPED_PHRASE.split(" ")
    picked = (vocabulary[(seed * 7 + i * 3) % len(vocabulary)] for i in range(words))
    return " ".join(picked) + ". "


def write_pidgin_ai_shaped(directory: Path, conversations: int, turns: int) -> None:
    """A pidgin-ai 1.1-shaped experiment: its file names, key order and quadratic history."""
    directory.mkdir(parents=True)
    manifest: dict[str, Any] = {
        "experiment_id": "experiment_synthetic",
        "name": "synthetic-50x50",
        "created_at": "2026-01-01T00:00:00.000000+00:00",
        "config": {"max_turns": turns, "repetitions": conversations},
        "total_conversations": conversations,
        "status": "completed",
        "conversations": {},
    }

    def line(event_type: str, fields: dict[str, Any], stamp: str) -> str:
        fields = {**fields, "timestamp": stamp, "event_type": event_type}
        if event_type not in ("ConversationStartEvent", "ConversationEndEvent"):
            fields["experiment_id"] = None
        return json.dumps(fields, separators=(",", ":")) + "\n"

    for index in range(conversations):
        cid = f"conv_{index:08x}"
        stamp = f"2026-01-01T00:{index % 60:02d}:00.000000+00:00"
        out = [
            line(
                "SystemPromptEvent",
                {
                    "conversation_id": cid,
                    "agent_id": agent,
                    "prompt": "You are an AI having a conversation with another AI.",
                    "agent_display_name": None,
                },
                stamp,
            )
            for agent in ("agent_a", "agent_b")
        ]
        out.append(
            line(
                "ConversationStartEvent",
                {
                    "conversation_id": cid,
                    "agent_a_model": "local:test",
                    "agent_b_model": "local:test",
                    "experiment_id": "experiment_synthetic",
                    "max_turns": turns,
                },
                stamp,
            )
        )
        history: list[dict[str, Any]] = [
            {
                "role": "system",
                "content": "You are an AI.",
                "agent_id": "system",
                "timestamp": "2026-01-01T00:00:00.000000",
            },
        ]
        for turn in range(turns):
            out.append(line("TurnStartEvent", {"conversation_id": cid, "turn_number": turn}, stamp))
            said = {}
            for agent in ("agent_a", "agent_b"):
                out.append(
                    line(
                        "MessageRequestEvent",
                        {
                            "conversation_id": cid,
                            "agent_id": agent,
                            "turn_number": turn,
                            "conversation_history": history,
                            "temperature": None,
                            "allow_truncation": False,
                        },
                        stamp,
                    )
                )
                message = {
                    "role": "assistant",
                    "content": _shaped_text(index + turn, 12),
                    "agent_id": agent,
                    "timestamp": "2026-01-01T00:00:00.000000",
                }
                said[agent] = message
                history = [*history, message]
                out.append(
                    line(
                        "MessageCompleteEvent",
                        {
                            "conversation_id": cid,
                            "agent_id": agent,
                            "message": message,
                            "prompt_tokens": 20 * turn,
                            "completion_tokens": 12,
                            "total_tokens": 20 * turn + 12,
                            "duration_ms": 150,
                            "cache_read_tokens": 0,
                            "cache_write_tokens": 0,
                        },
                        stamp,
                    )
                )
            out.append(
                line(
                    "TurnCompleteEvent",
                    {
                        "conversation_id": cid,
                        "turn_number": turn,
                        "turn": {
                            "agent_a_message": said["agent_a"],
                            "agent_b_message": said["agent_b"],
                        },
                        "convergence_score": round(min(1.0, 0.5 + turn / 50), 3),
                    },
                    stamp,
                )
            )
        out.append(
            line(
                "ConversationEndEvent",
                {
                    "conversation_id": cid,
                    "total_turns": turns + 1,
                    "status": "completed",
                    "experiment_id": "experiment_synthetic",
                    "reason": "max_turns",
                    "error": None,
                    "duration_ms": 1000,
                },
                stamp,
            )
        )
        (directory / f"events_{cid}.jsonl").write_text("".join(out))
        manifest["conversations"][cid] = {
            "status": "completed",
            "jsonl": f"events_{cid}.jsonl",
            "total_turns": turns,
            "last_updated": stamp,
        }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))


def append_turns(conversations: list[Any], turns_done: list[int], target_bytes: int) -> int:
    """Append whole turns through the real writer until ``target_bytes`` were written."""
    import pidgin_events as pe

    written = 0
    content = _shaped_text(3, 150)  # about 1 KB per message
    while written < target_bytes:
        for index, conv in enumerate(conversations):
            before = conv.path.stat().st_size
            turn = turns_done[index]
            conv.emit(pe.TurnStartEvent(conversation_id=conv.id, turn_number=turn))
            for agent in ("agent_a", "agent_b"):
                conv.emit(
                    pe.MessageRequestEvent(
                        conversation_id=conv.id,
                        agent_id=agent,
                        turn_number=turn,
                        message_count=2 * turn + 1,
                    )
                )
                conv.emit(
                    pe.MessageCompleteEvent(
                        conversation_id=conv.id,
                        agent_id=agent,
                        message=pe.Message(role="assistant", content=content, agent_id=agent),
                        prompt_tokens=turn,
                        completion_tokens=250,
                        total_tokens=turn + 250,
                        duration_ms=150,
                        turn_number=turn,
                    )
                )
            conv.emit(
                pe.TurnCompleteEvent(
                    conversation_id=conv.id, turn_number=turn, convergence_score=0.5
                )
            )
            turns_done[index] += 1
            written += conv.path.stat().st_size - before
            if written >= target_bytes:
                break
    return written


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
