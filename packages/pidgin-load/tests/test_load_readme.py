"""The README documents the real schema, and its example queries run and answer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

import pidgin_load as pl

README = Path(__file__).resolve().parents[1] / "README.md"
VIEWS = (
    "experiment_dashboard",
    "convergence_by_turn",
    "conversation_turns",
    "convergence_trends",
    "vocabulary_analysis",
)


def _sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.fixture
def loaded_db(pidgin_ai_root: Path, write_experiment: Any) -> Path:
    write_experiment(pidgin_ai_root, experiment_id="exp_ours", fail_last=True, thinking=True)
    log = sorted((pidgin_ai_root / "experiments" / "exp_ours").glob("*_events.jsonl"))[0]
    with open(log, "ab") as stream:
        stream.write(b"{torn\n")
    summary = pl.load_all(pidgin_ai_root)
    assert summary.ok
    return pl.experiments_db(pidgin_ai_root)


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
