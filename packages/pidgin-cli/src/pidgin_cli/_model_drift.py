"""``local:drift``: two seedable voices that drift toward each other (no network).

Each agent writes sentences from its own vocabulary and style, and borrows a growing
share of words, sentence templates and length from its partner's last message, with
noise, so convergence rises over a conversation the way it does between real models.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ._models import ChatMessage, Reply, _name_answer, _prompt_tokens, estimate_tokens
from ._thinking import Thought

__all__ = ["DriftModel"]


@dataclass(frozen=True, slots=True)
class _Voice:
    """One agent's own way of speaking before it starts borrowing."""

    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    verbs: tuple[str, ...]
    templates: tuple[str, ...]
    sentences: tuple[int, int]


def _words(*lines: str) -> tuple[str, ...]:
    return tuple(word for line in lines for word in line.split())


_VOICES = (
    _Voice(
        nouns=_words(
            "river stone forest horizon tide meadow lantern harbor",
            "ember valley cloud orchard shore canyon moss glacier",
        ),
        adjectives=_words("quiet distant green slow ancient misty warm hidden gentle wild"),
        verbs=_words("carries shelters remembers follows gathers softens hides"),
        templates=(
            "I wonder whether the {adj} {noun} {verb} the {noun2}, or the {noun3}?",
            "What if every {noun}, like the {adj} {noun2}, {verb} a little {noun3}?",
            "Perhaps the {noun} {verb} the {adj} {noun2}, and the {noun3} listens.",
            "Could a {adj} {noun} be what {verb} the {noun2}, slowly, like a {noun3}?",
        ),
        sentences=(3, 4),
    ),
    _Voice(
        nouns=_words(
            "pattern signal system structure memory language network symbol",
            "layer grammar circuit vector rhythm protocol index model",
        ),
        adjectives=_words(
            "recursive precise layered formal dense modular shared encoded stable sharp"
        ),
        verbs=_words("encodes compresses mirrors predicts aligns links parses"),
        templates=(
            "The {noun} {verb} the {noun2}!",
            "{Noun} - {adj} {noun2} - {verb} everything.",
            "Yes: the {adj} {noun} {verb} the {noun2}.",
            "Every {noun} {verb} a {adj} {noun2}!",
        ),
        sentences=(1, 2),
    ),
)

_CATEGORY: dict[str, str] = {}
for _voice in _VOICES:
    _CATEGORY.update(dict.fromkeys(_voice.nouns, "noun"))
    _CATEGORY.update(dict.fromkeys(_voice.adjectives, "adj"))
    _CATEGORY.update(dict.fromkeys(_voice.verbs, "verb"))
