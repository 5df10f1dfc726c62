"""``pidgin serve`` on a big output root: list page, GraphQL, a 500-turn conversation, memory.

Issue 15's targets: after the first scan, the list page and the GraphQL
``experiments(first: 50)`` query answer in under 200 ms with 10,000 experiments under the
root, and a conversation page of 500 turns in under 200 ms; memory stays bounded. The
baseline is ``pidgin experiment list --json`` on the same root (its wall time and peak RSS).

The root is made cheaply: one small experiment (2 conversations x 3 turns) is written
through the ``Experiment`` API, then cloned 10,000 times with its id and name rewritten
(the issue's 50 x 50 per experiment would be 25 million turns; the list's cost grows with
the number of runs and files, which this keeps). One more experiment holds the 500-turn
conversation. Times are taken from an HTTP client on 127.0.0.1 in the server's process,
so they include the request's round trip: an upper bound of the server's time.
``--quick``: 200 experiments. Run alone: ``python3 tools/dev.py bench --only serve``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._harness import Measure, SectionResult, absolute, compare, missing

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "serve"
LIMIT = 0.200
TEMPLATE_ID = "exp_template00"
LONG_TURNS = 500


# --- in child processes ------------------------------------------------------------------


def make_root(root: str, count: int) -> dict[str, Any]:
    """``count`` cloned small experiments plus one with a 500-turn conversation."""
    from bench._data import synthetic

    base = Path(root)
    scratch = base / ".template"
    template = Path(
        synthetic(
            str(scratch), name="bench-template", conversations=2, turns=3, message_bytes=200,
            experiment_id=TEMPLATE_ID,
        )["dir"]
    )  # fmt: skip
    files = {p.name: p.read_bytes() for p in template.iterdir() if p.is_file()}
    experiments = base / "experiments"
    for n in range(count):
        run_id = f"exp_{n:010d}"
        directory = experiments / run_id
        directory.mkdir(parents=True)
        for name, data in files.items():
            cloned = data.replace(TEMPLATE_ID.encode(), run_id.encode())
            cloned = cloned.replace(b"bench-template", f"bench-{n:05d}".encode())
            (directory / name).write_bytes(cloned)
    shutil.rmtree(scratch)
    long = synthetic(
        root, name="long-500", conversations=1, turns=LONG_TURNS, message_bytes=400, seed=7
    )
    directory = Path(long["dir"])
    conversation = next(p.name for p in directory.iterdir() if p.name.startswith("conv_"))
    return {
        "experiments": count + 1,
        "long": directory.name,
        "conversation": conversation.split("_events")[0],
    }


def _get(url: str, data: bytes | None = None) -> float:
    headers = {"Content-Type": "application/json"} if data else {}
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers)) as r:
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}")
    elapsed = time.perf_counter() - started
    if data and b'"errors"' in body:
        raise RuntimeError(f"{url}: {body[:400]!r}")
    return elapsed


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(root: str, long: str, conversation: str, rounds: int) -> dict[str, Any]:
    """Start the server in this process; time its pages and queries."""
    from pidgin_cli._serve._catalog import Catalog
    from pidgin_cli._serve._http import make_server

    catalog = Catalog(Path(root))
    started = time.perf_counter()
    runs = len(catalog.scan_now())
    first_scan = time.perf_counter() - started
    rss_after_scan = _rss_kib()
    server = make_server(catalog, "127.0.0.1", 0, token=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    query = json.dumps(
        {
            "query": "{ experiments(first: 50) { totalCount items { id name status "
            "progress { planned finished } meanConvergence tokens { total } } } }"
        }
    ).encode()
    page = f"{url}experiments/{long}/conversations/{conversation}"
    cold = _get(page)
    samples: dict[str, list[float]] = {"list": [], "graphql": [], "conversation": []}
    for _ in range(rounds):
        samples["list"].append(_get(url))
        samples["graphql"].append(_get(url + "graphql", query))
        samples["conversation"].append(_get(page))
    # The same while the root is scanned again (the server does it in the background, at
    # most a third of the time): both compete for the interpreter.
    busy: dict[str, list[float]] = {"list": [], "graphql": []}
    scanner = threading.Thread(target=catalog.scan_now, daemon=True)
    rescan_started = time.perf_counter()
    scanner.start()
    while True:
        busy["list"].append(_get(url))
        busy["graphql"].append(_get(url + "graphql", query))
        if not scanner.is_alive() or len(busy["list"]) >= rounds:
            break
    scanner.join()
    rescan = time.perf_counter() - rescan_started
    rss_end = _rss_kib()
    server.shutdown()
    server.server_close()
    return {
        "runs": runs,
        "first_scan": first_scan,
        "cold_conversation": cold,
        "samples": samples,
        "busy": busy,
        "rescan": rescan,
        "rss_after_scan_kib": rss_after_scan,
        "rss_end_kib": rss_end,
    }


def list_json(root: str, rounds: int) -> dict[str, Any]:
    """``pidgin experiment list --json`` on ``root``: wall times and the peak RSS of one."""
    env = {**os.environ, "PIDGIN_OUTPUT": root}
    times = []
    count = 0
    for _ in range(rounds):
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pidgin_cli", "experiment", "list", "--json"],
            capture_output=True,
            env=env,
            check=True,
        )
        times.append(time.perf_counter() - started)
        document = json.loads(proc.stdout)
        entries = document if isinstance(document, list) else document.get("experiments", [])
        count = len(entries)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"times": times, "peak_kib": peak, "listed": count}


# --- in the bench process ----------------------------------------------------------------


def run(ws: Workspace) -> SectionResult:
    result = SectionResult()
    try:
        import strawberry  # noqa: F401
    except ImportError:
        result.rows.append(
            missing(NAME, "serve section", "needs pidgin-cli[serve] (strawberry) installed")
        )
        return result
    count = 200 if ws.quick else 10_000
    rounds = 3 if ws.quick else 15
    spec = {"experiments": count, "long_turns": LONG_TURNS, "format": 1}

    def build(directory: Path) -> dict[str, Any]:
        made = ws.ours("serve", "make_root", root=str(directory), count=count, timeout=7200)
        return {"dir": str(directory), **made}

    data = ws._cached(f"serve-root-{count}", spec, build)
    root = data["dir"]
    ws.log(f"  serving {data['experiments']} experiments")
    served = ws.ours(
        "serve", "measure", root=root, long=data["long"],
        conversation=data["conversation"], rounds=rounds, timeout=3600,
    )  # fmt: skip
    listed = ws.ours("serve", "list_json", root=root, rounds=max(1, rounds // 5), timeout=3600)
    base = Measure.of(listed["times"], "s")
    label = f"pidgin experiment list --json ({data['experiments']} runs)"
    runs = served["runs"]
    samples = served["samples"]
    scan = Measure(served["first_scan"], "s", [served["first_scan"]])
    result.rows.append(
        compare(NAME, f"first scan of the root ({runs} runs)", scan, label, base, how="faster")
    )
    for key, figure in (
        ("list", f"list page, after the first scan ({runs} runs)"),
        ("graphql", "GraphQL experiments(first: 50), after the first scan"),
        ("conversation", f"conversation page, {LONG_TURNS} turns (viewed before)"),
    ):
        result.rows.append(
            absolute(
                NAME, figure, Measure.of(samples[key], "s"), limit=LIMIT, target="< 200 ms",
                baseline=label, base=base,
            )
        )  # fmt: skip
    for key, figure in (
        ("list", "list page, while the root is scanned again"),
        ("graphql", "GraphQL experiments(first: 50), while the root is scanned again"),
    ):
        result.rows.append(
            absolute(
                NAME, figure, Measure.of(served["busy"][key], "s"), limit=LIMIT,
                target="< 200 ms", baseline=label, base=base,
            )
        )  # fmt: skip
    cold = served["cold_conversation"]
    result.rows.append(
        absolute(
            NAME, f"conversation page, {LONG_TURNS} turns, first view (reads the log)",
            Measure(cold, "s", [cold]), limit=LIMIT, target="< 200 ms",
        )
    )  # fmt: skip
    rss = Measure(served["rss_end_kib"] / 1024, "MiB", [served["rss_end_kib"] / 1024])
    list_rss = Measure(listed["peak_kib"] / 1024, "MiB", [listed["peak_kib"] / 1024])
    result.rows.append(
        compare(
            NAME, "server resident memory after the measurements", rss,
            "peak RSS of pidgin experiment list --json", list_rss, how="within",
        )
    )  # fmt: skip
    result.notes.append(
        f"{rounds} rounds of (list page, GraphQL, conversation page) against one server; "
        f"median shown. A later (incremental) scan of the root took {served['rescan']:.2f} s "
        f"with {len(served['busy']['list'])} list pages and GraphQL queries served meanwhile. "
        f"RSS after the first scan {served['rss_after_scan_kib'] / 1024:.0f} MiB. "
        f"`pidgin experiment list --json` listed {listed['listed']} runs. Root made by cloning "
        "one 2 x 3 experiment (see tools/bench/serve.py)."
    )
    return result
