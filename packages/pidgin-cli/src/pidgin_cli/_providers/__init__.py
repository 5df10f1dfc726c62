"""Real model providers: Anthropic, OpenAI, Gemini, xAI, Ollama, any OpenAI-compatible server.

Names are ``provider:model-id`` (``anthropic:claude-sonnet-4-6``, ``ollama:qwen3:0.6b``)
or a catalogue alias (``sonnet``, ``gpt-4o``, ``gemini``, ``grok``). Every model of a
known provider works by its full name; the catalogue (``models.toml``) adds aliases,
prices and context windows. Each provider's SDK is an optional extra of pidgin-cli and is
imported by the first request that needs it, never by ``pidgin --help``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .._models import ModelInfo, ModelRegistry
from ._base import ProviderModel
from ._catalogue import Catalogue, CatalogueError, ModelEntry, ProviderEntry, catalogue
from ._errors import classify, parse_retry_after
from ._settings import (
    ProviderSetupError,
    ServerProblem,
    check_usable,
    configure,
    describe_url,
    extra_installed,
    install_hint,
    provider_key,
    provider_url,
    scrub,
    server_problem,
)

__all__ = [
    "Catalogue",
    "CatalogueError",
    "ModelEntry",
    "ProviderEntry",
    "ProviderModel",
    "ProviderSetupError",
    "ProviderStatus",
    "ServerProblem",
    "catalogue",
    "check_ready",
    "classify",
    "configure",
    "describe_url",
    "entry_for",
    "guess_name",
    "install",
    "parse_retry_after",
    "preflight",
    "provider_of",
    "provider_status",
    "scrub",
]


def _model_class(provider: ProviderEntry) -> type[ProviderModel]:
    if provider.wire == "anthropic":
        from ._anthropic import AnthropicModel

        return AnthropicModel
    if provider.wire == "google":
        from ._google import GoogleModel

        return GoogleModel
    from ._openai import OpenAIModel

    return OpenAIModel


def provider_of(name: str) -> ProviderEntry | None:
    """The catalogue's provider of a canonical ``provider:model`` name, if it is one."""
    return catalogue().providers.get(name.partition(":")[0])


def entry_for(name: str) -> ModelEntry | None:
    """The catalogue entry of a canonical name or alias (prices, context window)."""
    return catalogue().model(name)


def check_ready(name: str) -> None:
    """Raise ``ProviderSetupError`` if ``name``'s provider lacks its extra, key or URL."""
    provider = provider_of(name)
    if provider is not None:
        check_usable(provider)


_infos: dict[str, ModelInfo] = {}
_infos_guard = threading.Lock()


def _resolve(text: str) -> ModelInfo | None:
    """The ``ModelInfo`` of a catalogue alias or of any ``provider:model`` of a provider."""
    cat = catalogue()
    name = cat.canonical(text)
    provider_name, colon, model_id = name.partition(":")
    provider = cat.providers.get(provider_name)
    if provider is None or not colon or not model_id:
        return None
    with _infos_guard:
        info = _infos.get(name)
        if info is None:
            entry = cat.models.get(name)
            model_class = _model_class(provider)

            def factory() -> ProviderModel:
                return model_class(provider, model_id, entry)

            info = _infos[name] = ModelInfo(
                name=name,
                factory=factory,
                description=f"{provider_name} model {model_id}",
                display_name=entry.display_name if entry is not None else model_id,
                aliases=entry.aliases if entry is not None else (),
            )
    return info


def _known_names() -> list[str]:
    cat = catalogue()
    return [*cat.models, *cat.aliases]


def guess_name(text: str) -> str | None:
    """What to type for a name that is no model here: the catalogue's suggestion, or
    ``provider:id`` for a name that looks like a vendor's model id; else None.

    Only a suggestion for the error message: a model the catalogue does not list is sent
    nowhere until the user types its full name. Anthropic's ids write versions with
    dashes (``claude-sonnet-4-5``), so dots become dashes there.
    """
    cat = catalogue()
    lowered = text.lower()
    if lowered in cat.suggestions:
        return cat.suggestions[lowered]
    if ":" in text:
        return None
    for provider in cat.providers.values():
        if any(lowered.startswith(prefix) for prefix in provider.model_prefixes):
            model_id = lowered.replace(".", "-") if provider.wire == "anthropic" else lowered
            return f"{provider.name}:{model_id}"
    return None


def _naming() -> str:
    providers = ", ".join(catalogue().providers)
    return f"any model of a provider ({providers}) can be named provider:model, e.g. openai:gpt-4.1"


def install(registry: ModelRegistry) -> None:
    """Let ``registry`` resolve provider models; reads nothing until a name is looked up."""
    registry.add_resolver(
        _resolve,
        names=_known_names,
        guess=guess_name,
        naming=_naming,
    )


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """Whether a provider can be used from here, and if not, what fixes it."""

    provider: ProviderEntry
    extra_installed: bool
    key_set: bool
    base_url: str | None
    unreachable: ServerProblem | None = None
    """Why the local server does not take connections (and the fix); None if it does or
    was not checked (vendors' APIs, or a provider not set up anyway)."""

    @property
    def usable(self) -> bool:
        return not self.fix

    @property
    def fix(self) -> str:
        """What makes the provider usable; empty when it is."""
        if not self.extra_installed:
            return install_hint(self.provider)
        if self.provider.key_required and not self.key_set:
            return "set " + " or ".join(self.provider.key_env)
        if self.base_url is None:
            return f"give --base-url or set {self.provider.base_url_env}"
        return "" if self.unreachable is None else str(self.unreachable)


def provider_status() -> list[ProviderStatus]:
    """Every provider of the catalogue with its state in this environment.

    Local servers are tried with a TCP connect each (a refusal is immediate; a host that
    does not answer costs at most ``CONNECT_TIMEOUT``); vendors' APIs are not contacted.
    """
    statuses = []
    for provider in catalogue().providers.values():
        installed = extra_installed(provider)
        statuses.append(
            ProviderStatus(
                provider=provider,
                extra_installed=installed,
                key_set=provider_key(provider) is not None,
                base_url=describe_url(provider_url(provider)),
                unreachable=server_problem(provider) if installed else None,
            )
        )
    return statuses


def preflight(names: list[str], registry: ModelRegistry, *, attempts: int = 3) -> list[str]:
    """Problems that would fail every conversation: a bad key, an unknown model.

    One cheap request per distinct provider model (the API's model lookup, which costs
    no tokens), before any conversation starts. Transient failures are tried again a
    few times and then let through: the conversations retry those themselves.
    """
    import time

    from .._models import ModelError

    problems: list[str] = []
    for name in dict.fromkeys(names):
        try:
            check_ready(name)
        except ProviderSetupError as exc:
            problems.append(f"{name}: {exc}")
            continue
        model = registry.create(name)
        if not isinstance(model, ProviderModel):
            continue
        for attempt in range(attempts):
            try:
                model.check()
                break
            except ModelError as exc:
                if not exc.retryable:
                    problems.append(str(exc))
                    break
                time.sleep(min(5.0, (exc.retry_after or 0.5) * (attempt + 1)))
    return problems
