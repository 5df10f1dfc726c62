"""A small example run: what Pidgin writes, without a model, a network or an API key.

Two canned agents whose replies drift toward each other talk for a few turns; each turn's
convergence score is the word overlap of its two messages. Everything is written through
the public API, the way agent code would, so the files are real Pidgin logs.
"""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

from ._layout import EXPERIMENT_LOG
from ._recorder import Experiment
from ._words import plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from typing import TextIO

__all__ = ["jaccard", "run_example"]

INITIAL_PROMPT = "Talk about how patterns form in conversation."

# Replies move from unrelated to identical, so the score climbs over the turns.
_REPLIES_A = (
    "Hello! Shall we talk about how patterns form when people talk?",
    "Patterns form when small habits repeat, and repetition shapes how we speak.",
    "Yes: repetition shapes how we speak, and how we listen to each other.",
    "Repetition shapes how we speak and how we listen, so we slowly converge.",
    "We converge: repetition shapes how we speak and how we listen.",
)
_REPLIES_B = (
    "Hi. I would rather talk about rivers and the sea.",
    "Rivers carve patterns too: small habits of water that repeat.",
    "Maybe repetition shapes how water moves, and how we speak.",
    "Repetition shapes how we speak and how we listen, so we converge.",
    "We converge: repetition shapes how we speak and how we listen.",
)
_SYSTEM_PROMPT = "You are a canned example agent; your replies are fixed in advance."
_WORD = re.compile(r"[a-z']+")


def jaccard(first: str, second: str) -> float:
    """Word-overlap similarity in [0, 1]: shared words over all words used."""
    a, b = set(_WORD.findall(first.lower())), set(_WORD.findall(second.lower()))
    if not a and not b:
        return 0.0
    return round(len(a & b) / len(a | b), 3)


def _words(text: str) -> int:
    return len(text.split())


def run_example(
    root: str | os.PathLike[str] | None,
    *,
    conversations: int = 2,
    turns: int = 4,
    delay: float = 0.0,
    out: TextIO,
) -> Path:
    """Write one experiment under ``root`` and tell ``out`` where it is and how to look at it.

    Conversation ``k`` starts ``k`` replies further along, so the conversations differ while
    every run writes the same messages and scores.
    """
    with Experiment.create(
        root,
        name="example",
        total_conversations=conversations,
        config={"turns": turns, "agents": "canned", "convergence": "word-overlap jaccard"},
    ) as experiment:
        out.write(f"Writing experiment {experiment.id} to {experiment.directory}\n")
        out.flush()
        logs: list[Path] = []
        for index in range(conversations):
            with experiment.conversation(
                agent_a={"model": "example:canned-a", "display_name": "Ada"},
                agent_b={"model": "example:canned-b", "display_name": "Bo"},
                max_turns=turns,
                initial_prompt=INITIAL_PROMPT,
                config={"example_offset": index},
            ) as conversation:
                logs.append(conversation.path)
                out.write(f"  conversation {index + 1} of {conversations}: {conversation.path}\n")
                out.flush()
                conversation.system_prompt("agent_a", _SYSTEM_PROMPT)
                conversation.system_prompt("agent_b", _SYSTEM_PROMPT)
                context_words = _words(_SYSTEM_PROMPT) + _words(INITIAL_PROMPT)
                message_count = 2  # the system prompt and the initial prompt
                for turn in range(turns):
                    conversation.turn_start()
                    step = min(turn + index, len(_REPLIES_A) - 1)
                    said = []
                    for agent_id, replies in (("agent_a", _REPLIES_A), ("agent_b", _REPLIES_B)):
                        reply = replies[step]
                        conversation.request(agent_id, message_count=message_count)
                        conversation.message(
                            agent_id,
                            reply,
                            prompt_tokens=context_words,
                            completion_tokens=_words(reply),
                            duration_ms=15 * _words(reply),
                        )
                        said.append(reply)
                        context_words += _words(reply)
                        message_count += 1
                    conversation.turn_complete(convergence_score=jaccard(said[0], said[1]))
                    if delay > 0:
                        time.sleep(delay)
    _describe(experiment.directory, logs, conversations, turns, out)
    return experiment.directory


def _describe(
    directory: Path, logs: list[Path], conversations: int, turns: int, out: TextIO
) -> None:
    first = logs[0]
    quoted_first = shlex.quote(str(first))
    lines = first.read_bytes().splitlines()
    shown = [line.decode() for line in lines[:4]]
    out.write(
        f"Done: {plural(conversations, 'conversation')} x {plural(turns, 'turn')} "
        f"in {directory}\n"
        f"  {EXPERIMENT_LOG:<34} experiment-level events (start, complete)\n"
    )
    for log in logs:
        count = len(log.read_bytes().splitlines())
        out.write(f"  {log.name:<34} one conversation: {plural(count, 'event')}\n")
    out.write(f"\nFirst lines of {first.name} (one JSON event per line):\n")
    for line in shown:
        out.write(f"  {line if len(line) <= 160 else line[:157] + '...'}\n")
    out.write(
        "\nLook at it:\n"
        '  jq -c \'select(.event_type == "TurnCompleteEvent") '
        f"| {{turn_number, convergence_score}}' {quoted_first}\n"
        f"  tail -f {quoted_first}\n"
        "      (follows a log as it grows: run the example with --delay 1, tail a log it names)\n"
        f"  python -m pidgin_events validate {shlex.quote(str(directory))}\n"
    )
