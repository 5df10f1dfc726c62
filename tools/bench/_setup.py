"""Everything the suite measures on, made by the suite itself and cached in the work dir.

- a scratch virtual environment with ``pidgin-ai==1.1.0`` from PyPI (created by a full run;
  a quick run only uses one that already exists);
- pidgin-ai experiments made with its offline ``local:test`` model: 50 conversations x 50
  turns, and single conversations of 10/25/50/100 turns for the size figures;
- our own logs: the pidgin-ai experiments rewritten in our format (same content), an
  experiment of 100 conversations, an output root of 100 experiments, and 1 GB of logs.

A dataset is reused when its ``.complete.json`` stamp matches the spec it was made from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench._harness import TOOLS_DIR, ChildError, child_env, run_child

PIDGIN_AI_VERSION = "1.1.0"
Task = Callable[[], dict[str, Any]]
REPO = TOOLS_DIR.parent
DEFAULT_WORK = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pidgin-bench"
FIXTURES = REPO / "tests-integration" / "fixtures" / "pidgin-ai-1.1"
"""pidgin-ai 1.1 experiments committed with the repository (the tests' ``legacy_fixtures``,
found the same way by the root conftest.py); quick runs compare on them."""

# The approach of tests-integration/fixtures/pidgin-ai-1.1/make_experiment.py, as a string
# that is written into the work directory and run with pidgin-ai's Python. pidgin-ai's own
# command line stops `local:test` conversations after two turns (its replies become
# identical and only the "stop" convergence action is accepted there), so this calls the
# background-runner path that `pidgin run -q` uses, with convergence_action="warn".
MAKE_EXPERIMENT = """\
import json, os, sys, time
os.environ.setdefault("PIDGIN_ORIGINAL_CWD", os.getcwd())
from pidgin.experiments import ExperimentConfig, ExperimentManager
from pidgin.io.paths import get_experiments_dir

name, reps, turns, par = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
config = ExperimentConfig(
    name=name, agent_a_model="local:test", agent_b_model="local:test", repetitions=reps,
    max_turns=turns, max_parallel=par, convergence_action="warn", display_mode="quiet",
    prompt_tag="[HUMAN]",
)
problems = config.validate()
if problems:
    sys.exit(f"invalid config: {problems}")
manager = ExperimentManager(base_dir=get_experiments_dir())
started = time.time()
experiment_id = manager.start_experiment(config, working_dir=os.getcwd())
directory = manager.get_experiment_directory(experiment_id)
print("started", experiment_id, directory, flush=True)
manifest = get_experiments_dir() / directory / "manifest.json"
while True:
    time.sleep(1)
    if time.time() - started > float(os.environ.get("BENCH_MAKE_TIMEOUT", "1500")):
        sys.exit(f"{experiment_id} did not finish in time")
    try:
        status = json.loads(manifest.read_text()).get("status")
    except (OSError, ValueError):
        continue
    if status in ("completed", "failed") and not manager.is_running(experiment_id):
        break
