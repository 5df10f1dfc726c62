"""tools/versions.py, run as CI and release managers run it: a real subprocess on a tree.

Each test copies the packages' real pyproject files into a temporary tree, so the
tool is exercised on the formatting we actually have, and points the tool at it
with ``--root``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "versions.py"
PYPROJECTS = sorted((REPO / "packages").glob("*/pyproject.toml"))


def run_tool(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the tool on ``root`` with a clean environment (no GitHub tag leaking in)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_REF")}
    return subprocess.run(
        [sys.executable, str(TOOL), *args, "--root", str(root)],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        check=False,
        timeout=60,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of every packages/*/pyproject.toml, and nothing else."""
    assert PYPROJECTS, "no packages/*/pyproject.toml in this checkout"
    for src in PYPROJECTS:
        dst = tmp_path / src.relative_to(REPO)
        dst.parent.mkdir(parents=True)
        shutil.copyfile(src, dst)
    return tmp_path


def current_version(root: Path) -> str:
    """The lockstep version of the copied tree, read through the tool itself."""
    out = run_tool(root, "show").stdout
    (line,) = [ln for ln in out.splitlines() if ln.startswith("lockstep version:")]
    return line.split(":", 1)[1].strip()


def pyproject(root: Path, dist: str) -> Path:
    """Path of one distribution's pyproject.toml in the tree."""
    return root / "packages" / dist / "pyproject.toml"


def test_copied_tree_is_in_lockstep(tree: Path) -> None:
    result = run_tool(tree, "check")
    assert result.returncode == 0, result.stderr
    assert "lockstep" in result.stdout


def test_bump_then_check_passes(tree: Path) -> None:
    before = {p: p.read_text(encoding="utf-8") for p in tree.glob("packages/*/pyproject.toml")}
    old = current_version(tree)

    bumped = run_tool(tree, "bump", "7.8.9")
    assert bumped.returncode == 0, bumped.stderr

    check = run_tool(tree, "check", "--tag", "v7.8.9")
    assert check.returncode == 0, check.stderr
    assert current_version(tree) == "7.8.9"

    # Text-level edits: only lines holding the old version changed, and only there.
    for path, text in before.items():
        old_lines = text.splitlines(keepends=True)
        new_lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        assert len(new_lines) == len(old_lines), path
        changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
        assert changed, path
        for a, b in changed:
            assert a.replace(old, "7.8.9") == b, (path, a, b)


def test_bump_is_idempotent(tree: Path) -> None:
    assert run_tool(tree, "bump", "2.0.0").returncode == 0
    again = run_tool(tree, "bump", "2.0.0")
    assert again.returncode == 0
    assert "already at 2.0.0" in again.stdout


def test_bump_preserves_comments_and_leaves_non_pins_alone(tree: Path) -> None:
    path = pyproject(tree, "pidgin-state")
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "dependencies = [\n",
        "dependencies = [  # siblings first\n"
        "  \"pidgin_Events >= 0.0.1 ; python_version >= '3.11'\",  # sloppy pin\n",
        1,
    )
    text += '\n[tool.example]\nnote = "pidgin-events==0.0.0 stays as written here"\n'
    path.write_text(text, encoding="utf-8")

    assert run_tool(tree, "bump", "3.1.4").returncode == 0
    after = path.read_text(encoding="utf-8")
    assert "dependencies = [  # siblings first\n" in after
    assert "\"pidgin_Events==3.1.4 ; python_version >= '3.11'\",  # sloppy pin\n" in after
    assert 'note = "pidgin-events==0.0.0 stays as written here"' in after
    assert 'name = "pidgin-state"' in after
    assert run_tool(tree, "check").returncode == 0


def test_broken_pin_is_reported_with_its_file(tree: Path) -> None:
    version = current_version(tree)
    path = pyproject(tree, "pidgin-load")
    text = path.read_text(encoding="utf-8")
    assert f'"pidgin-state=={version}"' in text
    path.write_text(text.replace(f'"pidgin-state=={version}"', '"pidgin-state>=0.1"'), "utf-8")

    result = run_tool(tree, "check")
    assert result.returncode == 1
    problems = [ln for ln in result.stderr.splitlines() if ln.startswith("packages/")]
    assert len(problems) == 1, result.stderr
    assert problems[0].startswith("packages/pidgin-load/pyproject.toml: ")
    assert "pidgin-state>=0.1" in problems[0]

    # bump repairs it.
    assert run_tool(tree, "bump", version).returncode == 0
    assert run_tool(tree, "check").returncode == 0


def test_diverging_version_is_reported_with_its_file(tree: Path) -> None:
    version = current_version(tree)
    path = pyproject(tree, "pidgin-cli")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(f'version = "{version}"', 'version = "99.0.0"', 1), "utf-8")

    result = run_tool(tree, "check")
    assert result.returncode == 1
    rel = "packages/pidgin-cli/pyproject.toml"
    assert f"{rel}: version 99.0.0 differs from the other packages' {version}" in result.stderr


def test_tag_mismatch_is_reported(tree: Path) -> None:
    version = current_version(tree)
    assert run_tool(tree, "check", "--tag", f"v{version}").returncode == 0

    result = run_tool(tree, "check", "--tag", "v99.0.0")
    assert result.returncode == 1
    for path in sorted(tree.glob("packages/*/pyproject.toml")):
        rel = path.relative_to(tree).as_posix()
        assert f"{rel}: version {version} does not match tag v99.0.0" in result.stderr


@pytest.mark.parametrize(
    ("ref_type", "expected_rc"),
    [("tag", 1), ("branch", 0)],
)
def test_tag_is_taken_from_github_actions_on_tag_builds(
    tree: Path, ref_type: str, expected_rc: int
) -> None:
    env = {"GITHUB_REF_NAME": "v99.0.0", "GITHUB_REF_TYPE": ref_type}
    result = run_tool(tree, "check", env=env)
    assert result.returncode == expected_rc, result.stderr


@pytest.mark.parametrize("bad", ["v1.2.3", "1.2.x", "latest"])
def test_bump_rejects_bad_versions_and_changes_nothing(tree: Path, bad: str) -> None:
    before = {p: p.read_text(encoding="utf-8") for p in tree.glob("packages/*/pyproject.toml")}
    result = run_tool(tree, "bump", bad)
    assert result.returncode == 2
    assert "not a PEP 440 version" in result.stderr
    assert {p: p.read_text(encoding="utf-8") for p in before} == before


def test_empty_tree_is_an_error(tmp_path: Path) -> None:
    result = run_tool(tmp_path, "check")
    assert result.returncode == 2
    assert "no packages/*/pyproject.toml" in result.stderr
