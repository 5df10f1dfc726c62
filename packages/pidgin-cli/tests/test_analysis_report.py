"""``pidgin report``: a self-contained HTML file whose charts render in headless Chromium.

Chromium is Debian's ``chromium`` package (``tools/ci/install-browser.sh`` installs it),
driven by the ``chromium`` fixture of ``conftest.py``; a missing browser fails the test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("plotly")

CONVERSATIONS = 3
SERIES_AROUND_THE_CURVES = 3  # the mean, and the two edges of its band
MOVED = 6  # pidgin_cli._report.MOVED_METRICS


def _errors(console: list[str]) -> list[str]:
    return [line for line in console if "Uncaught" in line or "Error" in line]


def _traces(dom: str, start: str, end: str | None) -> dict[str, int]:
    """Plotly's drawn traces by kind, between two figures' div ids."""
    begin = dom.index(f'id="{start}"')
    stop = dom.index(f'id="{end}"') if end else len(dom)
    kinds = re.findall(r'class="trace (scatter|bars)', dom[begin:stop])
    return {kind: kinds.count(kind) for kind in set(kinds)}


def test_the_detector_sees_a_javascript_error(tmp_path: Path, chromium: Any) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notDefinedAnywhere();</script></body></html>")
    _, console = chromium(page, tmp_path / "profile")
    assert any("notDefinedAnywhere" in line for line in _errors(console))


COSTS = (0.0125, 0.25, 0.0375)  # per agent_b message, one figure per conversation
TURNS = 5


def test_report_renders_every_series_offline(
    output_root: Path, run_cli: Any, make_experiment: Any, tmp_path: Path, chromium: Any
) -> None:
    experiment = make_experiment(
        "reported",
        experiment_id="exp_report",
        outcomes=("completed",) * CONVERSATIONS,
        turns=TURNS,
        max_turns=TURNS,
        scores=(0.1, 0.4, 0.3, 0.8, 0.9),
        costs=COSTS,
    )
    target = tmp_path / "report.html"
    result = run_cli("report", "reported", "--to", str(target))
    assert result.returncode == 0, result.stderr
    assert f"{CONVERSATIONS} conversations" in result.stdout
    text = target.read_text()
    # self-contained: no script, style or frame fetched from anywhere
    assert not re.search(r"<(script|link|iframe|img)[^>]+(src|href)=", text)
    conversations = sorted(p.name.split("_events")[0] for p in experiment.directory.glob("conv_*"))
    assert len(conversations) == CONVERSATIONS

    dom, console = chromium(target, tmp_path / "profile")
    assert _errors(console) == []
    assert _traces(dom, "convergence", "metrics") == {
        "scatter": CONVERSATIONS + SERIES_AROUND_THE_CURVES
    }
    assert _traces(dom, "metrics", "tokens") == {"scatter": MOVED}
    # prompt and completion tokens, and the cost of each conversation
    assert _traces(dom, "tokens", None) == {"bars": 2, "scatter": 1}
    total = sum(cost * TURNS for cost in COSTS)
    assert re.search(rf"<td>cost</td><td>\${total:.4f} \(catalogue prices", dom)
    for cost in COSTS:  # each conversation's cost is in the chart's data, as status shows it
        assert f"${cost * TURNS:.4f}" in text
    for conversation in conversations:
        assert f'id="transcript-{conversation}"' in dom
        assert f'href="#transcript-{conversation}"' in dom


def test_report_of_an_unknown_run(run_cli: Any) -> None:
    result = run_cli("report", "nosuch")
    assert result.returncode != 0
    assert "nosuch" in result.stderr
