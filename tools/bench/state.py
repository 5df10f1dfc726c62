"""State: cold rebuild, no-change refresh and refresh after appends, on both log formats.

Ours is ``pidgin_state.StateBuilder`` (a fresh one for a cold rebuild; one kept across calls
for refreshes). The baselines are pidgin-ai 1.1's ``StateBuilder().get_experiment_state`` on
the same directory, and "read every line and ``json.loads`` it" (for a refresh: only the
appended lines). The targets: cold rebuild at least 10x faster than pidgin-ai and
faster than the ``json.loads`` baseline; a no-change refresh under 2 ms for 100
conversations; refresh cost proportional to the bytes appended (1 MB and 100 MB).

The baselines ``json_every_line`` and ``typed_every_line`` are here; appends to a running
experiment are whole turns written through the real writer (``_data.append_turns``).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._data import append_turns
from bench._harness import (
    Measure,
    Row,
    SectionResult,
    absolute,
    compare,
    interleave,
    median,
    missing,
)

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "state"
NO_CHANGE_LIMIT = 0.002
MB = 1_000_000
WARM_UP_APPEND = 250_000
LIVE_CONVERSATIONS = 10
CHUNK_REFRESHES = 50
CHUNK_TEXT = "a streamed reply grows by half a second of words. "


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
    import pidgin_events as pe

    count = 0
    for path in sorted(directory.iterdir()):
        if path.name.endswith(".jsonl"):
            count += len(pe.read_events(path).events)
    return count


# --- children: ours -----------------------------------------------------------------------


def _builder() -> Any:
    return importlib.import_module("pidgin_state").StateBuilder()


def _summary(state: Any) -> dict[str, Any]:
    return {
        "status": str(state.status),
        "conversations": len(state.conversations),
        "completed": state.progress.completed,
        "problems": state.problem_count,
    }


def ours_cold(directory: str, reps: int) -> dict[str, Any]:
    """Child: a fresh StateBuilder, then the baselines, ``reps`` times in turn."""
    path = Path(directory)
    out: dict[str, Any] = {"ours": [], "json": [], "typed": []}
    _builder().experiment(path)  # warm-up: imports and first-use compilation are not a rebuild
    json_every_line(path)
    typed_every_line(path)
    state = None
    for _ in range(reps):
        start = time.perf_counter()
        state = _builder().experiment(path)
        out["ours"].append(time.perf_counter() - start)
        start = time.perf_counter()
        json_every_line(path)
        out["json"].append(time.perf_counter() - start)
        start = time.perf_counter()
        typed_every_line(path)
        out["typed"].append(time.perf_counter() - start)
    out["state"] = _summary(state)
    return out


def ours_no_change(directory: str, calls: int) -> dict[str, Any]:
    """Child: a warm builder refreshed ``calls`` times with nothing new on disk."""
    builder = _builder()
    first = builder.experiment(directory)
    builder.experiment(directory)
    before = builder.bytes_read
    samples = []
    again = first
    for _ in range(calls):
        start = time.perf_counter()
        again = builder.experiment(directory)
        samples.append(time.perf_counter() - start)
    return {"ours": samples, "bytes_read": builder.bytes_read - before, "same": again is first}


def ours_append_legacy(source: str, scratch: str, size: int, reps: int) -> dict[str, Any]:
    """Child: warm builder on a copy of a pidgin-ai experiment; append ``size`` bytes of
    its own lines; time the refresh; and the ``json.loads`` of only the appended lines."""
    work = _copy(source, scratch)
    builder = _builder()
    builder.experiment(work)
    out: dict[str, Any] = {"ours": [], "json": []}
    for rep in range(reps + 1):  # the first, smaller append warms the process up: not kept
        offsets = {p: p.stat().st_size for p in _logs(work)}
        append_legacy_lines(work, size if rep else min(size, WARM_UP_APPEND))
        appended = b"".join(_tail(p, offset) for p, offset in offsets.items())
        start = time.perf_counter()
        builder.experiment(work)
        elapsed = time.perf_counter() - start
        decoded = _time_json(appended)
        if rep:
            out["ours"].append(elapsed)
            out["json"].append(decoded)
    shutil.rmtree(work)
    return out


def ours_live_append(scratch: str, sizes: list[int], reps: int) -> dict[str, Any]:
    """Child: a running experiment of 10 conversations; whole turns appended through the
    writer (``_data.append_turns``); the refresh timed after each append.

    Per size: ``ours@N`` refresh times, ``json@N`` the ``json.loads`` of just those
    lines, ``appended@N`` and ``read@N`` bytes appended and read. ``fixed`` is the
    no-change refresh of this same experiment.
    """
    import pidgin_events as pe

    root = Path(scratch) / f"live-{os.getpid()}-{time.monotonic_ns()}"
    out: dict[str, Any] = {"fixed": []}
    with pe.Experiment.create(
        root, name="live", total_conversations=LIVE_CONVERSATIONS, fsync="never"
    ) as exp:
        conversations = [
            exp.conversation(agent_a="local:test", agent_b="local:test", max_turns=1_000_000)
            for _ in range(LIVE_CONVERSATIONS)
        ]
        turns_done = [0] * LIVE_CONVERSATIONS
        builder = _builder()
        builder.experiment(exp.directory)
        append_turns(conversations, turns_done, WARM_UP_APPEND)  # warm-up, not kept
        builder.experiment(exp.directory)
        for _ in range(50):
            start = time.perf_counter()
            builder.experiment(exp.directory)
            out["fixed"].append(time.perf_counter() - start)
        out["chunk"] = _chunk_refreshes(builder, exp.directory, conversations[0], CHUNK_REFRESHES)
        out["streamed"] = [float(_streamed(builder.experiment(exp.directory), conversations[0].id))]
        for size in sizes:
            for key in ("ours", "json", "appended", "read"):
                out[f"{key}@{size}"] = []
            for _ in range(reps):
                offsets = {conv.path: conv.path.stat().st_size for conv in conversations}
                append_turns(conversations, turns_done, size)
                appended = b"".join(_tail(path, offset) for path, offset in offsets.items())
                before = builder.bytes_read
                start = time.perf_counter()
                builder.experiment(exp.directory)
                out[f"ours@{size}"].append(time.perf_counter() - start)
                out[f"read@{size}"].append(builder.bytes_read - before)
                out[f"appended@{size}"].append(len(appended))
                out[f"json@{size}"].append(_time_json(appended))
        for conv in conversations:
            conv.end()
    shutil.rmtree(root)
    return out


def _chunk_refreshes(builder: Any, directory: Path, conversation: Any, count: int) -> list[float]:
    """A reply streaming: one ``MessageChunkEvent`` appended, then the refresh timed."""
    import pidgin_events as pe

    times = []
    for index in range(count):
        conversation.emit(
            pe.MessageChunkEvent(
                conversation_id=conversation.id,
                agent_id="agent_a",
                chunk=CHUNK_TEXT,
                chunk_index=index,
                elapsed_ms=500 * index,
            )
        )
        start = time.perf_counter()
        builder.experiment(directory)
        times.append(time.perf_counter() - start)
    return times


def _streamed(state: Any, conversation_id: str) -> int:
    """Characters of the reply the snapshot shows streaming (0 where state keeps none)."""
    streaming = getattr(state.conversations[conversation_id], "streaming", None) or {}
    return len(streaming.get("agent_a", ""))


def _time_json(data: bytes) -> float:
    start = time.perf_counter()
    for line in data.splitlines():
        if line.strip():
            json.loads(line)
    return time.perf_counter() - start


# --- children: pidgin-ai (standard library and pidgin-ai only) ----------------------------


def _legacy_builder() -> Any:
    return importlib.import_module("pidgin.experiments.state_builder").StateBuilder()


def legacy_cold(directory: str, reps: int) -> dict[str, Any]:
    """Child in pidgin-ai's venv: ``StateBuilder().get_experiment_state`` (fresh each time)."""
    path = Path(directory)
    out: dict[str, Any] = {"legacy": []}
    _legacy_builder().get_experiment_state(path)  # warm-up, as for ours
    state = None
    for _ in range(reps):
        start = time.perf_counter()
        state = _legacy_builder().get_experiment_state(path)
        out["legacy"].append(time.perf_counter() - start)
    if state is not None:
        out["state"] = {"status": str(state.status), "completed": state.completed_conversations}
    return out


