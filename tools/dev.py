"""The one entry point for working on Pidgin: ``python3 tools/dev.py <command>``.

A newcomer needs only Python 3.11+ and pip. This script creates ``.venv`` in the
repository root, installs the four packages editable in one pip command (so the
exact ``==`` sibling pins resolve to the local checkouts, not to PyPI) plus the dev
tools from the root ``[dependency-groups]``, and runs the same checks as CI. It
re-installs only when a ``pyproject.toml`` changed (a hash is kept in the venv).

Commands::

    test [PYTEST ARGS]   lint, then pytest -n auto -m "not slow", then the slow tests
    lint [STEP...]       versions check, ruff check, ruff format --check, mypy, lint-imports
                         (steps: versions ruff format mypy imports; default all)
    demo [ARGS]          pidgin demo
    bench [ARGS]         tools/bench/run.py
    sync                 only create or refresh .venv
    shell                a shell with .venv activated
    run -- CMD...        any command with .venv activated

Stdlib only, because it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WINDOWS = os.name == "nt"
# Dependency order; anything else found under packages/ is installed after these.
PACKAGE_ORDER = ("pidgin-events", "pidgin-state", "pidgin-load", "pidgin-cli")
DEV_GROUP = "dev"
STAMP_NAME = ".pidgin-dev-stamp"
STAMP_FORMAT = "1"  # bump to force every checkout to re-install
MIN_PIP = (23, 1)


class DevError(Exception):
    """A problem the user has to fix; printed without a traceback."""


def say(message: str) -> None:
    """Print one progress line, flushed so it lands before the child's output."""
    print(f"==> {message}", flush=True)


def rel(path: Path) -> str:
    """``path`` relative to the repository root when possible, for short messages."""
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- the venv


@dataclass(frozen=True)
class Env:
    """A Python environment to run things in: the managed ``.venv`` or the current one."""

    python: Path
    bin_dir: Path
    venv: Path | None

    def tool(self, name: str) -> str | None:
        """Path of a console script in this environment, or on PATH as a fallback."""
        candidate = self.bin_dir / (f"{name}.exe" if WINDOWS else name)
        if candidate.exists():
            return str(candidate)
        return shutil.which(name, path=self.environ()["PATH"])

    def environ(self) -> dict[str, str]:
        """os.environ with this environment activated (bin first on PATH)."""
        env = dict(os.environ)
        env["PATH"] = str(self.bin_dir) + os.pathsep + env.get("PATH", "")
        if self.venv is not None:
            env["VIRTUAL_ENV"] = str(self.venv)
        env.pop("PYTHONHOME", None)
        return env


def venv_paths(venv: Path) -> tuple[Path, Path]:
    """(bin dir, python) inside a venv; ``Scripts`` on Windows."""
    bin_dir = venv / ("Scripts" if WINDOWS else "bin")
    return bin_dir, bin_dir / ("python.exe" if WINDOWS else "python")


def current_env() -> Env:
    """The interpreter running this script, for hatch or CI environments already set up."""
    python = Path(sys.executable)
    venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else None
    return Env(python=python, bin_dir=python.parent, venv=venv)


def package_dirs() -> list[Path]:
    """Every ``packages/*`` holding a pyproject.toml, in dependency order."""
    found = {p.parent.name: p.parent for p in (ROOT / "packages").glob("*/pyproject.toml")}
    ordered = [found.pop(name) for name in PACKAGE_ORDER if name in found]
    return ordered + [found[name] for name in sorted(found)]


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file (tomllib is imported late so Python < 3.11 gets a clear message)."""
    import tomllib

    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise DevError(f"{rel(path)}: invalid TOML: {exc}") from exc


def _normalize(name: str) -> str:
    """PEP 503/735 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve_group(groups: dict[str, Any], name: str, _stack: tuple[str, ...] = ()) -> list[str]:
    """Requirements of a PEP 735 dependency group, following ``include-group``."""
    table = {_normalize(k): v for k, v in groups.items()}
    key = _normalize(name)
    if key in _stack:
        raise DevError(f"dependency group cycle: {' -> '.join((*_stack, key))}")
    if key not in table:
        raise DevError(f"pyproject.toml: no [dependency-groups] entry {name!r}")
    out: list[str] = []
    for item in table[key]:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and set(item) == {"include-group"}:
            out.extend(resolve_group(groups, str(item["include-group"]), (*_stack, key)))
        else:
            raise DevError(f"pyproject.toml: group {name!r} has an entry pip cannot use: {item!r}")
    return list(dict.fromkeys(out))  # de-duplicate, keep order


