"""The options of ``run`` and ``chat`` that concern real providers, and what they build.

Kept apart from ``_commands_run`` so that the provider options are one decorator there;
``request_settings`` is shared by the runner process and the foreground ``chat``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from ._log_text import LOG_TEXT
from ._requests import CONTEXT_POLICIES, ContextPolicy, RequestSettings

__all__ = [
    "LIMIT_KEYS",
    "MAX_PARALLEL",
    "MAX_WORKERS",
    "parallel_options",
    "provider_options",
    "request_settings",
]

F = TypeVar("F", bound=Callable[..., Any])

MAX_PARALLEL = 1024
MAX_WORKERS = 64
LIMIT_KEYS = {
    "rpm": "requests_per_minute",
    "tpm": "tokens_per_minute",
    "concurrency": "max_concurrency",
}


def _parse_limits(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, dict[str, int]]:
    limits: dict[str, dict[str, int]] = {}
    for text in values:
        target, equals, number = text.partition("=")
        provider, dot, key = target.partition(".")
        if not equals or not dot or key not in LIMIT_KEYS or not number.isdigit():
            raise click.BadParameter(
                f"{text!r}: expected PROVIDER.KEY=N with KEY one of {', '.join(LIMIT_KEYS)} "
                "(e.g. anthropic.rpm=50)"
            )
        from ._providers import catalogue

        if provider not in catalogue().providers:
            known = ", ".join(catalogue().providers)
            raise click.BadParameter(f"{text!r}: unknown provider {provider!r} (known: {known})")
        limits.setdefault(provider, {})[LIMIT_KEYS[key]] = int(number)
    return limits


def parallel_options(function: F) -> F:
    """``--max-parallel`` and ``--workers``: conversations at once, and in how many processes."""
    options = [
        click.option(
            "--max-parallel",
            type=click.IntRange(1, MAX_PARALLEL),
            default=1,
            show_default=True,
            help="Conversations running at the same time (API-bound runs: hundreds).",
        ),
        click.option(
            "--workers",
            type=click.IntRange(1, MAX_WORKERS),
            metavar="N",
            help="Processes sharing the conversations, each pacing to its share of the "
            "provider limits [default: one per 32 conversations at a time, at most one per "
            "core] (e.g. --max-parallel 256 --workers 2).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def provider_options(function: F) -> F:
    """``--max-cost``, ``--context-policy``, ``--base-url``, ``--request-timeout``, ..."""
    options = [
        click.option(
            "--max-cost",
            type=click.FloatRange(0.0, min_open=True),
            metavar="USD",
            help="Start no new turn once the run has spent this (catalogue prices); "
            "conversations in flight end as interrupted (budget).",
        ),
        click.option(
            "--context-policy",
            type=click.Choice(CONTEXT_POLICIES),
            default="truncate",
            show_default=True,
            help="When a conversation outgrows a model's context window: drop its oldest "
            "turns (system prompt kept), or end it (context_limit).",
        ),
        click.option(
            "--base-url",
            type=LOG_TEXT,
            metavar="URL",
            help="Server of openai-compatible:MODEL models (else $PIDGIN_COMPATIBLE_BASE_URL).",
        ),
        click.option(
            "--request-timeout",
            type=click.FloatRange(0.1, 3600),
            metavar="SECONDS",
            help="Seconds without an answer before a request counts as timed out [default: 120].",
        ),
        click.option(
            "--chunk-interval",
            type=click.FloatRange(0.0, 60.0),
            default=0.5,
            show_default=True,
            metavar="SECONDS",
            help="Streamed text goes to the log at most this often (0: only whole messages).",
        ),
        click.option(
            "--limit",
            "provider_limits",
            multiple=True,
            metavar="PROVIDER.KEY=N",
            callback=_parse_limits,
            help="Pacer limit per provider, KEY rpm, tpm or concurrency "
            "(e.g. --limit anthropic.rpm=50); defaults come from the catalogue.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def request_settings(
    *,
    max_cost: float | None,
    context_policy: ContextPolicy,
    chunk_interval: float,
    base_url: str | None,
    request_timeout: float | None,
    provider_limits: Mapping[str, Mapping[str, int]],
) -> RequestSettings:
    """The pacers, budget and policies one run's conversations share; applies the URLs."""
    from ._pacing import Budget, PacerLimits, Pacers
    from ._providers import catalogue, configure

    configure(
        base_urls={"openai-compatible": base_url} if base_url else {},
        timeout=request_timeout,
    )
    limits: dict[str, PacerLimits] = {}
    for name, provider in catalogue().providers.items():
        override = provider_limits.get(name, {})
        limits[name] = PacerLimits(
            requests_per_minute=override.get("requests_per_minute", provider.requests_per_minute),
            tokens_per_minute=override.get("tokens_per_minute", provider.tokens_per_minute),
            max_concurrency=override.get("max_concurrency", provider.max_concurrency),
        )
    return RequestSettings(
        chunk_interval=chunk_interval,
        context_policy=context_policy,
        pacers=Pacers(limits),
        budget=None if max_cost is None else Budget(max_cost),
    )