def legacy_no_change(directory: str, calls: int) -> dict[str, Any]:
    builder = _legacy_builder()
    path = Path(directory)
    builder.get_experiment_state(path)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        builder.get_experiment_state(path)
        samples.append(time.perf_counter() - start)
    return {"legacy": samples}


def legacy_append(source: str, scratch: str, size: int, reps: int) -> dict[str, Any]:
    """Child in pidgin-ai's venv: the same appends. pidgin-ai rewrites manifest.json after
    every turn, so its mtime moves too and the builder's cache is (rightly) invalidated."""
    builder = _legacy_builder()
    work = _copy(source, scratch)
    builder.get_experiment_state(work)
    manifest = work / "manifest.json"
    out: dict[str, Any] = {"legacy": []}
    for rep in range(reps + 1):  # the first, smaller append warms the process up, as for ours
        append_legacy_lines(work, size if rep else min(size, WARM_UP_APPEND))
        stamp = time.time() + rep + 1
        os.utime(manifest, (stamp, stamp))
        start = time.perf_counter()
        builder.get_experiment_state(work)
        if rep:
            out["legacy"].append(time.perf_counter() - start)
    shutil.rmtree(work)
    return out


# --- shared helpers (standard library only: they also run in pidgin-ai's venv) ------------


def _copy(source: str, scratch: str) -> Path:
    work = Path(scratch) / f"copy-{os.getpid()}-{time.monotonic_ns()}"
    shutil.copytree(source, work)
    return work


