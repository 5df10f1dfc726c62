"""Naming a lake, and adapting the schema to it: no server needed."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

import pidgin_load as pl
from pidgin_load._extensions import extension_file
from pidgin_load._lake import lake_sql
from pidgin_load._schema import migrate
from pidgin_load._target import same_target


@pytest.fixture(autouse=True)
def _no_lake_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pl.TARGET_ENV, raising=False)
    monkeypatch.delenv(pl.LAKE_DATA_PATH_ENV, raising=False)


def test_target_and_data_path_are_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lake = pl.lake_target("ducklake:postgres:dbname=lab host=db", "relative/data")
    assert lake == pl.LakeTarget("dbname=lab host=db", f"{tmp_path / 'relative' / 'data'}/")
    remote = pl.lake_target("ducklake:postgres:dbname=lab", "s3://bucket/pidgin")
    assert remote is not None
    assert remote.data_path == "s3://bucket/pidgin/"
    assert pl.lake_target("ducklake:postgres:dbname=lab") == pl.LakeTarget("dbname=lab", None)
    assert pl.lake_target() is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dbname=lab host=db", "not a lake target"),
        ("ducklake:sqlite:lake.db", "not a lake target"),
        ("ducklake:postgres:   ", "names no PostgreSQL database"),
    ],
)
def test_bad_targets_are_refused_by_name(spec: str, message: str) -> None:
    with pytest.raises(pl.LoadError, match=message) as caught:
        pl.lake_target(spec)
    assert "--target" in str(caught.value)


def test_environment_names_the_lake_and_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pl.TARGET_ENV, "ducklake:postgres:dbname=from_env")
    monkeypatch.setenv(pl.LAKE_DATA_PATH_ENV, "/shared/lake")
    assert pl.lake_target() == pl.LakeTarget("dbname=from_env", "/shared/lake/")
    assert pl.lake_target("ducklake:postgres:dbname=given", "/elsewhere") == pl.LakeTarget(
        "dbname=given", "/elsewhere/"
    )
    monkeypatch.setenv(pl.TARGET_ENV, "postgres://nope")
    with pytest.raises(pl.LoadError, match=re.escape(f"${pl.TARGET_ENV}")):
        pl.lake_target()


def test_a_data_path_without_a_target_is_an_error() -> None:
    with pytest.raises(pl.LoadError, match="needs a lake"):
        pl.lake_target(None, "/shared/lake")


@pytest.mark.parametrize(
    ("catalog", "label"),
    [
        ("dbname=lab host=db password=s3cr3t user=me", "dbname=lab host=db password=*** user=me"),
        ("dbname=lab password = 'a b\\' c' host=db", "dbname=lab password = *** host=db"),
        ("postgresql://me:s3cr3t@db:5432/lab", "postgresql://me:***@db:5432/lab"),
        ("dbname=lab host=db", "dbname=lab host=db"),
    ],
)
def test_label_never_shows_a_password(catalog: str, label: str) -> None:
    assert pl.LakeTarget(catalog, None).label == pl.LAKE_PREFIX + label


def test_markers_match_their_own_target_only(tmp_path: Path) -> None:
    lake = pl.LakeTarget("dbname=lab host=db", None)
    db = tmp_path / "x.duckdb"
    assert same_target(lake.label, lake)
    assert not same_target(lake.label, db)
    assert not same_target(str(db), lake)
    assert same_target(str(db), db)
    assert not same_target(None, lake)
    assert not same_target(pl.LAKE_PREFIX + "dbname=other", lake)


def _columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, str]]:
    return con.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()


def test_lake_schema_is_the_local_one_without_keys_and_computed_defaults() -> None:
    local, adapted = duckdb.connect(), duckdb.connect()
    try:
        migrate(local, "local")
        migrate(adapted, "adapted", adapt=lake_sql)
        assert _columns(adapted) == _columns(local)  # same tables, columns, types, NOT NULLs
        assert local.execute("FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'")
        keys = adapted.execute(
            "SELECT count(*) FROM duckdb_constraints() "
            "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
        ).fetchone()
        assert keys == (0,)
    finally:
        local.close()
        adapted.close()
    for _, sql in pl.MIGRATIONS:
        text = lake_sql(sql)
        assert not re.search(r"PRIMARY KEY|UNIQUE|DEFAULT\s+current_timestamp|CREATE INDEX", text)
        assert text.count("NOT NULL") >= sql.count("NOT NULL")


def test_extension_built_for_another_duckdb_is_refused_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "pidgin_test_fake_extension"
    (package / "extensions" / "v0.0.1").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "extensions" / "v0.0.1" / "fake.duckdb_extension").write_bytes(b"")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = extension_file("fake", "pidgin_test_fake_extension", "0.0.1")
    assert found == package / "extensions" / "v0.0.1" / "fake.duckdb_extension"
    with pytest.raises(pl.LoadError, match=r"v0\.0\.1.*v9\.9\.9.*pidgin-load\[lake\]"):
        extension_file("fake", "pidgin_test_fake_extension", "9.9.9")
    assert extension_file("fake", "pidgin_test_no_such_package", "0.0.1") is None
