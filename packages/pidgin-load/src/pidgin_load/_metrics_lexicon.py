"""What the per-turn metrics look for in a reply: word lists and character patterns.

Every list and pattern is written out in ``docs/metrics.md``; change both together. The
patterns are RE2 syntax, as DuckDB's regex functions take them.
"""

from __future__ import annotations

__all__ = [
    "AGREEMENT",
    "ARROW_PATTERN",
    "CAPITALISED_PATTERN",
    "DISAGREEMENT",
    "EMOJI_PATTERN",
    "FIRST_PLURAL",
    "FIRST_SINGULAR",
    "HEDGES",
    "OPENING_CAPITALISED_PATTERN",
    "POLITENESS",
    "SECOND",
    "SYMBOL_CLASS",
    "TOKEN_PATTERN",
    "WHITESPACE",
]

TOKEN_PATTERN = r"[\p{L}\p{N}_]+(?:'+[\p{L}\p{N}_]+)*"
"""A word: letters, digits and underscores, with apostrophes inside but not at either end."""

WHITESPACE = r"\t\n\x{0B}\f\r\x{1C}-\x{1F}\x{85}\p{Z}"
"""The characters Python's ``str.isspace`` calls whitespace, as a regex class body."""

# Word lists of the marker counts. Only single words can match a token.
HEDGES = (
    "about approximately appears arguably around basically conceivably could essentially "
    "fairly generally likely maybe might perhaps possibly potentially practically presumably "
    "probably quite rather roughly seems somewhat suggests typically usually virtually"
)
AGREEMENT = (
    "absolutely affirmative agree agreed certainly clearly completely correct definitely "
    "entirely exactly indeed naturally obviously precisely right sure totally true "
    "undoubtedly yeah yep yes"
)
DISAGREEMENT = (
    "actually alternatively although but contrary conversely disagree doubt doubtful false "
    "however incorrect instead nah negative nevertheless no nonetheless nope not oppose "
    "rather reject though unfortunately wrong"
)
POLITENESS = (
    "apologies apologize appreciate excuse forgive graciously grateful humbly kindly pardon "
    "please regret respectfully sincerely sorry thank thanks welcome"
)
FIRST_SINGULAR = "i me mine my myself"
FIRST_PLURAL = "our ours ourselves us we"
SECOND = "you your yours yourself yourselves"

_ARROW_CHARS = "→←↔⇒⇐⇔➜➡⬅↑↓⬆⬇↖↗↘↙"
_SYMBOL_CHARS = (
    _ARROW_CHARS + "≈≡≠≤≥±×÷∞∑∏∂∇√∫∈∉∀∃∅^+=<>*/%-" + "┌┐└┘─│├┤┬┴┼═║╔╗╚╝" + "•◦▪▫■□▲△▼▽◆◇○●★☆"
)
SYMBOL_CLASS = "[" + "".join(f"\\x{{{ord(char):X}}}" for char in _SYMBOL_CHARS) + "]"
"""One character of the symbol set (each written as a code point, so none is special)."""
ARROW_PATTERN = "(?:->|<-|<->|=>|<=|<=>|[" + _ARROW_CHARS + "])"
EMOJI_PATTERN = (
    r"[\x{1F1E0}-\x{1F1FF}\x{1F300}-\x{1F5FF}\x{1F600}-\x{1F64F}\x{1F680}-\x{1F6FF}"
    r"\x{1F900}-\x{1F9FF}\x{2600}-\x{27BF}]+"
)

_MORE_THAN_ONE = r"'*[\p{L}\p{N}_]"
"""What follows a word's first character when the word has more than one (apostrophes
only inside a word, so they must be followed by a word character)."""
CAPITALISED_PATTERN = rf"(?:^|[^\p{{L}}\p{{N}}_'])'*\p{{Lu}}{_MORE_THAN_ONE}"
"""A word of more than one character that starts with an uppercase letter. A match starts
where no word can go on (the start, or a character that is neither a word character nor an
apostrophe), so each word is found once, and never from its middle."""
OPENING_CAPITALISED_PATTERN = rf"(?:^|[.!?])[^\p{{L}}\p{{N}}_.!?]*\p{{Lu}}{_MORE_THAN_ONE}"
"""The same, for the first word of a sentence: after the start or a ``.``, ``!`` or ``?``,
with nothing but non-word characters between."""
