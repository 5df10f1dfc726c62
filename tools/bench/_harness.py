"""Timing and comparing: medians of interleaved runs, child processes, result rows.

A figure means something only next to a baseline measured on the same machine, in the
same run, under the same noise. So contenders run in alternating rounds (ours, baseline,
ours, baseline, ...), every figure is the median of all its samples, and each result row
carries its baseline and the ratio between the two. Nothing here asserts a timing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = "@@pidgin-bench-result@@ "
"""Prefix of the one stdout line that carries a child's JSON result (pidgin-ai logs to stdout)."""

TOOLS_DIR = Path(__file__).resolve().parent.parent
"""``tools/``: on ``PYTHONPATH`` of every child, so that ``python -m bench._child`` works."""

Samples = dict[str, list[float]]


class ChildError(RuntimeError):
    """A measuring child process failed; the message ends with the tail of its stderr."""


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


# --- measures and result rows -----------------------------------------------------------


@dataclass
class Measure:
    """One figure: the median of its samples, in ``unit`` (s, ev/s, B, MiB, x)."""

    value: float
    unit: str
    samples: list[float] = field(default_factory=list)
    derived: str = ""
    """For a figure computed from other medians: how (its ``runs`` are theirs)."""
    derived_runs: int = 0

    @classmethod
    def from_medians(cls, value: float, unit: str, how: str, *inputs: Measure) -> Measure:
        runs = min((len(m.samples) or m.derived_runs for m in inputs), default=1)
        return cls(value, unit, [], how, runs)

    @classmethod
    def of(cls, samples: Sequence[float] | None, unit: str) -> Measure | None:
        if not samples:
            return None
        return cls(median(samples), unit, [float(s) for s in samples])

    def text(self) -> str:
        return format_value(self.value, self.unit)

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "value": self.value,
            "unit": self.unit,
            "runs": len(self.samples) or self.derived_runs,
            "samples": self.samples,
        }
        if self.derived:
            document["derived"] = self.derived
        return document


@dataclass
class Row:
    """One line of the results table: a figure of ours against one baseline."""

    section: str
    figure: str
    ours: Measure | None
    baseline: str = ""
    base: Measure | None = None
    ratio: float | None = None
    ratio_text: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "figure": self.figure,
            "ours": self.ours.as_json() if self.ours else None,
            "baseline": self.baseline or None,
            "baseline_value": self.base.as_json() if self.base else None,
            "ratio": self.ratio,
            "ratio_text": self.ratio_text or None,
            "target": self.target or None,
            "met": self.met,
            "note": self.note or None,
        }


@dataclass
class SectionResult:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def compare(
    section: str,
    figure: str,
    ours: Measure | None,
    baseline: str,
    base: Measure | None,
    *,
    how: str,
    threshold: float | None = None,
    target: str = "",
    note: str = "",
) -> Row:
    """A row of ``ours`` against ``base``; ``how`` says what the ratio means.

    ``faster``: times, ratio = base / ours ("12x faster"), met when >= threshold.
    ``share``: rates, ratio = ours / base ("83% of"), met when >= threshold.
    ``higher``: rates, ratio = ours / base ("5x faster"), met when >= threshold.
    ``within``: times, ratio = ours / base ("1.2x the time of"), met when <= threshold.
    ``smaller``: sizes, ratio = base / ours ("6.1x smaller"), met when >= threshold.
    ``growth``: ratio = ours / base, for figures that are themselves growth factors.
    """
    row = Row(section, figure, ours, baseline, base, target=target, note=note)
    if ours is None or base is None or ours.value == 0 or base.value == 0:
        row.ratio_text = "n/a"
        return row
    if how in ("faster", "smaller"):
        ratio = base.value / ours.value
        word = "faster" if how == "faster" else "smaller"
        row.ratio_text = (
            f"{ratio:.3g}x {word}"
            if ratio >= 1
            else f"{1 / ratio:.3g}x {'slower' if how == 'faster' else 'larger'}"
        )
        met = None if threshold is None else ratio >= threshold
    elif how == "higher":
        ratio = ours.value / base.value
        row.ratio_text = f"{ratio:.3g}x faster" if ratio >= 1 else f"{1 / ratio:.3g}x slower"
        met = None if threshold is None else ratio >= threshold
    elif how == "share":
        ratio = ours.value / base.value
        row.ratio_text = f"{ratio * 100:.0f}% of it"
        met = None if threshold is None else ratio >= threshold
    elif how in ("within", "growth"):
        ratio = ours.value / base.value
        row.ratio_text = f"{ratio:.3g}x"
        met = None if threshold is None else ratio <= threshold
    else:
        raise ValueError(f"unknown comparison {how!r}")
    row.ratio = ratio
    row.met = met
    return row


def absolute(
    section: str,
    figure: str,
    ours: Measure | None,
    *,
    limit: float,
    target: str,
    baseline: str = "",
    base: Measure | None = None,
    note: str = "",
) -> Row:
    """A row whose target is an absolute bound (``ours < limit``), with an optional baseline."""
    row = Row(section, figure, ours, baseline, base, target=target, note=note)
    if baseline and base is None:
        row.ratio_text = "n/a"
    if ours is not None:
        row.met = ours.value < limit
        if base is not None and ours.value > 0 and base.value > 0:
            row.ratio = base.value / ours.value
            row.ratio_text = (
                f"{row.ratio:.3g}x faster" if row.ratio >= 1 else f"{1 / row.ratio:.3g}x slower"
            )
    return row


