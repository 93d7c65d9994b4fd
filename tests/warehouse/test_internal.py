"""Exact internal gold, kept apart: datasets of the layer ``internal`` never enter the analysts' file; they go
to neuron_internal.duckdb next to it, owner-only (0600), which holds everything else as well."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import duckdb

from assets.registry import datasets
from kernel.lake import Lake
from tests.warehouse.conftest import DAY1, SmallLake, write_rows
from warehouse.catalog import build_warehouse, internal_path

GOLD = "gold/environment_hourly"


def _internal_twin():
    """What the lead will declare: the gold dataset's columns, exact counts, under lake/internal/<name>/."""
    return dataclasses.replace(datasets()[GOLD], layer="internal", counts=(), derived=(), margins=())


def _with_internal() -> dict:
    twin = _internal_twin()
    return {**datasets(), twin.key: twin}


def test_internal_datasets_stay_out_of_the_analysts_file(small_lake: SmallLake):
    twin = _internal_twin()
    write_rows(small_lake.lake, twin, DAY1, [
        {"community_id": f"'{small_lake.renamed}'", "hour_start": f"TIMESTAMP '{DAY1} 23:00:00'", "devices": "1",
         "pm25_avg": "35", "observations": "2"},
        {"community_id": f"'{small_lake.renamed}'", "hour_start": f"TIMESTAMP '{DAY1} 22:00:00'", "devices": "1",
         "pm25_avg": "31", "observations": "1"}])
    counts = build_warehouse(small_lake.warehouse, small_lake.lake, small_lake.outbox, datasets=_with_internal())
    assert counts["internal/environment_hourly"] == 2

    analysts = duckdb.connect(str(small_lake.warehouse), read_only=True)
    assert analysts.execute("SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'internal'"
                            ).fetchall() == [(0,)]
    assert analysts.execute("SELECT count(*) FROM duckdb_views() WHERE contains(sql, '/internal/')").fetchall() == [
        (0,)]
    assert analysts.execute("SELECT count(*) FROM meta.data_dictionary WHERE layer = 'internal' "
                            "OR contains(dataset_description_zh, '内部精确值')").fetchall() == [(0,)]
    assert analysts.execute("SELECT file_kind FROM meta.warehouse").fetchall() == [("analysts",)]

    internal = duckdb.connect(str(internal_path(small_lake.warehouse)), read_only=True)
    assert internal.execute("SELECT count(*) FROM internal.environment_hourly").fetchall() == [(2,)]
    assert internal.execute("SELECT count(*) FROM gold.environment_hourly").fetchall() == [(1,)]  # the rest too
    assert internal.execute("SELECT count(*) FROM dim.community").fetchall() == [(4,)]
    assert internal.execute("SELECT file_kind FROM meta.warehouse").fetchall() == [("internal",)]
    titles = {t for (t,) in internal.execute("SELECT DISTINCT dataset_title_zh FROM meta.data_dictionary "
                                             "WHERE layer = 'internal'").fetchall()}
    assert "社区环境监测小时数据（内部精确值）" in titles
    declared = {ds.name for ds in datasets().values() if ds.layer == "internal"}
    assert declared and len(titles) == len(declared) + 1  # the declared twins of the protected golds, and this one


def test_the_internal_file_is_readable_by_its_owner_only(tmp_path: Path):
    old = os.umask(0)  # even a permissive umask
    try:
        path = tmp_path / "warehouse" / "neuron.duckdb"
        build_warehouse(path, Lake(tmp_path / "lake"), tmp_path / "outbox", datasets=_with_internal())
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(internal_path(path)).st_mode) == 0o600
    assert internal_path(path) == path.with_name("neuron_internal.duckdb")
    assert sorted(p.name for p in path.parent.iterdir()) == ["neuron.duckdb", "neuron_internal.duckdb"]


def test_the_internal_file_is_built_before_any_internal_dataset_exists(small_lake: SmallLake):
    without = {k: d for k, d in datasets().items() if d.layer != "internal"}
    build_warehouse(small_lake.warehouse, small_lake.lake, small_lake.outbox, datasets=without)
    internal = duckdb.connect(str(internal_path(small_lake.warehouse)), read_only=True)
    assert internal.execute("SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'internal'").fetchall() == [
        (1,)]  # waiting for the first internal dataset
    assert internal.execute("SELECT count(*) FROM silver.telemetry").fetchall() == [(3,)]
    assert stat.S_IMODE(os.stat(internal_path(small_lake.warehouse)).st_mode) == 0o600
