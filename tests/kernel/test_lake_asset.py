"""The lake-asset template: deps come from the reads, the declaration gives the schema, outputs are checked."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from kernel.dataset import SUPPRESSION_COLUMNS, C, Dataset
from kernel.domain import Domain, DomainError
from kernel.lake_asset import Area, Read, Step, lake_asset
from kernel.resource import NeuronResource

DAY = "2026-11-20"
PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="Asia/Shanghai")
RAW = Dataset("bronze", "widgets", "one row per widget", "Widgets as delivered.",
              (C("community_id", "VARCHAR", "community", False), C("n", "BIGINT", "count", False)), domain="demo",
              order_by="community_id")
DAILY = Dataset("gold", "widgets_daily", "one row per community", "Widgets per community.",
                (C("community_id", "VARCHAR", "community", False), C("widgets", "BIGINT", "widgets"),
                 *SUPPRESSION_COLUMNS), domain="demo", keys=("community_id",), counts=("widgets",))
SIDE = Dataset("audit", "widgets_side", "one row", "A side table.", (C("x", "BIGINT", "x", False),), domain="demo")


@lake_asset(RAW, landing=["widgets"])
def bronze_widgets(step: Step) -> dict:
    step.write("SELECT * FROM (VALUES ('a', 3), ('b', 9)) t(community_id, n)")
    return {"source": "inline"}


@lake_asset(DAILY, reads={"raw": RAW, "yesterday": Read(RAW, days_back=1)})
def gold_widgets_daily(step: Step) -> None:
    step.write("SELECT community_id, n AS widgets, false AS suppressed, NULL AS suppression FROM raw")


@lake_asset(RAW, SIDE)
def forgets_an_output(step: Step) -> None:
    step.write("SELECT 'a' AS community_id, 1 AS n")


def _materialize(tmp_path: Path, *steps) -> dg.ExecuteInProcessResult:
    area = Area(PARTITIONS, k_thresholds={DAILY.key: 7}, ingest_pool="test_pool")
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize([s.build(area) for s in steps], partition_key=DAY, raise_on_error=False,
                              resources={"neuron": NeuronResource(data_dir=str(tmp_path / "data"))},
                              instance=instance)


def test_deps_are_the_reads_and_an_earlier_day_is_a_time_window_mapping():
    area = Area(PARTITIONS)
    asset = gold_widgets_daily.build(area)
    spec = next(iter(asset.specs))
    deps = {d.asset_key: d.partition_mapping for d in spec.deps}
    assert set(deps) == {dg.AssetKey(["bronze", "widgets"])}  # read twice (today, yesterday): one dep
    bronze = next(iter(bronze_widgets.build(area).specs))
    assert {d.asset_key for d in bronze.deps} == {dg.AssetKey(["landing", "widgets"])}
    yesterday_only = lake_asset(DAILY, reads={"y": Read(RAW, days_back=1)})(gold_widgets_daily.fn).build(area)
    mapping = next(iter(next(iter(yesterday_only.specs)).deps)).partition_mapping
    assert isinstance(mapping, dg.TimeWindowPartitionMapping) and (mapping.start_offset, mapping.end_offset) == (-1, -1)


def test_group_kinds_and_column_schema_come_from_the_declaration():
    spec = next(iter(gold_widgets_daily.build(Area(PARTITIONS)).specs))
    assert spec.group_name == "demo_gold" and spec.kinds >= {"duckdb", "parquet"}
    schema = spec.metadata["dagster/column_schema"]
    assert [(c.name, c.type) for c in schema.columns] == [(c.name, c.type) for c in DAILY.columns]
    assert not schema.columns[0].constraints.nullable


def test_row_count_is_read_back_from_the_partition_and_gold_gets_a_preview(tmp_path: Path):
    res = _materialize(tmp_path, bronze_widgets, gold_widgets_daily)
    assert res.success
    mats = {m.asset_key.to_user_string(): m.materialization.metadata for m in res.get_asset_materialization_events()}
    assert mats["bronze/widgets"]["dagster/row_count"].value == 2
    assert mats["bronze/widgets"]["source"].value == "inline"
    assert "preview" not in mats["bronze/widgets"]
    assert mats["gold/widgets_daily"]["dagster/row_count"].value == 2
    assert "| community_id | widgets |" in mats["gold/widgets_daily"]["preview"].value


def test_a_declared_output_the_step_did_not_write_fails_the_step(tmp_path: Path):
    res = _materialize(tmp_path, forgets_an_output)
    assert not res.success
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "did not write audit/widgets_side" in failure.event_specific_data.error.message


def test_parsers_take_the_ingest_pool_and_k_comes_from_the_area():
    area = Area(PARTITIONS, k_thresholds={DAILY.key: 7}, ingest_pool="test_pool")
    quarantine = Dataset("quarantine", "widgets", "one row per rejected widget", "Rejected.",
                         (C("reason", "VARCHAR", "why", False),), domain="demo")
    parser = lake_asset(RAW, quarantine)(bronze_widgets.fn).build(area)
    assert parser.op.pool == "test_pool"
    assert bronze_widgets.build(area).op.pool is None
    assert area.k(DAILY) == 7 and area.k(RAW) == 5


def test_a_domain_refuses_undeclared_outputs_and_unwritten_datasets():
    with pytest.raises(DomainError, match="does not declare"):
        Domain("demo", (RAW,), (bronze_widgets, gold_widgets_daily))
    with pytest.raises(DomainError, match="no step writes"):
        Domain("demo", (RAW, DAILY), (bronze_widgets,))
    with pytest.raises(DomainError, match="more than one step"):
        Domain("demo", (RAW, SIDE), (bronze_widgets, forgets_an_output))
    assert Domain("demo", (RAW, DAILY), (bronze_widgets, gold_widgets_daily)).definitions(Area(PARTITIONS))