def _logs(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir() if p.name.endswith(".jsonl") and p.name != "experiment.jsonl"
    )


def _tail(path: Path, offset: int) -> bytes:
    with path.open("rb") as stream:
        stream.seek(offset)
        return stream.read()


_NOT_TURN = (b'"ConversationStartEvent"', b'"ConversationEndEvent"', b'"SystemPromptEvent"')


def append_legacy_lines(directory: Path, size: int) -> int:
    """Append about ``size`` bytes of each log's own turn lines, spread over all logs.

    Deterministic, so that ours and pidgin-ai get exactly the same bytes appended.
    """
    logs = _logs(directory)
    quota = size // max(1, len(logs))
    total = 0
    for path in logs:
        lines = [
            line
            for line in path.read_bytes().splitlines()
            if line.strip() and not any(marker in line for marker in _NOT_TURN)
        ]
        if not lines:
            continue
        chunk = bytearray()
        index = 0
        while len(chunk) < quota:
            chunk += lines[index % len(lines)] + b"\n"
            index += 1
        with path.open("ab") as stream:
            stream.write(chunk)
        total += len(chunk)
    return total


# --- the section --------------------------------------------------------------------------


def _mb(size: float) -> str:
    return f"{size / MB:.3g} MB" if size >= MB else f"{size / 1000:.3g} KB"


