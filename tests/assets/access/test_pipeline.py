"""The access groups through Dagster for one simulated day: accounting, gold against the truth, privacy, exports."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import polars as pl
import pytest

from tests.assets import cellkey_check
from tests.assets.access.helpers import read_truth, truth_dir

pytestmark = pytest.mark.slow
DAY = "2026-11-20"
EXPORTS = (("public_security", "gate_flow_hourly"), ("public_security", "security_events"),
           ("zhilian_putuo", "access_daily"))
GRID = ["community_id", "gate_id", "hour_start", "direction", "verify_mode"]


@pytest.fixture(scope="module")
def run(e2e_run):
    """The session's simulated district-day (every fault on), already run through the daily job."""
    assert e2e_run.day == DAY
    return e2e_run.root, e2e_run.sim.domains["access"], e2e_run.result


def _lake(root, layer: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(root / "lake" / layer / name / f"date={DAY}" / "*.parquet")


def test_the_day_materialises_and_every_blocking_check_passes(run):
    _, _, res = run
    assert res.success
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in res.get_asset_check_evaluations()
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert failed == []


def test_row_accounting_is_balanced_and_equals_the_simulator_truth(run):
    root, summary, _ = run
    acc = _lake(root, "audit", "row_accounting_access_events").row(0, named=True)
    assert acc["balanced"]
    for k in ("files", "lines", "landed", "accepted", "quarantined", "duplicates_in_file", "duplicates_cross_file"):
        assert acc[k] == summary[k], k
    q = _lake(root, "quarantine", "access_events").group_by("reason").len()
    assert dict(q.iter_rows()) == summary["quarantine_by_reason"]
    silver = _lake(root, "silver", "access_events")
    got_status = {str(k): v for k, v in silver.group_by("status").len().iter_rows()}
    assert got_status == summary["final_status"]


FLOW_COUNTS = ["passes", "visitors", "strangers", "denied"]
DAILY_COUNTS = ["passes", "residents", "visitors", "strangers", "denied", "persons"]


def _silver_with_keys(root) -> pl.DataFrame:
    silver = _lake(root, "silver", "access_events")
    return silver.with_columns(rk=cellkey_check.record_keys(silver["event_id"]),
                               pk=cellkey_check.record_keys(silver["person_token"] + f"@{DAY}"))


def test_gate_flow_is_the_truth_perturbed_by_the_cell_key_of_its_events(run):
    """Complete grid; every count within +-2 of the truth, zeros zero; and exactly the p-table value for the
    cell key recomputed here from silver's event ids, so re-runs and other tables reproduce it."""
    root, _, _ = run
    gold = _lake(root, "gold", "gate_flow_hourly")
    truth = read_truth(root / "landing", DAY, "gate_hour").filter(pl.col("kind") == "gate").drop("kind")
    truth = truth.with_columns(pl.col("hour_start").cast(gold.schema["hour_start"]))
    doors = pl.read_csv(root / "landing" / "sites" / DAY / "doors.csv").filter(pl.col("kind") == "gate")
    assert gold.height == doors.height * 24 * 3 * 8  # complete grid
    assert truth.join(gold, on=GRID, how="anti").height == 0  # every true cell is in the grid
    stats = cellkey_check.assert_perturbed(gold, truth, GRID, FLOW_COUNTS)
    assert abs(stats["mean"]) < 0.1 and stats["changed"] > 0.0  # unbiased, and perturbed
    ev = _silver_with_keys(root).filter(pl.col("door_kind") == "gate", pl.col("event_kind").is_in(["pass", "denied"]))
    ev = ev.with_columns(gate_id=pl.col("door_id"), hour_start=pl.col("event_ts").dt.convert_time_zone(
        "Asia/Shanghai").dt.replace_time_zone(None).dt.truncate("1h").cast(gold.schema["hour_start"]))
    is_pass = pl.col("event_kind") == "pass"
    keys = ev.group_by(GRID).agg(
        ck_passes=pl.col("rk").filter(is_pass).sum(),
        ck_visitors=pl.col("rk").filter(is_pass & (pl.col("user_type") == "visitor")).sum(),
        ck_strangers=pl.col("rk").filter(pl.col("user_type") == "stranger").sum(),
        ck_denied=pl.col("rk").filter(pl.col("event_kind") == "denied").sum())
    true_grid = gold.select(GRID).join(truth, on=GRID, how="left").with_columns(
        [pl.col(c).fill_null(0).cast(pl.Int64) for c in FLOW_COUNTS])
    want = cellkey_check.expected(true_grid, keys, GRID, FLOW_COUNTS, subsets=(("visitors", "passes"),))
    got = gold.select(*GRID, *FLOW_COUNTS)
    assert got.sort(GRID).equals(want.sort(GRID))


def test_access_daily_is_the_truth_perturbed_by_the_cell_key_of_its_events_and_person_days(run):
    root, _, _ = run
    gold = _lake(root, "gold", "access_daily")
    truth = read_truth(root / "landing", DAY, "access_daily").select(
        "community_id", *[pl.col(c).cast(pl.Int64) for c in DAILY_COUNTS])
    cellkey_check.assert_perturbed(gold, truth, ["community_id"], DAILY_COUNTS)
    ev = _silver_with_keys(root)
    is_pass = pl.col("event_kind") == "pass"
    keys = ev.group_by("community_id").agg(
        ck_passes=pl.col("rk").filter(is_pass).sum(),
        ck_residents=pl.col("rk").filter(is_pass & (pl.col("user_type") == "resident")).sum(),
        ck_visitors=pl.col("rk").filter(is_pass & (pl.col("user_type") == "visitor")).sum(),
        ck_strangers=pl.col("rk").filter(pl.col("user_type") == "stranger").sum(),
        ck_denied=pl.col("rk").filter(pl.col("event_kind") == "denied").sum(),
        ck_persons=pl.col("pk").filter(is_pass).unique().sum())
    want = cellkey_check.expected(gold.select("community_id").join(truth, on="community_id", how="left"), keys,
                                  ["community_id"], DAILY_COUNTS,
                                  subsets=(("residents", "passes"), ("visitors", "passes"), ("persons", "passes")))
    assert gold.select("community_id", *DAILY_COUNTS).sort("community_id").equals(want.sort("community_id"))


def test_security_events_equal_the_truth_and_the_fence_alarms(run):
    root, _, _ = run
    gold = _lake(root, "gold", "security_events")
    assert "person_token" not in gold.columns and "card_token" not in gold.columns
    truth = read_truth(root / "landing", DAY, "security_events").with_columns(
        pl.col("event_minute").cast(gold.schema["event_minute"]), pl.col("events").cast(pl.Int64))
    keys = ["event_type", "community_id", "building_id", "event_minute", "events"]
    ours = gold.filter(pl.col("source") == "access_control").select(keys).sort(keys, nulls_last=True)
    assert ours.equals(truth.select(keys).sort(keys, nulls_last=True))
    assert set(truth["event_type"]) == {"forced_door", "repeated_denied", "anti_passback"}
    alarms = _lake(root, "silver", "device_alarms").filter(pl.col("alarm_type") == "fence_intrusion")
    assert gold.filter(pl.col("event_type") == "fence_intrusion")["events"].sum() == alarms.height


def test_face_artefacts_were_seen_and_counted_in_bronze_metadata(run):
    root, _, _ = run
    ingest = _lake(root, "audit", "ingest_access_events").row(0, named=True)
    assert ingest["face_urls"] > 0 and ingest["face_images"] > 0 and ingest["face_embeddings"] > 0
    assert ingest["names_dropped"] > 0


def test_zero_personal_data_past_landing_including_canaries(run):
    from quality.pii_scan import load_canaries, scan_tree

    root, _, _ = run
    canaries = load_canaries(root / "landing")
    assert {c.kind for c in canaries} >= {"person_number", "card_number", "name"}
    landing_hits = scan_tree(root / "landing" / "access_events", canaries=canaries)
    assert landing_hits, "the canaries and face artefacts must be planted in landing for the scan to mean anything"
    # none of them past landing: the end-to-end test scans every file under data of this same day
    # (tests/pipelines/test_end_to_end.py::test_no_identifier_or_canary_anywhere_under_data_except_landing)
    lake = root / "lake"
    text = duckdb.sql(f"SELECT * FROM read_parquet('{lake}/silver/access_events/*/*.parquet')").pl().write_csv()
    assert "http" not in text


def test_each_export_batch_is_in_the_outbox(run):
    root, _, _ = run
    for consumer, dataset in EXPORTS:
        manifest = root / "outbox" / consumer / dataset / DAY / "v1" / "manifest.json"
        assert manifest.exists(), manifest
        assert json.loads(manifest.read_text())
    assert (truth_dir(root / "landing", DAY) / "summary.json").exists()
