"""Every source module stays small enough to read in one sitting: at most 500 lines.

A module that outgrows it is split by job (private ``_name.py`` modules re-exported from
the package's ``__init__``), not trimmed by squeezing lines.
"""

from __future__ import annotations

from pathlib import Path

LIMIT = 500
PACKAGES = Path(__file__).resolve().parent.parent / "packages"


def test_no_source_module_is_over_the_limit() -> None:
    modules = sorted(PACKAGES.glob("*/src/*/**/*.py"))
    assert len(modules) > 50, f"no sources found under {PACKAGES}"
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in modules}
    over = {str(path.relative_to(PACKAGES)): n for path, n in sizes.items() if n > LIMIT}
    assert not over, f"modules over {LIMIT} lines: {over}"
