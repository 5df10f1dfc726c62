"""Experiment names: the one given, checked, or a fresh pidgin-ai style 'adjective-noun'."""

from __future__ import annotations

import random
from pathlib import Path

import click

from ._output import fail

__all__ = ["experiment_name"]

_ADJECTIVES = (
    "curious", "wandering", "seeking", "pondering", "observing", "dancing", "flowing",
    "shifting", "drifting", "echoing", "quiet", "gentle", "bold", "swift", "patient",
    "hidden", "bright", "ancient", "distant", "spiral", "fractal", "woven",
)  # fmt: skip
_NOUNS = (
    "pattern", "signal", "echo", "wave", "pulse", "drift", "flow", "stream", "current",
    "tide", "spiral", "orbit", "path", "trace", "thread", "whisper", "murmur", "chord",
    "tone", "lattice", "web", "mesh", "field", "spark", "glow", "shimmer",
)  # fmt: skip


def experiment_name(root: Path, name: str | None) -> str:
    """A valid name nobody else uses: the one given (checked), else a fresh 'adjective-noun'."""
    from pidgin_events import validate_id

    from ._resolve import scan_runs

    taken = {ref.name: ref.id for ref in scan_runs(root, ("experiment",)) if ref.name}
    if name is not None:
        try:
            validate_id(name, "experiment name")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'-n' / '--name'") from None
        if name in taken:
            raise click.BadParameter(
                f"experiment name {name!r} is already used by {taken[name]}; choose another",
                param_hint="'-n' / '--name'",
            )
        return name
    chooser = random.SystemRandom()
    for attempt in range(50):
        candidate = f"{chooser.choice(_ADJECTIVES)}-{chooser.choice(_NOUNS)}"
        if attempt >= 10:
            candidate += f"-{chooser.randrange(1000, 10000)}"
        if candidate not in taken:
            return candidate
    raise fail("could not find an unused experiment name; give one with -n")
