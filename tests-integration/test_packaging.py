"""Every distribution ships the repository's LICENSE, in its wheel and in its sdist.

hatchling takes license files from the package's own folder only, so each package keeps a
copy of the root ``LICENSE``; the first test keeps the copies equal to it. The others build
each package with its own build backend (``python -m build --no-isolation``: no download)
and look inside what a user would install.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = sorted(path.parent.name for path in (REPO / "packages").glob("*/pyproject.toml"))


def _license() -> bytes:
    return (REPO / "LICENSE").read_bytes()


def test_every_package_declares_and_keeps_a_copy_of_the_license() -> None:
    assert _license().startswith(b"MIT License\n")
    assert PACKAGES == ["pidgin-cli", "pidgin-events", "pidgin-load", "pidgin-state"]
    for name in PACKAGES:
        folder = REPO / "packages" / name
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        assert (project["license"], project["license-files"]) == ("MIT", ["LICENSE"]), name
        assert (folder / "LICENSE").read_bytes() == _license(), (
            f"packages/{name}/LICENSE differs from the root LICENSE: copy it over"
        )


def _build(package: str, out: Path, *flags: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), *flags],
        cwd=REPO / "packages" / package,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _wheel_license(wheel: Path) -> tuple[bytes, str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        return archive.read(licence), archive.read(metadata).decode()


@pytest.mark.slow
@pytest.mark.parametrize("package", PACKAGES)
def test_wheel_and_sdist_ship_the_license(tmp_path: Path, package: str) -> None:
    released = tmp_path / "released"  # what the release workflow does: sdist, then its wheel
    _build(package, released)
    (sdist,) = released.glob("*.tar.gz")
    (wheel,) = released.glob("*.whl")
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(f"{top}/LICENSE")
        assert member is not None
        assert member.read() == _license()
        info = archive.extractfile(f"{top}/PKG-INFO")
        assert info is not None
        pkg_info = info.read().decode()
    assert "License-Expression: MIT" in pkg_info
    assert "License-File: LICENSE" in pkg_info
    from_source = tmp_path / "from-source"  # what pip does when installing from a clone
    _build(package, from_source, "--wheel")
    for built in (wheel, *from_source.glob("*.whl")):
        text, metadata = _wheel_license(built)
        assert text == _license(), built.name
        assert "License-File: LICENSE" in metadata, built.name
