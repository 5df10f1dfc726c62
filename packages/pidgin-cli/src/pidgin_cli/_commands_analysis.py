"""``pidgin query`` (SQL over live runs) and ``pidgin export`` (the database, out to files).

``query`` reads the JSONL of every run under the output root into an in-memory DuckDB
(pidgin-load's ``live_database``): running experiments included, the analytics database
never opened. ``export`` reads the analytics database, read-only, and writes each table
as Hive-partitioned Parquet or CSV that other tools read as it is.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._output import (
    echo_json,
    fail,
    output_option,
    plain_table,
    resolve_output_root,
    safe_text,
    write_file,
)
from ._query_target import TARGET_HELP, open_target
from ._resolve import complete_run_id, resolve_run

if TYPE_CHECKING:
    import duckdb

__all__ = ["export_command", "query_command"]

_FORMATS = ("table", "csv", "json", "parquet")


@click.command("query")
@click.argument("sql")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS),
    default="table",
    show_default=True,
    help="How to write the result.",
)
@click.option(
    "--to",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of stdout (required for parquet).",
)
@click.option("--no-chats", is_flag=True, help="Experiments only.")
@click.option("--target", "read_from", metavar="TARGET", default=None, help=TARGET_HELP)
@output_option
@click.pass_context
def query_command(
    ctx: click.Context,
    sql: str,
    *,
    fmt: str,
    target: Path | None,
    no_chats: bool,
    read_from: str | None,
    output: Path | None,
) -> None:
    """Run SQL over every run under the output root, running ones included.

    The tables and views are those of the analytics database (experiments, conversations,
    turns, messages, turn_metrics, convergence_trends, ...), read straight from the JSONL
    logs into memory: the database is never opened, and no run waits for the query.

    With --target, the SQL runs over the loaded runs of a DuckLake (every machine's) or
    of a DuckDB file instead, read-only; $PIDGIN_LOAD_TARGET does not change the default.

    \b
    Examples:
      pidgin query "SELECT experiment_id, status, conversations FROM experiments"
      pidgin query "SELECT turn_number, avg(convergence_score) FROM turns GROUP BY 1 ORDER BY 1"
      pidgin query "SELECT * FROM turn_metrics" --format parquet --to metrics.parquet
      pidgin query "FROM experiment_dashboard" --target ducklake:postgres:"dbname=pidgin host=db"
      pidgin query "FROM loads" --target pidgin_output/experiments/experiments.duckdb
    """
    import duckdb

    from pidgin_load import live_database, needs_metrics

    if fmt == "parquet" and target is None:
        raise click.UsageError("--format parquet needs --to FILE")
    if read_from is not None:
        if no_chats:
            raise click.UsageError("--no-chats is for the live logs; with --target use WHERE")
        con = open_target(read_from)
    else:
        root = resolve_output_root(ctx, output)
        live = live_database(
            root, include_chats=not no_chats, metrics=needs_metrics(sql), for_sql=sql
        )
        for note in live.skipped:
            click.echo(f"warning: skipped {safe_text(note)}", err=True)
        con = live.connection
    try:
        relation = con.sql(sql)
        if relation is None:
            raise fail("the statement returned no rows to show (only queries are useful here)")
        _write(relation, fmt, target)
    except duckdb.Error as exc:
        raise fail(f"query failed: {safe_text(str(exc), multiline=True)}") from None
    finally:
        con.close()


def _write(relation: duckdb.DuckDBPyRelation, fmt: str, target: Path | None) -> None:
    if fmt == "parquet":
        assert target is not None
        import duckdb

        try:
            relation.write_parquet(str(target))
        except duckdb.IOException as exc:
            raise fail(
                f"cannot write {safe_text(target)}: {str(exc).removeprefix('IO Error: ')}"
            ) from None
        return
    columns = list(relation.columns)
    rows = relation.fetchall()
    if fmt == "json":
        document = [dict(zip(columns, row, strict=True)) for row in rows]
        if target is None:
            echo_json(document)
        else:
            import json

            from ._output import _json_default

            write_file(target, json.dumps(document, indent=2, default=_json_default) + "\n")
        return
    if fmt == "csv":
        if target is None:
            _csv(sys.stdout, columns, rows)
        else:
            import io

            buffer = io.StringIO(newline="")
            _csv(buffer, columns, rows)
            write_file(target, buffer.getvalue())
        return
    text = plain_table(columns, [["" if v is None else str(v) for v in row] for row in rows])
    if target is None:
        click.echo(text)
    else:
        write_file(target, text + "\n")


def _csv(stream: Any, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    writer = csv.writer(stream)
    writer.writerow(columns)
    writer.writerows(rows)


@click.command("export")
@click.argument("run_ids", nargs=-1, metavar="[ID]...", shell_complete=complete_run_id)
@click.option("--all", "everything", is_flag=True, help="Every experiment in the database.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("parquet", "csv")),
    default="parquet",
    show_default=True,
)
@click.option(
    "--to",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write into: one folder per table, one per experiment inside.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Database to read [default: <root>/experiments/experiments.duckdb].",
)
@output_option
@click.pass_context
def export_command(
    ctx: click.Context,
    run_ids: tuple[str, ...],
    *,
    everything: bool,
    fmt: str,
    target: Path,
    db_path: Path | None,
    output: Path | None,
) -> None:
    """Export loaded experiments as Hive-partitioned Parquet (or CSV) files.

    Writes DIR/<table>/experiment_id=<id>/data_0.parquet for every table of the database,
    which pandas, polars, Spark and DuckDB read as one dataset per table, with
    experiment_id restored from the folder names. The columns are those of the
    database, documented in the pidgin-load README.

    \b
    Examples:
      pidgin export --all --to exported/
      pidgin export greetings --format csv --to exported/
    """
    from pidgin_load import LoadError, experiments_db, export_database

    if everything == bool(run_ids):
        raise click.UsageError("give experiment IDs or --all")
    root = resolve_output_root(ctx, output)
    ids = None
    if run_ids:
        # a run directory's name; the database knows it as the run's directory
        ids = [resolve_run(root, text).name for text in run_ids]
    db = db_path or experiments_db(root)
    try:
        written = export_database(db, target, experiment_ids=ids, file_format=fmt)
    except LoadError as exc:
        raise fail(str(exc)) from None
    for table, rows in written.items():
        click.echo(f"{table}: {rows} rows")
    click.echo(f"exported to {safe_text(target)}")