print("finished", experiment_id, status, f"wall_s={time.time() - started:.1f}", flush=True)
"""


class Workspace:
    """The work directory, the two Pythons, the datasets, and the children that measure."""

    def __init__(
        self,
        work: Path,
        *,
        quick: bool,
        log: Callable[[str], None],
        pidgin_ai_python: str | None = None,
        pidgin_ai_dir: Path | None = None,
        use_pidgin_ai: bool = True,
    ) -> None:
        self.root = work.resolve()
        self.quick = quick
        self.log = log
        self.data = self.root / ("quick" if quick else "full")
        self.scratch_root = self.root / "scratch"
        self.rounds = 1 if quick else 3
        self.reps = 1 if quick else 3
        self.python = sys.executable
        self.ours_env = child_env(os.environ)
        base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        self.legacy_home = self.root / "home-pidgin-ai"
        self.legacy_env = child_env(
            {**base, "HOME": str(self.legacy_home), "NO_COLOR": "1", "TERM": "dumb"},
            keep_pythonpath=False,
        )
        self._legacy_python_option = pidgin_ai_python
        self._legacy_dir_option = pidgin_ai_dir
        self._use_legacy = use_pidgin_ai
        self._legacy_python: str | None = None
        self.legacy_reason = ""
        self._resolved = False
        self._cache: dict[str, Any] = {}
        self._scratch_count = 0
        for path in (self.data, self.legacy_home):
            path.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.scratch_root, ignore_errors=True)
        self.scratch_root.mkdir(parents=True)

    # --- children -----------------------------------------------------------------------

    def ours(self, module: str, func: str, timeout: float = 1800, **args: Any) -> dict[str, Any]:
        """Run ``bench.module.func(**args)`` in a fresh process of our Python."""
        return run_child(
            self.python,
            module,
            func,
            args,
            env=self.ours_env,
            cwd=self.scratch_root,
            timeout=timeout,
        )

    def legacy(self, module: str, func: str, timeout: float = 1800, **args: Any) -> dict[str, Any]:
        """Run ``bench.module.func(**args)`` in a fresh process of pidgin-ai's Python."""
        python = self.legacy_python()
        if python is None:
            raise ChildError(f"pidgin-ai not available: {self.legacy_reason}")
        return run_child(
            python, module, func, args, env=self.legacy_env, cwd=self.scratch_root, timeout=timeout
        )

    def ours_task(self, module: str, func: str, timeout: float = 1800, **args: Any) -> Task:
        """A contender for ``interleave``: ``ours(module, func, **args)`` when called."""
        return lambda: self.ours(module, func, timeout=timeout, **args)

    def legacy_task(self, module: str, func: str, timeout: float = 1800, **args: Any) -> Task:
        """A contender for ``interleave``: ``legacy(module, func, **args)`` when called."""
        return lambda: self.legacy(module, func, timeout=timeout, **args)

    def scratch(self, name: str) -> Path:
        """A fresh, empty directory that the end of the run removes."""
        self._scratch_count += 1
        path = self.scratch_root / f"{self._scratch_count:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.scratch_root, ignore_errors=True)

    # --- pidgin-ai ----------------------------------------------------------------------

    @property
    def venv(self) -> Path:
        return self.root / f"venv-pidgin-ai-{PIDGIN_AI_VERSION}"

    def legacy_python(self) -> str | None:
        """pidgin-ai's Python, installing it first if this is a full run; None if unavailable."""
        if self._resolved:
            return self._legacy_python
        self._resolved = True
        self._legacy_python = self._find_legacy_python()
        if self._legacy_python is None:
            self.log(f"  pidgin-ai comparisons skipped: {self.legacy_reason}")
        return self._legacy_python

    @property
    def legacy_python_used(self) -> str | None:
        """pidgin-ai's Python if a section asked for it and it was available."""
        return self._legacy_python if self._resolved else None

    def _find_legacy_python(self) -> str | None:
        if not self._use_legacy:
            self.legacy_reason = "disabled with --no-pidgin-ai"
            return None
        if self._legacy_python_option:
            version = self._legacy_version(self._legacy_python_option)
            if version is None:
                self.legacy_reason = (
                    f"{self._legacy_python_option} cannot import pidgin (pidgin-ai)"
                )
                return None
            if version != PIDGIN_AI_VERSION:
                self.log(
                    f"  warning: {self._legacy_python_option} has pidgin-ai {version}, "
                    f"not {PIDGIN_AI_VERSION}"
                )
            return self._legacy_python_option
        python = self.venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        if python.exists() and self._legacy_version(str(python)) == PIDGIN_AI_VERSION:
            return str(python)
        if self.quick:
            self.legacy_reason = (
                f"quick mode never installs pidgin-ai and there is no venv at {self.venv} "
                "(a full run creates it; or pass --pidgin-ai-python)"
            )
            return None
        self.log(f"  creating {self.venv} with pidgin-ai=={PIDGIN_AI_VERSION} from PyPI ...")
        started = time.perf_counter()
        shutil.rmtree(self.venv, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(self.venv)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"pidgin-ai=={PIDGIN_AI_VERSION}",
            ],
        ]
        for step in steps:
            proc = subprocess.run(
                step, capture_output=True, text=True, env=self.legacy_env, check=False
            )
            if proc.returncode != 0:
                self.legacy_reason = (
                    f"could not install pidgin-ai=={PIDGIN_AI_VERSION} into {self.venv} "
                    f"(`{' '.join(step[-3:])}` exited {proc.returncode}: "
                    f"{proc.stderr.strip()[-300:]})"
                )
                return None
        if self._legacy_version(str(python)) != PIDGIN_AI_VERSION:
            self.legacy_reason = (
                f"{self.venv} was created but does not import pidgin-ai {PIDGIN_AI_VERSION}"
            )
            return None
        self.log(f"  pidgin-ai venv ready in {time.perf_counter() - started:.0f} s")
        return str(python)

    def _legacy_version(self, python: str) -> str | None:
        code = "import importlib.metadata as m, pidgin; print(m.version('pidgin-ai'))"
        try:
            proc = subprocess.run(
                [python, "-c", code],
                capture_output=True,
                text=True,
                env=self.legacy_env,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    def legacy_command(self) -> list[str] | None:
        """pidgin-ai's ``pidgin`` console script (what its users type)."""
        python = self.legacy_python()
        if python is None:
            return None
        script = Path(python).parent / "pidgin"
        return [str(script)] if script.exists() else [python, "-m", "pidgin"]

    # --- datasets -----------------------------------------------------------------------

    def _stamped(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any] | None:
        """The saved result of dataset ``name`` if it was completed from this same spec."""
        if name in self._cache:
            cached: dict[str, Any] = self._cache[name]
            return cached
        stamp = self.data / f"{name}.complete.json"
        if not stamp.exists() or not (self.data / name).exists():
            return None
        saved = json.loads(stamp.read_text())
        if saved.get("spec") != dict(spec):
            return None
        self._cache[name] = saved["result"]
        return dict(saved["result"])

    def _fresh(self, name: str) -> Path:
        (self.data / f"{name}.complete.json").unlink(missing_ok=True)
        directory = self.data / name
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        return directory

    def _stamp(self, name: str, spec: Mapping[str, Any], result: dict[str, Any]) -> None:
        stamp = self.data / f"{name}.complete.json"
        stamp.write_text(json.dumps({"spec": dict(spec), "result": result}, indent=1))
        self._cache[name] = result

    def _cached(
        self, name: str, spec: Mapping[str, Any], build: Callable[[Path], dict[str, Any]]
    ) -> dict[str, Any]:
        """The dataset ``name`` made by ``build(dir)``; rebuilt when its spec changed."""
        saved = self._stamped(name, spec)
        if saved is not None:
            return saved
        directory = self._fresh(name)
        self.log(f"  making dataset {name} ...")
        started = time.perf_counter()
        result = build(directory)
        self._stamp(name, spec, result)
        self.log(f"  dataset {name} ready in {time.perf_counter() - started:.1f} s")
        return result

    def _make_legacy(
        self, directory: Path, name: str, reps: int, turns: int, parallel: int
    ) -> subprocess.Popen[str]:
        python = self.legacy_python()
        assert python is not None
        script = self.root / "make_pidgin_ai_experiment.py"
        script.write_text(MAKE_EXPERIMENT)
        return subprocess.Popen(
            [python, str(script), name, str(reps), str(turns), str(parallel)],
            cwd=directory,
            env=self.legacy_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _wait_legacy(self, proc: subprocess.Popen[str], directory: Path) -> str:
        out, _ = proc.communicate(timeout=1800)
        found = sorted((directory / "pidgin_output" / "experiments").glob("*/manifest.json"))
        if proc.returncode != 0 or not found:
            raise ChildError(f"making a pidgin-ai experiment in {directory} failed: {out[-800:]}")
        return str(found[0].parent)

    def legacy_experiment(self) -> Path | None:
        """The pidgin-ai experiment to compare on: 50x50 (full), the 5x20 fixture (quick)."""
        if self._legacy_dir_option is not None:
            return self._legacy_dir_option
        if self.quick:
            fixture = FIXTURES / "experiments" / "exp-5x20-full_f41ebd59"
            if fixture.is_dir():
                return fixture
            if self.legacy_python() is None:
                return None
            shape = (2, 5)
        else:
            if self.legacy_python() is None:
                return None
            shape = (50, 50)

        def build(directory: Path) -> dict[str, Any]:
            proc = self._make_legacy(
                directory, f"bench-{shape[0]}x{shape[1]}", shape[0], shape[1], 10
            )
            return {"dir": self._wait_legacy(proc, directory)}

        spec = {"conversations": shape[0], "turns": shape[1], "pidgin_ai": PIDGIN_AI_VERSION}
        return Path(self._cached(f"pidgin-ai-{shape[0]}x{shape[1]}", spec, build)["dir"])

    def legacy_like_experiment(self) -> tuple[Path, str] | None:
        """A real pidgin-ai experiment if there is one, else one in its shape, generated.

        The generated one (``_data.write_pidgin_ai_shaped``: pidgin-ai's file names, key
        order and whole history in every request) lets our side be measured on the
        pidgin-ai format even with no pidgin-ai at hand; it is labelled as generated.
        """
        real = self.legacy_experiment()
        if real is not None:
            return real, "pidgin-ai 1.1 experiment"
        shape = (5, 20) if self.quick else (50, 50)
        spec = {"conversations": shape[0], "turns": shape[1], "generator": "bench._data"}

        def build(directory: Path) -> dict[str, Any]:
            target = directory / f"pidgin-ai-shaped-{shape[0]}x{shape[1]}"
            self.ours(
                "_data",
                "pidgin_ai_shaped",
                directory=str(target),
                conversations=shape[0],
                turns=shape[1],
            )
            return {"dir": str(target)}

        made = self._cached(f"pidgin-ai-shaped-{shape[0]}x{shape[1]}", spec, build)
        return Path(made["dir"]), "pidgin-ai-shaped experiment (generated, not pidgin-ai's own)"

    def legacy_turn_series(self, turns: tuple[int, ...]) -> dict[int, Path]:
        """Single pidgin-ai conversations of each length (made in parallel), for log size."""
        if self.quick or self.legacy_python() is None:
            return {}
        specs = {n: {"conversations": 1, "turns": n, "pidgin_ai": PIDGIN_AI_VERSION} for n in turns}
        out: dict[int, Path] = {}
        making: dict[int, tuple[subprocess.Popen[str], Path]] = {}
        for n in turns:
            saved = self._stamped(f"pidgin-ai-turns-{n}", specs[n])
            if saved is not None:
                out[n] = Path(saved["dir"])
                continue
            directory = self._fresh(f"pidgin-ai-turns-{n}")
            making[n] = (self._make_legacy(directory, f"bench-turns-{n}", 1, n, 1), directory)
        if making:
            self.log(f"  making pidgin-ai conversations of {sorted(making)} turns in parallel ...")
        for n, (proc, directory) in making.items():
            result = {"dir": self._wait_legacy(proc, directory)}
            self._stamp(f"pidgin-ai-turns-{n}", specs[n], result)
            out[n] = Path(result["dir"])
        return dict(sorted(out.items()))

    def translated(self, legacy_dir: Path, name: str) -> Path:
        """``legacy_dir`` rewritten in our format (same events and content)."""

        def build(directory: Path) -> dict[str, Any]:
            return self.ours(
                "_data", "translate_legacy", source=str(legacy_dir), root=str(directory)
            )

        spec = {"source": str(legacy_dir), "source_bytes": _dir_bytes(legacy_dir)}
        return Path(self._cached(name, spec, build)["dir"])

    def synthetic(
        self, name: str, conversations: int, turns: int, message_bytes: int, seed: int = 0
    ) -> Path:
        spec = {
            "conversations": conversations,
            "turns": turns,
            "message_bytes": message_bytes,
            "seed": seed,
        }

        def build(directory: Path) -> dict[str, Any]:
            return self.ours(
                "_data",
                "synthetic",
                root=str(directory),
                name=name,
                conversations=conversations,
                turns=turns,
                message_bytes=message_bytes,
                seed=seed,
            )

        return Path(self._cached(name, spec, build)["dir"])

    def ours_experiment(self) -> tuple[Path, str]:
        """Our experiment comparable to ``legacy_experiment()``, and where its content came from."""
        legacy = self.legacy_like_experiment()
        if legacy is not None:
            name = "ours-comparable" if self.legacy_experiment() else "ours-comparable-shaped"
            return self.translated(legacy[0], name), f"rewritten from {legacy[0].name}"
        shape = (5, 20) if self.quick else (50, 50)
        path = self.synthetic(f"ours-{shape[0]}x{shape[1]}", shape[0], shape[1], 100)
        return path, "synthetic (no pidgin-ai experiment to rewrite)"

    def ours_hundred(self) -> Path:
        """100 conversations: the size of the no-change refresh target."""
        turns = 2 if self.quick else 50
        return self.synthetic(f"ours-100x{turns}", 100, turns, 100, seed=1)

    def output_root_of_experiments(self) -> tuple[Path, int]:
        """An output root holding many small experiments, for ``pidgin experiment list``."""
        count, conversations, turns = (10, 2, 2) if self.quick else (100, 5, 10)
        spec = {"experiments": count, "conversations": conversations, "turns": turns}

        def build(directory: Path) -> dict[str, Any]:
            self.ours(
                "_data",
                "synthetic_many",
                root=str(directory),
                count=count,
                conversations=conversations,
                turns=turns,
                message_bytes=100,
            )
            return {"dir": str(directory)}

        return Path(self._cached(f"root-{count}-experiments", spec, build)["dir"]), count

    def big_logs(self) -> tuple[Path, Path, int]:
        """About 1 GB of our logs, and a tenth of it with the same conversations (fewer turns)."""
        conversations, turns, message = (20, 10, 1000) if self.quick else (500, 100, 10_000)
        large = self.synthetic(
            f"big-{conversations}x{turns}", conversations, turns, message, seed=7
        )
        small = self.synthetic(
            f"big-{conversations}x{turns // 10}", conversations, turns // 10, message, seed=8
        )
        return large, small, conversations


def _dir_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())


def link_copy(source: Path, dest: Path) -> Path:
    """A private view of an experiment for a loader: logs hard-linked, the rest copied.

    The loader writes markers and appends its outcome to ``experiment.jsonl``, never to a
    conversation log; so those can be shared with the cached dataset (no 1 GB copy).
    """
    dest.mkdir(parents=True)
    for path in source.iterdir():
        if not path.is_file():
            continue
        if path.name.endswith(".jsonl") and path.name != "experiment.jsonl":
            try:
                os.link(path, dest / path.name)
                continue
            except OSError:
                pass
        shutil.copy2(path, dest / path.name)
    return dest


def copy_dir(source: Path, dest: Path) -> Path:
    """A private copy of an experiment, for anything that writes markers or appends."""
    shutil.copytree(source, dest)
    return dest
