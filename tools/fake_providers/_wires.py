"""What Anthropic, OpenAI and Google answer: bodies, SSE streams and error bodies.

Shapes follow the vendors' API references (Anthropic Messages and its streaming events,
OpenAI Chat Completions chunks with ``stream_options.include_usage``, Gemini
``streamGenerateContent?alt=sse``) and what the official SDKs parse. Authentication is
checked the way each API takes its key (``x-api-key``, ``Authorization: Bearer``,
``x-goog-api-key``), and each API's own status and words are used for errors: a bad
Gemini key is a 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``, as it is there.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._server import FakeServer, Reply, Request

_WORD = re.compile(r"[A-Za-z']+")
_VOCABULARY = [
    "pattern",
    "signal",
    "echo",
    "river",
    "lantern",
    "meaning",
    "drift",
    "shared",
    "language",
    "quiet",
    "horizon",
    "bridge",
    "rhythm",
    "symbol",
    "thread",
    "current",
    "memory",
]


def tokens(text: str) -> int:
    return (len(text) + 3) // 4


def _reply_text(model: str, last: str, count: int, words: int) -> str:
    heard = _WORD.findall(last)[-4:] or ["silence"]
    pool = heard + _VOCABULARY
    start = (len(last) + count) % len(_VOCABULARY)
    body = " ".join(pool[(start + index) % len(pool)] for index in range(words))
    return f"{model} says ({count}): {body}."


def _pieces(text: str, words_per_piece: int) -> list[str]:
    words = text.split(" ")
    pieces = []
    for index in range(0, len(words), words_per_piece):
        piece = " ".join(words[index : index + words_per_piece])
        pieces.append(piece if index == 0 else " " + piece)
    return pieces


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> Reply:
    return (
        status,
        {"content-type": "application/json", **(headers or {})},
        json.dumps(document).encode(),
        None,
    )


def _sse_headers(extra: dict[str, str]) -> dict[str, str]:
    return {"content-type": "text/event-stream", "cache-control": "no-cache", **extra}


# --- the conversation facts every API reports ---------------------------------------------


class _Turn:
    """What one generation request asks, measured the same way for every API."""

    def __init__(self, server: FakeServer, model: str, texts: list[str], last: str) -> None:
        behaviour = server.behaviour
        self.model = model
        self.prompt_tokens = sum(tokens(text) + 4 for text in texts)
        self.count = server.handled
        self.text = _reply_text(model, last, self.count, behaviour.words)
        self.pieces = _pieces(self.text, behaviour.chunk_words)
        self.completion_tokens = tokens(self.text)
        self.cache_read = min(behaviour.cache_read, self.prompt_tokens)
        self.window = behaviour.context_windows.get(model)
        self.id = uuid.uuid4().hex[:24]
        self.request_id = f"req_{self.id}"
        self.version = model
        self.thinking: str | None = None
        """The reasoning trace, when the request asked for thinking."""

    def think(self, words: int) -> str:
        """A deterministic trace, counted in the reply's output tokens as the APIs count it."""
        heard = _WORD.findall(self.text)[-3:]
        self.thinking = f"{self.model} weighs ({self.count}): {' '.join(heard)} " + " ".join(
            _VOCABULARY[(self.count + index) % len(_VOCABULARY)] for index in range(words)
        )
        self.completion_tokens += tokens(self.thinking)
        return self.thinking


# --- dispatch ---------------------------------------------------------------------------


async def respond(server: FakeServer, request: Request) -> Reply:
    path, _, query = request.path.partition("?")
    if request.method == "POST" and path == "/v1/messages":
        request.api = "anthropic"
        return await _anthropic(server, request)
    if request.method == "POST" and path == "/v1/chat/completions":
        request.api = "openai"
        return await _openai(server, request)
    # Gemini: the SDK speaks v1 by default, v1beta when asked (GOOGLE_GENAI_API_VERSION).
    match = re.fullmatch(
        r"/v1(?:beta)?/models/([^/:]+):(streamGenerateContent|generateContent)", path
    )
    if request.method == "POST" and match:
        request.api = "google"
        return await _google(server, request, match.group(1), match.group(2), query)
    match = re.fullmatch(r"/v1(?:beta)?/models/([^/:]+)", path)
    if request.method == "GET" and match and "x-goog-api-key" in request.headers:
        request.api = "google"
        return _google_model(server, request, match.group(1))
    match = re.fullmatch(r"/v1/models(?:/(.+))?", path)
    if request.method == "GET" and match:
        anthropic = "anthropic-version" in request.headers
        request.api = "anthropic" if anthropic else "openai"
        return _model_lookup(server, request, match.group(1), anthropic)
    return _json(404, {"error": {"message": f"no route {request.method} {path}"}})