def run(ws: Workspace) -> SectionResult:
    result = SectionResult()
    legacy = ws.legacy_like_experiment()
    ours_dir, origin = ws.ours_experiment()
    hundred = ws.ours_hundred()
    use_legacy = ws.legacy_python() is not None
    if not use_legacy:
        result.notes.append(f"pidgin-ai StateBuilder not measured: {ws.legacy_reason}")
    scratch = str(ws.scratch("state"))
    small, large = (50_000, 2 * MB) if ws.quick else (MB, 100 * MB)
    cold_reps, calls = (1, 20) if ws.quick else (5, 300)
    legacy_reps = 1 if ws.quick else 3
    append_reps = 1 if ws.quick else 3

    legacy_cold_time = None
    if legacy is not None:
        legacy_dir, legacy_label = legacy
        legacy_cold_time = _cold_legacy_format(
            ws,
            result,
            directory=legacy_dir,
            label=legacy_label,
            cold_reps=cold_reps,
            legacy_reps=legacy_reps,
            use_legacy=use_legacy,
        )
    else:
        result.rows.append(
            missing(
                NAME,
                "cold rebuild, pidgin-ai 1.1 experiment",
                "no pidgin-ai experiment",
                target=">= 10x faster",
            )
        )

    ws.log(f"  cold rebuild of our experiment ({origin})")
    cold = interleave(
        ws.rounds,
        [("ours", ws.ours_task("state", "ours_cold", directory=str(ours_dir), reps=cold_reps))],
        ws.log,
    )
    figure = f"cold rebuild, our format ({_shape(ours_dir)}, {origin})"
    ours = cold.measure("ours", "s")
    result.rows.append(
        compare(
            NAME,
            figure,
            ours,
            "json.loads every line",
            cold.measure("json", "s"),
            how="faster",
            threshold=1.0,
            target="faster (> 1x)",
            note=cold.error("ours"),
        )
    )
    if legacy_cold_time is not None:
        result.rows.append(
            compare(
                NAME,
                figure,
                ours,
                "pidgin-ai StateBuilder on its own logs of that content",
                legacy_cold_time,
                how="faster",
            )
        )

    ws.log("  no-change refresh")
    nochange = interleave(
        ws.rounds,
        [("ours", ws.ours_task("state", "ours_no_change", directory=str(hundred), calls=calls))],
        ws.log,
    )
    cold_hundred = interleave(
        1,
        [("ours", ws.ours_task("state", "ours_cold", directory=str(hundred), reps=cold_reps))],
        ws.log,
    )
    extras = nochange.extras.get("ours", {})
    note = nochange.error("ours") or (
        f"{calls} refreshes per run read {extras.get('bytes_read')} bytes and returned "
        + ("the same snapshot object" if extras.get("same") else "a new snapshot")
    )
    result.rows.append(
        absolute(
            NAME,
            f"no-change refresh, our format ({_shape(hundred)})",
            nochange.measure("ours", "s"),
            limit=NO_CHANGE_LIMIT,
            target="< 2 ms",
            baseline="cold rebuild of the same",
            base=cold_hundred.measure("ours", "s"),
            note=note,
        )
    )
    if legacy is not None:
        _refresh_legacy_format(
            ws,
            result,
            directory=legacy[0],
            label=legacy[1],
            scratch=scratch,
            size=small,
            calls=calls,
            reps=append_reps,
            use_legacy=use_legacy,
        )

    ws.log(f"  refresh after {_mb(small)} and {_mb(large)} appended to a running experiment")
    live = interleave(
        ws.rounds,
        [
            (
                "ours",
                ws.ours_task(
                    "state",
                    "ours_live_append",
                    scratch=scratch,
                    sizes=[small, large],
                    reps=append_reps,
                ),
            )
        ],
        ws.log,
    )
    per_size: dict[int, tuple[Measure, float] | None] = {}
    for size in (small, large):
        ours = live.measure(f"ours@{size}", "s")
        written = live.samples.get(f"appended@{size}", [])
        reads = live.samples.get(f"read@{size}", [])
        per_size[size] = (ours, median(written)) if ours and written else None
        exact = bool(reads) and reads == written
        note = live.error("ours") or (
            f"appended {median(written):,.0f} bytes per refresh; bytes read "
            + ("== bytes appended" if exact else f"{reads} vs appended {written}")
        )
        result.rows.append(
            compare(
                NAME,
                f"refresh after {_mb(size)} appended, running experiment of "
                f"{LIVE_CONVERSATIONS} conversations",
                ours,
                "json.loads of the appended lines only",
                live.measure(f"json@{size}", "s"),
                how="faster",
                note=note,
            )
        )
    result.rows.append(_proportional(per_size, small, large, live.measure("fixed", "s")))
    streamed = live.samples.get("streamed", [])
    expected = CHUNK_REFRESHES * len(CHUNK_TEXT)
    result.rows.append(
        compare(
            NAME,
            f"refresh after one MessageChunkEvent appended, running experiment of "
            f"{LIVE_CONVERSATIONS} conversations",
            live.measure("chunk", "s"),
            "no-change refresh of the same",
            live.measure("fixed", "s"),
            how="within",
            note=live.error("ours")
            or (
                f"the reply streaming after {CHUNK_REFRESHES} chunks: "
                f"{median(streamed) if streamed else 0:,.0f} characters in the snapshot "
                f"({expected:,} written)"
            ),
        )
    )
    result.notes.append(
        "Cold rebuild: a new builder in a warm process over files in the page cache. A refresh "
        "keeps one builder: it should read exactly the appended bytes. Appends to the running "
        "experiment are whole turns with messages of about 1 KB, written by EventWriter "
        "(tools/bench/_data.py's append_turns)."
    )
    return result


