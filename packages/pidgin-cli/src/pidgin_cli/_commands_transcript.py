"""``pidgin transcript ID``: what was said, as Markdown, one HTML file, or JSON.

Rebuilt from the run's JSONL logs (StateBuilder for status, tokens and cost; the
transcript reader for the words), so it works while the run is live and for a run that
was never loaded into DuckDB.
"""

from __future__ import annotations

from pathlib import Path

import click

from pidgin_events import run_kind_of

from ._output import (
    conversation_option,
    output_option,
    resolve_output_root,
    safe_text,
    write_file,
)
from ._resolve import complete_run_id, resolve_run

__all__ = ["transcript_command"]

FORMATS = ("md", "html", "json")


@click.command("transcript")
@click.argument("run_id", metavar="ID", shell_complete=complete_run_id)
@conversation_option("Only this conversation (its id or a unique prefix) [default: every one].")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="md",
    show_default=True,
    help="md: Markdown; html: one self-contained page; json: see docs/transcripts.md.",
)
@click.option(
    "--to",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
@output_option
@click.pass_context
def transcript_command(
    ctx: click.Context,
    run_id: str,
    *,
    conversation: str | None,
    fmt: str,
    target: Path | None,
    output: Path | None,
) -> None:
    """Print the transcript of an experiment or chat: agent names, turn numbers,
    convergence per turn, tokens and cost, system and injected prompts shown as such,
    thinking collapsed. Works while the run is still going (what was written so far).

    ID is the full id, the name, or a unique prefix of either. Text from the logs is
    shown literally in every format: never as markup, never as terminal control.

    \b
    Examples:
      pidgin transcript greetings
      pidgin transcript greetings --conversation conv_0c1d2e3f4a5b --format html --to chat.html
      pidgin transcript greetings --format json | jq '.conversations[0].entries[0]'
    """
    from ._transcript_view import build_document

    root = resolve_output_root(ctx, output)
    directory = resolve_run(root, run_id)
    doc = build_document(directory, run_kind_of(directory), conversation)
    for view in doc.conversations:  # also in the document; here for whoever pipes it away
        for problem in view.transcript.problems:
            click.echo(
                f"warning: {safe_text(problem.describe(view.transcript.log_path))}", err=True
            )
    if fmt == "html":
        from ._transcript_html import render_html

        rendered = render_html(doc)
    elif fmt == "json":
        from ._transcript_json import render_json

        rendered = render_json(doc)
    else:
        from ._transcript_md import render_markdown

        rendered = render_markdown(doc)
    if target is None:
        click.echo(rendered, nl=False)
        return
    write_file(target, rendered)
    count = len(doc.conversations)
    noun = "conversation" if count == 1 else "conversations"
    click.echo(f"wrote {safe_text(target)} ({count} {noun}, {fmt})", err=True)
