"""``pidgin report ID``: one self-contained HTML file about an experiment.

The charts come from Plotly, an optional dependency (``pip install 'pidgin-cli[report]'``);
the data from the run's own logs, so a running or never-loaded experiment has a report too.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._output import fail, output_option, resolve_output_root, safe_text
from ._resolve import complete_run_id, resolve_run

__all__ = ["report_command"]


@click.command("report")
@click.argument("run_id", metavar="ID", shell_complete=complete_run_id)
@click.option(
    "--to",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The HTML file to write [default: ./<ID>-report.html].",
)
@output_option
@click.pass_context
def report_command(
    ctx: click.Context, run_id: str, *, target: Path | None, output: Path | None
) -> None:
    """Write an HTML report of one experiment: convergence per turn for every
    conversation with the mean and its spread, the text metrics that moved most, tokens
    and cost per conversation (cost at the catalogue's prices, as `status` shows it), and
    every transcript (a click on a curve opens its transcript).

    One file, plotly.js inside: it opens in any browser with no network.

    \b
    Examples:
      pidgin report greetings
      pidgin report exp_3f9a --to /tmp/exp.html
    """
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise fail(
            "pidgin report draws with Plotly, which is not installed: "
            "pip install 'pidgin-cli[report]'"
        ) from None
    from pidgin_load import live_database

    from ._report import read_report_data, write_report

    root = resolve_output_root(ctx, output)
    directory = resolve_run(root, run_id)
    live = live_database(root, runs=[directory], metrics=True)
    if live.skipped:
        raise fail(f"cannot read {safe_text(live.skipped[0])}")
    try:
        data = read_report_data(live.connection)
    finally:
        live.connection.close()
    path = target or Path(f"{directory.name}-report.html")
    size = write_report(data, path)
    count = len(data.transcripts)
    noun = "conversation" if count == 1 else "conversations"
    click.echo(f"wrote {safe_text(path)} ({size / 1e6:.1f} MB, {count} {noun})")
