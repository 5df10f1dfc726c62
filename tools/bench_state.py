"""Benchmark pidgin-state's StateBuilder against pidgin-ai 1.1 and a ``json.loads`` baseline.

Prints one table of medians (several runs each) with ratios against baselines measured in
the same run, and whether each target of issue 3 is met. It never asserts: speed is
reported, not tested.

Usage (from the repository root)::

    # a real pidgin-ai 1.1 experiment (make one with
    # ../shared/fixtures/pidgin-ai-1.1/make_experiment.py big-50x50 50 50 10)
    python3 tools/bench_state.py --pidgin-ai-dir DIR --pidgin-ai-python /path/to/venv/bin/python

    # no pidgin-ai data at hand: write a pidgin-ai-1.1-shaped 50x50 experiment (~41 MB,
    # same line layout: event_type last, whole history in every MessageRequestEvent)
    python3 tools/bench_state.py --generate [--pidgin-ai-python PATH]

Options: ``--runs N`` (cold-rebuild repetitions, default 7), ``--work-dir DIR`` (where
generated data goes; default a temporary directory, removed afterwards), ``--json PATH``
(also write the figures as JSON). Without ``--pidgin-ai-python`` the pidgin-ai column is
left empty. Our own logs (100 conversations, 50x50, the appended megabytes) are always
generated, through the ``pidgin_events`` writer.

What is measured:

1. Cold rebuild of the pidgin-ai experiment: a fresh ``StateBuilder`` per run, against
   pidgin-ai's ``StateBuilder().get_experiment_state`` (in a subprocess of the pidgin-ai
   interpreter, timed inside it, import excluded) and against reading every line and
   ``json.loads``-ing it (stdlib). Targets: >= 10x pidgin-ai, faster than ``json.loads``.
2. Cold rebuild of a 50x50 experiment in our format, against the same ``json.loads`` baseline.
3. A refresh with nothing new, on a 100-conversation experiment (target: < 2 ms), with the
   bytes read during those refreshes (0: nothing is re-read).
4. A refresh after appending 1 MB and 100 MB to a running experiment: time, MB/s and bytes
   read (exactly the appended bytes), so the cost is seen to follow the appended bytes.
5. Peak Python heap (tracemalloc) during the cold rebuild: memory follows conversations and
   the read block, not the size of the logs.

Standard library plus the pidgin packages only; the packages are taken from ``packages/*/src``
when they are not installed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
try:
    import pidgin_events as pe
    import pidgin_state
except ImportError:  # not installed: use the checkout
    for package in ("pidgin-events", "pidgin-state"):
        sys.path.insert(0, str(ROOT / "packages" / package / "src"))
    import pidgin_events as pe
    import pidgin_state

MB = 1_000_000

PIDGIN_AI_CHILD = r"""
import json, sys, time
from pathlib import Path
from pidgin.experiments.state_builder import StateBuilder

directory, runs = Path(sys.argv[1]), int(sys.argv[2])
times = []
for _ in range(runs):
    start = time.perf_counter()
    state = StateBuilder().get_experiment_state(directory)
    times.append(time.perf_counter() - start)
