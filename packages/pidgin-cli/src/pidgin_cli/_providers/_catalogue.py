"""The model catalogue: providers, models, aliases, prices and context windows from models.toml.

The file ships inside the wheel next to this module; it is read once, on the first lookup
(``tomllib`` takes about a millisecond), never at ``pidgin --help``. A malformed entry is
an error naming the file and the entry, not a silently missing model.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Literal

__all__ = [
    "CATALOGUE_FILE",
    "Catalogue",
    "CatalogueError",
    "ModelEntry",
    "ProviderEntry",
    "Wire",
    "catalogue",
    "load_catalogue",
]

CATALOGUE_FILE = "models.toml"
Wire = Literal["anthropic", "openai", "google"]
_WIRES: tuple[Wire, ...] = ("anthropic", "openai", "google")


class CatalogueError(ValueError):
    """The catalogue file is malformed; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """How to reach one provider, and the pacer's defaults for it."""

    name: str
    wire: Wire
    extra: str
    key_env: tuple[str, ...]
    base_url_env: str | None = None
    default_base_url: str | None = None
    key_required: bool = True
    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    max_concurrency: int = 32
    model_prefixes: tuple[str, ...] = ()
    """How this vendor's model ids begin, to suggest ``provider:id`` for an unknown name."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model: its prices (USD per million tokens), context window and capabilities."""

    name: str
    display_name: str
    aliases: tuple[str, ...] = ()
    context_window: int | None = None
    max_output_tokens: int = 4096
    input_per_million: float | None = None
    output_per_million: float | None = None
    cache_read_per_million: float | None = None
    cache_write_per_million: float | None = None
    prices_checked: str | None = None
    capabilities: tuple[str, ...] = ()

    @property
    def provider(self) -> str:
        return self.name.partition(":")[0]

    @property
    def model_id(self) -> str:
        """The name the provider's API knows the model by."""
        return self.name.partition(":")[2]

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
    ) -> float | None:
        """US dollars for one reply; None when the catalogue has no price for the model.

        ``prompt_tokens`` counts every input token, cached ones included (the adapters
        make Anthropic's figures, which count cached tokens apart, mean the same as
        OpenAI's and Google's). Cached tokens are charged at the cache prices, or at the
        input price where the catalogue has none.
        """
        if self.input_per_million is None or self.output_per_million is None:
            return None
        cached_read = cache_read_tokens or 0
        cached_write = cache_write_tokens or 0
        fresh = max(0, prompt_tokens - cached_read - cached_write)
        read = self.cache_read_per_million
        write = self.cache_write_per_million
        dollars = (
            fresh * self.input_per_million
            + completion_tokens * self.output_per_million
            + cached_read * (self.input_per_million if read is None else read)
            + cached_write * (self.input_per_million if write is None else write)
        )
        return dollars / 1_000_000


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Providers and models by name, and aliases to model names."""

    providers: dict[str, ProviderEntry]
    models: dict[str, ModelEntry]
    aliases: dict[str, str]
    suggestions: dict[str, str] = dataclasses.field(default_factory=dict)
    """What to type instead of a name that is not a model here (pidgin-ai's gateway models)."""

    def canonical(self, text: str) -> str:
        """The full name an alias stands for (in any case, as pidgin-ai accepted), else ``text``."""
        return self.aliases.get(text) or self.aliases.get(text.lower()) or text

    def model(self, text: str) -> ModelEntry | None:
        """The entry ``text`` names, by alias or full name; None if it has none."""
        return self.models.get(self.canonical(text))


def _fail(where: str, problem: str) -> CatalogueError:
    return CatalogueError(f"{where}: {problem}")


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fail(where, f"{key!r} must be a list of strings")
    return tuple(value)


def _build(cls: type[Any], data: dict[str, Any], where: str, **fixed: Any) -> Any:
    known = set(cls.__dataclass_fields__) - set(fixed)
    unknown = sorted(set(data) - known)
    if unknown:
        raise _fail(where, f"unknown keys {', '.join(unknown)}")
    values = dict(data)
    for key in ("key_env", "aliases", "capabilities", "model_prefixes"):
        if key in values:
            values[key] = _strings(values[key], where, key)
    for key, value in values.items():
        expected = cls.__dataclass_fields__[key].type
        if isinstance(value, bool) and "bool" not in str(expected):
            raise _fail(where, f"{key!r} must not be a boolean")
        if "float" in str(expected):
            if not isinstance(value, int | float):
                raise _fail(where, f"{key!r} must be a number")
            values[key] = float(value)
            if value < 0:
                raise _fail(where, f"{key!r} must not be negative")
        elif "int" in str(expected) and not isinstance(value, int):
            raise _fail(where, f"{key!r} must be an integer")
        elif expected in ("str", "str | None") and not isinstance(value, str):
            raise _fail(where, f"{key!r} must be a string")
    try:
        return cls(**fixed, **values)
    except TypeError as exc:
        raise _fail(where, str(exc)) from None


def load_catalogue(text: str, source: str = CATALOGUE_FILE) -> Catalogue:
    """Parse and check a catalogue; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(source, str(exc)) from None
    providers: dict[str, ProviderEntry] = {}
    for name, table in dict(data.get("providers", {})).items():
        where = f"{source} [providers.{name}]"
        if not isinstance(table, dict):
            raise _fail(where, "must be a table")
        provider = _build(ProviderEntry, table, where, name=name)
        if provider.wire not in _WIRES:
            raise _fail(where, f"wire must be one of {', '.join(_WIRES)}")
        providers[name] = provider
    models: dict[str, ModelEntry] = {}
    aliases: dict[str, str] = {}
    for index, table in enumerate(data.get("models", [])):
        where = f"{source} [[models]] #{index + 1}"
        if not isinstance(table, dict) or not isinstance(table.get("name"), str):
            raise _fail(where, "needs a 'name' = \"provider:model\"")
        where += f" ({table['name']})"
        entry = _build(ModelEntry, {"display_name": table["name"], **table}, where)
        if entry.provider not in providers or not entry.model_id:
            raise _fail(where, f"names no known provider ({', '.join(sorted(providers))})")
        if entry.name in models:
            raise _fail(where, "is listed twice")
        models[entry.name] = entry
        for alias in entry.aliases:
            if alias != alias.lower():
                raise _fail(where, f"alias {alias!r} must be lower case (lookups ignore case)")
            if alias in aliases:
                raise _fail(where, f"alias {alias!r} already names {aliases[alias]}")
            aliases[alias] = entry.name
    suggestions = data.get("suggestions", {})
    if not isinstance(suggestions, dict) or not all(
        isinstance(value, str) for value in suggestions.values()
    ):
        raise _fail(f"{source} [suggestions]", "must map names to strings")
    for name in suggestions:
        if name != name.lower() or name in aliases:
            raise _fail(f"{source} [suggestions]", f"{name!r} must be lower case and no alias")
    return Catalogue(providers, models, aliases, dict(suggestions))


@functools.cache
def catalogue() -> Catalogue:
    """The catalogue shipped with pidgin-cli, read on first use."""
    resource = files(__package__ or "pidgin_cli._providers").joinpath(CATALOGUE_FILE)
    return load_catalogue(resource.read_text(encoding="utf-8"), str(resource))
