"""DuckLake (issue 16): eight loaders into one lake against one loader into a local file.

Each contender is a set of real ``pidgin-load --all`` processes over fresh copies of the
same experiments: eight at once, each with its own output root (as if on eight
machines), into a fresh lake on a throwaway PostgreSQL (``tools/pgcluster.py``, data
files in a local directory); one into a fresh local DuckDB file, the baseline; and one
into a fresh lake, to separate the lake's own cost from the gain of parallel loaders.
Figures are experiments loaded per second of wall time, start of the first process to
end of the last. Then the dashboard view is queried on both stores (open connections,
warm), alternately.

Runs only where the ``lake`` extra is installed (``hatch run lake:bench``, or
``python tools/bench/run.py --only lake`` in such an environment) and PostgreSQL's server
binaries exist (``tools/ci/install-postgres.sh``). Not part of the default full run.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._harness import (
    ChildError,
    Measure,
    SectionResult,
    compare,
    interleave,
    median,
    missing,
)
from bench._setup import copy_dir

if TYPE_CHECKING:
    from bench._setup import Workspace

NAME = "lake"
LOADERS = 8
_DASHBOARD = "SELECT COLUMNS(*)::VARCHAR FROM experiment_dashboard ORDER BY experiment_id"


def _unavailable() -> str | None:
    """Why the lake cannot be measured here, or None."""
    import duckdb

    extensions = importlib.import_module("pidgin_load._extensions")
    for extension, package in extensions.LAKE_EXTENSIONS:
        try:
            found = extensions.extension_file(extension, package, duckdb.__version__)
        except Exception as exc:
            return str(exc)
        if found is None:
            return f"{package} is not installed: run `hatch run lake:bench`"
    try:
        _pgcluster().find_bindir()
    except Exception as exc:
        return str(exc)
    return None


def _pgcluster() -> Any:
    tools = str(Path(__file__).resolve().parent.parent)
    if tools not in sys.path:
        sys.path.insert(0, tools)
    return importlib.import_module("pgcluster")


def _experiments(ws: Workspace) -> tuple[list[Path], str]:
    count, conversations, turns = (16, 2, 2) if ws.quick else (40, 5, 10)
    root, _ = ws.output_root_of_experiments((count, conversations, turns))
    dirs = sorted(path for path in (root / "experiments").iterdir() if path.is_dir())
    return dirs, f"{count} experiments of {conversations} conversations x {turns} turns"


def _roots(dirs: list[Path], scratch: Path, loaders: int) -> list[Path]:
    """Fresh copies of the experiments, dealt round-robin into ``loaders`` output roots."""
    roots = [scratch / f"root-{uuid.uuid4().hex[:8]}-{n}" for n in range(loaders)]
    for index, directory in enumerate(dirs):
        copy_dir(directory, roots[index % loaders] / "experiments" / directory.name)
    return roots


def _load(roots: list[Path], extra: list[str], env: dict[str, str]) -> float:
    """Run one ``pidgin-load --all`` per root at once; wall seconds until all are done."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "pidgin_load", "--all", str(root), "--json", *extra],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for root in roots
    ]
    for process in processes:
        out, err = process.communicate(timeout=3600)
        if process.returncode != 0:
            raise ChildError(f"pidgin-load failed ({process.returncode}): {err[-2000:]}")
        if json.loads(out)["failed"]:
            raise ChildError(f"pidgin-load reported failures: {out[-2000:]}")
    return time.perf_counter() - started