print("@@RESULT@@" + json.dumps({
    "times": times,
    "status": None if state is None else str(state.status),
    "conversations": None if state is None else len(state.conversations),
}))
"""


# --- data --------------------------------------------------------------------------------

_PHRASE = (
    "building on that idea we might consider perhaps we could explore this topic in more "
    "depth the points you have raised connect to broader themes in our discussion"
)
_WORDS = _PHRASE.split()


def _text(seed: int, words: int) -> str:
    return " ".join(_WORDS[(seed * 7 + i * 3) % len(_WORDS)] for i in range(words)) + ". "


def write_pidgin_ai_shaped(directory: Path, conversations: int = 50, turns: int = 50) -> None:
    """A pidgin-ai 1.1-shaped experiment: its file names, key order and quadratic history."""
    directory.mkdir(parents=True)
    manifest: dict[str, Any] = {
        "experiment_id": "experiment_synthetic",
        "name": "synthetic-50x50",
        "created_at": "2026-01-01T00:00:00.000000+00:00",
        "config": {"max_turns": turns, "repetitions": conversations},
        "total_conversations": conversations,
        "status": "completed",
        "conversations": {},
    }

    def line(event_type: str, fields: dict[str, Any], stamp: str) -> str:
        fields = {**fields, "timestamp": stamp, "event_type": event_type}
        if event_type not in ("ConversationStartEvent", "ConversationEndEvent"):
            fields["experiment_id"] = None
        return json.dumps(fields, separators=(",", ":")) + "\n"

    for index in range(conversations):
        cid = f"conv_{index:08x}"
        stamp = f"2026-01-01T00:{index % 60:02d}:00.000000+00:00"
        out = [
            line(
                "SystemPromptEvent",
                {
                    "conversation_id": cid,
                    "agent_id": agent,
                    "prompt": "You are an AI having a conversation with another AI.",
                    "agent_display_name": None,
                },
                stamp,
            )
            for agent in ("agent_a", "agent_b")
        ]
        out.append(
            line(
                "ConversationStartEvent",
                {
                    "conversation_id": cid,
                    "agent_a_model": "local:test",
                    "agent_b_model": "local:test",
                    "experiment_id": "experiment_synthetic",
                    "max_turns": turns,
                },
                stamp,
            )
        )
        history: list[dict[str, Any]] = [
            {
                "role": "system",
                "content": "You are an AI.",
                "agent_id": "system",
                "timestamp": "2026-01-01T00:00:00.000000",
            },
        ]
        for turn in range(turns):
            out.append(line("TurnStartEvent", {"conversation_id": cid, "turn_number": turn}, stamp))
            said = {}
            for agent in ("agent_a", "agent_b"):
                out.append(
                    line(
                        "MessageRequestEvent",
                        {
                            "conversation_id": cid,
                            "agent_id": agent,
                            "turn_number": turn,
                            "conversation_history": history,
                            "temperature": None,
                            "allow_truncation": False,
                        },
                        stamp,
                    )
                )
                message = {
                    "role": "assistant",
                    "content": _text(index + turn, 12),
                    "agent_id": agent,
                    "timestamp": "2026-01-01T00:00:00.000000",
                }
                said[agent] = message
                history = [*history, message]
                out.append(
                    line(
                        "MessageCompleteEvent",
                        {
                            "conversation_id": cid,
                            "agent_id": agent,
                            "message": message,
                            "prompt_tokens": 20 * turn,
                            "completion_tokens": 12,
                            "total_tokens": 20 * turn + 12,
                            "duration_ms": 150,
                            "cache_read_tokens": 0,
                            "cache_write_tokens": 0,
                        },
                        stamp,
                    )
                )
            out.append(
                line(
                    "TurnCompleteEvent",
                    {
                        "conversation_id": cid,
                        "turn_number": turn,
                        "turn": {
                            "agent_a_message": said["agent_a"],
                            "agent_b_message": said["agent_b"],
                        },
                        "convergence_score": round(min(1.0, 0.5 + turn / 50), 3),
                    },
                    stamp,
                )
            )
        out.append(
            line(
                "ConversationEndEvent",
                {
                    "conversation_id": cid,
                    "total_turns": turns + 1,
                    "status": "completed",
                    "experiment_id": "experiment_synthetic",
                    "reason": "max_turns",
                    "error": None,
                    "duration_ms": 1000,
                },
                stamp,
            )
        )
        (directory / f"events_{cid}.jsonl").write_text("".join(out))
        manifest["conversations"][cid] = {
            "status": "completed",
            "jsonl": f"events_{cid}.jsonl",
            "total_turns": turns,
            "last_updated": stamp,
        }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))


def write_ours(root: Path, experiment_id: str, conversations: int, turns: int) -> Path:
    """A finished experiment in our format, written through the agent-facing API."""
    with pe.Experiment.create(
        root,
        name=experiment_id,
        total_conversations=conversations,
        experiment_id=experiment_id,
        fsync="never",
    ) as exp:
        for index in range(conversations):
            with exp.conversation(
                agent_a="local:test", agent_b="local:test", max_turns=turns
            ) as conv:
                conv.system_prompt("agent_a", "You are an AI having a conversation.")
                conv.system_prompt("agent_b", "You are an AI having a conversation.")
                for turn in range(turns):
                    conv.turn_start()
                    for agent in ("agent_a", "agent_b"):
                        conv.request(agent, message_count=2 * turn + 1)
                        conv.message(
                            agent,
                            _text(index + turn, 12),
                            prompt_tokens=20 * turn,
                            completion_tokens=12,
                            duration_ms=150,
                        )
                    conv.turn_complete(convergence_score=round(min(1.0, 0.5 + turn / 50), 3))
    return exp.directory


# --- measuring ---------------------------------------------------------------------------


def median_time(function: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def json_every_line(directory: Path) -> int:
    """The baseline: every line of every log decoded by the standard library."""
    count = 0
    for path in sorted(directory.iterdir()):
        if path.name.endswith(".jsonl"):
            with open(path, "rb") as stream:
                for line in stream:
                    if line.strip():
                        json.loads(line)
                        count += 1
    return count


def typed_every_line(directory: Path) -> int:
    """Another baseline: every line decoded into typed events by pidgin_events."""
    count = 0
    for path in sorted(directory.iterdir()):
        if path.name.endswith(".jsonl"):
            count += len(pe.read_events(path).events)
    return count


def pidgin_ai_cold(python: str, directory: Path, runs: int) -> tuple[float | None, str]:
    try:
        done = subprocess.run(
            [python, "-c", PIDGIN_AI_CHILD, str(directory), str(runs)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"pidgin-ai not measured: {exc}"
    for line in done.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            result = json.loads(line[len("@@RESULT@@") :])
            detail = f"status {result['status']}, {result['conversations']} conversations"
            return statistics.median(result["times"]), detail
    return None, f"pidgin-ai not measured: {done.stderr.strip()[-300:]}"


def log_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if ".jsonl" in p.name)


@contextmanager
def work_dir(given: str | None) -> Iterator[Path]:
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="bench-state-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Table:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        figure: str,
        ours: str,
        baseline: str = "",
        value: str = "",
        ratio: str = "",
        *,
        target: str = "",
        met: bool | None = None,
    ) -> None:
        self.rows.append(
            {
                "figure": figure,
                "ours": ours,
                "baseline": baseline,
                "baseline_value": value,
                "ratio": ratio,
                "target": target,
                "met": met,
            }
        )

    def print(self) -> None:
        headers = ["figure", "ours", "baseline", "baseline_value", "ratio", "target", "met"]
        cells = [
            [
                (
                    ""
                    if r[h] is None
                    else "yes"
                    if r[h] is True
                    else "NO"
                    if r[h] is False
                    else str(r[h])
                )
                for h in headers
            ]
            for r in self.rows
        ]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        print("  ".join("-" * w for w in widths))
        for row in cells:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def append_turns(conversations: list[Any], turns_done: list[int], target_bytes: int) -> int:
    """Append whole turns through the real writer until ``target_bytes`` were written."""
    written = 0
    content = _text(3, 150)  # about 1 KB per message
    while written < target_bytes:
        for index, conv in enumerate(conversations):
            before = conv.path.stat().st_size
            turn = turns_done[index]
            conv.emit(pe.TurnStartEvent(conversation_id=conv.id, turn_number=turn))
            for agent in ("agent_a", "agent_b"):
                conv.emit(
                    pe.MessageRequestEvent(
                        conversation_id=conv.id,
                        agent_id=agent,
                        turn_number=turn,
                        message_count=2 * turn + 1,
                    )
                )
                conv.emit(
                    pe.MessageCompleteEvent(
                        conversation_id=conv.id,
                        agent_id=agent,
                        message=pe.Message(role="assistant", content=content, agent_id=agent),
                        prompt_tokens=turn,
                        completion_tokens=250,
                        total_tokens=turn + 250,
                        duration_ms=150,
                        turn_number=turn,
                    )
                )
            conv.emit(
                pe.TurnCompleteEvent(
                    conversation_id=conv.id, turn_number=turn, convergence_score=0.5
                )
            )
            turns_done[index] += 1
            written += conv.path.stat().st_size - before
            if written >= target_bytes:
                break
    return written


# --- the run -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pidgin-ai-dir", help="a pidgin-ai 1.1 experiment directory")
    parser.add_argument("--pidgin-ai-python", help="python of a venv with pidgin-ai==1.1.0")
    parser.add_argument(
        "--generate",
        action="store_true",
        help="write a pidgin-ai-shaped 50x50 experiment if no --pidgin-ai-dir",
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--work-dir", help="where generated data goes (default: a temp dir)")
    parser.add_argument("--json", dest="json_path", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not args.pidgin_ai_dir and not args.generate:
        parser.error("give --pidgin-ai-dir DIR, or --generate to write the data")
    runs = max(1, args.runs)
    table = Table()
    StateBuilder = pidgin_state.StateBuilder

    with work_dir(args.work_dir) as work:
        print(f"data in {work}", flush=True)
        if args.pidgin_ai_dir:
            legacy = Path(args.pidgin_ai_dir)
            origin = "pidgin-ai 1.1 experiment"
        else:
            legacy = work / "pidgin-ai-shaped" / "synthetic-50x50"
            if not legacy.exists():
                write_pidgin_ai_shaped(legacy)
            origin = "pidgin-ai-shaped (generated) experiment"
        size = log_bytes(legacy)
        json_every_line(legacy)  # warm the page cache for everyone

        # 1. cold rebuild of the pidgin-ai experiment
        ours, state = median_time(lambda: StateBuilder.from_experiment_dir(legacy), runs)
        print(
            f"ours: {state.status}, {len(state.conversations)} conversations, "
            f"{state.timing.turns_completed} turns, {state.problem_count} problems",
            flush=True,
        )
        label = f"cold rebuild, {origin}, {size / MB:.1f} MB"
        if args.pidgin_ai_python:
            theirs, detail = pidgin_ai_cold(args.pidgin_ai_python, legacy, runs)
            print(f"pidgin-ai: {detail}", flush=True)
        else:
            theirs, detail = None, "no --pidgin-ai-python"
        if theirs is not None:
            ratio = theirs / ours
            table.add(
                label,
                ms(ours),
                "pidgin-ai StateBuilder",
                ms(theirs),
                f"{ratio:.1f}x faster",
                target=">= 10x",
                met=ratio >= 10,
            )
        else:
            table.add(label, ms(ours), "pidgin-ai StateBuilder", detail, target=">= 10x")
        baseline, _ = median_time(lambda: json_every_line(legacy), runs)
        table.add(
            label,
            ms(ours),
            "read every line + json.loads",
            ms(baseline),
            f"{baseline / ours:.1f}x faster",
            target="faster",
            met=baseline > ours,
        )
        typed, _ = median_time(lambda: typed_every_line(legacy), max(1, runs // 2))
        table.add(
            label,
            ms(ours),
            "pidgin_events.read_events (typed)",
            ms(typed),
            f"{typed / ours:.1f}x faster",
        )
        tracemalloc.start()
        StateBuilder.from_experiment_dir(legacy)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        table.add(
            "peak Python heap during that cold rebuild",
            f"{peak / MB:.1f} MB",
            "log bytes",
            f"{size / MB:.1f} MB",
            f"{peak / size:.2f} of the logs",
        )

        # 2. cold rebuild of the same shape in our format
        ours_dir = work / "ours" / "experiments" / "exp_bench_50x50"
        if not ours_dir.exists():
            write_ours(work / "ours", "exp_bench_50x50", 50, 50)
        ours_size = log_bytes(ours_dir)
        json_every_line(ours_dir)
        ours_cold, _ = median_time(lambda: StateBuilder.from_experiment_dir(ours_dir), runs)
        ours_json, _ = median_time(lambda: json_every_line(ours_dir), runs)
        table.add(
            f"cold rebuild, our format 50x50, {ours_size / MB:.1f} MB",
            ms(ours_cold),
            "read every line + json.loads",
            ms(ours_json),
            f"{ours_json / ours_cold:.1f}x faster",
            target="faster",
            met=ours_json > ours_cold,
        )

        # 3. no-change refresh, 100 conversations
        hundred = work / "ours" / "experiments" / "exp_bench_100"
        if not hundred.exists():
            write_ours(work / "ours", "exp_bench_100", 100, 20)
        builder = StateBuilder()
        first = builder.experiment(hundred)
        builder.experiment(hundred)
        before = builder.bytes_read
        samples = []
        for _ in range(max(200, runs * 30)):
            start = time.perf_counter()
            again = builder.experiment(hundred)
            samples.append(time.perf_counter() - start)
        same = again is first
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        table.add(
            f"no-change refresh, 100 conversations ({len(samples)} calls)",
            f"{ms(median)} (p90 {ms(p90)})",
            "bytes read by those calls",
            f"{builder.bytes_read - before}",
            "same object" if same else "REBUILT",
            target="< 2 ms",
            met=median < 0.002,
        )
        legacy_builder = StateBuilder()
        legacy_builder.experiment(legacy)
        legacy_samples = []
        for _ in range(100):
            start = time.perf_counter()
            legacy_builder.experiment(legacy)
            legacy_samples.append(time.perf_counter() - start)
        table.add(
            f"no-change refresh, {origin} ({len(state.conversations)} conversations)",
            ms(statistics.median(legacy_samples)),
        )

        # 4. refresh after appending 1 MB and 100 MB to a running experiment
        appended: dict[int, float] = {}
        with pe.Experiment.create(
            work / "live",
            name="live",
            total_conversations=10,
            experiment_id="exp_bench_live",
            fsync="never",
        ) as exp:
            conversations = [
                exp.conversation(agent_a="local:test", agent_b="local:test", max_turns=1_000_000)
                for _ in range(10)
            ]
            turns_done = [0] * 10
            builder = StateBuilder()
            builder.experiment(exp.directory)
            for amount, reps in ((1 * MB, max(5, runs)), (100 * MB, 3)):
                times, rates, reads = [], [], []
                for _ in range(reps):
                    written = append_turns(conversations, turns_done, amount)
                    before = builder.bytes_read
                    start = time.perf_counter()
                    live_state = builder.experiment(exp.directory)
                    elapsed = time.perf_counter() - start
                    times.append(elapsed)
                    rates.append(written / MB / elapsed)
                    reads.append((builder.bytes_read - before, written))
                appended[amount] = statistics.median(times)
                exact = all(read == wrote for read, wrote in reads)
                table.add(
                    f"refresh after appending {amount // MB} MB (median of {reps})",
                    f"{ms(appended[amount])}, {statistics.median(rates):.0f} MB/s",
                    "bytes read == bytes appended",
                    "yes" if exact else f"NO {reads}",
                )
            print(
                f"live experiment after the appends: {live_state.status}, "
                f"{live_state.timing.turns_completed} turns",
                flush=True,
            )
            for conv in conversations:
                conv.end()
        ratio = appended[100 * MB] / appended[1 * MB]
        table.add(
            "refresh cost, 100 MB appended / 1 MB appended",
            f"{ratio:.0f}x",
            target="~100x (proportional)",
        )

    print()
    table.print()
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(table.rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
