"""One simulated district-day through the services groups in Dagster: accounting, gold == truth, privacy."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import polars as pl
import pytest

from kernel.lake import Lake
from quality.pii_scan import load_canaries, scan_tree
from tests.assets import cellkey_check

pytestmark = pytest.mark.slow
DAY = "2026-11-20"
K = 5
EXPORTS = [dg.AssetKey(["export", "zhilian_putuo", n]) for n in ("work_orders_daily", "community_daily")]


@pytest.fixture(scope="module")
def run(e2e_run):
    """The session's simulated district-day (3 communities, every fault on), run through the daily job."""
    assert e2e_run.day == DAY
    return e2e_run.root, e2e_run.sim.domains["services"], e2e_run.result


def _read(root, layer: str, name: str) -> pl.DataFrame:
    files = Lake(root / "lake").files(layer, name, DAY)
    return duckdb.sql(f"SELECT * FROM read_parquet({[str(f) for f in files]})").pl()


def test_run_succeeds_and_checks_pass(run):
    _, _, res = run
    assert res.success
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in res.get_asset_check_evaluations()
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert failed == []


@pytest.mark.parametrize("source", ["work_orders", "work_order_events", "fee_bills", "payments"])
def test_row_accounting_balanced_and_equal_to_truth(run, source):
    root, truth, _ = run
    acc = _read(root, "audit", f"row_accounting_{source}").row(0, named=True)
    want = truth["sources"][source]
    assert acc["balanced"]
    assert acc["landed"] == want["rows"] and acc["files"] == want["files"]
    assert acc["quarantined"] == want["quarantined"]
    assert acc["duplicates_in_file"] == want["duplicates_in_file"]


def test_undecodable_file_is_one_quarantine_row(run):
    root, truth, _ = run
    src = truth["broken_file"]["source"]
    q = _read(root, "quarantine", src).filter(pl.col("reason") == "undecodable_file")
    assert q.height == 1 and q["source_line"][0] == 0 and "_part2.csv" in q["source_file"][0]


def test_community_daily_services_parts_equal_truth_within_the_perturbation(run):
    """Fees exact; work-order counts within +-2 (cell key method); order statistics recomputed from published
    values: rates in [0, 1], the mean rating in [1, 5], duration quantiles only where 10+ orders closed, in
    whole hours, equal to the truth rounded."""
    root, _, _ = run
    want = pl.read_parquet(root / "landing" / "_truth" / "services" / DAY / "community_day.parquet")
    got = _read(root, "gold", "community_daily").sort("community_id")
    assert got["community_id"].to_list() == want["community_id"].to_list()
    assert not got["suppressed"].any()
    for g, w in zip(got.iter_rows(named=True), want.iter_rows(named=True), strict=True):
        assert g["fee_due_fen"] == w["fee_due_fen"] and g["fee_paid_fen"] == w["fee_paid_fen"]
        assert g["fee_collection_rate"] == pytest.approx(w["fee_collection_rate"], abs=1e-4)
        for c in ("work_orders_opened", "work_orders_closed"):
            assert abs(g[c] - w[c]) <= 2 and (w[c] != 0 or g[c] == 0), c
        closed = g["work_orders_closed"]
        assert (g["on_time_rate"] is None) == (closed == 0)
        assert g["on_time_rate"] is None or 0 <= g["on_time_rate"] <= 1
        assert g["satisfaction_avg"] is None or 1 <= g["satisfaction_avg"] <= 5
        for col in ("median_hours_to_close", "p90_hours_to_close"):
            if closed < 10:
                assert g[col] is None, col
            else:
                assert g[col] == pytest.approx(round(w[col]), abs=1.0), col


def test_community_daily_telemetry_parts_recomputed_from_the_lake(run):
    root, _, _ = run
    got = _read(root, "gold", "community_daily").sort("community_id")
    health = _read(root, "gold", "device_health_daily").group_by("community_id").agg(
        pl.col("devices").sum(), pl.col("reporting").sum(), pl.col("alarms_smoke").sum())
    env = _read(root, "gold", "environment_hourly").group_by("community_id").agg(pl.col("noise_max").max())
    j = got.join(health, on="community_id").join(env, on="community_id", suffix="_env")
    assert j.height == got.height
    assert (j["devices"] == j["devices_right"]).all() and (j["devices_reporting"] == j["reporting"]).all()
    assert (j["alarms_smoke"] == j["alarms_smoke_right"]).all()
    assert (j["noise_max"] == j["noise_max_env"]).all()


def test_work_orders_daily_is_the_truth_perturbed_and_the_grid_complete(run):
    root, _, _ = run
    want = pl.read_parquet(root / "landing" / "_truth" / "services" / DAY / "category_day.parquet")
    got = _read(root, "gold", "work_orders_daily")
    assert got.height == want.height == 3 * 6
    cellkey_check.assert_perturbed(got, want.select("community_id", "category", "opened", "closed"),
                                   ["community_id", "category"], ["opened", "closed"])


def test_duplicates_flagged_not_dropped_and_counted_once(run):
    root, truth, _ = run
    wo = _read(root, "silver", "work_orders")
    assert wo.filter(pl.col("duplicate_of").is_not_null()).height == truth["duplicates_flagged"] > 0
    assert wo.filter(pl.col("reopened_count") > 0).height == truth["reopened_orders"] > 0
    assert wo.filter(pl.col("source_alarm_id").is_not_null()).height == truth["alarm_orders"] > 0


def test_the_services_canaries_were_planted_in_landing(run):
    """The scan that finds none of them in the lake, the outbox or anywhere else under data is the end-to-end
    test's (tests/pipelines/test_end_to_end.py), over this same day; here: the services feeds carried them."""
    root, _, _ = run
    canaries = load_canaries(root / "landing")
    assert canaries
    assert scan_tree(root / "landing" / "property_services", canaries=canaries)


def test_export_batches_exist(run):
    root, _, _ = run
    for name in ("work_orders_daily", "community_daily"):
        manifest = root / "outbox" / "zhilian_putuo" / name / DAY / "v1" / "manifest.json"
        assert manifest.exists(), name
        assert json.loads(manifest.read_text())


def test_community_daily_fleet_equals_telemetry_truth(run):
    """Independent truth (landing/_truth/telemetry/<day>.json, written by the telemetry simulator): fleet size
    and silent devices. Alarm counts, PM2.5 and noise have no per-community simulator truth: they are checked
    against the telemetry gold above (consistency, not independent truth)."""
    root, _, _ = run
    t = json.loads((root / "landing" / "_truth" / "telemetry" / f"{DAY}.json").read_text())
    got = _read(root, "gold", "community_daily")
    assert got["devices"].sum() == t["devices"]
    assert (got["devices"] - got["devices_reporting"]).sum() == t["offline_devices"]
