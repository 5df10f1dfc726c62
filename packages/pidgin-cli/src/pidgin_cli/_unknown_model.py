"""The error for a model name nobody knows: what was probably meant, and where to look.

A short message, not a list of every model: the closest names (a mistyped alias, a
vendor's model the catalogue does not list, typed as ``provider:model``), how to name any
model of a provider, and the command that lists the catalogue.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["unknown_model_message"]

_MAX_SUGGESTIONS = 3
_CUTOFF = 0.7
"""How alike (difflib's ratio) a known name must be to be suggested: 'sonet' finds
'sonnet' (0.91) but not 'none' (0.67)."""


def unknown_model_message(
    text: str, known: Iterable[str], guesses: Iterable[str], naming: Iterable[str]
) -> str:
    """``unknown model 'x'``, the names ``text`` probably meant, and how to name models.

    ``guesses`` come first (a vendor's model written as ``provider:model``), then the
    ``known`` names closest in spelling; ``naming`` are sentences on how to name models.
    """
    candidates = sorted(set(known))
    by_lower: dict[str, str] = {}
    for name in candidates:
        by_lower.setdefault(name.lower(), name)
    close = difflib.get_close_matches(
        text.lower(), list(by_lower), n=_MAX_SUGGESTIONS, cutoff=_CUTOFF
    )
    suggestions = list(dict.fromkeys([*guesses, *(by_lower[name] for name in close)]))
    sentences = [f"unknown model {text!r}."]
    if suggestions:
        shown = suggestions[:_MAX_SUGGESTIONS]
        listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
        sentences.append(f"Did you mean {listed}?")
    sentences.extend(f"{sentence[:1].upper()}{sentence[1:]}." for sentence in naming)
    sentences.append("'pidgin models' lists the catalogue with its aliases.")
    return " ".join(sentences)
