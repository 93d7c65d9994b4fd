"""The warehouse asset's per-day metadata describes that day: rows per view WHERE date = the partition day,
with the whole warehouse's totals named apart."""

from __future__ import annotations

import dagster as dg
import duckdb

from assets.registry import datasets
from kernel.lake_asset import Area
from kernel.partitions import daily_partitions
from kernel.resource import NeuronResource
from kernel.settings import load_settings
from tests.warehouse.conftest import DAY1, DAY2, make_small_lake
from warehouse.catalog import build_warehouse, day_rows
from warehouse.definitions import WAREHOUSE_KEY, day_metadata, definitions


def test_day_rows_count_the_partition_day_only(tmp_path):
    small = make_small_lake(tmp_path / "data")
    totals = build_warehouse(small.warehouse, small.lake, small.outbox)
    meta = day_metadata(small.warehouse, small.lake, DAY1, totals)
    assert meta["rows/silver/telemetry"] == small.readings[DAY1] == 2
    assert meta["total_rows/silver/telemetry"] == sum(small.readings.values()) == 3
    assert meta["rows/bronze/access_doors"] == 0 < meta["total_rows/bronze/access_doors"]  # doors only on DAY2
    assert meta["rows/audit/row_accounting"] == 1
    assert "rows/dim/community" not in meta and meta["total_rows/dim/community"] == 4  # no day in a dimension
    assert "rows/meta/exports" in meta  # by partition
    assert meta["rows_on_day"] < meta["total_rows"]
    assert "| silver/telemetry | 2 | 3 |" in meta["rows_by_view"].value
    with duckdb.connect(str(small.warehouse), read_only=True) as con:
        assert day_rows(con, DAY2)["silver/telemetry"] == 1


def test_the_asset_reports_the_day_it_materialised(data_root):
    small = make_small_lake(data_root)
    s = load_settings()
    assert s.lake_dir == small.lake.root
    defs = definitions(Area(partitions=daily_partitions(s)), [], datasets(), [])
    with dg.instance_for_test() as instance:
        result = dg.materialize(defs.assets, partition_key=DAY2, instance=instance,
                                resources={"neuron": NeuronResource()})
        assert result.success
        [mat] = result.asset_materializations_for_node(WAREHOUSE_KEY.to_python_identifier())
    md = mat.metadata
    assert md["rows/silver/telemetry"].value == small.readings[DAY2] == 1
    assert md["total_rows/silver/telemetry"].value == 3
    assert md["rows/bronze/device_registry"].value == md["total_rows/bronze/device_registry"].value // 2