def run(ws: Workspace) -> SectionResult:
    result = SectionResult()
    why = _unavailable()
    if why is not None:
        result.rows.append(missing(NAME, "8 loaders into one lake", why))
        return result
    dirs, shape = _experiments(ws)
    count = len(dirs)
    scratch = ws.scratch("lake")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env["PIDGIN_LOAD_LOCK_TIMEOUT"] = "600"
    pgcluster = _pgcluster()
    with pgcluster.PostgresCluster() as cluster:
        lakes: list[str] = []

        def fresh_lake() -> list[str]:
            dsn = cluster.create_database(f"bench_{uuid.uuid4().hex[:10]}")
            lakes.append(f"ducklake:postgres:{dsn}")
            data = scratch / f"data-{len(lakes)}"
            return ["--target", lakes[-1], "--data-path", str(data)]

        def eight() -> dict[str, Any]:
            seconds = _load(_roots(dirs, scratch, LOADERS), fresh_lake(), env)
            ws.log(f"    {LOADERS} loaders into a lake: {seconds:.1f} s")
            return {"eight": [count / seconds]}

        def one_lake() -> dict[str, Any]:
            seconds = _load(_roots(dirs, scratch, 1), fresh_lake(), env)
            ws.log(f"    1 loader into a lake: {seconds:.1f} s")
            return {"one_lake": [count / seconds]}

        def one_file() -> dict[str, Any]:
            db = scratch / f"local-{uuid.uuid4().hex[:8]}.duckdb"
            seconds = _load(_roots(dirs, scratch, 1), ["--db", str(db)], env)
            ws.log(f"    1 loader into a file: {seconds:.1f} s")
            return {"one_file": [count / seconds], "db": str(db)}

        rounds = interleave(
            ws.rounds,
            [
                ("8 loaders, lake", eight),
                ("1 loader, file", one_file),
                ("1 loader, lake", one_lake),
            ],
            ws.log,
        )
        base = rounds.measure("one_file", "exp/s")
        figure = f"load {shape}: {LOADERS} loader processes into one lake"
        result.rows.append(
            compare(
                NAME,
                figure,
                rounds.measure("eight", "exp/s"),
                "1 loader into a local DuckDB file",
                base,
                how="higher",
                note=rounds.error("8 loaders, lake", "1 loader, file"),
            )
        )
        result.rows.append(
            compare(
                NAME,
                f"load {shape}: 1 loader process into a lake",
                rounds.measure("one_lake", "exp/s"),
                "1 loader into a local DuckDB file",
                base,
                how="higher",
                note=rounds.error("1 loader, lake"),
            )
        )
        local_db = rounds.extras.get("1 loader, file", {}).get("db")
        if lakes and local_db:
            result.rows.append(_query_row(lakes[-1], Path(local_db), count, ws))
            result.rows.append(_command_row(lakes[-1], Path(local_db), count, ws, env))
        result.notes.append(
            f"{LOADERS} loaders share this machine's cores with PostgreSQL; on separate "
            "machines each would have its own. Catalog on 127.0.0.1, data files on local disk."
        )
    return result


def _query_row(target: str, local_db: Path, count: int, ws: Workspace) -> Any:
    import duckdb

    pidgin_load = importlib.import_module("pidgin_load")
    reps = 3 if ws.quick else 15
    lake = pidgin_load.connect_lake(target)
    local = duckdb.connect(str(local_db), read_only=True)
    try:
        assert len(lake.execute(_DASHBOARD).fetchall()) == count  # warm, and the same answer
        assert len(local.execute(_DASHBOARD).fetchall()) == count
        times: dict[str, list[float]] = {"lake": [], "file": []}
        for _ in range(reps):
            for name, con in (("lake", lake), ("file", local)):
                started = time.perf_counter()
                con.execute(_DASHBOARD).fetchall()
                times[name].append(time.perf_counter() - started)
    finally:
        lake.close()
        local.close()
    return _lake_against_file(
        times,
        f"query experiment_dashboard ({count} experiments), open connection",
        "the same view in the local DuckDB file",
        ws,
    )


def _command_row(target: str, local_db: Path, count: int, ws: Workspace, env: Any) -> Any:
    """``pidgin query --target``, as a user runs it: a process that attaches, reads, prints."""
    reps = 3 if ws.quick else 7
    times: dict[str, list[float]] = {"lake": [], "file": []}
    for _ in range(reps):
        for name, where in (("lake", target), ("file", str(local_db))):
            command = [sys.executable, "-m", "pidgin_cli", "query", _DASHBOARD]
            command += ["--target", where, "--format", "json"]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            times[name].append(time.perf_counter() - started)
            if done.returncode != 0:
                raise ChildError(f"pidgin query --target {where}: {done.stderr.strip()}")
            if len(json.loads(done.stdout)) != count:
                raise ChildError(f"pidgin query --target {where}: not {count} rows")
    return _lake_against_file(
        times,
        f"pidgin query --target LAKE experiment_dashboard ({count} experiments), whole command",
        "pidgin query --target FILE (the local DuckDB file)",
        ws,
    )


def _lake_against_file(
    times: dict[str, list[float]], figure: str, baseline: str, ws: Workspace
) -> Any:
    lake, file = median(times["lake"]), median(times["file"])
    ws.log(f"  {figure}: lake {lake:.4f} s, file {file:.4f} s")
    lake_measure, file_measure = Measure.of(times["lake"], "s"), Measure.of(times["file"], "s")
    return compare(NAME, figure, lake_measure, baseline, file_measure, how="within")
