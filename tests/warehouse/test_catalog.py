"""The analysts' warehouse: views per layer over the lake, rebuildable while a reader holds it open."""

from __future__ import annotations

from pathlib import Path

import duckdb

from assets.registry import datasets
from exports.contracts import load_contracts
from kernel.lake import Lake
from warehouse.catalog import build_warehouse, leftovers


def test_build_without_data_gives_typed_empty_views(tmp_path: Path):
    path = tmp_path / "wh" / "neuron.duckdb"
    counts = build_warehouse(path, Lake(tmp_path / "lake"), tmp_path / "outbox", load_contracts())
    assert all(v == 0 for k, v in counts.items() if k != "dim/district")
    con = duckdb.connect(str(path), read_only=True)
    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'silver' AND table_name = 'telemetry'").fetchall()
    declared = [(c.name, c.type) for c in datasets()["silver/telemetry"].columns]
    assert [c for c in cols if c[0] != "date" and not c[0].endswith("_local")] == [
        (n, "TIMESTAMP WITH TIME ZONE" if t == "TIMESTAMPTZ" else t) for n, t in declared]
    # the dictionary describes every column of every view and table in the file
    described = con.execute("SELECT count(*) FROM meta.data_dictionary").fetchall()[0][0]
    columns = con.execute("SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
                          "AND NOT internal").fetchall()[0][0]
    assert described == columns > sum(len(d.columns) for d in datasets().values())


def test_rebuild_while_an_analyst_holds_the_file_read_only(tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    con = duckdb.connect()
    lake.write_query(con, "SELECT 'c1' AS community_id, 'smoke' AS device_type, 3::BIGINT AS devices",
                     "gold", "probe", "2026-11-01")
    path = tmp_path / "neuron.duckdb"
    build_warehouse(path, lake, tmp_path / "outbox")
    analyst = duckdb.connect(str(path), read_only=True)
    before = analyst.execute("SELECT count(*) FROM meta.data_dictionary").fetchall()[0][0]
    # a pipeline run rebuilds the file while the analyst's connection is open: no lock error
    build_warehouse(path, lake, tmp_path / "outbox")
    assert analyst.execute("SELECT count(*) FROM meta.data_dictionary").fetchall()[0][0] == before
    analyst.close()
    fresh = duckdb.connect(str(path), read_only=True)
    assert fresh.execute("SELECT count(*) FROM meta.data_dictionary").fetchall()[0][0] == before


def test_a_killed_build_leaves_temp_files_the_next_build_removes(tmp_path: Path):
    path = tmp_path / "wh" / "neuron.duckdb"
    path.parent.mkdir()
    killed = [path.with_name(".neuron.duckdb.dead1234.tmp"), path.with_name(".neuron.duckdb.dead1234.tmp.wal"),
              path.with_name(".neuron_internal.duckdb.dead1234.tmp")]
    killed[0].write_bytes(b"half")
    killed[1].write_bytes(b"half")
    killed[2].mkdir()  # the internal file's private build folder
    assert leftovers(path) == sorted(killed)
    build_warehouse(path, Lake(tmp_path / "lake"), tmp_path / "outbox")
    assert leftovers(path) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["neuron.duckdb", "neuron_internal.duckdb"]
