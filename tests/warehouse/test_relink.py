"""A relocatable warehouse: a copy of the data folder (lake and warehouse) opens and queries elsewhere once
``warehouse.relink`` points its views at the copied lake; relative paths would not have done it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.warehouse.conftest import SmallLake, make_small_lake
from warehouse.catalog import build_warehouse, internal_path
from warehouse.relink import RelinkError, main, relink

QUERY = "SELECT date, count(*) FROM silver.telemetry GROUP BY ALL ORDER BY ALL"


def _comments(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
                           "WHERE database_name = current_database() ORDER BY ALL").fetchall()


def _moved(tmp_path: Path) -> tuple[SmallLake, Path, list[tuple]]:
    """Build at a/data, copy the data folder to b/data, delete a: returns the copy and what a answered."""
    small = make_small_lake(tmp_path / "a" / "data")
    build_warehouse(small.warehouse, small.lake, small.outbox)
    with duckdb.connect(str(small.warehouse), read_only=True) as con:
        before = con.execute(QUERY).fetchall()
    copy = tmp_path / "b" / "data"
    shutil.copytree(small.data, copy)
    shutil.rmtree(tmp_path / "a")
    return small, copy, before


def test_a_copied_warehouse_queries_again_once_relinked(tmp_path: Path, capsys: pytest.CaptureFixture):
    _, copy, before = _moved(tmp_path)
    wh = copy / "warehouse" / "neuron.duckdb"
    with duckdb.connect(str(wh), read_only=True) as con, pytest.raises(duckdb.IOException):
        con.execute(QUERY)  # the views still name the deleted lake
    comments = _comments(wh)
    assert main([str(wh)]) == 0  # the lake defaults to ../lake beside the warehouse folder
    assert "relinked" in capsys.readouterr().out
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute(QUERY).fetchall() == before
        assert con.execute("SELECT lake_dir, relinked_at IS NOT NULL, relinked_at_local IS NOT NULL "
                           "FROM meta.warehouse").fetchall() == [(str(copy / "lake"), True, True)]
        # the dimension over the registry views works again too
        assert con.execute("SELECT count(*) FROM dim.community").fetchall()[0][0] == 4
    assert _comments(wh) == comments  # comments survive the re-created views


def test_the_internal_file_relinks_the_same_way(tmp_path: Path):
    _, copy, before = _moved(tmp_path)
    internal = internal_path(copy / "warehouse" / "neuron.duckdb")
    counts = relink(internal, copy / "lake")
    assert counts["silver/telemetry"] == sum(n for _, n in before)
    with duckdb.connect(str(internal), read_only=True) as con:
        assert con.execute(QUERY).fetchall() == before
    assert os.stat(internal).st_mode & 0o777 == 0o600


def test_a_wrong_lake_folder_is_refused_and_the_file_left_unchanged(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture):
    small, copy, _ = _moved(tmp_path)
    wh = copy / "warehouse" / "neuron.duckdb"
    (tmp_path / "empty").mkdir()
    with duckdb.connect(str(wh), read_only=True) as con:
        views = con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL").fetchall()
    with pytest.raises(RelinkError, match="no files match"):
        relink(wh, tmp_path / "empty")
    assert main([str(wh), str(tmp_path / "nowhere")]) == 1
    assert "no such lake folder" in capsys.readouterr().err
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL").fetchall() == views
        assert con.execute("SELECT lake_dir, relinked_at FROM meta.warehouse").fetchall() == [
            (str(small.lake.root), None)]


def test_relative_lake_paths_resolve_against_the_working_directory_not_the_file(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch):
    """Why relink exists: DuckDB resolves a view's relative path against the process's working directory (or
    the session's file_search_path), never against the database file, so no relative path works for every
    reader."""
    small = make_small_lake(tmp_path / "data")
    db = small.data / "relative.duckdb"
    monkeypatch.chdir(small.data)
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE VIEW v AS SELECT * FROM read_parquet('lake/silver/telemetry/date=*/*.parquet')")
    monkeypatch.chdir(tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        with pytest.raises(duckdb.IOException):
            con.execute("SELECT count(*) FROM v").fetchall()
        con.execute(f"SET file_search_path = '{small.data}'")  # per session: not stored in the file
        assert con.execute("SELECT count(*) FROM v").fetchall() == [(3,)]
    with duckdb.connect(str(db), read_only=True) as con, pytest.raises(duckdb.IOException):
        con.execute("SELECT count(*) FROM v").fetchall()
