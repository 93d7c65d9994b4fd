"""Completeness is data: a day with one source missing entirely and one community silent, through Dagster.

Nothing published may say zero for what did not arrive: the gold tables fed by the missing source are
withheld (blocking check ``inputs_complete``), and every other export carries the silent community with its
measures NULL and ``completeness = 'missing'``. The run names the source, the community and why.

The day is one district's of a two-district deployment (``NEURON_DISTRICTS``): the whole daily job runs as a
district-day here, which no other test does (they run selections of it).
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from simulator.district import simulate_day
from simulator.telemetry import FaultRates

pytestmark = pytest.mark.slow
DAY = "2026-11-18"
DISTRICT = "jingan"


@pytest.fixture(scope="module")
def gappy_day(tmp_path_factory: pytest.TempPathFactory):
    # this process's code location is built first, without districts, as the other tests of the worker expect it;
    # run_day builds the two-district deployment's own
    import pipelines.definitions  # noqa: F401
    from pipelines.cli import run_day
    from tests.conftest import use_data_root

    with pytest.MonkeyPatch.context() as mp:
        root = use_data_root(mp, tmp_path_factory.mktemp("gaps") / "data")
        mp.setenv("NEURON_DISTRICTS", f"putuo,{DISTRICT}")
        landing = root / "landing" / DISTRICT
        simulate_day(landing, date.fromisoformat(DAY), n_communities=3, seed=11, rates=FaultRates.none())
        shutil.rmtree(landing / "access_events" / DAY)  # the access platform delivered nothing at all
        communities = sorted(p.name for p in (landing / "property_services" / DAY).iterdir())
        silent = communities[-1]
        for path in sorted(landing.glob(f"*/{DAY}/**/*")):  # the silent community: no file from any source
            if path.is_dir() and path.name == silent:
                shutil.rmtree(path)
            elif path.is_file() and path.name.startswith(f"{silent}-"):
                path.unlink()
        result = run_day(DAY, district=DISTRICT)
        assert result.dagster_run.tags["dagster/partition"] == f"{DAY}|{DISTRICT}"
        # everything the day wrote is the district's
        assert {p.name for p in (root / "lake").iterdir()} == {p.name for p in (root / "outbox").iterdir()} == {
            DISTRICT}
        yield root, silent, communities, result


def _rows(path: Path) -> list[dict]:
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def test_completeness_names_the_missing_source_and_the_silent_community(gappy_day):
    root, silent, communities, _ = gappy_day
    rows = _rows(root / "lake" / DISTRICT / "audit" / "completeness" / f"date={DAY}" / "*.parquet")
    by = {(r["source"], r["community_id"]): r for r in rows}
    for c in communities:
        access = by[("access_events", c)]
        assert access["status"] == "missing" and access["expected_units"] > 0
        assert access["reason"].startswith("nothing delivered") and "doors" in access["reason"]
    for source in ("telemetry", "vehicle_passages", "parking", "property_services"):
        assert by[(source, silent)]["status"] == "missing", source
        assert by[(source, silent)]["accepted_records"] == 0
        for c in communities[:-1]:
            assert by[(source, c)]["status"] in ("complete", "not_expected"), (source, c, by[(source, c)])


def test_gold_fed_by_the_missing_source_is_withheld_and_the_run_says_why(gappy_day):
    root, _, _, result = gappy_day
    checks = [c for c in result.get_asset_check_evaluations() if c.check_name == "inputs_complete"]
    failed = {c.asset_key.path[-1]: c for c in checks if not c.passed}
    assert set(failed) == {"gate_flow_hourly", "access_daily", "security_events"}
    for c in failed.values():
        assert "access_events" in c.metadata["sources_missing_everywhere"].text
    assert all(c.passed for c in checks if c.asset_key.path[-1] not in failed)
    outbox = root / "outbox" / DISTRICT
    for dataset in failed:
        assert not list(outbox.glob(f"*/{dataset}/{DAY}*")), f"{dataset} was published without its source"
    # the completeness step names the source missing everywhere in its metadata
    mats = [m for m in result.get_asset_materialization_events()
            if m.asset_key.path == ["audit", "completeness"]]
    meta = mats[0].step_materialization_data.materialization.metadata
    assert meta["sources_missing_everywhere"].text == "access_events"


def test_no_export_says_zero_for_the_silent_community(gappy_day):
    from assets.registry import datasets

    root, silent, communities, _ = gappy_day
    manifests = sorted((root / "outbox" / DISTRICT).rglob("manifest.json"))
    published = {json.loads(m.read_text())["dataset"]: m.parent for m in manifests}
    assert {"community_daily", "device_health_daily", "vehicle_flow_hourly", "work_orders_daily",
            "parking_occupancy_15min"} <= set(published)
    declared = datasets()
    seen_silent = 0
    for dataset, folder in published.items():
        ds = declared.get(f"gold/{dataset}")
        if ds is None or not ds.sources:
            continue
        measures = {c for cols in ds.sources.values() for c in cols}
        for row in _rows(folder / "data.parquet"):
            assert row["completeness"] in ("complete", "partial", "missing")
            if row["community_id"] != silent:
                continue
            seen_silent += 1
            assert row["completeness"] == "missing", (dataset, row)
            assert "missing" in row["incomplete_sources"]
            zero = {c: row[c] for c in measures if row[c] is not None}
            assert not zero, f"{dataset} publishes {zero} for a community that delivered nothing"
    assert seen_silent, "the registry grids should list the silent community (as missing, not absent)"