def _cold_legacy_format(
    ws: Workspace,
    result: SectionResult,
    *,
    directory: Path,
    label: str,
    cold_reps: int,
    legacy_reps: int,
    use_legacy: bool,
) -> Measure | None:
    """Cold rebuild of a pidgin-ai experiment: ours, pidgin-ai's and the baselines."""
    ws.log(f"  cold rebuild of {label} {directory.name}")
    contenders = [
        ("ours", ws.ours_task("state", "ours_cold", directory=str(directory), reps=cold_reps))
    ]
    if use_legacy:
        contenders.append(
            (
                "pidgin-ai",
                ws.legacy_task("state", "legacy_cold", directory=str(directory), reps=legacy_reps),
            )
        )
    cold = interleave(ws.rounds, contenders, ws.log)
    ours = cold.measure("ours", "s")
    figure = f"cold rebuild, {label} ({_shape(directory)})"
    result.rows.append(
        compare(
            NAME,
            figure,
            ours,
            "pidgin-ai StateBuilder",
            cold.measure("legacy", "s"),
            how="faster",
            threshold=10,
            target=">= 10x faster",
            note=cold.error("pidgin-ai", "ours") or ("" if use_legacy else ws.legacy_reason),
        )
    )
    result.rows.append(
        compare(
            NAME,
            figure,
            ours,
            "json.loads every line",
            cold.measure("json", "s"),
            how="faster",
            threshold=1.0,
            target="faster (> 1x)",
        )
    )
    result.rows.append(
        compare(
            NAME,
            figure,
            ours,
            "pidgin_events.read_events, typed",
            cold.measure("typed", "s"),
            how="faster",
        )
    )
    found = cold.extras.get("ours", {}).get("state")
    theirs = cold.extras.get("pidgin-ai", {}).get("state")
    if found:
        text = (
            f"States built from {directory.name}: ours {found['status']}, "
            f"{found['completed']}/{found['conversations']} completed"
        )
        if theirs:
            text += f"; pidgin-ai's {theirs['status']}, {theirs['completed']} completed"
        if found.get("problems"):
            text += f"; ours reports {found['problems']} problems"
        result.notes.append(text + ".")
    return cold.measure("legacy", "s")


