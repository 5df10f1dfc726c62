"""``pidgin demo``: a whole experiment end to end, run, watched, loaded and queried.

It uses the built-in ``local:drift`` model (no network, no key), runs exactly as
``pidgin run`` does (a background runner, followed live), then shows the convergence the
conversations reached, where the JSONL files are, that they were loaded into DuckDB, a
query against the database, and the same questions asked with ``jq``/``tail``/``duckdb``.
"""

from __future__ import annotations

import random
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._commands_run import check_seed
from ._output import (
    command_hint,
    fail,
    make_console,
    output_option,
    plain_table,
    program,
    resolve_output_root,
    rich_text,
    safe_text,
    use_rich,
)

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["demo_command"]

DEMO_MODEL = "local:drift"
DEMO_PROMPT = "Let's invent a shared language, one word at a time."
_SPARKS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"


def sparkline(scores: list[float]) -> str:
    """Scores in [0, 1] as block characters, one per turn."""
    top = len(_SPARKS) - 1
    return "".join(_SPARKS[min(top, max(0, round(score * top)))] for score in scores)


class _Out:
    """Headings, paragraphs and tables: rich on a terminal, plain text in a pipe.

    Everything shown goes through ``safe_text``: statuses, reasons, load errors and
    conversation ids come from the run's logs and directory.
    """

    def __init__(self) -> None:
        self.console: Console | None = make_console() if use_rich() else None

    def heading(self, text: str) -> None:
        if self.console is None:
            click.echo(f"\n== {safe_text(text)}")
        else:
            from rich.rule import Rule

            self.console.print()
            self.console.print(Rule(rich_text(text), align="left", style="cyan"))

    def text(self, text: str) -> None:
        if self.console is None:
            click.echo(safe_text(text, multiline=True))
        else:
            self.console.print(rich_text(text, multiline=True))

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        if self.console is None:
            click.echo(plain_table(headers, rows))
            return
        from rich.table import Table

        table = Table(*headers, header_style="bold", box=None, pad_edge=False)
        for row in rows:
            table.add_row(*(rich_text(cell) for cell in row))
        self.console.print(table)


@click.command("demo", short_help="Run a demo experiment end to end.")
@click.option(
    "-r",
    "--repetitions",
    type=click.IntRange(1, 100),
    default=4,
    show_default=True,
    help="Conversations.",
)
@click.option(
    "-t", "--turns", type=click.IntRange(1, 200), default=12, show_default=True, help="Turns."
)
@click.option("--seed", type=int, callback=check_seed, help="Seed (default: random).")
@output_option
@click.pass_context
def demo_command(
    ctx: click.Context, repetitions: int, turns: int, seed: int | None, output: Path | None
) -> None:
    """Run a small experiment with the built-in local:drift model, then query it.

    Two agents with different vocabularies drift toward each other's words over a
    conversation; the demo follows them live, loads the result into DuckDB and shows how
    to ask questions of it with DuckDB, jq, grep and tail. No network, no API key.

    \b
    Example:
      pidgin demo -o /tmp/pidgin-demo
    """
    from pidgin_events import new_id, plural

    from ._background import LaunchError, launch_experiment
    from ._run_follow import follow_and_report
    from ._runner import ExperimentSpec

    root = resolve_output_root(ctx, output).absolute()
    out = _Out()
    spec = ExperimentSpec(
        root=str(root),
        experiment_id=new_id("exp"),
        name=f"demo-{new_id('x').removeprefix('x_')[:6]}",
        agent_a=DEMO_MODEL,
        agent_b=DEMO_MODEL,
        max_turns=turns,
        repetitions=repetitions,
        max_parallel=2,
        initial_prompt=DEMO_PROMPT,
        seed=seed if seed is not None else random.SystemRandom().randrange(2**31),
    )
    out.text(
        f"Pidgin demo: {plural(repetitions, 'conversation')} of {plural(turns, 'turn')} "
        "between two "
        f"{DEMO_MODEL} agents, 2 at a time (built in: no network, no API key).\n"
        f"Output root: {root}"
    )
    try:
        launched = launch_experiment(spec)
    except (LaunchError, OSError) as exc:
        raise fail(f"could not start the demo: {exc}") from None
    out.text(f"Started {launched.experiment_id} ({spec.name}) in the background; following it.")
    code = follow_and_report(root, launched.experiment_id)
    directory = launched.directory
    _show_convergence(out, directory)
    _show_files(out, directory)
    db_path = _show_database(out, directory, launched.experiment_id, root)
    _show_recipes(out, directory, launched.experiment_id, db_path, name=spec.name, root=root)
    ctx.exit(code)


