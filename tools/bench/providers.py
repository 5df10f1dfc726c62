"""Real providers at scale: 256 conversations of 20 turns against a server answering in 200 ms.

The server is ``tools/fake_providers`` in its own process, speaking the OpenAI wire format
(what Ollama, vLLM and every compatible server speak); our runner drives it through the
official ``openai`` SDK, streaming, with every event written to JSONL, in a child process
that measures its own wall and CPU time around ``run_experiment`` (the SDK is imported
before the clock starts; the one-request provider check is inside the timing).

Figures:

* wall time against the ideal, ``requests x latency / parallelism`` (two requests per
  turn, all 256 conversations at once): target within 1.25x;
* the runner's CPU per turn (all threads, user + system);
* log bytes per message with streamed chunks off, at the default interval (0.5 s) and
  for every chunk, from a smaller run whose replies stream over about a second;
* pidgin-ai 1.1 at its default (conversations one after another), its ``openai`` provider
  pointed at the same server through ``OPENAI_BASE_URL``: a short run, extrapolated to
  the same 256 x 20 (its wall time grows linearly with conversations when sequential).

Alone: ``python tools/bench/providers.py [--quick]`` (with the development environment's
Python), or ``python3 tools/dev.py bench --only providers``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ == "__main__":  # run alone: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import MARKER, Measure, Row, SectionResult, absolute, compare, missing

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "providers"
LATENCY = 0.2
FULL = (256, 20)
QUICK = (16, 3)
TARGET = 1.25
KEY = "bench-key"
TOOLS = Path(__file__).resolve().parent.parent

RUN_CHILD = """\
import json, os, resource, sys, time
args = json.loads(sys.argv[1])
os.environ.update(args["env"])
import openai  # the SDK's import is not the runner's work
from pidgin_cli._conductor import StopRequest
from pidgin_cli._runner import ExperimentSpec, run_experiment
from pidgin_events import new_id
spec = ExperimentSpec(
    root=args["root"], experiment_id=new_id("exp"), name="bench", agent_a=args["model"],
    agent_b=args["model"], max_turns=args["turns"], repetitions=args["conversations"],
    max_parallel=args["conversations"], seed=1, chunk_interval=args["chunk_interval"],
    provider_limits={"openai-compatible": {"max_concurrency": args["conversations"]}},
    workers=args["workers"],
)
def workers_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, once reaped
    return usage.ru_utime + usage.ru_stime
started, cpu, before = time.perf_counter(), time.process_time(), workers_cpu()
summary = run_experiment(spec, StopRequest(), log=lambda message: None)
wall, cpu = time.perf_counter() - started, time.process_time() - cpu + workers_cpu() - before
statuses = [r.status for r in summary.results]
logs = list(spec.directory.glob("conv_*_events.jsonl"))
messages = chunks = 0
for log in logs:
    for line in log.read_bytes().splitlines():
        messages += b'"MessageCompleteEvent"' in line
        chunks += b'"MessageChunkEvent"' in line
print(MARKER + json.dumps({
    "wall": wall, "cpu": cpu, "status": summary.status, "completed": statuses.count("completed"),
    "messages": messages, "chunks": chunks, "bytes": sum(log.stat().st_size for log in logs),
}), flush=True)
""".replace("MARKER", repr(MARKER))

LEGACY_CHILD = """\
import json, os, sys, time
os.environ.setdefault("PIDGIN_ORIGINAL_CWD", os.getcwd())
from pidgin.experiments import ExperimentConfig, ExperimentManager
from pidgin.io.paths import get_experiments_dir
from pidgin.core.constants import SystemDefaults
SystemDefaults.MAX_RETRIES = 60  # its launcher waits 3 s for the daemon; a busy machine needs more
reps, turns = int(sys.argv[1]), int(sys.argv[2])
config = ExperimentConfig(
    name="providers-bench", agent_a_model="gpt-4o-mini", agent_b_model="gpt-4o-mini",
    repetitions=reps, max_turns=turns, convergence_action="warn", display_mode="quiet",
)
manager = ExperimentManager(base_dir=get_experiments_dir())
started = time.time()
experiment_id = manager.start_experiment(config, working_dir=os.getcwd())
manifest = get_experiments_dir() / manager.get_experiment_directory(experiment_id) / "manifest.json"
status = None
while time.time() - started < 900:
    time.sleep(0.5)
    try:
        status = json.loads(manifest.read_text()).get("status")
    except (OSError, ValueError):
        continue
    if status in ("completed", "failed") and not manager.is_running(experiment_id):
        break
