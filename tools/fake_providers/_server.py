"""A small asyncio HTTP/1.1 server on 127.0.0.1 that plays model providers for tests and benchmarks.

Standard library only. Keep-alive connections, ``Content-Length`` request bodies, JSON
responses with ``Content-Length`` and streamed responses with chunked transfer encoding
(so that a stream cut short is visible to the client as an incomplete body, as a real
dropped connection is). What each API says lives in ``_wires.py``; this module knows
HTTP, scripting of faults and the request log.

Scripting: ``server.script(model, fault, ...)`` queues faults for the next requests of
``model`` (any API): an HTTP error with the API's own error body and an optional
``Retry-After``, a stall longer than the client's timeout, or a stream that drops after a
few chunks. Without a fault, a request is answered after ``latency`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeServer", "Fault", "Request"]


@dataclass(frozen=True)
class Fault:
    """What to do instead of answering: ``kind`` is ``error``, ``stall`` or ``drop``."""

    kind: str
    status: int = 500
    error: str = "server"
    """For ``error``: rate_limit, overloaded, server, unavailable, auth, model, context."""
    retry_after: float | None = None
    seconds: float = 0.0
    """For ``stall``: how long to stay silent before answering normally."""
    after_chunks: int = 2
    """For ``drop``: how many text chunks are sent before the connection is cut."""


@dataclass
class Request:
    """One request as the server received it (the test reads these)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    api: str = ""
    model: str = ""
    facts: Any = None
    """For a generation: what the reply said and reported (``_wires._Turn``)."""


@dataclass
class Behaviour:
    """What the server does; tests change it between runs."""

    latency: float = 0.0
    keys: set[str] = field(default_factory=set)
    """Accepted API keys; empty: any key."""
    models: set[str] | None = None
    """Known models; None: any model."""
    context_windows: dict[str, int] = field(default_factory=dict)
    words: int = 12
    """Words per reply beyond the fixed opening."""
    chunk_words: int = 3
    cache_read: int = 0
    """Input tokens reported as read from the cache, per request."""
    chunk_delay: float = 0.0
    """Seconds between the pieces of a streamed reply (a model's generation speed)."""


Reply = tuple[int, dict[str, str], bytes | None, Any]
"""``(status, headers, body, stream)``: ``stream`` is an async iterator of byte blocks."""


class FakeServer:
    """The server, running its own event loop in a daemon thread; ``url`` once started."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.requests: list[Request] = []
        self.record_requests = True
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.handled = 0
        self.connections = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        """The most requests answered at once since ``reset`` (a pacer's limit shows here)."""
        """TCP connections accepted: a client that reuses its connections opens few."""

    # --- control (any thread) --------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, model: str, *faults: Fault | dict[str, Any]) -> None:
        """Queue faults for ``model``'s next requests (``Fault`` or its fields as a dict)."""
        made = [fault if isinstance(fault, Fault) else Fault(**fault) for fault in faults]
        with self._guard:
            self._faults[model].extend(made)

    def reset(self) -> None:
        with self._guard:
            self._faults.clear()
            self.requests.clear()
        self.peak_in_flight = self.in_flight
        self.behaviour = Behaviour()

    def take_fault(self, model: str) -> Fault | None:
        with self._guard:
            queue = self._faults.get(model)
            return queue.popleft() if queue else None

    def start(self) -> FakeServer:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-providers", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def serve_forever(self, port: int = 0) -> None:
        """Run in this thread (a separate process for benchmarks); prints the URL first."""

        async def main() -> None:
            server = await asyncio.start_server(self._connection, "127.0.0.1", port, backlog=4096)
            self.port = server.sockets[0].getsockname()[1]
            print(self.url, flush=True)
            async with server:
                await server.serve_forever()

        asyncio.run(main())

    def stop(self) -> None:
        """Close the listener and every open connection, then end the loop and its thread."""
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            current = asyncio.current_task()
            tasks = [task for task in asyncio.all_tasks() if task is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = None

    # --- HTTP ------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from . import _wires

        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                raw = await reader.readexactly(length) if length else b""
                body = json.loads(raw) if raw else None
                request = Request(method, target, headers, body)
                self.handled += 1
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    # Recorded on arrival: a stalled answer that outlives its test must not
                    # land in the next test's requests (``facts`` is filled in by respond).
                    if self.record_requests:
                        with self._guard:
                            self.requests.append(request)
                    status, reply_headers, payload, stream = await _wires.respond(self, request)
                    if stream is None:
                        data = payload or b""
                        length_header = {"content-length": str(len(data))}
                        writer.write(_head(status, {**reply_headers, **length_header}))
                        writer.write(data)
                        await writer.drain()
                        continue
                    writer.write(_head(status, {**reply_headers, "transfer-encoding": "chunked"}))
                    delay = self.behaviour.chunk_delay
                    async for block in stream:
                        if block is None:  # cut the connection mid-body
                            writer.transport.abort()
                            return
                        writer.write(b"%x\r\n%s\r\n" % (len(block), block))
                        await writer.drain()
                        if delay:
                            await asyncio.sleep(delay)
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                finally:
                    self.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # the server is stopping
            writer.transport.abort()
            return
        finally:
            writer.close()


_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    408: "Request Timeout", 413: "Payload Too Large", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    529: "Overloaded",
}  # fmt: skip


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


Respond = Callable[[FakeServer, Request], Any]
