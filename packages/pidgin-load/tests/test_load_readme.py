"""The README documents the real schema, and its example queries run and answer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

import pidgin_events as pe
import pidgin_load as pl

README = Path(__file__).resolve().parents[1] / "README.md"
VIEWS = (
    "experiment_dashboard",
    "convergence_by_turn",
    "conversation_turns",
    "convergence_trends",
    "vocabulary_analysis",
    "branch_alignment",
)


def _sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.fixture
def loaded_db(pidgin_ai_root: Path, write_experiment: Any) -> Path:
    write_experiment(pidgin_ai_root, experiment_id="exp_ours", fail_last=True)
    log = sorted((pidgin_ai_root / "experiments" / "exp_ours").glob("*_events.jsonl"))[0]
    _write_branch(pidgin_ai_root, log)
    with open(log, "ab") as stream:
        stream.write(b"{torn\n")
    summary = pl.load_all(pidgin_ai_root)
    assert summary.ok
    return pl.experiments_db(pidgin_ai_root)


def _write_branch(root: Path, parent_log: Path, branch_turn: int = 2) -> None:
    """A branch of the conversation in ``parent_log``: its first turns, then its own."""
    events = pe.read_events(parent_log).events
    parent = [e for e in events if isinstance(e, pe.MessageCompleteEvent)]
    with (
        pe.Experiment.create(root, name="branched", experiment_id="exp_branch") as exp,
        exp.conversation(agent_a="local:test", agent_b="local:echo", max_turns=3) as conv,
    ):
        conv.emit(
            pe.ConversationBranchedEvent(
                conversation_id=conv.id,
                source_conversation_id=parent[0].conversation_id,
                branch_point=branch_turn,
            )
        )
        for turn in range(3):
            conv.turn_start()
            for agent in ("agent_a", "agent_b"):
                said = [m for m in parent if m.turn_number == turn and m.agent_id == agent]
                content = said[0].message.content if turn < branch_turn else "elsewhere"
                conv.message(agent, content)
            conv.turn_complete(0.5)


def test_every_table_view_and_column_is_documented(loaded_db: Path) -> None:
    text = README.read_text()
    with duckdb.connect(str(loaded_db), read_only=True) as con:
        for relation in (*pl.TABLES, *VIEWS):
            assert f"### `{relation}`" in text or f"### View `{relation}`" in text, relation
            columns = con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                [relation],
            ).fetchall()
            assert columns, relation
            missing = [name for (name,) in columns if f"`{name}`" not in text]
            assert not missing, f"{relation}: undocumented columns {missing}"


def test_one_example_query_per_table_and_view() -> None:
    blocks = _sql_blocks()
    for relation in (*pl.TABLES, *VIEWS):
        assert any(re.search(rf"\bFROM {relation}\b", block) for block in blocks), relation


@pytest.mark.parametrize("index", range(len(_sql_blocks())))
def test_example_query_runs_and_answers(loaded_db: Path, index: int) -> None:
    sql = _sql_blocks()[index]
    with duckdb.connect(str(loaded_db), read_only=True) as con:
        rows = con.execute(sql).fetchall()
    assert rows, sql