def install_args() -> list[str]:
    """Arguments after ``pip install``: every package editable, then the dev tools."""
    args: list[str] = []
    for pkg in package_dirs():
        args += ["-e", pkg.relative_to(ROOT).as_posix()]
    groups = read_toml(ROOT / "pyproject.toml").get("dependency-groups", {})
    return args + resolve_group(groups, DEV_GROUP)


def wanted_stamp(args: Sequence[str]) -> str:
    """Hash of everything that decides what gets installed.

    The pyproject files, the pip arguments, and which packages have code: hatchling's
    editable install of a package whose ``src/<name>/`` does not exist yet points
    nowhere, so the package must be re-installed once its code appears.
    """
    h = hashlib.sha256(f"{STAMP_FORMAT}\n{json.dumps(list(args))}\n".encode())
    for path in [ROOT / "pyproject.toml", *(p / "pyproject.toml" for p in package_dirs())]:
        h.update(f"{rel(path)}\n".encode())
        h.update(path.read_bytes())
    for init in sorted((ROOT / "packages").glob("*/src/*/__init__.py")):
        h.update(f"{rel(init)}\n".encode())
    return h.hexdigest()


def _python_works(python: Path) -> bool:
    """Whether a venv's interpreter runs and is new enough (a stale venv is rebuilt)."""
    if not python.exists():
        return False
    try:
        probe = subprocess.run(
            [str(python), "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
            capture_output=True,
            check=False,
            timeout=60,
        )
    except OSError:
        return False
    return probe.returncode == 0


def _pip_version(python: Path, env: dict[str, str]) -> tuple[int, ...]:
    """pip's version inside the venv, as a tuple of ints ((0,) if unknown)."""
    out = subprocess.run(
        [str(python), "-m", "pip", "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    ).stdout
    match = re.match(r"pip (\d+(?:\.\d+)*)", out)
    return tuple(int(x) for x in match.group(1).split(".")) if match else (0,)


@contextmanager
def _install_lock(venv: Path) -> Iterator[None]:
    """Serialize installs into one venv (two terminals running dev.py at once)."""
    if sys.platform == "win32":
        yield
        return
    import fcntl

    key = hashlib.sha256(str(venv).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"pidgin-dev-{key}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_venv(venv: Path, force: bool = False, verbose: bool = False) -> Env:
    """Create ``venv`` if needed and install into it if the inputs changed."""
    bin_dir, python = venv_paths(venv)
    env = Env(python=python, bin_dir=bin_dir, venv=venv)
    with _install_lock(venv):
        if not _python_works(python):
            version = ".".join(map(str, sys.version_info[:3]))
            say(f"creating {rel(venv)} with Python {version} ({sys.executable})")
            cmd = [sys.executable, "-m", "venv", "--clear", str(venv)]
            if subprocess.run(cmd, check=False).returncode != 0:
                raise DevError(
                    "could not create the virtual environment; on Debian/Ubuntu install "
                    "the python3-venv package"
                )
        args = install_args()
        stamp = wanted_stamp(args)
        stamp_file = venv / STAMP_NAME
        current = stamp_file.read_text().strip() if stamp_file.exists() else ""
        if current == stamp and not force:
            say(f"{rel(venv)} is up to date")
            return env

        environ = env.environ()
        if _pip_version(python, environ) < MIN_PIP:
            say("upgrading pip")
            pip_req = "pip>=" + ".".join(map(str, MIN_PIP))
            cmd = [str(python), "-m", "pip", "install", "--quiet", "--upgrade", pip_req]
            _run_checked(cmd, environ)
        if force:
            reason = "forced"
        elif not current:
            reason = "first install"
        else:
            reason = "a pyproject.toml or the set of packages with code changed"
        n_pkgs = args.count("-e")
        say(
            f"installing {n_pkgs} packages (editable) and {len(args) - 2 * n_pkgs} dev tools "
            f"into {rel(venv)} ({reason})"
        )
        stamp_file.unlink(missing_ok=True)  # a failed install must be retried next time
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        if not verbose:
            pip.append("--quiet")  # errors still show; -v on dev.py shows everything
        if not sys.stdout.isatty():
            pip += ["--progress-bar", "off"]
        _run_checked([*pip, *args], environ)
        stamp_file.write_text(stamp + "\n")
    return env


def _run_checked(cmd: list[str], environ: dict[str, str]) -> None:
    """Run an install step; a failure stops everything."""
    rc = subprocess.run(cmd, cwd=ROOT, env=environ, check=False).returncode
    if rc != 0:
        raise DevError(f"`{' '.join(cmd)}` failed with exit status {rc}")


# --------------------------------------------------------------------------- running


def run(env: Env, cmd: Sequence[str], cwd: Path = ROOT) -> int:
    """Run ``cmd`` with ``env`` activated (from the repository root); its exit status."""
    environ = env.environ()
    exe = shutil.which(cmd[0], path=environ["PATH"]) or cmd[0]
    try:
        return subprocess.run([exe, *cmd[1:]], cwd=cwd, env=environ, check=False).returncode
    except FileNotFoundError:
        print(f"{cmd[0]}: command not found", file=sys.stderr)
        return 127


def _header(title: str) -> None:
    """A visible separator before each step's own output."""
    print(f"\n==> {title}", flush=True)


@dataclass
class Checks:
    """Named steps run one after another; a failure is recorded, not fatal."""

    env: Env
    results: list[tuple[str, str]] = field(default_factory=list)

    def run(self, name: str, cmd: Sequence[str], cwd: Path = ROOT) -> bool:
        """Run one step under a header and record ok/FAILED."""
        _header(name)
        ok = run(self.env, cmd, cwd) == 0
        self.results.append(("ok" if ok else "FAILED", name))
        return ok

    def skip(self, name: str, why: str) -> None:
        """Record a step that does not apply yet."""
        _header(name)
        print(f"skipped: {why}", flush=True)
        self.results.append(("skipped", f"{name} ({why})"))

    def summarize(self, title: str) -> bool:
        """Print one line per step; True if none failed."""
        _header(f"{title} summary")
        for status, name in self.results:
            print(f"  {status:<8} {name}")
        failed = any(status == "FAILED" for status, _ in self.results)
        print(f"{title}: {'FAILED' if failed else 'ok'}", flush=True)
        return not failed


def _packages_with_code(names: Sequence[str]) -> list[str]:
    """Which of these import names have an ``__init__.py`` under some packages/*/src."""
    return [n for n in names if any((ROOT / "packages").glob(f"*/src/{n}/__init__.py"))]


LINT_STEPS = ("versions", "ruff", "format", "mypy", "imports")


def lint(env: Env, only: Sequence[str] = ()) -> bool:
    """Run every check (or those named in ``only``), even after a failure; True if all passed.

    Step names: versions, ruff, format, mypy, imports. CI and hatch run them one by one.
    """
    unknown = sorted(set(only) - set(LINT_STEPS))
    if unknown:
        raise DevError(f"unknown lint step(s) {', '.join(unknown)}; choose from {LINT_STEPS}")
    selected = set(only or LINT_STEPS)
    checks = Checks(env)

    def tool(name: str) -> str:
        return env.tool(name) or name

    if "versions" in selected:
        checks.run("tools/versions.py check", [str(env.python), "tools/versions.py", "check"])
    if "ruff" in selected:
        checks.run("ruff check .", [tool("ruff"), "check", "."])
    if "format" in selected:
        checks.run("ruff format --check .", [tool("ruff"), "format", "--check", "."])

    config = read_toml(ROOT / "pyproject.toml").get("tool", {})
    if "mypy" in selected:
        wanted = [str(p) for p in config.get("mypy", {}).get("packages", [])]
        present = _packages_with_code(wanted)
        if not wanted or present == wanted:
            checks.run("mypy", [tool("mypy")])
        elif present:
            missing = ", ".join(sorted(set(wanted) - set(present)))
            flags = [flag for name in present for flag in ("-p", name)]
            checks.run(f"mypy (no code yet in {missing})", [tool("mypy"), *flags])
        else:
            checks.skip("mypy", "no package has code yet")
        checks.run("mypy tools (strict)", [tool("mypy"), "tools"])
    if "imports" in selected:
        _lint_imports(checks, config.get("importlinter", {}), tool("lint-imports"))
    return checks.summarize("lint")


def _lint_imports(checks: Checks, config: dict[str, Any], lint_imports: str) -> None:
    """Run import-linter, narrowing its config to the packages that have code.

    import-linter refuses a root package it cannot import, so while some packages are
    still empty their contracts are checked for the packages that exist: a narrowed
    copy of the config is written as the pyproject.toml of a temporary directory and
    lint-imports runs there (the packages are imported from the environment).
    """
    roots = [str(r) for r in config.get("root_packages", [])]
    if config.get("root_package"):
        roots.append(str(config["root_package"]))
    present = _packages_with_code(roots)
    if not roots or present == roots:
        checks.run("lint-imports", [lint_imports])
        return
    if not present:
        checks.skip("lint-imports", "no package has code yet")
        return
    absent = set(roots) - set(present)
    narrowed = _narrow_importlinter(config, absent)
    with tempfile.TemporaryDirectory(prefix="pidgin-lint-imports-") as tmp:
        (Path(tmp) / "pyproject.toml").write_text(_to_toml({"tool": {"importlinter": narrowed}}))
        name = f"lint-imports (no code yet in {', '.join(sorted(absent))}; contracts narrowed)"
        checks.run(name, [lint_imports], cwd=Path(tmp))


def _narrow_importlinter(config: dict[str, Any], absent: set[str]) -> dict[str, Any]:
    """The import-linter config with every mention of an absent root package removed."""

    def mentions_absent(module: str) -> bool:
        names = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", module)
        return any(n.split(".")[0] in absent for n in names)

    out = {k: v for k, v in config.items() if k not in ("contracts", "root_package")}
    out["root_packages"] = [
        r
        for r in [*config.get("root_packages", []), config.get("root_package")]
        if r and r not in absent
    ]
    contracts = []
    for contract in config.get("contracts", []):
        narrowed = dict(contract)
        for key in ("layers", "containers", "modules", "source_modules", "ignore_imports"):
            if key in narrowed:
                narrowed[key] = [m for m in narrowed[key] if not mentions_absent(m)]
        if "forbidden_modules" in narrowed:
            narrowed["forbidden_modules"] = [
                m for m in narrowed["forbidden_modules"] if not mentions_absent(m)
            ]
        required = {"layers": 2, "modules": 2, "source_modules": 1, "forbidden_modules": 1}
        if all(len(narrowed.get(k, [None] * n)) >= n for k, n in required.items()):
            contracts.append(narrowed)
    out["contracts"] = contracts
    return out


def _to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Just enough TOML writing for an import-linter config (tables, strings, lists)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    arrays: list[tuple[str, list[dict[str, Any]]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        name = f"{prefix}{key}"
        text += f"\n[{name}]\n" + _to_toml(value, prefix=f"{name}.")
    for key, items in arrays:
        name = f"{prefix}{key}"
        for item in items:
            text += f"\n[[{name}]]\n" + _to_toml(item, prefix=f"{name}.")
    return text


def _toml_value(value: Any) -> str:
    """One TOML value; JSON string escapes are valid TOML basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise DevError(f"cannot write {value!r} to an import-linter config")


# --------------------------------------------------------------------------- commands


def _has_option(args: Sequence[str], short: str, long: str = "") -> bool:
    """Whether pytest args already carry an option (``-m x``, ``-mx``, ``--long=x``)."""
    for arg in args:
        if arg == "--":
            return False
        if arg.startswith(short) and not arg.startswith("--"):
            return True
        if long and (arg == long or arg.startswith(long + "=")):
            return True
    return False


def _junit_counts(path: Path) -> tuple[int, int, int] | None:
    """(passed, failed, skipped) from a pytest JUnit XML report, or None if unreadable."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = failed = skipped = 0
    for suite in suites:
        tests += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return tests - failed - skipped, failed, skipped


def cmd_test(env: Env, args: list[str]) -> int:
    """Lint, then the fast tests in parallel, then the slow-marked ones.

    pytest's own last line would describe only the last run, so a combined
    ``N passed, N failed`` line closes the output.
    """
    lint_ok = lint(env)
    checks = Checks(env)
    user_marker = _has_option(args, "-m")
    base = [str(env.python), "-m", "pytest"]
    if not (_has_option(args, "-n", "--numprocesses") or "no:xdist" in args):
        base += ["-n", "auto"]
    totals = [0, 0, 0]
    with tempfile.TemporaryDirectory(prefix="pidgin-test-") as tmp:
        runs = [("pytest", [])] if user_marker else [("pytest -m 'not slow'", ["-m", "not slow"])]
        if not user_marker:
            runs.append(("pytest -m slow", ["-m", "slow"]))
        for i, (name, marker) in enumerate(runs):
            report = Path(tmp) / f"junit-{i}.xml"
            _header(name)
            rc = run(env, [*base, *marker, f"--junitxml={report}", *args])
            slow_step = marker == ["-m", "slow"]
            if rc == 5 and slow_step:
                print("no slow tests collected: fine", flush=True)
                rc = 0
            elif rc == 5:
                print("pytest collected no tests: that counts as a failure", flush=True)
            checks.results.append(("ok", name) if rc == 0 else ("FAILED", f"{name} (exit {rc})"))
            counts = _junit_counts(report)
            if counts is not None:
                totals = [t + c for t, c in zip(totals, counts, strict=True)]
    if not lint_ok:
        checks.results.insert(0, ("FAILED", "lint (see its summary above)"))
    ok = checks.summarize("test")
    passed, failed, skipped = totals
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if ok else 1


def _entry_point_importable(env: Env, script: str) -> bool:
    """Whether a console script's module exists yet (its wrapper is installed before)."""
    for pyproject in (ROOT / "packages").glob("*/pyproject.toml"):
        target = read_toml(pyproject).get("project", {}).get("scripts", {}).get(script)
        if isinstance(target, str):
            module = target.split(":")[0].strip()
            probe = (
                "import importlib.util, sys; "
                f"sys.exit(importlib.util.find_spec({module!r}) is None)"
            )
            cmd = [str(env.python), "-c", probe]
            result = subprocess.run(cmd, env=env.environ(), capture_output=True, check=False)
            return result.returncode == 0
    return False


def cmd_demo(env: Env, args: list[str]) -> int:
    """``pidgin demo``; until the CLI has code, the events package's example."""
    pidgin = env.tool("pidgin")
    if pidgin is not None and _entry_point_importable(env, "pidgin"):
        say(f"pidgin demo {' '.join(args)}".rstrip())
        return run(env, [pidgin, "demo", *args])
    say("the pidgin command is not there yet; running python -m pidgin_events example")
    return run(env, [str(env.python), "-m", "pidgin_events", "example", *args])


def cmd_bench(env: Env, args: list[str]) -> int:
    """The benchmarks, if they exist yet."""
    script = ROOT / "tools" / "bench" / "run.py"
    if not script.exists():
        print(f"{rel(script)} does not exist yet: no benchmarks to run", file=sys.stderr)
        return 2
    say(f"python {rel(script)} {' '.join(args)}".rstrip())
    return run(env, [str(env.python), str(script), *args])


def cmd_shell(env: Env, args: list[str]) -> int:
    """An interactive shell with the environment activated."""
    shell = os.environ.get("COMSPEC", "cmd.exe") if WINDOWS else os.environ.get("SHELL", "/bin/sh")
    say(f"starting {shell} with {rel(env.venv or env.bin_dir)} activated; exit to leave")
    return run(env, [shell, *args])


def cmd_run(env: Env, args: list[str]) -> int:
    """Any command with the environment activated."""
    if not args:
        print("usage: dev.py run -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    return run(env, args)


COMMANDS = {
    "test": cmd_test,
    "lint": lambda env, args: 0 if lint(env, args) else 1,
    "demo": cmd_demo,
    "bench": cmd_bench,
    "sync": lambda env, args: 0,
    "shell": cmd_shell,
    "run": cmd_run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, make sure the venv is current, run the command."""
    # The module only imports what Python 3.8 has, so an old python3 gets this message.
    if sys.version_info < (3, 11):  # noqa: UP036
        print("tools/dev.py needs Python 3.11 or newer (run it as python3.11 ...)")
        return 2
    parser = argparse.ArgumentParser(
        prog="tools/dev.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Arguments after the command go to the tool it runs.",
    )
    parser.add_argument(
        "--venv",
        type=Path,
        default=Path(os.environ.get("PIDGIN_VENV", ROOT / ".venv")),
        help="virtual environment to create and use (default: .venv, or $PIDGIN_VENV)",
    )
    parser.add_argument(
        "--no-venv",
        action="store_true",
        help="use the running interpreter's environment as it is (hatch, prepared CI)",
    )
    parser.add_argument(
        "--reinstall", action="store_true", help="re-install even if nothing changed"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show pip's output")
    parser.add_argument("command", choices=COMMANDS, metavar="command")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    args: list[str] = list(ns.args)
    if args[:1] == ["--"]:
        args = args[1:]
    try:
        env = (
            current_env()
            if ns.no_venv
            else ensure_venv(ns.venv.resolve(), ns.reinstall, ns.verbose)
        )
        return COMMANDS[ns.command](env, args)
    except DevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
