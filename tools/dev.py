"""Run a hatch script on a machine that has only Python 3.11+ and pip.

    python3 tools/dev.py demo            # hatch run demo: install, then a demo experiment
    python3 tools/dev.py test [ARGS]     # hatch run test: lint, then the whole test suite
    python3 tools/dev.py SCRIPT [ARGS]   # any script of hatch.toml (lint, bench, fmt, ...)

Hatch is the task runner (hatch.toml) and ``.venv`` is its default environment. This
bootstrap only creates ``.venv`` when it is missing, puts pip >= 25.1 and hatch into it,
and hands over to ``hatch run``, which installs the four packages (editable) and the
root ``[dependency-groups]`` into ``.venv`` and keeps them in step.

Stdlib only, because it runs before anything is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
EXE = ".exe" if os.name == "nt" else ""
BOOTSTRAP = ("pip>=25.1", "hatch>=1.16")  # hatch 1.16: workspaces


def _works(python: Path) -> bool:
    """Whether ``.venv``'s interpreter runs and is new enough (a stale one is rebuilt)."""
    if not python.exists():
        return False
    probe = [str(python), "-c", "import sys; sys.exit(sys.version_info < (3, 11))"]
    try:
        return subprocess.run(probe, capture_output=True, check=False, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def bootstrap() -> Path:
    """``.venv`` with pip and hatch in it; the path of its ``hatch``."""
    python, hatch = BIN / f"python{EXE}", BIN / f"hatch{EXE}"
    if not _works(python):
        print(f"==> creating .venv with Python {sys.version.split()[0]}", flush=True)
        created = subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=False)
        if created.returncode != 0:
            sys.exit("could not create .venv; on Debian/Ubuntu install the python3-venv package")
    if not hatch.exists():
        print(f"==> installing {' and '.join(BOOTSTRAP)} into .venv", flush=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if subprocess.run([*pip, *BOOTSTRAP], check=False).returncode != 0:
            sys.exit("could not install hatch into .venv (see pip's message above)")
    return hatch


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036  (an old python3 gets a message, not a traceback)
        print("tools/dev.py needs Python 3.11 or newer (run it as python3.11 ...)", file=sys.stderr)
        return 2
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    hatch = bootstrap()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    # Hints Pidgin prints must work in the caller's shell, where .venv/bin is not on PATH.
    env.setdefault("PIDGIN_HINT_PATH", env.get("PATH", ""))
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    try:
        return subprocess.run([str(hatch), "run", *argv], cwd=ROOT, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
