"""``query_live``/``live_database(for_sql=...)``: a live query builds only what it reads,
and what it reads is exactly what a loaded database holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

import pidgin_events as pe
import pidgin_load as pl
from pidgin_load import _metrics_sql, _schema_prompts, _sql_events, _sql_tables
from pidgin_load._built_from import BUILT_FROM, NOT_BUILT, tables_to_build
from pidgin_load._live import tables_read_by

NOT_FROM_THE_LOGS = ("loaded_at", "fingerprint")
"""``experiments`` columns a load stamps: when, and from which bytes."""


def _write_everything(root: Path, write_experiment: Any) -> None:
    """Runs that put rows in every table and view: thinking, chosen names, a failed
    conversation, errors, provider token reports, prices, a branch, a bad line and a
    conversation still running."""
    write_experiment(root, conversations=3, thinking=True, fail_last=True, name="thinkers")
    exp = pe.Experiment.create(root, name="branched", total_conversations=3)
    agents: dict[str, Any] = {"agent_a": {"model": "local:test"}, "agent_b": "local:echo"}
    with exp.conversation(**agents, max_turns=3, initial_prompt="count") as parent:
        for turn in range(3):
            _turn(parent, turn)
    with (exp.directory / f"{parent.id}_events.jsonl").open("a", encoding="utf-8") as log:
        log.write('{"event_type": "TurnStartEvent", "timestamp": \n')  # a torn line
    with exp.conversation(**agents, max_turns=3, initial_prompt="count") as child:
        child.emit(pe.ConversationBranchedEvent(
            conversation_id=child.id, source_conversation_id=parent.id, branch_point=1,
        ))  # fmt: skip
        for turn in range(2):
            _turn(child, turn, differ=turn == 1)
    _turn(exp.conversation(**agents, max_turns=5, initial_prompt="count"), 0)  # running


def _turn(conv: pe.Conversation, turn: int, *, differ: bool = False) -> None:
    conv.turn_start()
    for agent, model in (("agent_a", "local:test"), ("agent_b", "local:echo")):
        conv.message(
            agent,
            f"{agent} says {turn}{' otherwise' if differ else ''}",
            prompt_tokens=10 + turn,
            completion_tokens=3 + turn,
            cost_usd=0.001 * (turn + 1),
        )
        conv.emit(pe.TokenUsageEvent(
            conversation_id=conv.id, provider="local", tokens_used=13 + 2 * turn,
            tokens_per_minute_limit=1000, current_usage_rate=0.5, agent_id=agent, model=model,
        ))  # fmt: skip
    if turn == 1:
        conv.error("APIError", "overloaded, retried")
    conv.turn_complete(0.25 * (turn + 1))


@pytest.fixture
def everything(pidgin_ai_root: Path, tmp_path: Path, write_experiment: Any) -> tuple[Path, Path]:
    """An output root (ours and pidgin-ai's runs) and a database loaded from it."""
    _write_everything(pidgin_ai_root, write_experiment)
    db = tmp_path / "loaded.duckdb"
    for run in sorted((pidgin_ai_root / "experiments").iterdir()):
        if run.is_dir():
            summary = pl.load_experiment(run, db, allow_running=True)
            assert summary.ok, summary
    return pidgin_ai_root, db


def _relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    return [*pl.TABLES, *sorted(str(row[0]) for row in views)]


def _select_all(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    columns = [str(row[0]) for row in con.execute(f"DESCRIBE {relation}").fetchall()]
    stamped = [column for column in NOT_FROM_THE_LOGS if column in columns]
    exclude = f" EXCLUDE ({', '.join(stamped)})" if stamped else ""
    return f"SELECT *{exclude} FROM {relation} ORDER BY ALL"


def test_every_table_and_view_read_live_is_what_a_load_holds(
    everything: tuple[Path, Path],
) -> None:
    root, db = everything
    with duckdb.connect(str(db), read_only=True) as loaded:
        relations = _relations(loaded)
        assert len(relations) == len(pl.TABLES) + 10  # every view of the schema
        differ = []
        for relation in relations:
            sql = _select_all(loaded, relation)
            expected = loaded.execute(sql).fetchall()
            assert expected, f"{relation} is empty: the runs do not exercise it"
            if relation in NOT_BUILT:  # the database's record of its loads: none live
                expected = []
            if pl.query_live(sql, root).fetchall() != expected:
                differ.append(relation)
    assert not differ, f"read live, these differ from the loaded database: {differ}"


def test_readme_and_help_examples_count_from_the_conversations(
    everything: tuple[Path, Path],
) -> None:
    """``pidgin query --help``'s first example and the README's, read live and loaded."""
    root, db = everything
    examples = (
        "SELECT experiment_id, status, conversations FROM experiments ORDER BY ALL",
        "SELECT model, sum(total_tokens) FROM token_usage GROUP BY model ORDER BY ALL",
        "SELECT model, count(*) FROM thinking GROUP BY model ORDER BY ALL",
    )
    with duckdb.connect(str(db), read_only=True) as loaded:
        for sql in examples:
            expected = loaded.execute(sql).fetchall()
            assert pl.query_live(sql, root).fetchall() == expected, sql
        planned = loaded.execute(
            "SELECT sum(conversations) FROM experiments WHERE name = 'branched'"
        ).fetchall()
        models = loaded.execute("SELECT DISTINCT model FROM token_usage ORDER BY 1").fetchall()
    assert planned == [(3,)]  # three conversations written, not 0
    assert {("local:echo",), ("local:test",)} <= set(models)  # one row per model


def _bytes_read() -> int:
    """Bytes this process has read through system calls, every thread counted (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_a_query_that_reads_no_table_reads_no_log(tmp_path: Path) -> None:
    root = tmp_path / "out"
    exp = pe.Experiment.create(root, name="long", total_conversations=1)
    with exp.conversation(agent_a="local:test", agent_b="local:test", max_turns=4) as conv:
        for _ in range(4):
            conv.turn_start()
            conv.message("agent_a", "x" * 400_000)
            conv.message("agent_b", "y" * 400_000)
            conv.turn_complete(0.5)
    logs = sum(path.stat().st_size for path in exp.directory.iterdir())
    assert logs > 3_000_000
    pl.live_database(root, for_sql="SELECT 1").connection.close()  # imports, warm-up

    before = _bytes_read()
    live = pl.live_database(root, for_sql="SELECT 1 AS one, 'turns' AS events")
    nothing = _bytes_read() - before
    assert live.connection.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
    assert (live.runs, live.skipped) == (0, [])

    before = _bytes_read()
    read = pl.live_database(root, metrics=False, for_sql="SELECT count(*) FROM turns")
    something = _bytes_read() - before
    assert read.runs == 1
    assert something > 0.9 * logs  # the observable sees a read of the logs
    assert nothing < logs / 100
    assert pl.query_live("SELECT 1 + 1", root).fetchall() == [(2,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM query_table('turns')",  # a table function: could read any
        "SELECT count(*) FROM turns WHERE",  # does not parse
    ],
)
def test_what_cannot_be_followed_gets_every_table(
    tmp_path: Path, write_experiment: Any, sql: str
) -> None:
    root = tmp_path / "out"
    write_experiment(root)
    con = duckdb.connect()
    try:
        assert tables_read_by(con, sql) == frozenset(pl.TABLES)
    finally:
        con.close()
    live = pl.live_database(root, metrics=False, for_sql=sql).connection
    for table in ("experiments", "conversations", "token_usage", "errors", "turns"):
        rows = live.execute(f"SELECT count(*) FROM {table}").fetchall()
        assert rows != [(0,)] or table == "errors", table


def test_a_query_on_turns_builds_neither_conversations_nor_experiments(
    tmp_path: Path, write_experiment: Any
) -> None:
    """The StateBuilder pass is for conversations and experiments only: skipped here."""
    root = tmp_path / "out"
    write_experiment(root, fail_last=True)
    live = pl.live_database(root, metrics=False, for_sql="SELECT * FROM turns").connection
    assert live.execute("SELECT count(*) FROM turns").fetchall() == [(6,)]
    for table in ("experiments", "conversations", "token_usage", "errors", "thinking"):
        assert live.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)], table
    assert tables_to_build({"turns"}) == {"turns", "messages", "events"}
    assert "conversations" in tables_to_build({"experiments"})
    assert tables_to_build(set()) == frozenset()
    assert tables_to_build({"a_table_added_later"}) == frozenset(BUILT_FROM)


_READS = re.compile(r"\b(?:FROM|JOIN)\s+([a-z_]+)", re.I)
_WRITES = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE)\s+([a-z_]+)", re.I)


def test_built_from_names_every_table_each_statement_reads() -> None:
    """Each statement that fills a table reads only tables ``BUILT_FROM`` lists for it."""
    assert set(BUILT_FROM) | NOT_BUILT == set(pl.TABLES)
    assert not set(BUILT_FROM) & NOT_BUILT
    statements: list[tuple[str, str]] = [
        ("turn_metrics", _metrics_sql.TEXT_SQL),
        ("turn_metrics", _metrics_sql.insert_from("batch.parquet")),
    ]
    for module in (_sql_events, _sql_tables, _schema_prompts):
        for name in module.__all__:
            text = getattr(module, name)
            written = _WRITES.search(text) if isinstance(text, str) else None
            if written:
                statements.append((written.group(1).lower(), text))
    filled = {table for table, _ in statements}
    assert filled & set(pl.TABLES) == set(BUILT_FROM)
    for table, sql in statements:
        read = {name.lower() for name in _READS.findall(sql)} & set(pl.TABLES)
        # the scratch tables (pidgin_load_turn_ends) are built from the events alone
        assert read - {table} <= BUILT_FROM.get(table, frozenset({"events"})), (table, sql[:80])


README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_readme_example_answers_live_as_loaded(everything: tuple[Path, Path]) -> None:
    """The README's example queries ("Experiments that need a look", "Tokens spent per
    model", ...) answer from the live logs what they answer from the loaded database."""
    root, db = everything
    examples = re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(examples) >= len(pl.TABLES)
    differ = []
    with duckdb.connect(str(db), read_only=True) as loaded:
        for sql in examples:
            expected = sorted(map(repr, loaded.execute(sql).fetchall()))
            if tables_read_by(loaded, sql) & NOT_BUILT:  # the loads of a database: none live
                expected = []
            if sorted(map(repr, pl.query_live(sql, root).fetchall())) != expected:
                differ.append(sql.splitlines()[0])
    assert not differ, differ