# The conversations' own span, from their events: the daemon's start-up is not their pace.
from datetime import datetime
stamps, messages = [], 0
for log in manifest.parent.glob("events_*.jsonl"):
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event.get("event_type") in ("ConversationStartEvent", "MessageCompleteEvent"):
            stamps.append(datetime.fromisoformat(event["timestamp"]).timestamp())
            messages += event["event_type"] == "MessageCompleteEvent"
span = max(stamps) - min(stamps) if stamps else None
print(MARKER + json.dumps({
    "wall": time.time() - started, "status": status, "span": span, "messages": messages,
}), flush=True)
""".replace("MARKER", repr(MARKER))


class FakeServerProcess:
    """``tools/fake_providers`` in its own process, so its CPU is not the runner's."""

    def __init__(self, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(TOOLS / "fake_providers"), *options],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.close()
            raise RuntimeError("the fake provider server did not start")

    def cpu(self) -> float | None:
        """Seconds of CPU the server has used so far (Linux), None where unknown."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def env(self) -> dict[str, str]:
        return {
            "PIDGIN_COMPATIBLE_BASE_URL": f"{self.url}/v1",
            "PIDGIN_COMPATIBLE_API_KEY": KEY,
            "OPENAI_BASE_URL": f"{self.url}/v1",
            "OPENAI_API_KEY": KEY,
        }

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _child(
    python: str, code: str, args: list[str], env: dict[str, str], cwd: Path
) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-c", code, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            result: dict[str, Any] = json.loads(line[len(MARKER) :])
            return result
    raise RuntimeError(f"exit {done.returncode}: {(done.stderr or done.stdout)[-600:]}")


def _ours(
    python: str,
    env: dict[str, str],
    root: Path,
    *,
    conversations: int,
    turns: int,
    chunk_interval: float,
    workers: int | None = 1,
) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    args = {
        "env": env,
        "root": str(root),
        "model": "openai-compatible:bench-model",
        "conversations": conversations,
        "turns": turns,
        "chunk_interval": chunk_interval,
        "workers": workers,
    }
    return _child(python, RUN_CHILD, [json.dumps(args)], {**os.environ, **env}, root)


def _scale(
    python: str,
    scratch: Path,
    *,
    rounds: int,
    conversations: int,
    turns: int,
    latency: float,
    chunk_interval: float,
    label: str,
    workers: int | None = 1,
) -> list[Row]:
    """Wall time against the ideal and against this machine's CPU floor, for one configuration.

    The floor: the runner's and the server's CPU, measured in the same run, spread over
    every core; no wall time can be shorter on this machine, whatever the runner does.
    """
    requests = conversations * turns * 2
    ideal = requests * latency / conversations
    cores = _cores()
    server = FakeServerProcess("--latency", str(latency), "--words", "24")
    walls: list[float] = []
    cpus: list[float] = []
    server_cpus: list[float] = []
    floors: list[float] = []
    try:
        for index in range(rounds):
            server_before = server.cpu()
            result = _ours(
                python,
                server.env(),
                scratch / f"scale-{label}-{workers}-{index}",
                conversations=conversations,
                turns=turns,
                chunk_interval=chunk_interval,
                workers=workers,
            )
            server_after = server.cpu()
            if result["completed"] != conversations or result["messages"] != requests:
                raise RuntimeError(f"the run did not complete every conversation: {result}")
            walls.append(result["wall"])
            cpus.append(result["cpu"] / (conversations * turns))
            served = (
                None
                if server_before is None or server_after is None
                else server_after - server_before
            )
            if served is not None:
                server_cpus.append(served / requests)
                floors.append((result["cpu"] + served) / cores)
    finally:
        server.close()
    processes = "workers from the cores" if workers is None else plural_workers(workers)
    figure = (
        f"{conversations} conversations x {turns} turns, {latency * 1000:.0f} ms per reply, "
        f"{label}, {processes}"
    )
    cpu = Measure.of(cpus, "s")
    busy = (cpu.value * conversations * turns / median_of(walls)) if cpu and walls else 0
    floor = Measure.of(floors, "s")
    wall = Measure.of(walls, "s")
    rows = [
        compare(
            NAME,
            f"{figure}: wall time",
            wall,
            "ideal: requests x latency / parallelism",
            Measure(ideal, "s", [ideal]),
            how="within",
            threshold=TARGET,
            target=f"<= {TARGET}x ideal",
            note=f"runner busy {busy:.2f} cores on average; load average {_load()}",
        ),
        absolute(
            NAME,
            f"{figure}: runner CPU per turn (2 requests, all processes)",
            cpu,
            limit=2 * latency / conversations,
            target=f"< 2 x latency / parallelism = {2 * latency / conversations * 1000:.2f} ms "
            "(what one core can sustain at the ideal pace)",
        ),
        absolute(
            NAME,
            f"{figure}: fake server CPU per request",
            Measure.of(server_cpus, "s"),
            limit=cores * latency / conversations,
            target=f"< cores x latency / parallelism = {cores * latency / conversations * 1000:.2f}"
            " ms (the whole machine per request at the ideal pace; the runner needs it too)",
        ),
    ]
    if floor is not None:
        rows += [
            compare(
                NAME,
                f"{figure}: CPU floor, (runner + server CPU) / {cores} cores",
                floor,
                "ideal: requests x latency / parallelism",
                Measure(ideal, "s", [ideal]),
                how="within",
                threshold=TARGET,
                target=f"<= {TARGET}x ideal, or the target cannot be met on this machine",
            ),
            compare(
                NAME,
                f"{figure}: wall time against the CPU floor",
                wall,
                "the CPU floor measured in the same runs",
                floor,
                how="within",
                target="close to 1x: the runner waits on nothing but CPU",
                note="not judged: it says how much of the wall time is other than CPU work "
                f"(other processes on a shared machine, waits); load average {_load()}",
            ),
        ]
    return rows


def plural_workers(count: int) -> str:
    return "1 process" if count == 1 else f"{count} worker processes"


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _load() -> str:
    try:
        return " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def median_of(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def measure(
    python: str,
    scratch: Path,
    *,
    rounds: int,
    quick: bool,
    legacy_python: str | None = None,
    legacy_env: dict[str, str] | None = None,
) -> tuple[list[Row], list[str]]:
    conversations, turns = QUICK if quick else FULL
    rows: list[Row] = []
    same = {"rounds": rounds, "conversations": conversations, "turns": turns}
    rows += _scale(
        python,
        scratch,
        **same,
        latency=LATENCY,
        chunk_interval=0.5,
        label="streamed (chunk events every 0.5 s, the default)",
        workers=None,
    )
    rows += _scale(
        python,
        scratch,
        **same,
        latency=LATENCY,
        chunk_interval=0.5,
        label="streamed",
        workers=1,
    )
    rows += _scale(
        python,
        scratch,
        **same,
        latency=LATENCY,
        chunk_interval=0.0,
        label="not streamed (--chunk-interval 0)",
        workers=None,
    )
    rows += _scale(
        python,
        scratch,
        rounds=1,
        conversations=conversations,
        turns=1 if quick else 5,
        latency=1.0 if quick else 2.0,
        chunk_interval=0.5,
        label="streamed, a real model's pace",
        workers=None,
    )
    rows.append(
        _legacy(
            scratch,
            quick=quick,
            size=(conversations, turns),
            ours=rows[0],
            legacy_python=legacy_python,
            legacy_env=legacy_env,
        )
    )
    rows += _log_size(python, scratch, quick=quick)
    notes = [
        "Server: tools/fake_providers in its own process (OpenAI wire, SSE streaming) on the "
        "same cores; runner: threads, one per conversation, the openai SDK's sync client, "
        "in the runner or in --workers processes (the default: one per core from 64 "
        "conversations at a time).",
        "At 200 ms per reply, 256 conversations ask for 1280 requests a second. The CPU "
        "floor row says what the cores allow: when the floor itself is above 1.25x the "
        "ideal, the target needs less CPU per request (runner and server) or more cores, "
        "and the 'wall time against the CPU floor' row shows how much of the rest is ours.",
    ]
    return rows, notes


def _legacy(
    scratch: Path,
    *,
    quick: bool,
    size: tuple[int, int],
    ours: Row,
    legacy_python: str | None,
    legacy_env: dict[str, str] | None,
) -> Row:
    """pidgin-ai 1.1 at its default (sequential), extrapolated to the same experiment."""
    conversations, turns = size
    label = f"{conversations} conversations x {turns} turns, {LATENCY * 1000:.0f} ms per reply"
    if legacy_python is None or legacy_env is None:
        return missing(
            NAME, f"{label}: pidgin-ai's default (sequential)", "pidgin-ai 1.1 not available"
        )
    server = FakeServerProcess("--latency", str(LATENCY), "--words", "24")
    reps, legacy_turns = (1, 3) if quick else (2, 5)
    home = scratch / "legacy"
    home.mkdir(parents=True, exist_ok=True)
    try:
        legacy = _child(
            legacy_python,
            LEGACY_CHILD,
            [str(reps), str(legacy_turns)],
            {**legacy_env, **server.env()},
            home,
        )
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return missing(
            NAME, f"{label}: pidgin-ai's default (sequential)", f"pidgin-ai run failed: {exc}"
        )
    finally:
        server.close()
    if legacy.get("status") != "completed":
        return missing(
            NAME,
            f"{label}: pidgin-ai's default (sequential)",
            f"pidgin-ai ended {legacy.get('status')}",
        )
    messages = legacy["messages"]
    if not messages or not legacy.get("span"):
        return missing(
            NAME, f"{label}: pidgin-ai's default (sequential)", "pidgin-ai wrote no messages"
        )
    extrapolated = legacy["span"] / messages * conversations * turns * 2
    return compare(
        NAME,
        f"{label}: wall time against pidgin-ai's default (sequential)",
        ours.ours,
        "pidgin-ai 1.1, extrapolated from a short sequential run",
        Measure(extrapolated, "s", [extrapolated]),
        how="faster",
        note=f"pidgin-ai: {messages} messages in {legacy['span']:.1f} s of conversation "
        f"({legacy['wall']:.1f} s with its daemon's start and post-processing)",
    )


def _log_size(python: str, scratch: Path, *, quick: bool) -> list[Row]:
    """Bytes per message with chunk events off, at the default interval, for every chunk."""
    server = FakeServerProcess("--words", "60", "--chunk-delay", "0.05")
    sizes: dict[str, Measure] = {}
    try:
        for label, interval in (("off", 0.0), ("0.5 s", 0.5), ("every chunk", 1e-9)):
            result = _ours(
                python,
                server.env(),
                scratch / f"size-{interval}",
                conversations=4 if quick else 8,
                turns=1 if quick else 3,
                chunk_interval=interval,
            )
            sizes[label] = Measure(result["bytes"] / result["messages"], "B", [])
            sizes[label].derived = f"{result['chunks']} chunk events, {result['messages']} messages"
            sizes[label].derived_runs = 1
    finally:
        server.close()
    base = sizes["off"]
    return [
        compare(
            NAME,
            f"log bytes per message, streamed chunks at {label} (replies of ~1 s)",
            sizes[label],
            "chunk events off",
            base,
            how="growth",
        )
        for label in ("0.5 s", "every chunk")
    ]


def run(ws: Workspace) -> SectionResult:
    try:
        import importlib.util

        if importlib.util.find_spec("openai") is None:
            raise ImportError("openai")
    except ImportError:
        reason = 'the openai SDK is not installed: pip install "pidgin-cli[openai]"'
        return SectionResult(rows=[missing(NAME, "providers at scale", reason)])
    legacy_python = ws.legacy_python()
    rows, notes = measure(
        ws.python,
        ws.scratch("providers"),
        rounds=ws.rounds,
        quick=ws.quick,
        legacy_python=legacy_python,
        legacy_env=dict(ws.legacy_env) if legacy_python else None,
    )
    return SectionResult(rows=rows, notes=notes)


def main() -> None:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="The providers benchmark alone.")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK[0]} x {QUICK[1]}, once")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pidgin-ai-python", help="a Python with pidgin-ai 1.1 installed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pidgin-bench-providers-") as scratch:
        legacy_env = None
        if args.pidgin_ai_python:
            home = Path(scratch) / "home"
            home.mkdir()
            inherited = {
                k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")
            }
            legacy_env = {**inherited, "HOME": str(home), "NO_COLOR": "1", "TERM": "dumb"}
        rows, notes = measure(
            sys.executable,
            Path(scratch),
            rounds=1 if args.quick else args.rounds,
            quick=args.quick,
            legacy_python=args.pidgin_ai_python,
            legacy_env=legacy_env,
        )
    for row in rows:
        ours = row.ours.text() if row.ours else "n/a"
        base = f" | {row.baseline}: {row.base.text()}" if row.base else ""
        ratio = f" | {row.ratio_text}" if row.ratio_text else ""
        met = "" if row.met is None else (" | target met" if row.met else " | target MISSED")
        note = f" ({row.note})" if row.note else ""
        samples = f" samples {[round(s, 3) for s in row.ours.samples]}" if row.ours else ""
        print(f"{row.figure}: {ours}{base}{ratio}{met}{note}{samples}")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