def _anthropic_key(request: Request) -> str | None:
    """Anthropic takes ``x-api-key``; its SDK 2.x sends ``Authorization: Bearer``."""
    key = request.headers.get("x-api-key")
    if key is None and request.headers.get("authorization", "").startswith("Bearer "):
        key = request.headers["authorization"].removeprefix("Bearer ")
    return key


def _key_ok(server: FakeServer, key: str | None) -> bool:
    return not server.behaviour.keys or key in server.behaviour.keys


def _model_ok(server: FakeServer, model: str) -> bool:
    return server.behaviour.models is None or model in server.behaviour.models


def _model_lookup(
    server: FakeServer, request: Request, model: str | None, anthropic: bool
) -> Reply:
    if anthropic:
        if not _key_ok(server, _anthropic_key(request)):
            return _anthropic_error(401, "authentication_error", "invalid x-api-key")
        if model is None:
            names = sorted(server.behaviour.models or ())
            return _json(
                200, {"data": [{"id": n, "type": "model"} for n in names], "has_more": False}
            )
        if not _model_ok(server, model):
            return _anthropic_error(404, "not_found_error", f"model: {model}")
        return _json(
            200,
            {
                "id": model,
                "type": "model",
                "display_name": model,
                "created_at": "2026-01-01T00:00:00Z",
            },
        )
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    if not _key_ok(server, key):
        return _openai_auth_error(key)
    if model is None:
        names = sorted(server.behaviour.models or ())
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in names]
        return _json(200, {"object": "list", "data": data})
    if not _model_ok(server, model):
        return _openai_model_error(model)
    return _json(200, {"id": model, "object": "model", "created": 0, "owned_by": "fake"})


async def _before(server: FakeServer, model: str) -> Any:
    """Apply latency and the model's next fault; returns the fault still to apply, if any."""
    fault = server.take_fault(model)
    if fault is not None and fault.kind == "stall":
        await asyncio.sleep(fault.seconds)
        fault = None
    if server.behaviour.latency:
        await asyncio.sleep(server.behaviour.latency)
    return fault


def _retry_headers(fault: Any) -> dict[str, str]:
    if fault.retry_after is None:
        return {}
    return {"retry-after": f"{fault.retry_after:g}"}


# --- Anthropic ----------------------------------------------------------------------------

_SIGNING_KEY = b"fake-anthropic-thinking"
MIN_THINKING_BUDGET = 1024


def thinking_signature(thinking: str) -> str:
    """The seal the fake puts on a trace; a trace sent back must carry its own."""
    digest = hashlib.sha256(_SIGNING_KEY + thinking.encode()).digest()
    return base64.b64encode(digest).decode()


