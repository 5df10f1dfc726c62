"""Log size: bytes on disk per conversation, ours against pidgin-ai 1.1, for the same content.

Our logs are pidgin-ai's experiments rewritten event by event (same messages, tokens and
timestamps). pidgin-ai's ``MessageRequestEvent`` repeats the whole history, so its logs grow
with the square of the number of turns; ours name how many messages a request carried, so
they grow linearly. The growth exponent k fits size ~ turns^k between the shortest and the
longest conversation. Only event logs are counted (not pidgin-ai's manifest, transcripts or
text logs, nor our experiment.jsonl).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from bench._harness import Measure, Row, SectionResult, compare

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "size"
TURNS = (10, 25, 50, 100)
LINEAR = 1.1
DERIVED = "log(size_high / size_low) / log(turns_high / turns_low), exact byte counts"


def _per_conversation(directory: Path) -> Measure | None:
    sizes = [
        float(p.stat().st_size)
        for p in directory.iterdir()
        if p.name.endswith(".jsonl") and p.name != "experiment.jsonl"
    ]
    return Measure.of(sizes, "B")


def _exponent(sizes: dict[int, Measure | None], low: int, high: int) -> float | None:
    a, b = sizes.get(low), sizes.get(high)
    if a is None or b is None or a.value <= 0 or b.value <= 0:
        return None
    return math.log(b.value / a.value) / math.log(high / low)


def _growth_row(
    ours: dict[int, Measure | None], legacy: dict[int, Measure | None], low: int, high: int
) -> Row:
    """k in size ~ turns^k between two lengths: 1 is linear, 2 quadratic."""
    k_ours, k_legacy = _exponent(ours, low, high), _exponent(legacy, low, high)
    row = Row(
        NAME,
        f"growth exponent k, size ~ turns^k ({low} to {high} turns)",
        Measure(k_ours, "x", derived=DERIVED, derived_runs=1) if k_ours is not None else None,
        "pidgin-ai 1.1" if k_legacy is not None else "",
        Measure(k_legacy, "x", derived=DERIVED, derived_runs=1) if k_legacy is not None else None,
        target=f"<= {LINEAR} (linear)",
    )
    if k_ours is not None:
        row.met = k_ours <= LINEAR
        row.ratio_text = "ours linear" if k_ours <= LINEAR else "ours super-linear"
        if k_legacy is not None:
            row.ratio_text += ", theirs " + ("super-linear" if k_legacy > LINEAR else "linear")
    return row


def run(ws: Workspace) -> SectionResult:
    result = SectionResult()
    legacy_dir = ws.legacy_experiment()
    if legacy_dir is not None:
        ours_dir, origin = ws.ours_experiment()
        legacy = _per_conversation(legacy_dir)
        ours = _per_conversation(ours_dir)
        turns = _turns(legacy_dir)
        result.rows.append(
            compare(
                NAME,
                f"event log per {turns}-turn conversation ({origin})",
                ours,
                "pidgin-ai 1.1, same content",
                legacy,
                how="smaller",
            )
        )
    series = ws.legacy_turn_series(TURNS)
    ours_sizes: dict[int, Measure | None] = {}
    legacy_sizes: dict[int, Measure | None] = {}
    if series:
        for n, directory in series.items():
            legacy_sizes[n] = _per_conversation(directory)
            ours_sizes[n] = _per_conversation(ws.translated(directory, f"ours-turns-{n}"))
            result.rows.append(
                compare(
                    NAME,
                    f"event log of one {n}-turn conversation",
                    ours_sizes[n],
                    "pidgin-ai 1.1, same content",
                    legacy_sizes[n],
                    how="smaller",
                )
            )
    else:
        why = "quick mode" if ws.quick else ws.legacy_reason
        result.notes.append(
            f"pidgin-ai conversations of {'/'.join(map(str, TURNS))} turns not made ({why}): "
            "our growth is measured on synthetic logs with messages of about 100 bytes, "
            "like local:test's."
        )
        for n in TURNS:
            ours_sizes[n] = _per_conversation(
                ws.synthetic(f"ours-turns-{n}-synthetic", 1, n, 100, seed=n)
            )
            result.rows.append(
                Row(NAME, f"event log of one {n}-turn conversation (synthetic)", ours_sizes[n])
            )
    for low, high in ((min(TURNS), max(TURNS)), (50, 100)):
        result.rows.append(_growth_row(ours_sizes, legacy_sizes, low, high))
    result.notes.append(
        "Sizes are exact byte counts (no repetitions needed). Per conversation: the median "
        "over the experiment's conversation logs."
    )
    return result


def _turns(directory: Path) -> int | str:
    import json

    manifest = directory / "manifest.json"
    try:
        config = json.loads(manifest.read_text()).get("config", {})
        return int(config.get("max_turns"))
    except (OSError, ValueError, TypeError, AttributeError):
        return "N"
