"""``plural``: the one rule for counted nouns in every package's messages."""

from __future__ import annotations

import pytest

import pidgin_events as pe


@pytest.mark.parametrize(
    ("count", "noun", "plural_form", "said"),
    [
        (0, "conversation", None, "0 conversations"),
        (1, "conversation", None, "1 conversation"),
        (2, "bad line", None, "2 bad lines"),
        (1, "bad line", None, "1 bad line"),
        (-1, "turn", None, "-1 turns"),
        (3, "entry", "entries", "3 entries"),
        (1, "entry", "entries", "1 entry"),
    ],
)
def test_plural(count: int, noun: str, plural_form: str | None, said: str) -> None:
    assert pe.plural(count, noun, plural_form) == said


def test_plural_is_loaded_only_when_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pidgin_events as pe; "
        "assert 'pidgin_events._words' not in sys.modules; "
        "pe.plural(1, 'x'); assert 'pidgin_events._words' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
