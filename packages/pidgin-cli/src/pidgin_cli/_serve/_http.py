"""The HTTP server: routes, the token check, security headers, the event stream.

The standard library's threading HTTP server is enough for one researcher's browser and
a few scripts, and adds no dependency; each request (and each open event stream) has its
own thread. Request paths are split into segments and matched against fixed routes: a
segment is only ever a key into the catalog (a run id, a conversation id) or into the
table of packaged static files, so no part of a request reaches the filesystem.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from . import _history, _pages
from ._api import execute
from ._types import sanitized_message

if TYPE_CHECKING:
    from ._catalog import Catalog

__all__ = ["CONTENT_SECURITY_POLICY", "PidginServer", "is_loopback", "make_server"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
TOKEN_COOKIE = "pidgin_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_BODY = 1 << 20
MAX_STREAMS = 64
STREAM_POLL = 0.25
"""Seconds between two looks at a streamed conversation's log (the 2 s promise has room)."""
STREAM_HEARTBEAT = 15.0


def _static_files() -> dict[str, bytes]:
    """The packaged assets, read once: the only files the server sends besides pages."""
    folder = files("pidgin_cli._serve") / "static"
    return {name: (folder / name).read_bytes() for name in STATIC_TYPES}


class PidginServer(ThreadingHTTPServer):
    """Serves one output root; ``token`` None means no token is asked (loopback only)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        catalog: Catalog,
        *,
        token: str | None,
        loopback: bool,
        quiet: bool = True,
    ) -> None:
        if token is None and not loopback:
            raise ValueError("serving beyond loopback requires a token")
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.catalog = catalog
        self.token = token
        self.loopback = loopback
        self.quiet = quiet
        self.static = _static_files()
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self.stopping = threading.Event()

    def shutdown(self) -> None:
        self.stopping.set()
        super().shutdown()


def make_server(
    catalog: Catalog, host: str, port: int, *, token: str | None, quiet: bool = True
) -> PidginServer:
    """A server bound to ``host:port`` (port 0 picks a free one), not yet serving."""
    return PidginServer((host, port), catalog, token=token, loopback=is_loopback(host), quiet=quiet)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server to this machine."""
    return host in LOOPBACK_NAMES or host.startswith("127.")


