"""Blocking checks stop publication: a planted leak or a bad batch in gold means no export is written."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from kernel.lake import Lake
from simulator.district import simulate_day
from simulator.telemetry import FaultRates

pytestmark = pytest.mark.slow
DAY = "2026-11-18"
HEALTH = dg.AssetKey(["gold", "device_health_daily"])
ENV = dg.AssetKey(["gold", "environment_hourly"])
ALARMS = dg.AssetKey(["silver", "device_alarms"])


@pytest.fixture(scope="module")
def built_day(tmp_path_factory: pytest.TempPathFactory):
    """A clean day materialised up to gold, with no export yet."""
    from pipelines.definitions import defs
    from tests.conftest import use_data_root

    with pytest.MonkeyPatch.context() as mp:
        root = use_data_root(mp, tmp_path_factory.mktemp("blocking") / "data")
        simulate_day(root / "landing", date.fromisoformat(DAY), n_communities=2, seed=11, rates=FaultRates.none())
        upto_gold = dg.AssetSelection.groups("telemetry_bronze", "telemetry_silver", "telemetry_gold")
        job = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job("upto_gold", upto_gold)]))
        with dg.DagsterInstance.get() as instance:
            res = job.resolve_job_def("upto_gold").execute_in_process(partition_key=DAY, instance=instance)
        assert res.success
        yield root, mp


def _publish_run(selection: dg.AssetSelection, checks_only: bool = False):
    """Run the gold checks and the exports (not the gold assets), as a re-publication would."""
    from pipelines.definitions import defs

    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job("publish", selection)]))
    # a checks-only run has no partitioned asset to take a partition key from: it is tagged instead
    where = {"tags": {"dagster/partition": DAY}} if checks_only else {"partition_key": DAY}
    with dg.DagsterInstance.get() as instance:
        return merged.resolve_job_def("publish").execute_in_process(instance=instance, raise_on_error=False, **where)


def _rewrite(root: Path, layer: str, name: str, sql: str) -> None:
    lake = Lake(root / "lake")
    files = lake.files(layer, name, DAY)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet({files})")
    con.execute(sql)
    lake.write_query(con, "SELECT * FROM t", layer, name, DAY)


def _outbox_batches(root: Path) -> list[Path]:
    return sorted((root / "outbox").glob(f"*/*/{DAY}/v*/manifest.json"))


def test_a_raw_plate_in_a_gold_column_fails_the_privacy_check_and_nothing_is_published(built_day):
    root, _ = built_day
    _rewrite(root, "gold", "device_health_daily",
             "UPDATE t SET device_type = '沪A·5F3K2' WHERE rowid = (SELECT min(rowid) FROM t)")
    export = dg.AssetKey(["export", "zhilian_putuo", "device_health_daily"])
    res = _publish_run(dg.AssetSelection.checks_for_assets(HEALTH) | dg.AssetSelection.assets(export))
    pii = [e for e in res.get_asset_check_evaluations() if e.check_name == "no_personal_data"]
    assert len(pii) == 1 and not pii[0].passed
    assert pii[0].metadata["hits"].value >= 1
    assert "plate" in json.dumps(pii[0].metadata["by_kind"].value)
    assert "5F3K2" not in json.dumps({k: str(v.value) for k, v in pii[0].metadata.items()})  # redacted
    assert export not in {m.asset_key for m in res.get_asset_materialization_events()}
    assert _outbox_batches(root) == []


def test_a_bad_batch_blocks_its_export_with_the_reason_in_check_metadata(built_day):
    root, _ = built_day
    # negative PM2.5 across one community
    _rewrite(root, "gold", "environment_hourly",
             "UPDATE t SET pm25_avg = -pm25_avg - 1 WHERE community_id = (SELECT min(community_id) FROM t)")
    export = dg.AssetKey(["export", "zhilian_putuo", "environment_hourly"])
    res = _publish_run(dg.AssetSelection.checks_for_assets(ENV) | dg.AssetSelection.assets(export))
    by_name = {e.check_name: e for e in res.get_asset_check_evaluations()}
    failed = by_name["pm25_avg_between"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["unexpected_count"].value == 24
    assert export not in {m.asset_key for m in res.get_asset_materialization_events()}
    assert not (root / "outbox" / "zhilian_putuo" / "environment_hourly" / DAY).exists()


def test_duplicate_alarm_ids_over_the_threshold_fail_the_alarm_suite(built_day):
    root, _ = built_day
    _rewrite(root, "silver", "device_alarms", "INSERT INTO t SELECT * FROM t")  # a replayed feed: 100 % duplicates
    res = _publish_run(dg.AssetSelection.checks_for_assets(ALARMS), checks_only=True)
    unique = {e.check_name: e for e in res.get_asset_check_evaluations()}["alarm_id_unique"]
    assert not unique.passed and unique.metadata["unexpected_count"].value > 0


def test_a_clean_day_passes_every_blocking_check_and_publishes(built_day, tmp_path):
    root, mp = built_day
    # rebuild gold and alarms cleanly, then publish everything
    from pipelines.definitions import defs

    telemetry_exports = dg.AssetSelection.assets(*(["export", "zhilian_putuo", k.path[-1]] for k in (HEALTH, ENV)))
    sel = (dg.AssetSelection.groups("telemetry_silver", "telemetry_gold") | telemetry_exports) \
        - dg.AssetSelection.assets(dg.AssetKey(["silver", "telemetry"]))
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job("clean", sel)]))
    with dg.DagsterInstance.get() as instance:
        res = merged.resolve_job_def("clean").execute_in_process(partition_key=DAY, instance=instance)
    assert res.success
    errors = [e.check_name for e in res.get_asset_check_evaluations()
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert errors == []
    assert len(_outbox_batches(root)) == 2