def _refresh_legacy_format(
    ws: Workspace,
    result: SectionResult,
    *,
    directory: Path,
    label: str,
    scratch: str,
    size: int,
    calls: int,
    reps: int,
    use_legacy: bool,
) -> None:
    """No-change refresh and refresh after an append, on a pidgin-ai experiment."""
    contenders = [
        ("ours", ws.ours_task("state", "ours_no_change", directory=str(directory), calls=calls))
    ]
    if use_legacy:
        contenders.append(
            (
                "pidgin-ai",
                ws.legacy_task("state", "legacy_no_change", directory=str(directory), calls=calls),
            )
        )
    both = interleave(ws.rounds, contenders, ws.log)
    result.rows.append(
        compare(
            NAME,
            f"no-change refresh, {label} ({_shape(directory)})",
            both.measure("ours", "s"),
            "pidgin-ai StateBuilder (cached on manifest.json mtime)",
            both.measure("legacy", "s"),
            how="faster",
            note=both.error("pidgin-ai", "ours")
            or (
                "pidgin-ai only stats manifest.json and hands back its cached state: cheap, "
                "but blind to whatever the events say and the manifest does not (a crashed "
                "run stays 'running'); ours looks at every log for appended bytes"
                if use_legacy
                else ""
            ),
        )
    )
    ws.log(f"  refresh after {_mb(size)} appended to the {label}")
    contenders = [
        (
            "ours",
            ws.ours_task(
                "state",
                "ours_append_legacy",
                source=str(directory),
                scratch=scratch,
                size=size,
                reps=reps,
            ),
        ),
    ]
    if use_legacy:
        contenders.append(
            (
                "pidgin-ai",
                ws.legacy_task(
                    "state",
                    "legacy_append",
                    source=str(directory),
                    scratch=scratch,
                    size=size,
                    reps=reps,
                ),
            )
        )
    appended = interleave(ws.rounds, contenders, ws.log)
    figure = f"refresh after {_mb(size)} appended, {label}"
    ours = appended.measure("ours", "s")
    result.rows.append(
        compare(
            NAME,
            figure,
            ours,
            "pidgin-ai StateBuilder (rebuilds)",
            appended.measure("legacy", "s"),
            how="faster",
            note=appended.error("pidgin-ai", "ours"),
        )
    )
    result.rows.append(
        compare(
            NAME,
            figure,
            ours,
            "json.loads of the appended lines only",
            appended.measure("json", "s"),
            how="faster",
        )
    )


def _proportional(
    per_size: dict[int, tuple[Measure, float] | None], small: int, large: int, fixed: Measure | None
) -> Row:
    """Refresh time per MB appended (the no-change time taken off) at large against small."""
    figure = f"refresh time per MB appended: {_mb(large)} against {_mb(small)}"
    target = "0.5x-2x (proportional)"
    a, b = per_size.get(small), per_size.get(large)
    if a is None or b is None:
        return missing(NAME, figure, "a refresh measurement failed", target=target)
    base = fixed.value if fixed else 0.0
    how = "(median refresh - median no-change refresh) / median MB appended"
    per_small = Measure.from_medians(max(a[0].value - base, 1e-9) / (a[1] / MB), "s", how, a[0])
    per_large = Measure.from_medians(max(b[0].value - base, 1e-9) / (b[1] / MB), "s", how, b[0])
    row = compare(
        NAME, figure, per_large, f"per MB at {_mb(small)}", per_small, how="growth", target=target
    )
    if row.ratio is not None:
        row.met = 0.5 <= row.ratio <= 2.0
    row.note = (
        f"1x is exactly proportional; the no-change refresh ({fixed.text() if fixed else 'n/a'}) "
        f"is taken off as the fixed part. Unadjusted: {_mb(large)} took "
        f"{b[0].value / a[0].value:.0f}x as long as {_mb(small)} for "
        f"{b[1] / a[1]:.0f}x the bytes."
    )
    return row


def _shape(directory: Path) -> str:
    logs = _logs(directory)
    size = sum(p.stat().st_size for p in logs)
    return f"{len(logs)} conversations, {size / MB:.1f} MB"
