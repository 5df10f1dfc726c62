"""Loading DuckDB's ``ducklake`` and ``postgres_scanner`` extensions, offline when possible.

The ``lake`` extra installs them from PyPI (``duckdb-extension-ducklake``,
``duckdb-extension-postgres-scanner``) as files built for one DuckDB version, under
``<package>/extensions/v<duckdb version>/<name>.duckdb_extension``; they are loaded from
there by path, so no network is needed. Without those packages, DuckDB's own extension
repository is tried (``INSTALL``, which needs the network once, then ``LOAD``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import LoadError

if TYPE_CHECKING:
    import duckdb

__all__ = ["LAKE_EXTENSIONS", "extension_file", "load_lake_extensions"]

LAKE_EXTENSIONS = (
    ("postgres_scanner", "duckdb_extension_postgres_scanner"),
    ("ducklake", "duckdb_extension_ducklake"),
)
"""(extension, the PyPI package's import name) for every extension a lake needs."""

_INSTALL_HINT = (
    "install the lake extra, whose pins match: pip install 'pidgin-load[lake]' "
    "(or, online, let DuckDB fetch them: INSTALL ducklake; INSTALL postgres_scanner)"
)


def extension_file(extension: str, package: str, duckdb_version: str) -> Path | None:
    """The packaged extension file for this DuckDB version, or None if not installed.

    Raises ``LoadError`` when the package is installed for another DuckDB version:
    DuckDB refuses such a file, and the message should say which versions differ.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent / "extensions"
    wanted = root / f"v{duckdb_version}" / f"{extension}.duckdb_extension"
    if wanted.is_file():
        return wanted
    built_for = sorted(path.name for path in root.glob("v*") if path.is_dir())
    raise LoadError(
        f"{package} holds the {extension} extension for DuckDB {', '.join(built_for) or '?'}, "
        f"but DuckDB is v{duckdb_version}; {_INSTALL_HINT}"
    )


def load_lake_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """LOAD every extension a lake needs: packaged files first, else DuckDB's repository."""
    import duckdb

    for extension, package in LAKE_EXTENSIONS:
        path = extension_file(extension, package, duckdb.__version__)
        try:
            if path is not None:
                con.execute(f"LOAD '{_quoted(str(path))}'")
                continue
            try:
                con.execute(f"LOAD {extension}")
            except duckdb.Error:
                con.execute(f"INSTALL {extension}")  # online: DuckDB's repository, once
                con.execute(f"LOAD {extension}")
        except duckdb.Error as exc:
            where = str(path) if path is not None else "DuckDB's extension repository"
            raise LoadError(
                f"cannot load DuckDB's {extension} extension from {where}: "
                f"{str(exc).splitlines()[0]}; {_INSTALL_HINT}"
            ) from exc


def _quoted(text: str) -> str:
    return text.replace("'", "''")
