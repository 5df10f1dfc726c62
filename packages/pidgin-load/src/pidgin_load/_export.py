"""``export_database``: the loaded tables out to Hive-partitioned Parquet or CSV files.

``DIR/<table>/experiment_id=<id>/data_0.parquet``: the layout pandas, polars, Spark,
DuckDB and Arrow read as one dataset per table, with ``experiment_id`` restored from the
folder names. Exporting an experiment again overwrites its own files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import LoadError
from ._schema import TABLES

if TYPE_CHECKING:
    import os

__all__ = ["EXPORT_FORMATS", "export_database"]

EXPORT_FORMATS = ("parquet", "csv")


def export_database(
    db_path: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    experiment_ids: list[str] | None = None,
    file_format: str = "parquet",
) -> dict[str, int]:
    """Write every table's rows (of some experiments, default all) under ``target``.

    ``experiment_ids`` may name experiments by id or by run directory name. Returns the
    rows written per table. Raises ``LoadError`` for a missing or unreadable database, an
    unknown experiment, or a format other than ``EXPORT_FORMATS``.
    """
    import duckdb

    if file_format not in EXPORT_FORMATS:
        raise LoadError(f"unknown export format {file_format!r}; use one of {EXPORT_FORMATS}")
    db = Path(db_path)
    if not db.is_file():
        raise LoadError(f"no database at {db}")
    out = Path(target)
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise LoadError(f"cannot open {db} to read: {exc}") from exc
    try:
        known = con.execute("SELECT experiment_id, directory FROM experiments").fetchall()
        if experiment_ids is None:
            wanted = [str(row[0]) for row in known]
        else:
            by_name = {str(d): str(e) for e, d in known} | {str(e): str(e) for e, _ in known}
            unknown = [name for name in experiment_ids if name not in by_name]
            if unknown:
                raise LoadError(f"{db} has no experiment {', '.join(unknown)}")
            wanted = sorted({by_name[name] for name in experiment_ids})
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LoadError(f"cannot write {out}: {exc.strerror or exc}") from None
        options = "FORMAT parquet" if file_format == "parquet" else "FORMAT csv, HEADER true"
        written: dict[str, int] = {}
        for table in TABLES:
            row = con.execute(
                f"SELECT count(*) FROM {table} WHERE list_contains($ids::VARCHAR[], experiment_id)",
                {"ids": wanted},
            ).fetchone()
            written[table] = int(row[0]) if row else 0
            if not written[table]:
                continue
            con.execute(
                f"COPY (SELECT * FROM {table} "
                "WHERE list_contains($ids::VARCHAR[], experiment_id)) "
                f"TO '{_quoted(out / table)}' "
                f"({options}, PARTITION_BY (experiment_id), OVERWRITE_OR_IGNORE true)",
                {"ids": wanted},
            )
        return written
    except duckdb.Error as exc:
        raise LoadError(f"exporting {db} to {out} failed: {exc}") from exc
    finally:
        con.close()


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