def _anthropic_text(content: Any) -> str:
    """A message's text: its content string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(block.get("text", "")) for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )  # fmt: skip
    return str(content)


def _anthropic_thinking_problem(body: dict[str, Any]) -> str | None:
    """What the Messages API would refuse about the thinking in a request, else None."""
    thinking = body.get("thinking")
    if thinking is not None:
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
        if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
            return "thinking: type must be 'enabled' or 'disabled'"
        if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
            return f"thinking.enabled.budget_tokens: Input should be >= {MIN_THINKING_BUDGET}"
        if budget >= body["max_tokens"]:
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
        if body.get("temperature") not in (None, 1):
            return "`temperature` may only be set to 1 when thinking is enabled"
    for number, message in enumerate(body.get("messages", [])):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for index, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") != "thinking":
                continue
            where = f"messages.{number}.content.{index}"
            if message.get("role") != "assistant":
                return f"{where}: thinking blocks may only appear in assistant messages"
            if block.get("signature") != thinking_signature(str(block.get("thinking", ""))):
                return f"{where}: Invalid `signature` in `thinking` block"
    return None


_ANTHROPIC_ERRORS = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
    ),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server": (500, "api_error", "Internal server error"),
    "unavailable": (503, "api_error", "Service unavailable"),
    "refused": (400, "invalid_request_error", "Output blocked by content filtering policy"),
}


def _anthropic_error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> Reply:
    request_id = f"req_{uuid.uuid4().hex[:24]}"
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    return _json(status, body, {"request-id": request_id, **(headers or {})})


async def _anthropic(server: FakeServer, request: Request) -> Reply:
    body = request.body or {}
    model = str(body.get("model", ""))
    request.model = model
    if not _key_ok(server, _anthropic_key(request)):
        return _anthropic_error(401, "authentication_error", "invalid x-api-key")
    if "anthropic-version" not in request.headers:
        return _anthropic_error(
            400, "invalid_request_error", "anthropic-version header is required"
        )
    if not isinstance(body.get("max_tokens"), int):
        return _anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
    if not _model_ok(server, model):
        return _anthropic_error(404, "not_found_error", f"model: {model}")
    problem = _anthropic_thinking_problem(body)
    if problem is not None:
        return _anthropic_error(400, "invalid_request_error", problem)
    messages = body.get("messages", [])
    texts = [_anthropic_text(m.get("content")) for m in messages]
    last = texts[-1] if texts else ""
    system = body.get("system")
    if system:
        texts.append(str(system))
    turn = request.facts = _Turn(server, model, texts, last)
    thinking = turn.think(server.behaviour.words) if body.get("thinking") else None
    thinking_blocks = (
        []
        if thinking is None
        else [{"type": "thinking", "thinking": thinking, "signature": thinking_signature(thinking)}]
    )
    if turn.window is not None and turn.prompt_tokens > turn.window:
        return _anthropic_error(
            400,
            "invalid_request_error",
            f"prompt is too long: {turn.prompt_tokens} tokens > {turn.window} maximum",
        )
    fault = await _before(server, model)
    if fault is not None and fault.kind == "error":
        status, kind, message = _ANTHROPIC_ERRORS[fault.error]
        return _anthropic_error(status, kind, message, _retry_headers(fault))
    request_id = turn.request_id
    version = turn.version = model if re.search(r"\d{8}$", model) else f"{model}-20260615"
    usage_start = {
        "input_tokens": turn.prompt_tokens - turn.cache_read,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": turn.cache_read,
        "output_tokens": 1,
    }
    if not body.get("stream"):
        return _json(
            200,
            {
                "id": f"msg_{turn.id}",
                "type": "message",
                "role": "assistant",
                "model": version,
                "content": [*thinking_blocks, {"type": "text", "text": turn.text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {**usage_start, "output_tokens": turn.completion_tokens},
            },
            {"request-id": request_id},
        )

    async def events() -> AsyncIterator[bytes | None]:
        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        message: dict[str, Any] = {
            "id": f"msg_{turn.id}",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": version,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_start,
        }
        yield event("message_start", {"type": "message_start", "message": message})
        text_index = 0
        if thinking is not None:  # the trace comes first, in its own block, then its seal
            text_index = 1
            start = {"type": "thinking", "thinking": "", "signature": ""}
            yield event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": start},
            )
            for piece in _pieces(thinking, server.behaviour.chunk_words):
                delta = {"type": "thinking_delta", "thinking": piece}
                yield event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
            seal = {"type": "signature_delta", "signature": thinking_signature(thinking)}
            yield event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": seal}
            )
            yield event("content_block_stop", {"type": "content_block_stop", "index": 0})
        yield event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": text_index,
                "content_block": {"type": "text", "text": ""},
            },
        )
        yield event("ping", {"type": "ping"})
        for index, piece in enumerate(turn.pieces):
            if fault is not None and fault.kind == "drop" and index == fault.after_chunks:
                yield None
                return
            if fault is not None and fault.kind == "sse_error" and index == fault.after_chunks:
                _, kind, text = _ANTHROPIC_ERRORS[fault.error]
                yield event("error", {"type": "error", "error": {"type": kind, "message": text}})
                return
            yield event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": text_index,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
        yield event("content_block_stop", {"type": "content_block_stop", "index": text_index})
        yield event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": turn.completion_tokens},
            },
        )
        yield event("message_stop", {"type": "message_stop"})

    return 200, _sse_headers({"request-id": request_id}), None, events()


# --- OpenAI -------------------------------------------------------------------------------

_OPENAI_ERRORS = {
    "quota": (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "rate_limit": (429, "requests", "rate_limit_exceeded", "Rate limit reached for requests"),
    "overloaded": (
        503,
        "server_error",
        None,
        "The engine is currently overloaded, please try again later",
    ),
    "server": (
        500,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "unavailable": (503, "server_error", None, "Service Unavailable"),
}


def _openai_error(
    status: int, kind: str, code: str | None, message: str, headers: dict[str, str] | None = None
) -> Reply:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _json(status, body, {"x-request-id": f"req_{uuid.uuid4().hex[:24]}", **(headers or {})})


def _openai_auth_error(key: str) -> Reply:
    shown = f"{key[:3]}{'*' * 8}{key[-4:]}" if len(key) > 8 else "***"
    return _openai_error(
        401,
        "invalid_request_error",
        "invalid_api_key",
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    )


def _openai_model_error(model: str) -> Reply:
    return _openai_error(
        404,
        "invalid_request_error",
        "model_not_found",
        f"The model `{model}` does not exist or you do not have access to it.",
    )


_REASONING_EFFORTS = ("minimal", "low", "medium", "high")


async def _openai(server: FakeServer, request: Request) -> Reply:
    body = request.body or {}
    model = str(body.get("model", ""))
    request.model = model
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    if not _key_ok(server, key):
        return _openai_auth_error(key)
    if not _model_ok(server, model):
        return _openai_model_error(model)
    messages = body.get("messages", [])
    texts = [str(m.get("content")) for m in messages]
    turn = request.facts = _Turn(server, model, texts, texts[-1] if texts else "")
    if turn.window is not None and turn.prompt_tokens > turn.window:
        return _openai_error(
            400,
            "invalid_request_error",
            "context_length_exceeded",
            f"This model's maximum context length is {turn.window} tokens. However, your "
            f"messages resulted in {turn.prompt_tokens} tokens. Please reduce the length of "
            "the messages.",
        )
    fault = await _before(server, model)
    if fault is not None and fault.kind == "error":
        status, kind, code, message = _OPENAI_ERRORS[fault.error]
        return _openai_error(status, kind, code, message, _retry_headers(fault))
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in _REASONING_EFFORTS:
        return _openai_error(
            400,
            "invalid_request_error",
            "invalid_value",
            f"Invalid value: '{effort}'. Supported values are: "
            + ", ".join(f"'{value}'" for value in _REASONING_EFFORTS),
        )
    # A reasoning model thinks unseen: Chat Completions reports only how many tokens
    # (inside completion_tokens); xAI's reasoning models also stream the text.
    reasoning = turn.think(server.behaviour.words) if effort is not None else None
    shows_reasoning = reasoning is not None and model.startswith("grok")
    created = int(time.time())
    version = turn.version = f"{model}-2026-06-15"
    usage = {
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.completion_tokens,
        "total_tokens": turn.prompt_tokens + turn.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": turn.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": tokens(reasoning) if reasoning is not None else 0,
            "audio_tokens": 0,
        },
    }
    headers = {"x-request-id": f"req_{turn.id}", "openai-processing-ms": "200"}
    if not body.get("stream"):
        return _json(
            200,
            {
                "id": f"chatcmpl-{turn.id}",
                "object": "chat.completion",
                "created": created,
                "model": version,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": turn.text,
                            **({"reasoning_content": reasoning} if shows_reasoning else {}),
                        },
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
            headers,
        )
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    async def chunks() -> AsyncIterator[bytes | None]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            document = {
                "id": f"chatcmpl-{turn.id}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": version,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                document["usage"] = None
            return f"data: {json.dumps(document)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        if shows_reasoning and reasoning is not None:
            for piece in _pieces(reasoning, server.behaviour.chunk_words):
                yield chunk({"reasoning_content": piece})
        for index, piece in enumerate(turn.pieces):
            if fault is not None and fault.kind == "drop" and index == fault.after_chunks:
                yield None
                return
            yield chunk({"content": piece})
        yield chunk({}, "stop")
        if include_usage:
            document = {
                "id": f"chatcmpl-{turn.id}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": version,
                "system_fingerprint": "fp_fake",
                "choices": [],
                "usage": usage,
            }
            yield f"data: {json.dumps(document)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return 200, _sse_headers(headers), None, chunks()


# --- Google Gemini ------------------------------------------------------------------------

_GOOGLE_ERRORS = {
    "rate_limit": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "overloaded": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "server": (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    "unavailable": (503, "UNAVAILABLE", "The service is currently unavailable."),
}


def _google_error(
    status: int,
    kind: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    error: dict[str, Any] = {"code": status, "message": message, "status": kind}
    if details:
        error["details"] = details
    return _json(status, {"error": error}, headers)


def _google_key_error() -> Reply:
    return _google_error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )


def _google_model_error(model: str) -> Reply:
    return _google_error(
        404,
        "NOT_FOUND",
        f"models/{model} is not found for API version v1, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    )


def _google_model(server: FakeServer, request: Request, model: str) -> Reply:
    request.model = model
    if not _key_ok(server, request.headers.get("x-goog-api-key")):
        return _google_key_error()
    if not _model_ok(server, model):
        return _google_model_error(model)
    return _json(
        200,
        {
            "name": f"models/{model}",
            "displayName": model,
            "version": "001",
            "inputTokenLimit": server.behaviour.context_windows.get(model, 1048576),
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent"],
        },
    )


def _google_text(content: Any) -> str:
    parts = content.get("parts", []) if isinstance(content, dict) else []
    return "".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))


async def _google(
    server: FakeServer, request: Request, model: str, method: str, query: str
) -> Reply:
    body = request.body or {}
    request.model = model
    if not _key_ok(server, request.headers.get("x-goog-api-key")):
        return _google_key_error()
    if not _model_ok(server, model):
        return _google_model_error(model)
    contents = body.get("contents", [])
    texts = [_google_text(content) for content in contents]
    system = body.get("systemInstruction")
    if system:
        texts.append(_google_text(system))
    turn = request.facts = _Turn(
        server, model, texts, _google_text(contents[-1]) if contents else ""
    )
    turn.request_id = turn.id  # Gemini's responseId
    if turn.window is not None and turn.prompt_tokens > turn.window:
        return _google_error(
            400,
            "INVALID_ARGUMENT",
            f"The input token count ({turn.prompt_tokens}) exceeds the maximum number of "
            f"tokens allowed ({turn.window}).",
        )
    fault = await _before(server, model)
    if fault is not None and fault.kind == "error":
        status, kind, message = _GOOGLE_ERRORS[fault.error]
        details = None
        if fault.retry_after is not None:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{fault.retry_after:g}s",
                }
            ]
        return _google_error(status, kind, message, details, _retry_headers(fault))
    # The API reads protobuf JSON, which takes a field's lowerCamel or its proto name: the
    # SDK sends this one as thinking_config {thinking_budget, include_thoughts}.
    generation = body.get("generationConfig") or {}
    thinking_config = generation.get("thinkingConfig") or generation.get("thinking_config") or {}
    thinking = None
    include = thinking_config.get("includeThoughts", thinking_config.get("include_thoughts"))
    if include:  # thought summaries, as parts marked thought
        thinking = turn.think(server.behaviour.words)
    usage = {
        "promptTokenCount": turn.prompt_tokens,
        "candidatesTokenCount": tokens(turn.text),
        "totalTokenCount": turn.prompt_tokens + turn.completion_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": turn.prompt_tokens}],
    }
    if thinking is not None:
        usage["thoughtsTokenCount"] = tokens(thinking)
    if turn.cache_read:
        usage["cachedContentTokenCount"] = turn.cache_read
    version = turn.version = f"{model}-001"

    def response(
        text: str, finish: str | None, final: bool, thought: bool = False
    ) -> dict[str, Any]:
        part: dict[str, Any] = {"text": text, "thought": True} if thought else {"text": text}
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
        return {
            "candidates": [candidate],
            "usageMetadata": usage
            if final
            else {"promptTokenCount": turn.prompt_tokens, "totalTokenCount": turn.prompt_tokens},
            "modelVersion": version,
            "responseId": turn.id,
        }

    if method == "generateContent":
        document = response(turn.text, "STOP", True)
        if thinking is not None:
            parts = document["candidates"][0]["content"]["parts"]
            parts.insert(0, {"text": thinking, "thought": True})
        return _json(200, document)
    if "alt=sse" not in query:
        return _google_error(400, "INVALID_ARGUMENT", "this fake speaks only alt=sse streams")

    async def chunks() -> AsyncIterator[bytes | None]:
        last = len(turn.pieces) - 1
        for piece in [] if thinking is None else _pieces(thinking, server.behaviour.chunk_words):
            yield f"data: {json.dumps(response(piece, None, False, thought=True))}\r\n\r\n".encode()
        for index, piece in enumerate(turn.pieces):
            if fault is not None and fault.kind == "drop" and index == fault.after_chunks:
                yield None
                return
            document = response(piece, "STOP" if index == last else None, index == last)
            yield f"data: {json.dumps(document)}\r\n\r\n".encode()

    return 200, _sse_headers({}), None, chunks()
