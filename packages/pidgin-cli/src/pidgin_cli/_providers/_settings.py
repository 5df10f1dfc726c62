"""Where each provider is reached and with which key: environment first, run options over it.

Keys are read from the SDKs' own environment variables (``ANTHROPIC_API_KEY``, ...) at the
moment a client is made, and live only inside ``Secret`` objects and the SDK clients:
``Secret`` has no readable ``repr`` or ``str``, and ``scrub`` removes any key we hold from
text that is about to be recorded (an SDK error message that quotes a URL, say).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from importlib.util import find_spec
from urllib.parse import urlsplit, urlunsplit

from ._catalogue import ProviderEntry, Wire

__all__ = [
    "SDK_MODULES",
    "ProviderSetupError",
    "Secret",
    "ServerProblem",
    "configure",
    "describe_url",
    "extra_installed",
    "install_hint",
    "provider_key",
    "provider_url",
    "request_timeout",
    "scrub",
    "server_problem",
]

SDK_MODULES: dict[Wire, str] = {
    "anthropic": "anthropic",
    "openai": "openai",
    "google": "google.genai",
}
"""The module each wire's SDK is imported as."""

DEFAULT_TIMEOUT = 120.0
"""Seconds a request may take (connect and between bytes) before it counts as timed out."""

CONNECT_TIMEOUT = 1.0
"""Seconds a local server (Ollama, an OpenAI-compatible one) has to accept a connection
before a run or ``pidgin models`` calls it unreachable. A refused connection takes
microseconds; this bounds only a host that does not answer at all."""


class ProviderSetupError(ValueError):
    """A provider cannot be used here: its extra is missing or its key is not set."""


class Secret:
    """An API key that never shows itself: ``repr``/``str`` say only that it is set."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself, for the SDK client and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(slots=True)
class _Overrides:
    base_urls: dict[str, str]
    timeout: float


_overrides = _Overrides(base_urls={}, timeout=DEFAULT_TIMEOUT)
_known_secrets: set[str] = set()
_secrets_guard = threading.Lock()


def configure(*, base_urls: dict[str, str] | None = None, timeout: float | None = None) -> None:
    """Process-wide settings from the run's options (``--base-url``, ``--request-timeout``)."""
    if base_urls is not None:
        _overrides.base_urls = dict(base_urls)
    if timeout is not None:
        _overrides.timeout = timeout


def request_timeout() -> float:
    return _overrides.timeout


def extra_installed(provider: ProviderEntry) -> bool:
    """Whether the provider's SDK can be imported, without importing it."""
    try:
        return find_spec(SDK_MODULES[provider.wire]) is not None
    except ModuleNotFoundError:  # "google" itself missing
        return False


def install_hint(provider: ProviderEntry) -> str:
    return f'pip install "pidgin-cli[{provider.extra}]"'


def provider_key(provider: ProviderEntry) -> Secret | None:
    """The provider's key from its environment variables (first set wins), if any."""
    for variable in provider.key_env:
        value = os.environ.get(variable, "").strip()
        if value:
            with _secrets_guard:
                _known_secrets.add(value)
            return Secret(value)
    return None


def provider_url(provider: ProviderEntry) -> str | None:
    """The base URL requests go to: ``--base-url``, else its variable, else the default.

    For Ollama, ``OLLAMA_HOST`` may be a bare ``host:port`` (as the ollama command takes
    it); the OpenAI-compatible API lives under ``/v1`` there.
    """
    url = _overrides.base_urls.get(provider.name)
    if url is None and provider.base_url_env:
        url = os.environ.get(provider.base_url_env, "").strip() or None
    if url is None:
        url = provider.default_base_url
    if url is None:
        return None
    if provider.name == "ollama":
        if "://" not in url:
            url = f"http://{url}"
        if not urlsplit(url).path.rstrip("/").endswith("/v1"):
            url = url.rstrip("/") + "/v1"
    return url


def check_usable(provider: ProviderEntry) -> None:
    """Raise ``ProviderSetupError`` saying how to fix what stops ``provider`` being used."""
    if not extra_installed(provider):
        raise ProviderSetupError(
            f"the {provider.name} provider needs its SDK: {install_hint(provider)}"
        )
    if provider.key_required and provider_key(provider) is None:
        variables = " or ".join(provider.key_env)
        raise ProviderSetupError(f"no API key for {provider.name}: set {variables}")
    if provider.name == "openai-compatible" and provider_url(provider) is None:
        raise ProviderSetupError(
            "openai-compatible models need a server: give --base-url URL or set "
            f"{provider.base_url_env}"
        )
    problem = server_problem(provider)
    if problem is not None:
        raise ProviderSetupError(str(problem))


@dataclass(frozen=True, slots=True)
class ServerProblem:
    """A local server that does not take connections: where, why, and what to do."""

    provider: str
    url: str
    reason: str
    fix: str

    def __str__(self) -> str:
        return (
            f"the {self.provider} server at {self.url} is not reachable ({self.reason}): {self.fix}"
        )


def server_problem(
    provider: ProviderEntry, timeout: float = CONNECT_TIMEOUT
) -> ServerProblem | None:
    """Why a server the user runs (no key required) does not take connections, and the fix.

    Only a TCP connect: no request is sent, so it costs nothing and needs no model
    loaded. Vendors' APIs are not checked (their preflight request does that).
    """
    url = provider_url(provider)
    if provider.key_required or url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except ValueError as exc:  # a port that is not a number
        reason = str(exc)
    except socket.gaierror:
        reason = f"unknown host {host!r}"
    except TimeoutError:
        reason = f"no answer within {timeout:g} s"
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
    if provider.name == "ollama":
        fix = f"start it with 'ollama serve', or set {provider.base_url_env} to where it runs"
    else:
        fix = f"start it, or give --base-url or set {provider.base_url_env} to where it runs"
    return ServerProblem(provider.name, describe_url(url) or url, reason, fix)


def describe_url(url: str | None) -> str | None:
    """``url`` without any user:password part, safe to record."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def scrub(text: str) -> str:
    """``text`` with every API key this process has read replaced by ``***``."""
    with _secrets_guard:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text
