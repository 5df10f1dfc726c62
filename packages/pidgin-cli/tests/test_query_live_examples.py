"""``pidgin query``'s examples answer from the live logs what they answer from the load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pidgin_load as pl

EXAMPLES = (
    # the first example of ``pidgin query --help``
    "SELECT experiment_id, status, conversations FROM experiments",
    # the pidgin-load README's "Tokens spent per model", in short
    "SELECT model, sum(total_tokens) AS tokens FROM token_usage GROUP BY model",
    "SELECT 1 AS one",
)


def test_help_and_readme_examples_read_live_as_loaded(output_root: Path, run_cli: Any) -> None:
    started = run_cli(
        "run", "-a", "local:drift", "-b", "local:test", "-t", "3", "-r", "2", "-n", "grid1"
    )
    assert started.returncode == 0, started.stderr
    assert "Loaded into DuckDB: " in started.stdout
    db = pl.experiments_db(output_root)
    answers: dict[str, list[Any]] = {}
    for sql in EXAMPLES:
        live = run_cli("query", f"{sql} ORDER BY ALL", "--format", "json")
        loaded = run_cli("query", f"{sql} ORDER BY ALL", "--format", "json", "--target", str(db))
        assert live.returncode == 0, live.stderr
        assert loaded.returncode == 0, loaded.stderr
        answers[sql] = json.loads(live.stdout)
        assert answers[sql] == json.loads(loaded.stdout), sql
    assert [row["conversations"] for row in answers[EXAMPLES[0]]] == [2]  # not 0
    assert [row["model"] for row in answers[EXAMPLES[1]]] == ["local:drift", "local:test"]
