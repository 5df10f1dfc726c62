"""How far our ``turn_metrics`` agree with pidgin-ai 1.1's ``conversation_turns``.

Usage, from the repository root::

    python tools/metrics_agreement.py --pidgin-ai-python VENV/bin/python

``VENV`` is a scratch virtual environment with ``pip install pidgin-ai==1.1.0`` (never this
repository's). Two sets of turns are compared, column by column:

``fixtures``
    the pidgin-ai 1.1 experiment directories committed with the repository
    (``tests-integration/fixtures/pidgin-ai-1.1``, or ``--fixtures``), loaded by ``pidgin_load`` and
    imported by pidgin-ai's own ``ImportService``;
``corpus``
    the hand-written turns below (questions, emoji, arrows, numbers, names, paragraphs,
    contractions, non-ASCII), written as one of our experiments and loaded, against
    pidgin-ai's ``FlatMetricsCalculator`` run over the same turns in order.

A value agrees when both are equal (within 1e-9). It prints a Markdown table: column,
turns agreeing out of turns compared, for each set. Standard library only; the children
import duckdb, pidgin_load and pidgin-ai.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SRC = [
    REPO / "packages" / name / "src" for name in ("pidgin-events", "pidgin-state", "pidgin-load")
]

CORPUS = [
    (
        "Hello! I'm Ada -> we'll test 3.5 things? Really?? 🙂🙂 Yes.",
        "Hi Ada. Let's test 42 things, ok?",
    ),
    (
        "Perhaps we could agree; however, I doubt it.\n\nNew paragraph: Paris → London ≈ 2h.",
        "I agree, perhaps. But London is rainy!",
    ),
    ("Naïve café déjà vu. Über straße! ¿Qué?", "Café? Straße... naïve indeed."),
    ("…", "Thank you, please continue — kindly."),
    ("", "Nothing to say? Then we'll talk about Berlin, Tokyo and NASA."),
    ("We, us, our: ourselves. You, your, yours!", "I, me, my, mine, myself... maybe."),
    ("The the the cat cat sat. The cat sat on the mat on the mat.", "The cat sat on the mat."),
]

_OURS = r"""
import json, sys
import duckdb
import pidgin_events as pe
import pidgin_load as pl
fixtures, scratch, corpus = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
summary = pl.load_all(fixtures, scratch + "/fixtures.duckdb", force=True)
assert summary.ok, summary
with pe.Experiment.create(scratch + "/corpus", name="corpus", total_conversations=1) as exp:
    with exp.conversation(agent_a="local:a", agent_b="local:b", max_turns=len(corpus)) as conv:
        for a, b in corpus:
            conv.turn_start()
            conv.message("agent_a", a)
            conv.message("agent_b", b)
            conv.turn_complete()
pl.load_experiment(exp.directory, scratch + "/corpus.duckdb")
out = {}
for name in ("fixtures", "corpus"):
    with duckdb.connect(scratch + "/" + name + ".duckdb", read_only=True) as con:
        cursor = con.execute(
            "SELECT * FROM conversation_turns ORDER BY conversation_id, turn_number"
        )
        names = [d[0] for d in cursor.description]
        out[name] = [dict(zip(names, row)) for row in cursor.fetchall()]
print(json.dumps(out, default=str))
"""

_THEIRS = r"""
import json, sys
import duckdb
from pidgin.database.import_service import ImportService
from pidgin.metrics.flat_calculator import FlatMetricsCalculator
from pathlib import Path
fixtures, scratch, corpus = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
service = ImportService(scratch + "/theirs.duckdb")
for directory in sorted(Path(fixtures, "experiments").iterdir()):
    result = service.import_experiment_from_jsonl(directory)
    assert result.success, result
service.close()
with duckdb.connect(scratch + "/theirs.duckdb", read_only=True) as con:
    cursor = con.execute("SELECT * FROM conversation_turns ORDER BY conversation_id, turn_number")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row)) for row in cursor.fetchall()]
calculator = FlatMetricsCalculator()
turns = [dict(calculator.calculate_turn_metrics(i, a, b), turn_number=i)
         for i, (a, b) in enumerate(corpus)]
print(json.dumps({"fixtures": rows, "corpus": turns}, default=str))
"""


def _child(python: str, code: str, *args: str, env: dict[str, str]) -> Any:
    done = subprocess.run(
        [python, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        sys.exit(f"{python} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _agree(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        return abs(float(ours) - float(theirs)) < 1e-9
    return bool(ours == theirs)


def _compare(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]], key: tuple[str, ...]
) -> dict[str, tuple[int, int]]:
    index = {tuple(row[k] for k in key): row for row in ours}
    result: dict[str, tuple[int, int]] = {}
    for row in theirs:
        mine = index.get(tuple(row[k] for k in key))
        if mine is None:
            continue
        for column, value in row.items():
            if column in key or column not in mine:
                continue
            agree, seen = result.get(column, (0, 0))
            result[column] = (agree + _agree(mine[column], value), seen + 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pidgin-ai-python", required=True, help="a Python with pidgin-ai 1.1.0")
    parser.add_argument(
        "--fixtures", default=str(REPO / "tests-integration" / "fixtures" / "pidgin-ai-1.1")
    )
    args = parser.parse_args()
    corpus = json.dumps(CORPUS)
    with tempfile.TemporaryDirectory(prefix="metrics-agreement-") as scratch:
        fixtures = Path(scratch) / "fixtures"
        shutil.copytree(Path(args.fixtures) / "experiments", fixtures / "experiments")
        for path in [fixtures, *fixtures.rglob("*")]:
            path.chmod(0o700 if path.is_dir() else 0o600)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, SRC))}
        ours = _child(sys.executable, _OURS, str(fixtures), scratch, corpus, env=env)
        clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        theirs = _child(
            args.pidgin_ai_python,
            _THEIRS,
            str(fixtures),
            scratch,
            corpus,
            env={**clean, "HOME": scratch},
        )
    on_fixtures = _compare(ours["fixtures"], theirs["fixtures"], ("conversation_id", "turn_number"))
    on_corpus = _compare(ours["corpus"], theirs["corpus"], ("turn_number",))
    print("| column | fixtures: turns agreeing | corpus: turns agreeing |")
    print("| --- | --- | --- |")
    for column in sorted(set(on_fixtures) | set(on_corpus)):
        cells = [
            f"{a}/{n}" if n else ""
            for a, n in (on_fixtures.get(column, (0, 0)), on_corpus.get(column, (0, 0)))
        ]
        print(f"| `{column}` | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
