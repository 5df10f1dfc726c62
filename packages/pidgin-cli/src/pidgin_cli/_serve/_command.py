"""``pidgin serve``: the web view and GraphQL API over an output root.

This module imports only click at import time; the server (strawberry among others) is
imported when the command runs, so ``pidgin serve --help`` works without the extra and
``pidgin --help`` never pays for it.
"""

from __future__ import annotations

import re
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .._output import fail, output_option, resolve_output_root, safe_text

if TYPE_CHECKING:
    from pidgin_load import ReadTarget

__all__ = ["serve_command"]

_TOKEN = re.compile(r"[A-Za-z0-9._~-]{8,256}")
EXTRA_HINT = 'pidgin serve needs its extra: pip install "pidgin-cli[serve]"'


def _import_server() -> None:
    try:
        import strawberry  # noqa: F401
    except ImportError:
        raise fail(EXTRA_HINT) from None


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. Any other than loopback requires a token.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option(
    "--token",
    envvar="PIDGIN_SERVE_TOKEN",
    help="Token every request must carry (Bearer header, cookie or ?token=) "
    "[default: none on loopback, else a random one, printed] [env: PIDGIN_SERVE_TOKEN].",
)
@click.option(
    "--target",
    metavar="TARGET",
    default=None,
    help="Read finished runs' history from this DuckLake (ducklake:postgres:\"dbname=... "
    'host=...") or DuckDB file [default: $PIDGIN_LOAD_TARGET, where loads go, else each '
    "run's local database]. Live runs always come from the logs.",
)
@click.option("--print-schema", is_flag=True, help="Print the GraphQL schema (SDL) and exit.")
@click.option("-v", "--verbose", is_flag=True, help="Log every request on stderr.")
@output_option
@click.pass_context
def serve_command(
    ctx: click.Context,
    *,
    host: str,
    port: int,
    token: str | None,
    target: str | None,
    print_schema: bool,
    verbose: bool,
    output: Path | None,
) -> None:
    """Serve a live web view and a GraphQL API of the output root.

    \b
    Pages: /  (experiments), /experiments/ID, /experiments/ID/conversations/CID,
           /search?q=WORDS; API: /graphql (POST JSON or GET ?query=);
           live events: /experiments/ID/conversations/CID/events (server-sent events).
           /history (finished runs, from DuckDB or the lake).
    Everything live is read from the JSONL logs; only history of finished runs is read
    from DuckDB, read-only, or from a DuckLake (--target, or $PIDGIN_LOAD_TARGET).

    \b
    Examples:
      pidgin serve                       # http://127.0.0.1:8765/
      pidgin serve --host 0.0.0.0        # prints a token to open it with
      pidgin serve --print-schema > schema.graphql
      pidgin serve --target ducklake:postgres:"dbname=pidgin host=db"   # every machine's runs
    """
    _import_server()
    if print_schema:
        from ._api import SCHEMA

        click.echo(str(SCHEMA))
        return
    from pidgin_load import target_label

    from ._catalog import Catalog
    from ._http import is_loopback, make_server

    root = resolve_output_root(ctx, output)
    history = _history_target(target)
    loopback = is_loopback(host)
    if token is not None and not _TOKEN.fullmatch(token):
        raise fail(
            "--token must be 8 to 256 characters from A-Z a-z 0-9 - _ . ~ "
            "(it travels in URLs, headers and a cookie)"
        )
    if token is None and not loopback:
        token = secrets.token_urlsafe(24)
    try:
        server = make_server(
            Catalog(root, history=history), host, port, token=token, quiet=not verbose
        )
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_port = server.server_address[1]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{bound_port}/"
    click.echo(f"pidgin serve: {root}")
    if history is not None:
        click.echo(f"history from {safe_text(target_label(history))}")
    if token is not None:
        click.echo(f"open {url}?token={token}")
        click.echo(f"API:  curl -H 'Authorization: Bearer {token}' {url}graphql ...")
    else:
        click.echo(f"open {url}")
    click.echo("Ctrl-C stops it.")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.stopping.set()
        server.server_close()


def _history_target(target: str | None) -> ReadTarget | None:
    """The named target, else the environment's lake: history is read where loads go.

    Only named here, never connected: an unreachable lake is an error on the pages and
    queries that read it, while the server and everything live keep working.
    """
    from pidgin_load import LoadError, read_target

    try:
        return read_target(target)
    except LoadError as exc:
        raise fail(str(exc)) from None