def missing(section: str, figure: str, reason: str, *, target: str = "", baseline: str = "") -> Row:
    """A row for a figure that could not be measured in this run, and why."""
    return Row(section, figure, None, baseline, None, ratio_text="n/a", target=target, note=reason)


# --- formatting -------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    if unit == "s":
        sign = "-" if value < 0 else ""
        v = abs(value)
        if v < 1e-3:
            return f"{sign}{v * 1e6:.0f} µs"
        if v < 1:
            return f"{sign}{v * 1e3:.3g} ms"
        return f"{sign}{v:.3g} s"
    if unit == "ev/s":
        return f"{value:,.0f} ev/s"
    if unit == "B":
        return format_bytes(value)
    if unit == "MiB":
        return f"{value:,.0f} MiB" if value >= 100 else f"{value:.3g} MiB"
    if unit == "B/s":
        return f"{format_bytes(value)}/s"
    if unit == "x":
        return f"{value:.3g}"
    return f"{value:.4g} {unit}"


def format_bytes(value: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


# --- child processes --------------------------------------------------------------------


def child_env(
    base: Mapping[str, str], *, extra_path: Sequence[str] = (), keep_pythonpath: bool = True
) -> dict[str, str]:
    """The environment of a measuring child: ``tools/`` first on ``PYTHONPATH``."""
    env = dict(base)
    paths = [str(TOOLS_DIR), *extra_path]
    if keep_pythonpath and env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONHASHSEED", "0")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_child(
    python: str,
    module: str,
    func: str,
    args: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    """Run ``bench.<module>.<func>(**args)`` in a fresh ``python`` and return its JSON result.

    The result also holds ``maxrss_kib``, the child's peak resident set size.
    """
    cmd = [python, "-m", "bench._child", module, func]
    try:
        proc = subprocess.run(
            cmd,
            input=json.dumps(args),
            capture_output=True,
            text=True,
            env=dict(env),
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ChildError(f"{module}.{func} timed out after {timeout:.0f} s") from exc
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER) and proc.returncode == 0:
            result: dict[str, Any] = json.loads(line[len(MARKER) :])
            return result
    tail = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
    raise ChildError(f"{module}.{func} failed (exit {proc.returncode}): {tail}")


def time_command(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 300,
) -> float:
    """Wall-clock seconds of one run of ``cmd``; a failing command raises ``ChildError``."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ChildError(f"{' '.join(cmd)} timed out after {timeout:.0f} s") from exc
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip()[-800:]
        raise ChildError(f"`{' '.join(cmd)}` exited {proc.returncode}: {tail}")
    return elapsed


@dataclass
class Rounds:
    """Samples of several contenders, gathered in alternating rounds."""

    samples: Samples = field(default_factory=dict)
    by_contender: dict[str, Samples] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)

    def measure(self, key: str, unit: str) -> Measure | None:
        return Measure.of(self.samples.get(key), unit)

    def error(self, *keys: str) -> str:
        for key in keys:
            if key in self.errors:
                return self.errors[key]
        return ""


Contender = Callable[[], Mapping[str, Any]]


def interleave(
    rounds: int, contenders: Sequence[tuple[str, Contender]], log: Callable[[str], None]
) -> Rounds:
    """Run every contender once per round, in turn, and pool their samples.

    A contender returns a mapping of series name to a list of samples; other values
    (and the child's peak memory) are kept as extras of the last round. A contender that
    fails is reported once and dropped.
    """
    out = Rounds()
    for number in range(rounds):
        for name, contender in contenders:
            if name in out.errors:
                continue
            try:
                result = contender()
            except ChildError as exc:
                out.errors[name] = str(exc)
                log(f"    {name}: FAILED: {str(exc).splitlines()[0][:200]}")
                continue
            for key, value in result.items():
                if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
                    out.samples.setdefault(key, []).extend(float(v) for v in value)
                    out.by_contender.setdefault(name, {}).setdefault(key, []).extend(
                        float(v) for v in value
                    )
                else:
                    out.extras.setdefault(name, {})[key] = value
        log(f"    round {number + 1}/{rounds} done")
    return out


def command_rounds(
    rounds: int,
    commands: Sequence[tuple[str, Sequence[str], Mapping[str, str]]],
    log: Callable[[str], None],
    *,
    cwd: str | os.PathLike[str] | None = None,
) -> Rounds:
    """Wall times of whole commands, interleaved; one sample per command per round."""

    def timer(cmd: Sequence[str], env: Mapping[str, str], key: str) -> Contender:
        return lambda: {key: [time_command(cmd, env=env, cwd=cwd)]}

    return interleave(
        rounds, [(key, timer(cmd, env, key)) for key, cmd, env in commands], _quiet(log, rounds)
    )


def _quiet(log: Callable[[str], None], rounds: int) -> Callable[[str], None]:
    """Log failures, and progress only every few rounds (commands run many rounds)."""

    def out(message: str) -> None:
        if "FAILED" in message or (
            message.strip().startswith("round") and _every(message, max(1, rounds // 4))
        ):
            log(message)

    return out


def _every(message: str, step: int) -> bool:
    try:
        number = int(message.split()[1].split("/", maxsplit=1)[0])
    except (IndexError, ValueError):
        return True
    return number % step == 0


def python_version(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


def this_python() -> str:
    return sys.executable
