"""Writer: events per second for 1 KB and 20 KB ``MessageCompleteEvent`` lines.

Against the raw limit (orjson-encode a prepared dict of the same line and ``os.write`` it
to an ``O_APPEND`` descriptor: what any writer that writes whole lines must at least pay)
and against pidgin-ai 1.1's ``EventBus.emit`` writing the same events. The target:
``EventWriter.emit`` reaches at least 60% of the raw limit.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._harness import SectionResult, compare, interleave

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "writer"
SIZES = (1000, 20_000)


_PHRASE = "the points you have raised connect to broader themes in our discussion"


def _content(size: int) -> str:
    words = _PHRASE.split()
    text = " ".join(words[i % len(words)] for i in range(size // 4 + 8))
    return text[:size]


def ours_writer(directory: str, size: int, count: int, reps: int) -> dict[str, Any]:
    """Child: raw limit, ``emit`` of a prebuilt event, construct + ``emit``; interleaved."""
    import orjson

    import pidgin_events as pe

    content = _content(size)
    message = pe.Message(role="assistant", content=content, agent_id="agent_a")
    event = pe.MessageCompleteEvent(
        conversation_id="conv_bench",
        agent_id="agent_a",
        message=message,
        prompt_tokens=812,
        completion_tokens=230,
        total_tokens=1042,
        duration_ms=1234,
        turn_number=3,
    )
    line = pe.encode_event(event, seq=1, event_id="0123456789ab-1", experiment_id="exp_bench")
    prepared = orjson.loads(line)
    out: dict[str, Any] = {"raw": [], "emit": [], "construct": [], "line_bytes": len(line)}
    path = Path(directory) / f"ours-{os.getpid()}.jsonl"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    for _ in range(reps):
        fd = os.open(path, flags, 0o600)
        dumps, write, option = orjson.dumps, os.write, orjson.OPT_APPEND_NEWLINE
        start = time.perf_counter()
        for _ in range(count):
            write(fd, dumps(prepared, option=option))
        out["raw"].append(count / (time.perf_counter() - start))
        os.close(fd)
        path.unlink()

        writer = pe.EventWriter(path, experiment_id="exp_bench")
        emit = writer.emit
        start = time.perf_counter()
        for _ in range(count):
            emit(event)
        out["emit"].append(count / (time.perf_counter() - start))
        writer.close()
        path.unlink()

        writer = pe.EventWriter(path, experiment_id="exp_bench")
        emit = writer.emit
        Event, Msg = pe.MessageCompleteEvent, pe.Message
        start = time.perf_counter()
        for _ in range(count):
            emit(
                Event(
                    conversation_id="conv_bench",
                    agent_id="agent_a",
                    message=Msg(role="assistant", content=content, agent_id="agent_a"),
                    prompt_tokens=812,
                    completion_tokens=230,
                    total_tokens=1042,
                    duration_ms=1234,
                    turn_number=3,
                )
            )
        out["construct"].append(count / (time.perf_counter() - start))
        writer.close()
        path.unlink()
    return out


def legacy_writer(directory: str, size: int, count: int, reps: int) -> dict[str, Any]:
    """Child in pidgin-ai's venv: ``EventBus.emit`` of the same events, prebuilt and built."""
    import asyncio
    import importlib
    import shutil

    bus_module = importlib.import_module("pidgin.core.event_bus")
    events = importlib.import_module("pidgin.core.events")
    types = importlib.import_module("pidgin.core.types")
    content = _content(size)

    def build() -> Any:
        return events.MessageCompleteEvent(
            conversation_id="conv_bench",
            agent_id="agent_a",
            message=types.Message(role="assistant", content=content, agent_id="agent_a"),
            prompt_tokens=812,
            completion_tokens=230,
            total_tokens=1042,
            duration_ms=1234,
        )

    async def run(prebuilt: bool) -> float:
        log_dir = Path(directory) / f"legacy-{os.getpid()}"
        bus = bus_module.EventBus(event_log_dir=str(log_dir))
        await bus.start()
        event = build()
        await bus.emit(event)  # opens the file: not part of the per-event cost
        start = time.perf_counter()
        if prebuilt:
            for _ in range(count):
                await bus.emit(event)
        else:
            for _ in range(count):
                await bus.emit(build())
        rate = count / (time.perf_counter() - start)
        await bus.stop()
        for handle in bus._jsonl_files.values():
            handle.close()
        shutil.rmtree(log_dir)
        return rate

    out: dict[str, Any] = {"legacy_emit": [], "legacy_construct": []}
    for _ in range(reps):
        out["legacy_emit"].append(asyncio.run(run(True)))
        out["legacy_construct"].append(asyncio.run(run(False)))
    return out


def run(ws: Workspace) -> SectionResult:
    result = SectionResult()
    directory = ws.scratch("writer")
    legacy = ws.legacy_python() is not None
    if not legacy:
        result.notes.append(f"pidgin-ai EventBus not measured: {ws.legacy_reason}")
    for size in SIZES:
        count = (
            (2000 if size < 10_000 else 300) if ws.quick else (20_000 if size < 10_000 else 4000)
        )
        label = f"{size // 1000} KB"
        ws.log(f"  {label} messages, {count} events per run")
        args: dict[str, Any] = {"directory": str(directory), "size": size, "count": count}
        args["reps"] = ws.reps
        contenders = [("ours", ws.ours_task("writer", "ours_writer", **args))]
        if legacy:
            contenders.append(("pidgin-ai", ws.legacy_task("writer", "legacy_writer", **args)))
        # More rounds than elsewhere: single-process throughput swings with the neighbours.
        rounds = interleave(1 if ws.quick else 5, contenders, ws.log)
        emit = rounds.measure("emit", "ev/s")
        construct = rounds.measure("construct", "ev/s")
        raw = rounds.measure("raw", "ev/s")
        line_bytes = rounds.extras.get("ours", {}).get("line_bytes")
        what = f"MessageCompleteEvent, {label} message" + (
            f" ({line_bytes:,} B line)" if line_bytes else ""
        )
        error = rounds.error("ours")
        result.rows.append(
            compare(
                NAME,
                f"EventWriter.emit, {what}",
                emit,
                "raw limit: orjson.dumps + os.write",
                raw,
                how="share",
                threshold=0.6,
                target=">= 60% of raw",
                note=error,
            )
        )
        result.rows.append(
            compare(
                NAME,
                f"construct event + emit, {what}",
                construct,
                "raw limit: orjson.dumps + os.write",
                raw,
                how="share",
                note=error,
            )
        )
        if legacy:
            legacy_error = rounds.error("pidgin-ai")
            result.rows.append(
                compare(
                    NAME,
                    f"EventWriter.emit, {what}",
                    emit,
                    "pidgin-ai EventBus.emit",
                    rounds.measure("legacy_emit", "ev/s"),
                    how="higher",
                    note=legacy_error,
                )
            )
            result.rows.append(
                compare(
                    NAME,
                    f"construct event + emit, {what}",
                    construct,
                    "pidgin-ai construct + EventBus.emit",
                    rounds.measure("legacy_construct", "ev/s"),
                    how="higher",
                    note=legacy_error,
                )
            )
    result.notes.append(
        "Events per second in one process writing one file in the work directory, page cache "
        "only (no fsync per event: ours syncs at close by default, pidgin-ai flushes to the OS)."
    )
    return result
