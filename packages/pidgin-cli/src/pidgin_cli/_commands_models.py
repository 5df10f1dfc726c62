"""``pidgin models``: the catalogue, and which providers can be used from here right now."""

from __future__ import annotations

import json

import click

__all__ = ["models_command"]


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


@click.command("models", short_help="List models and which providers are usable now.")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def models_command(as_json: bool) -> None:
    """List the model catalogue and the providers usable in this environment.

    A provider is usable when its SDK extra is installed and its API key is set; a local
    server (Ollama, an OpenAI-compatible one) needs no key but must take connections
    (tried with a one-second connect, no request). Prices are US dollars per million
    tokens, as checked on the date shown. Any model of a provider works as
    PROVIDER:MODEL, catalogued or not; aliases include pidgin-ai 1.x's model names.
    """
    from ._models import MODELS
    from ._providers import catalogue, provider_status

    statuses = provider_status()
    cat = catalogue()
    if as_json:
        document = {
            "providers": [
                {
                    "name": status.provider.name,
                    "usable": status.usable,
                    "extra_installed": status.extra_installed,
                    "key_set": status.key_set,
                    "key_env": list(status.provider.key_env),
                    "base_url": status.base_url,
                    "reachable": None
                    if status.base_url is None or status.provider.key_required
                    else status.unreachable is None,
                    "fix": status.fix or None,
                }
                for status in statuses
            ],
            "models": [
                {
                    "name": entry.name,
                    "display_name": entry.display_name,
                    "aliases": list(entry.aliases),
                    "context_window": entry.context_window,
                    "input_per_million": entry.input_per_million,
                    "output_per_million": entry.output_per_million,
                    "cache_read_per_million": entry.cache_read_per_million,
                    "cache_write_per_million": entry.cache_write_per_million,
                    "prices_checked": entry.prices_checked,
                    "capabilities": list(entry.capabilities),
                }
                for entry in cat.models.values()
            ],
            "offline": [
                info.name for info in MODELS.available() if info.provider not in cat.providers
            ],
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo("Providers:")
    for status in statuses:
        if status.usable:
            state = "usable"
        elif status.unreachable is not None and status.fix == str(status.unreachable):
            state = f"not reachable ({status.unreachable.reason}): {status.unreachable.fix}"
        else:
            state = f"not usable: {status.fix}"
        where = f"  ({status.base_url})" if status.base_url else ""
        click.echo(f"  {status.provider.name:<18} {state}{where}")
    usable = {status.provider.name for status in statuses if status.usable}
    click.echo("\nModels (USD per million tokens in/out, context window, prices checked):")
    name_width = max(len(entry.name) for entry in cat.models.values())
    alias_width = max(len(", ".join(entry.aliases)) for entry in cat.models.values())
    for entry in cat.models.values():
        mark = "*" if entry.provider in usable else " "
        aliases = ", ".join(entry.aliases)
        window = f"{entry.context_window:,}" if entry.context_window else "-"
        click.echo(
            f" {mark} {entry.name:<{name_width}} {aliases:<{alias_width}} "
            f"{_price(entry.input_per_million):>6}/{_price(entry.output_per_million):<6} "
            f"{window:>10}  {entry.prices_checked or '-'}"
            + (
                f"  [{', '.join(c for c in entry.capabilities if c != 'streaming')}]"
                if len(entry.capabilities) > 1
                else ""
            )
        )
    offline = [info for info in MODELS.available() if info.provider not in cat.providers]
    click.echo("\nOffline, always usable: " + ", ".join(info.name for info in offline))
    click.echo("* usable now. Any model of a provider works as PROVIDER:MODEL-ID.")