_TEMPLATE_OWNER = {template: index for index, v in enumerate(_VOICES) for template in v.templates}
_WORD = re.compile(r"[a-z]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ARTICLE = re.compile(r"\b([Aa]) ([aeiou])")


class DriftModel:
    """Two voices that drift toward each other; deterministic for a given seed.

    The share of borrowed material grows with the agent's number of previous replies
    ``n`` as ``0.9 * (1 - exp(-n / 4))``, plus Gaussian noise whose spread grows with the
    temperature (0.7 when none is given). A borrowed slot takes a word of the same kind
    (noun, adjective, verb) from the partner's last message; a borrowed sentence uses one
    of the partner's templates; the reply's sentence count moves toward the partner's.
    """

    can_think = True
    """With a thinking budget it writes a deterministic trace of how it will answer."""

    def __init__(self, *, delay: float = 0.08) -> None:
        self.delay = delay

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        agent_id: str,
        temperature: float | None,
        seed: int | None = None,
        thinking_budget: int | None = None,
    ) -> Reply:
        own = 0 if agent_id == "agent_a" else 1 if agent_id == "agent_b" else _stable(agent_id) % 2
        previous = sum(1 for message in messages if message.role == "assistant")
        partner = next((m.content for m in reversed(messages) if m.role == "user"), "")
        rng = random.Random(f"drift|{seed}|{agent_id}|{len(messages)}|{temperature}")
        content = _name_answer(messages, agent_id, seed) or self._compose(
            _VOICES[own], partner, previous, rng, temperature
        )
        if self.delay > 0:
            time.sleep(self.delay)
        thought = None
        if thinking_budget is not None:
            thought = self._think(partner, previous, content, thinking_budget)
        completion = estimate_tokens(content) + (thought.tokens or 0 if thought else 0)
        return Reply(content, _prompt_tokens(messages), completion, thought=thought)

    def _think(self, partner: str, previous: int, content: str, budget: int) -> Thought:
        """A trace that depends only on what the reply depends on (so it is as seeded)."""
        heard = _SENTENCE_END.split(partner.strip()) if partner.strip() else []
        said = _SENTENCE_END.split(content.strip())
        trace = (
            f"My partner's last message has {len(heard)} sentence(s). I have replied "
            f"{previous} time(s) before, so I lean about {self.borrow_share(previous):.0%} "
            f"toward their words. I will answer in {len(said)} sentence(s), starting: "
            f"{said[0][:60]}"
        )
        words = trace.split()
        while estimate_tokens(" ".join(words)) > budget:  # never over the budget
            words.pop()
        trace = " ".join(words)
        return Thought(trace, estimate_tokens(trace))

    @staticmethod
    def borrow_share(previous_replies: int) -> float:
        """The mean share of borrowed material after ``previous_replies`` own replies."""
        return 0.9 * (1 - math.exp(-previous_replies / 4))

    def _compose(
        self,
        voice: _Voice,
        partner: str,
        previous: int,
        rng: random.Random,
        temperature: float | None,
    ) -> str:
        spread = 0.05 + 0.1 * (0.7 if temperature is None else temperature)
        share = min(0.97, max(0.0, self.borrow_share(previous) + rng.gauss(0.0, spread)))
        borrowed = self._partner_words(partner)
        partner_templates = [
            template
            for template in dict.fromkeys(_templates_used(partner))
            if template not in voice.templates
        ]
        low, high = voice.sentences
        count = rng.randint(low, high)
        partner_sentences = len([s for s in _SENTENCE_END.split(partner.strip()) if s])
        if partner_sentences and rng.random() < share:
            count = max(1, round(count + (partner_sentences - count) * share))
        sentences = []
        for _ in range(count):
            if partner_templates and rng.random() < share:
                template = rng.choice(partner_templates)
            else:
                template = rng.choice(voice.templates)
            sentences.append(self._fill(template, voice, borrowed, share, rng))
        return " ".join(sentences)

    @staticmethod
    def _partner_words(partner: str) -> dict[str, list[str]]:
        words: dict[str, list[str]] = {"noun": [], "adj": [], "verb": []}
        for word in _WORD.findall(partner.lower()):
            category = _CATEGORY.get(word)
            if category is not None and word not in words[category]:
                words[category].append(word)
        return words

    @staticmethod
    def _fill(
        template: str,
        voice: _Voice,
        borrowed: dict[str, list[str]],
        share: float,
        rng: random.Random,
    ) -> str:
        own = {"noun": voice.nouns, "adj": voice.adjectives, "verb": voice.verbs}

        def pick(category: str) -> str:
            theirs = borrowed[category]
            if theirs and rng.random() < share:
                return rng.choice(theirs)
            return rng.choice(own[category])

        nouns = [pick("noun") for _ in range(3)]
        text = template.format(
            noun=nouns[0],
            Noun=nouns[0].capitalize(),
            noun2=nouns[1],
            noun3=nouns[2],
            adj=pick("adj"),
            verb=pick("verb"),
        )
        text = _ARTICLE.sub(r"\1n \2", text)
        return text[0].upper() + text[1:]


def _templates_used(text: str) -> list[str]:
    """The templates (of either voice) whose fixed words a message's sentences match."""
    used = []
    for sentence in _SENTENCE_END.split(text.strip()):
        for template, pattern in _TEMPLATE_PATTERNS.items():
            if pattern.fullmatch(sentence):
                used.append(template)
                break
    return used


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[A-Za-z0-9]+\}", template)
    escaped = (re.escape(part).replace("\\ ", " ") for part in parts)
    pattern = "[a-z]+".join(escaped).replace(" a ", " an? ")
    return re.compile(pattern, re.IGNORECASE)


_TEMPLATE_PATTERNS = {template: _template_pattern(template) for template in _TEMPLATE_OWNER}


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