class Handler(BaseHTTPRequestHandler):
    server: PidginServer
    server_version = "pidgin-serve"
    sys_version = ""

    # --- plumbing ------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _html(self, status: int, page: str) -> None:
        self._send(status, page.encode(), "text/html; charset=utf-8")

    def _json(self, status: int, document: object) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _plain(self, status: int, message: str) -> None:
        self._send(status, message.encode() + b"\n", "text/plain; charset=utf-8")

    # --- checks every request passes -----------------------------------------------------

    def _host_allowed(self) -> bool:
        """Loopback without a token: only loopback Host names (no DNS rebinding)."""
        if self.server.token is not None:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]") in LOOPBACK_NAMES

    def _token_given(self, query: dict[str, list[str]]) -> tuple[str | None, bool]:
        """The token this request carries, and whether it came in the URL."""
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            return auth[7:].strip(), False
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie") or "")
        except CookieError:  # a malformed cookie header is no token
            cookie = SimpleCookie()
        if TOKEN_COOKIE in cookie:
            return cookie[TOKEN_COOKIE].value, False
        given = query.get("token")
        return (given[0], True) if given else (None, False)

    def _authorized(self, path: str, query: dict[str, list[str]]) -> bool:
        """Whether to go on; answers the request itself when not (or when redirecting)."""
        if not self._host_allowed():
            self._plain(HTTPStatus.FORBIDDEN, "unexpected Host header")
            return False
        expected = self.server.token
        if expected is None:
            return True
        given, from_url = self._token_given(query)
        if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            self._plain(HTTPStatus.UNAUTHORIZED, "a valid token is required (see pidgin serve)")
            return False
        if from_url and self.command == "GET":
            # Trade the token in the URL for a cookie, so it leaves the address bar.
            rest = {k: v for k, v in query.items() if k != "token"}
            target = path + (f"?{urlencode(rest, doseq=True)}" if rest else "")
            cookie = f"{TOKEN_COOKIE}={expected}; Path=/; HttpOnly; SameSite=Strict"
            self._send(
                HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": target, "Set-Cookie": cookie}
            )
            return False
        return True

    # --- methods -------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            if not self._authorized(url.path, query):
                return
            self._route([unquote(s) for s in url.path.split("/") if s], query)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # never a traceback to the client
            sys.stderr.write(f"pidgin serve: {self.command} {url.path}: {exc!r}\n")
            with contextlib.suppress(OSError):
                self._plain(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see server log)")

    def _route(self, parts: list[str], query: dict[str, list[str]]) -> None:
        method = self.command
        if parts == ["graphql"]:
            return self._graphql(query)
        if method == "POST":
            return self._plain(HTTPStatus.METHOD_NOT_ALLOWED, "only /graphql takes POST")
        catalog = self.server.catalog
        match parts:
            case []:
                page = max(1, _int(query.get("page"), 1))
                runs = catalog.runs()
                start = (page - 1) * _pages.PAGE_SIZE
                shown = runs[start : start + _pages.PAGE_SIZE]
                return self._html(200, _pages.experiments_page(shown, page=page, total=len(runs)))
            case ["experiments", run_id]:
                state = catalog.experiment(run_id)
                if state is None:
                    return self._html(404, _pages.not_found_page(f"no run {run_id}"))
                return self._html(200, _pages.experiment_page(state))
            case ["experiments", run_id, "conversations", conversation_id]:
                found = catalog.conversation(run_id, conversation_id)
                if found is None:
                    return self._html(
                        404, _pages.not_found_page(f"no conversation {conversation_id}")
                    )
                state, conversation, transcript = found
                reader = catalog.reader(conversation)
                with reader.lock:
                    html = _pages.conversation_page(state, conversation, transcript)
                return self._html(200, html)
            case ["experiments", run_id, "conversations", conversation_id, "events"]:
                return self._stream(run_id, conversation_id, query)
            case ["history"]:
                return self._history(max(1, _int(query.get("page"), 1)))
            case ["search"]:
                words = (query.get("q") or [""])[0]
                run = (query.get("experiment") or [""])[0] or None
                limit = 100
                hits = catalog.search(words, run_id=run, first=limit) if words.strip() else []
                return self._html(200, _pages.search_page(words, run, hits, limit))
            case ["static", name] if name in self.server.static:
                return self._send(
                    200,
                    self.server.static[name],
                    STATIC_TYPES[name],
                    {"Cache-Control": "no-cache"},
                )
            case ["favicon.ico"]:
                return self._send(204, b"", "image/x-icon")
        return self._html(404, _pages.not_found_page("no such page"))

    def _history(self, page: int) -> None:
        """Loaded runs; a database or lake that cannot be read now is a 503 that says why."""
        from pidgin_load import experiments_db, target_label

        catalog = self.server.catalog
        local = experiments_db(catalog.root)
        source = catalog.history or local
        label = local.name if catalog.history is None else target_label(catalog.history)
        size = _pages.PAGE_SIZE
        try:
            rows = _history.history(source, first=size + 1, offset=(page - 1) * size)
        except _history.DatabaseUnavailableError as exc:
            html = _pages.history_page(
                [], source=label, known=(), page=page, more=False, error=str(exc)
            )
            return self._html(HTTPStatus.SERVICE_UNAVAILABLE, html)
        known = {state.id for state in catalog.runs()}
        html = _pages.history_page(
            rows[:size], source=label, known=known, page=page, more=len(rows) > size
        )
        return self._html(200, html)

    # --- GraphQL -------------------------------------------------------------------------

    def _graphql(self, query: dict[str, list[str]]) -> None:
        if self.command == "POST":
            kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if kind != "application/json":
                # A form cannot post JSON across sites without a preflight we never allow.
                return self._json(415, _errors("POST a JSON body (Content-Type: application/json)"))
            length = _int([self.headers.get("Content-Length") or "0"], 0)
            if length > MAX_BODY:
                return self._json(413, _errors(f"request body over {MAX_BODY} bytes"))
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
            except ValueError as exc:
                return self._json(400, _errors(f"the body is not JSON: {exc}"))
        else:
            request = {
                k: v[0] for k, v in query.items() if k in ("query", "variables", "operationName")
            }
            if isinstance(request.get("variables"), str):
                try:
                    request["variables"] = json.loads(request["variables"])
                except ValueError as exc:
                    return self._json(400, _errors(f"variables are not JSON: {exc}"))
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            return self._json(400, _errors('expected {"query": "...", "variables": {...}}'))
        variables = request.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return self._json(400, _errors("variables must be an object"))
        operation = request.get("operationName")
        status, document = execute(
            self.server.catalog,
            request["query"],
            variables,
            operation if isinstance(operation, str) else None,
        )
        self._json(status, document)

    # --- the event stream ----------------------------------------------------------------

    def _stream(self, run_id: str, conversation_id: str, query: dict[str, list[str]]) -> None:
        """Server-sent events: a conversation's new messages, turns and status, live."""
        catalog = self.server.catalog
        found = catalog.conversation(run_id, conversation_id)
        if found is None:
            return self._plain(404, f"no conversation {conversation_id}")
        if not self.server.streams.acquire(blocking=False):
            return self._plain(503, "too many open event streams")
        try:
            resume = self.headers.get("Last-Event-ID")
            after = _int([resume] if resume else query.get("after"), 0)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self._pump(run_id, conversation_id, after)
        finally:
            self.server.streams.release()

    def _pump(self, run_id: str, conversation_id: str, after: int) -> None:
        catalog = self.server.catalog
        sent_turns: dict[int, tuple[bool, float | None]] = {}
        sent_status: tuple[str, int] | None = None
        version = -1
        last_write = time.monotonic()
        while not self.server.stopping.is_set():
            found = catalog.conversation(run_id, conversation_id)
            if found is None:
                return
            _, conversation, transcript = found
            reader = catalog.reader(conversation)
            chunks: list[str] = []
            with reader.lock:
                if transcript.version != version:
                    version = transcript.version
                    for message in transcript.messages[after:]:
                        if message.discarded:  # a half-done turn that a resume runs again
                            continue
                        chunks.append(
                            _event("message", _message_json(message, transcript), message.index + 1)
                        )
                    after = max(after, len(transcript.messages))
                    for number, info in sorted(transcript.turns.items()):
                        now = (info.completed, info.convergence)
                        if number > 0 and sent_turns.get(number) != now:
                            sent_turns[number] = now
                            turn = {
                                "turn": number,
                                "completed": info.completed,
                                "convergence": info.convergence,
                            }
                            chunks.append(_event("turn", turn))
                ended = transcript.ended
            status = (conversation.status, conversation.turns_completed)
            if status != sent_status:
                sent_status = status
                chunks.append(_event("status", {"status": status[0], "turns_completed": status[1]}))
            finished = ended or conversation.status not in ("running", "unknown")
            if finished:
                chunks.append(_event("end", {"status": conversation.status}))
            if not chunks and time.monotonic() - last_write > STREAM_HEARTBEAT:
                chunks.append(": keep-alive\n\n")
            if chunks:
                self.wfile.write("".join(chunks).encode())
                self.wfile.flush()
                last_write = time.monotonic()
            if finished:
                return
            self.server.stopping.wait(STREAM_POLL)


def _message_json(message: Any, transcript: Any) -> dict[str, Any]:
    """A message for the page's script: text already made safe to show (it uses textContent)."""
    return {
        "index": message.index,
        "turn": message.turn,
        "agent_id": message.agent_id,
        "name": sanitized_message(transcript.name_of(message.agent_id)),
        "content": sanitized_message(message.content),
        "thinking": sanitized_message(message.thinking) if message.thinking else None,
        "thinking_tokens": message.thinking_tokens,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
    }


def _event(name: str, data: object, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data)}\n\n"


def _errors(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message}]}


def _int(values: list[str] | None, default: int) -> int:
    try:
        return max(0, int(values[0])) if values else default
    except (TypeError, ValueError):
        return default