def _show_convergence(out: _Out, directory: Path) -> None:
    from pidgin_state import StateBuilder

    conversations = list(StateBuilder.from_experiment_dir(directory).conversations.values())
    out.heading("Convergence per conversation (from the JSONL logs)")
    rows = []
    for item in conversations:
        scores = item.convergence
        first = f"{scores[0]:.2f}" if scores else "-"
        last = f"{scores[-1]:.2f}" if scores else "-"
        status = item.status + (f" ({item.end_reason})" if item.end_reason else "")
        rows.append([item.id, status, str(len(scores)), first, last, sparkline(list(scores))])
    out.table(["conversation", "status", "turns", "first", "last", "per turn"], rows)
    longest = max((len(item.convergence) for item in conversations), default=0)
    if longest:
        means = []
        for turn in range(longest):
            at_turn = [c.convergence[turn] for c in conversations if len(c.convergence) > turn]
            means.append(sum(at_turn) / len(at_turn))
        out.text(
            f"Mean convergence by turn: {sparkline(means)}  "
            f"({means[0]:.2f} at turn 1, {means[-1]:.2f} at turn {longest})"
        )


def _show_files(out: _Out, directory: Path) -> None:
    out.heading("Where the data is")
    out.text(
        f"{directory}/\n"
        f"  experiment.jsonl             experiment-level events (start, end, database load)\n"
        f"  <conversation>_events.jsonl  one append-only event log per conversation\n"
        f"  runner.log                   what the background runner printed"
    )


def _show_database(out: _Out, directory: Path, experiment_id: str, root: Path) -> Path | None:
    from ._background import database_load

    out.heading("DuckDB")
    load = database_load(directory)
    if load is None or load.status == "failed" or load.db_path is None:
        reason = "no load recorded" if load is None else load.error
        out.text(
            f"Not loaded: {reason}\n"
            f"Load it later with: {command_hint('load-db', experiment_id, root=root)}"
        )
        return None if load is None or load.db_path is None else Path(load.db_path)
    db_path = Path(load.db_path)
    out.text(f"Loaded automatically into {db_path}")
    query = (
        "SELECT turn_number + 1 AS turn, conversations, round(avg_convergence, 3) AS mean, "
        "round(min_convergence, 3) AS min, round(max_convergence, 3) AS max "
        "FROM convergence_by_turn WHERE experiment_id = ? ORDER BY turn_number"
    )
    out.text(f"Query: {query.replace('?', repr(experiment_id))}")
    try:
        headers, rows = _query(db_path, query, experiment_id)
    except Exception as exc:  # a locked or older database: the demo still ends well
        out.text(f"(could not query it now: {exc})")
        return db_path
    out.table(headers, [[_cell(value) for value in row] for row in rows])
    return db_path


def _query(
    db_path: Path, query: str, experiment_id: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    import duckdb

    with duckdb.connect(str(db_path), read_only=True) as connection:
        cursor = connection.execute(query, [experiment_id])
        headers = [column[0] for column in cursor.description or []]
        return headers, cursor.fetchall()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


def _show_recipes(
    out: _Out, directory: Path, experiment_id: str, db_path: Path | None, *, name: str, root: Path
) -> None:
    logs = shlex.quote(str(directory)) + "/*_events.jsonl"
    missing = [tool for tool in ("jq", "duckdb") if shutil.which(tool) is None]
    out.heading("Ask the same from a shell")
    lines = [
        "# follow every event as it is written",
        f"tail -f {logs}",
        "# convergence per turn, one line per conversation and turn",
        f'jq -r \'select(.event_type=="TurnCompleteEvent") '
        f"| [.conversation_id, .turn_number, .convergence_score] | @tsv' {logs}",
        "# what the agents said",
        f'grep -h \'"event_type":"MessageCompleteEvent"\' {logs} | jq -r .message.content | head',
    ]
    if db_path is not None:
        sql = (
            "SELECT turn_number, round(avg_convergence, 3) FROM convergence_by_turn "
            f"WHERE experiment_id = '{experiment_id}' ORDER BY 1"
        )
        db = shlex.quote(str(db_path))
        lines += [
            "# the database, from DuckDB's command line or from Python",
            f'duckdb -readonly {db} "{sql}"',
            f'{program("python3")} -c "import duckdb; print(duckdb.connect({str(db_path)!r}, '
            f'read_only=True).sql(\\"{sql}\\"))"',
        ]
    out.text("\n".join(lines))
    if missing:
        out.text(f"({' and '.join(missing)} not found on this machine; install to try those)")
    out.heading("Next")
    # Hints that work copy-pasted: ``pidgin`` and ``python3`` as this interpreter's bin
    # directory spells them (after tools/dev.py demo they are in .venv/bin), -o when needed.
    run = ("run", "-a", "local:drift", "-b", "local:drift", "-t", "20", "-r", "10")
    out.text(
        f"{command_hint('experiment', 'status', name, root=root)}\n"
        f"{command_hint(*run, '--max-parallel', '4', root=root)}"
    )
