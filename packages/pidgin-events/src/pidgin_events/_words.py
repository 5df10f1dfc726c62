"""Counted nouns in messages: ``1 conversation``, ``2 conversations``, ``0 bad lines``.

Every package prints counts (the loader's summary, the CLI's screens, the example run);
one rule for them, here at the bottom of the stack, so none of them says "1 conversations"
or falls back to "conversation(s)".
"""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``count`` and ``noun``, the noun in the plural unless ``count`` is exactly 1.

    The plural is ``noun + "s"`` unless ``plural_form`` says otherwise (``"bad line"``
    becomes ``"bad lines"``; give ``plural_form`` for words such as ``"entry"``).
    """
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural_form if plural_form is not None else noun + 's'}"
