"""One classification of every SDK's failures: retry it, fail fast, or shrink the context.

The three SDKs raise different classes for the same HTTP facts. This module reads the
facts (status, the body's error type and message, ``Retry-After``) by duck typing, so it
imports no SDK, and turns them into a ``ModelError`` whose message names the provider, the
model and the API's own words, and never a key (``scrub``).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

from .._models import ErrorKind, ModelError
from ._settings import scrub

__all__ = ["classify", "parse_retry_after"]

_RETRYABLE_KINDS: frozenset[ErrorKind] = frozenset(
    {"rate_limit", "overloaded", "server", "timeout", "connection"}
)
_CONTEXT_WORDS = re.compile(
    r"context[_ ]length|context window|prompt is too long|too many tokens|maximum context|"
    r"input token count|exceeds the maximum|reduce the length",
    re.IGNORECASE,
)
_BODY_TYPES: dict[str, ErrorKind] = {
    # Anthropic's error.type, OpenAI's error.type/code, Google's error.status
    "overloaded_error": "overloaded",
    "rate_limit_error": "rate_limit",
    "rate_limit_exceeded": "rate_limit",
    "insufficient_quota": "auth",  # OpenAI's 429 for an exhausted balance: waiting won't help
    "api_error": "server",
    "server_error": "server",
    "authentication_error": "auth",
    "permission_error": "auth",
    "invalid_api_key": "auth",
    "not_found_error": "model",
    "model_not_found": "model",
    "context_length_exceeded": "context",
    "request_too_large": "context",
    "RESOURCE_EXHAUSTED": "rate_limit",
    "UNAVAILABLE": "server",
    "INTERNAL": "server",
    "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "auth",
    "NOT_FOUND": "model",
}


def parse_retry_after(headers: Mapping[str, str] | None, body: Any = None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, ``Retry-After`` (seconds
    or an HTTP date), or Google's ``RetryInfo.retryDelay`` ("30s") in the error body."""
    if headers is not None:
        milliseconds = headers.get("retry-after-ms")
        if milliseconds is not None:
            try:
                return max(0.0, float(milliseconds) / 1000)
            except ValueError:
                pass
        value = headers.get("retry-after")
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                parsed = email.utils.parsedate_tz(value)
                if parsed is not None:
                    return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    for detail in _google_details(body):
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def _google_details(body: Any) -> list[Any]:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return details if isinstance(details, list) else []


def _body_facts(body: Any) -> tuple[str | None, str | None]:
    """``(error type, message)`` from an error body of any of the three APIs."""
    if not isinstance(body, dict):
        return None, body if isinstance(body, str) and body else None
    error = body.get("error", body)
    if not isinstance(error, dict):
        return None, str(error)
    candidates = [
        str(value)
        for value in (error.get("type"), error.get("code"), error.get("status"))
        if value is not None and not isinstance(value, int)
    ]
    known = [candidate for candidate in candidates if candidate in _BODY_TYPES]
    kind = next(iter(known or candidates), None)
    message = error.get("message")
    return kind, str(message) if message is not None else None


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def classify(exc: BaseException, *, provider: str, model: str) -> ModelError:
    """The ``ModelError`` that ``exc``, raised by an SDK call, stands for."""
    names = _names(exc)
    status: int | None = getattr(exc, "status_code", None)
    if status is None and "APIError" in names and isinstance(getattr(exc, "code", None), int):
        status = exc.code  # type: ignore[attr-defined]  # google.genai.errors.APIError
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    body = getattr(exc, "body", None)
    if body is None:
        body = getattr(exc, "details", None)  # google
    body_type, body_message = _body_facts(body)
    kind: ErrorKind
    if names & {"APITimeoutError", "TimeoutException", "TimeoutError"}:
        kind, status = "timeout", None
    elif names & {"APIConnectionError", "TransportError", "ConnectionError", "NetworkError"}:
        kind, status = "connection", None
    elif body_type in _BODY_TYPES and (status is None or status == 200 or status >= 400):
        kind = _BODY_TYPES[body_type]
        if status == 200:
            status = None  # an error event inside a stream that began well
    elif status is None:
        kind = "other"
    elif status in (401, 402, 403):
        kind = "auth"
    elif status == 404:
        kind = "model"
    elif status == 413:
        kind = "context"
    elif status == 429:
        kind = "rate_limit"
    elif status == 529:
        kind = "overloaded"
    elif status in (408, 409) or status >= 500:
        kind = "server"
    else:
        kind = "bad_request"
    words = body_message or getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if kind in ("bad_request", "other", "model") and _CONTEXT_WORDS.search(str(words)):
        kind = "context"
    described = " ".join(str(part) for part in (status, body_type) if part is not None)
    message = f"{provider} {model}: " + (f"{described}: " if described else "") + str(words)
    if kind == "timeout":
        message = f"{provider} {model}: no answer within the request timeout ({words})"
    elif kind == "connection":
        message = f"{provider} {model}: connection failed or dropped ({words})"
    return ModelError(
        scrub(message),
        provider=provider,
        code=body_type or (kind if status is None else str(status)),
        retryable=kind in _RETRYABLE_KINDS,
        status=status,
        retry_after=parse_retry_after(headers, body),
        kind=kind,
    )


def refused(provider: str, model: str, reason: str, text: str) -> ModelError:
    """A reply the model declined to give (a safety stop): not retried."""
    detail = f": {text[:200]}" if text else ""
    return ModelError(
        scrub(f"{provider} {model}: the reply was refused ({reason}){detail}"),
        provider=provider,
        code=reason,
        kind="refused",
    )
