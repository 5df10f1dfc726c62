"""How alike the two agents' latest messages are: a score in [0, 1] per turn.

A port of pidgin-ai 1.1's ``ConvergenceCalculator`` ("balanced" profile), applied to the
latest message of each agent. Five components, each in [0, 1]:

* content: 1 for equal texts (case and surrounding space ignored); when one text contains
  the other, the ratio of their lengths; otherwise the Jaccard index of their sets of words
  (``[\\w']+``, lower-cased), or of their character bigrams when both are shorter than 50
  characters (too few words to compare).
* length: shorter length / longer length, in characters.
* sentences: the ratio of the two sentence counts (smaller / larger).
* structure: the mean, over paragraphs, list items, question marks and code fences, of the
  ratio of the two counts.
* punctuation: the mean, over ``!``, ``,``, ``;``, ``:`` and dashes, of the ratio of the two
  rates per character.

For every ratio, two zeros count as 1 (both lack it: alike) and one zero as 0. The score is
the weighted sum (balanced: content 0.4, sentences 0.2, length 0.15, structure 0.15,
punctuation 0.1), except that a content similarity above 0.9 is taken as the score on its
own, as pidgin-ai does, so near-identical replies score near 1 whatever their punctuation.
Rounded to 4 decimal places.

Differences from pidgin-ai, on purpose: pidgin-ai averaged the structural components over
up to five recent messages per agent; here every component looks at the latest pair, so
a turn's score describes that turn. Words are split on ``[\\w']+`` rather than whitespace
("idea," and "idea" are the same word). Sentences are counted as text runs ended by
``.``, ``!``, ``?`` or ``…`` (pidgin-ai's regex counted "Hello." as no sentence at all).
Short texts compare character bigrams, not sets of single characters ("ok" and "ko" were
identical). Two empty messages score 1.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass

__all__ = [
    "BALANCED",
    "PROFILES",
    "ConvergenceComponents",
    "ConvergenceWeights",
    "convergence_components",
    "convergence_score",
]


@dataclass(frozen=True, slots=True)
class ConvergenceWeights:
    """Weights of the five components; they must sum to 1."""

    content: float
    length: float
    sentences: float
    structure: float
    punctuation: float

    def __post_init__(self) -> None:
        values = astuple(self)
        if any(value < 0 for value in values) or abs(sum(values) - 1.0) > 1e-6:
            raise ValueError(f"convergence weights must be >= 0 and sum to 1, not {values}")


BALANCED = ConvergenceWeights(
    content=0.4, length=0.15, sentences=0.2, structure=0.15, punctuation=0.1
)
PROFILES: dict[str, ConvergenceWeights] = {
    "balanced": BALANCED,
    "structural": ConvergenceWeights(
        content=0.25, length=0.1, sentences=0.2, structure=0.35, punctuation=0.1
    ),
    "semantic": ConvergenceWeights(
        content=0.6, length=0.1, sentences=0.15, structure=0.1, punctuation=0.05
    ),
    "strict": ConvergenceWeights(
        content=0.5, length=0.05, sentences=0.15, structure=0.25, punctuation=0.05
    ),
}
"""pidgin-ai 1.1's four weight profiles, under the same names."""


@dataclass(frozen=True, slots=True)
class ConvergenceComponents:
    """The five similarities a score is made of, each in [0, 1]."""

    content: float
    length: float
    sentences: float
    structure: float
    punctuation: float


_AGENT_LABEL = re.compile(r"\*\*Agent [AB]\*\*:?\s*")
_EXTRA_BLANK_LINES = re.compile(r"\n\s*\n\s*\n")
_WORDS = re.compile(r"[\w']+")
_SENTENCE_END = re.compile(r"[.!?\u2026]+")
_WORD_CHAR = re.compile(r"\w")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s", re.MULTILINE)
_SHORT = 50


def convergence_score(a: str, b: str, weights: ConvergenceWeights = BALANCED) -> float:
    """The convergence of two messages, 0 (nothing alike) to 1 (the same)."""
    parts = convergence_components(a, b)
    if parts.content > 0.9:
        score = parts.content
    else:
        score = (
            parts.content * weights.content
            + parts.length * weights.length
            + parts.sentences * weights.sentences
            + parts.structure * weights.structure
            + parts.punctuation * weights.punctuation
        )
    return round(min(1.0, max(0.0, score)), 4)


def convergence_components(a: str, b: str) -> ConvergenceComponents:
    """Each component of the score, for inspection and for custom weights."""
    a, b = _clean(a), _clean(b)
    return ConvergenceComponents(
        content=_content(a, b),
        length=_ratio(len(a), len(b)),
        sentences=_ratio(_sentence_count(a), _sentence_count(b)),
        structure=_mean_ratio(_structure(a), _structure(b)),
        punctuation=_mean_ratio(_punctuation(a), _punctuation(b)),
    )


def _clean(text: str) -> str:
    """Drop the "**Agent A**:" labels models echo, and runs of blank lines."""
    text = _AGENT_LABEL.sub("", text)
    return _EXTRA_BLANK_LINES.sub("\n\n", text).strip()


def _ratio(x: float, y: float) -> float:
    if x == 0 and y == 0:
        return 1.0
    if x == 0 or y == 0:
        return 0.0
    return min(x, y) / max(x, y)


def _mean_ratio(xs: tuple[float, ...], ys: tuple[float, ...]) -> float:
    return sum(_ratio(x, y) for x, y in zip(xs, ys, strict=True)) / len(xs)


def _jaccard(xs: set[str], ys: set[str]) -> float:
    union = xs | ys
    return len(xs & ys) / len(union) if union else 1.0


def _bigrams(text: str) -> set[str]:
    padded = f" {text} "
    return {padded[i : i + 2] for i in range(len(padded) - 1)}


def _content(a: str, b: str) -> float:
    a, b = a.lower(), b.lower()
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    if a in b or b in a:
        return min(len(a), len(b)) / max(len(a), len(b))
    if len(a) < _SHORT and len(b) < _SHORT:
        return _jaccard(_bigrams(a), _bigrams(b))
    return _jaccard(set(_WORDS.findall(a)), set(_WORDS.findall(b)))


def _sentence_count(text: str) -> int:
    return sum(1 for part in _SENTENCE_END.split(text) if _WORD_CHAR.search(part))


def _structure(text: str) -> tuple[float, ...]:
    paragraphs = len(_PARAGRAPH_BREAK.findall(text)) + 1 if text else 0
    return (
        float(paragraphs),
        float(len(_LIST_ITEM.findall(text))),
        float(text.count("?")),
        float(text.count("```")),
    )


def _punctuation(text: str) -> tuple[float, ...]:
    if not text:
        return (0.0, 0.0, 0.0, 0.0, 0.0)
    size = len(text)
    dashes = text.count("-") + text.count("\u2014") + text.count("\u2013")
    return tuple(
        count / size
        for count in (text.count("!"), text.count(","), text.count(";"), text.count(":"), dashes)
    )
