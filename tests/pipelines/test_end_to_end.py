"""A simulated district-day through a real Dagster run: every asset, checksums, accounting, quarantine."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from exports.filedrop import current_batches, verify_batch
from simulator.telemetry import FAULT_CLASSES

pytestmark = pytest.mark.slow

# fault class injected by the simulator -> quarantine reason it must produce (rsrp is repaired, not rejected)
REJECTED_FAULTS = [f for f in FAULT_CLASSES if f != "rsrp_sign_dropped"]


def _lake(run, layer: str, name: str) -> str:
    return str(run.root / "lake" / layer / name / f"date={run.day}" / "*.parquet")


def test_every_asset_materialised_in_one_dagster_run(e2e_run):
    assert e2e_run.result.success
    from pipelines.definitions import defs

    # every asset but the incident feed, which is unpartitioned and runs on its own (exports.incidents)
    expected = {k.to_user_string() for k in defs.resolve_all_asset_keys() if k.path[0] != "incidents"}
    materialised = {e.asset_key.to_user_string() for e in e2e_run.result.get_asset_materialization_events()}
    assert materialised == expected  # landing too: the pull step reports the files as delivered (no vendor config)
    landing = [e for e in e2e_run.result.get_asset_materialization_events() if e.asset_key.path[0] == "landing"]
    meta = {e.asset_key.path[1]: e.materialization.metadata for e in landing}
    assert meta["telemetry"]["landing_files"].value > 0
    assert "no vendor config" in meta["telemetry"]["mode"].value


def test_run_is_recorded_in_the_instance(e2e_run):
    import dagster as dg

    with dg.DagsterInstance.from_config(str(e2e_run.root / "dagster_home")) as instance:
        run = instance.get_run_by_id(e2e_run.result.run_id)
        assert run is not None and run.is_success
        assert run.tags["dagster/partition"] == e2e_run.day


def test_manifest_checksums_verify(e2e_run):
    batches = current_batches(e2e_run.root / "outbox", day=e2e_run.day)  # the version `latest` names
    assert len(batches) >= 2 and all(b.name == "v1" for b in batches)
    con = duckdb.connect()
    for b in batches:
        assert verify_batch(b) == []
        m = json.loads((b / "manifest.json").read_text())
        assert m["partition"] == e2e_run.day and m["version"] == 1 and not m["is_correction"]
        assert {f["path"] for f in m["files"]} == {"data.parquet", "data.csv", "contract.yaml", "contract.schema.json"}
        assert con.execute(f"SELECT count(*) FROM '{b / 'data.parquet'}'").fetchall()[0][0] == m["row_count"]
        csv_bytes = (b / "data.csv").read_bytes()
        assert csv_bytes.startswith(b"\xef\xbb\xbf"), "CSV must carry a UTF-8 BOM for Excel"
        assert csv_bytes.count(b"\n") == m["row_count"] + 1


def test_row_accounting_holds_and_matches_simulator_truth(e2e_run):
    checks = {c.check_name: c for c in e2e_run.result.get_asset_check_evaluations()}
    assert checks["row_accounting"].passed
    con = duckdb.connect()
    landed, accepted, quarantined, dup_in, dup_x, balanced = con.execute(
        f"SELECT landed, accepted, quarantined, duplicates_in_file, duplicates_cross_file, balanced "
        f"FROM '{_lake(e2e_run, 'audit', 'row_accounting_telemetry')}'").fetchall()[0]
    assert balanced and landed == accepted + quarantined + dup_in + dup_x
    t = e2e_run.truth
    # every duplicated line the simulator wrote is counted as a duplicate, reading by reading
    assert dup_in + dup_x == t.duplicate_readings
    # a malformed line counts as one record; every other line contributes its readings
    expected_landed = (t.readings + t.duplicate_readings - t.fault_readings["malformed_json"]
                       + t.faults["malformed_json"])
    assert landed == expected_landed


def test_quarantine_holds_each_injected_fault_class_with_its_reason(e2e_run):
    con = duckdb.connect()
    rows = dict(con.execute(
        f"SELECT reason, count(DISTINCT (source_file, source_line)) FROM '{_lake(e2e_run, 'quarantine', 'telemetry')}' "
        "GROUP BY 1").fetchall())
    for fault in REJECTED_FAULTS:
        injected = e2e_run.truth.faults[fault]
        assert injected > 0, f"the simulator injected no {fault}"
        assert rows.get(fault) == injected, f"{fault}: quarantined {rows.get(fault)} lines, injected {injected}"
    assert set(rows) == set(REJECTED_FAULTS)
    nulls = con.execute(f"SELECT count(*) FROM '{_lake(e2e_run, 'quarantine', 'telemetry')}' "
                        "WHERE reason IS NULL OR source_file IS NULL OR source_line IS NULL").fetchall()[0][0]
    assert nulls == 0


def test_rsrp_with_dropped_sign_is_restored_not_rejected(e2e_run):
    con = duckdb.connect()
    restored, positive = con.execute(
        f"SELECT count(*) FILTER (WHERE quality_flag = 'rsrp_sign_restored'), count(*) FILTER (WHERE value > 0) "
        f"FROM '{_lake(e2e_run, 'silver', 'telemetry')}' WHERE metric = 'rsrp_dbm'").fetchall()[0]
    assert restored >= e2e_run.truth.faults["rsrp_sign_dropped"]
    assert positive == 0


def test_silver_units_are_canonical_and_in_range(e2e_run):
    con = duckdb.connect()
    metrics = str(Path(__file__).parents[2] / "assets" / "telemetry" / "metrics.csv")
    bad = con.execute(
        f"SELECT count(*) FROM '{_lake(e2e_run, 'silver', 'telemetry')}' s JOIN read_csv('{metrics}') m USING (metric) "
        "WHERE s.value < m.min_value OR s.value > m.max_value OR s.unit <> m.unit").fetchall()[0][0]
    assert bad == 0
    # water meters report litres on CTWing; silver holds cubic metres
    max_water = con.execute(f"SELECT max(value) FROM '{_lake(e2e_run, 'silver', 'telemetry')}' "
                            "WHERE metric = 'water_m3'").fetchall()[0][0]
    assert max_water < 10_000


def test_gold_device_health_is_consistent_with_registry_and_alarms(e2e_run):
    con = duckdb.connect()
    devices, reporting, offline = con.execute(
        f"SELECT sum(devices), sum(reporting), sum(alarms_offline) FROM '{_lake(e2e_run, 'gold', 'device_health_daily')}'"
    ).fetchall()[0]
    assert devices == e2e_run.truth.devices
    assert devices - reporting == e2e_run.truth.offline_devices
    assert offline >= devices - reporting
    hours = con.execute(f"SELECT count(DISTINCT hour(hour_start)) FROM '{_lake(e2e_run, 'gold', 'environment_hourly')}'"
                        ).fetchall()[0][0]
    assert hours == 24


def test_wearer_ids_never_reach_the_lake(e2e_run):
    con = duckdb.connect()
    tokens = con.execute(f"SELECT DISTINCT subject_token FROM '{_lake(e2e_run, 'silver', 'telemetry')}' "
                         "WHERE subject_token IS NOT NULL").fetchall()
    assert tokens and all(t[0].startswith("person_v") for t in tokens)
    for parquet in (e2e_run.root / "lake").rglob("*.parquet"):
        text = con.execute(f"SELECT * FROM '{parquet}'").fetchall().__repr__()
        assert "P310107" not in text, f"raw wearer id in {parquet}"


def test_rerunning_a_partition_yields_the_same_rows_and_publishes_nothing_new(e2e_run):
    """A second run of the day's telemetry chain and of every export and publish step (as an operator re-runs a
    day from the UI): the same rows, and no consumer is sent a new version. The rest of the day is not re-run
    here: the killed-runs test re-executes every kind of step and compares the whole lake and outbox."""
    import dagster as dg

    from pipelines.definitions import defs

    con = duckdb.connect()

    def snapshot():
        out = {}
        for layer, name in [("bronze", "telemetry"), ("silver", "telemetry"), ("quarantine", "telemetry"),
                            ("silver", "device_alarms"), ("gold", "device_health_daily"),
                            ("gold", "environment_hourly")]:
            out[f"{layer}/{name}"] = con.execute(
                f"SELECT count(*), sum(hash(COLUMNS(*))) FROM (SELECT * FROM '{_lake(e2e_run, layer, name)}')"
            ).fetchall()[0]
        manifests = {p.parent.parent.parent.name: json.loads(p.read_text())
                     for p in (e2e_run.root / "outbox").glob(f"*/*/{e2e_run.day}/v*/manifest.json")}
        return out, manifests

    before, m_before = snapshot()
    chain = {"telemetry", "device_registry", "device_alarms", "device_health_daily", "environment_hourly"}
    picked = [k for k in defs.resolve_all_asset_keys()
              if k.path[0] in ("export", "publish") or (k.path[0] != "audit" and k.path[-1] in chain)]
    selection = sorted(dg.AssetSelection.assets(*picked).required_multi_asset_neighbors().resolve(
        defs.resolve_asset_graph()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEURON_DATA_DIR", str(e2e_run.root))
        mp.setenv("DAGSTER_HOME", str(e2e_run.root / "dagster_home"))
        with dg.DagsterInstance.get() as instance:
            rerun = defs.resolve_job_def("daily_job").execute_in_process(
                partition_key=e2e_run.day, instance=instance, asset_selection=selection, raise_on_error=False)
    assert rerun.success
    ran = {e.asset_key for e in rerun.get_asset_materialization_events()}
    assert {k for k in selection if k.path[0] in ("bronze", "silver", "gold", "publish")} <= ran
    after, m_after = snapshot()
    assert after == before
    assert m_before and m_after.keys() == m_before.keys()
    for ds, m in m_before.items():
        assert m_after[ds]["row_count"] == m["row_count"]
        assert m_after[ds]["version"] == m["version"] == 1
        assert m_after[ds]["content_sha256"] == m["content_sha256"]


def test_no_identifier_or_canary_anywhere_under_data_except_landing(e2e_run):
    """Lake, quarantine, warehouse, outbox, Dagster event log and compute logs: zero scanner hits."""
    from quality.pii_scan import load_canaries, scan_tree

    canaries = load_canaries(e2e_run.root / "landing")
    assert {c.kind for c in canaries} >= {"name", "phone", "id_card", "plate", "person_number"}
    # the canary wristband really was in the landing zone, so the scan below is meaningful
    landing_hits = scan_tree(e2e_run.root / "landing" / "telemetry", canaries=canaries)
    assert any(h.kind == "canary:person_number" for h in landing_hits)
    # the instance folder may be a link (tests keep it in shared memory): walked through the link as well
    instance = (e2e_run.root / "dagster_home").resolve()
    hits = scan_tree(e2e_run.root, exclude=[e2e_run.root / "landing"], canaries=canaries)
    hits += scan_tree(instance, canaries=canaries) if instance != e2e_run.root / "dagster_home" else []
    assert hits == [], [(h.kind, h.location) for h in hits[:10]]
    scanned = {p.suffix for root in (e2e_run.root, instance) for p in root.rglob("*")
               if p.is_file() and "landing" not in p.parts}
    assert {".parquet", ".duckdb", ".db", ".json", ".csv"} <= scanned


def test_every_source_balances_its_row_accounting(e2e_run):
    from assets.registry import datasets

    DATASETS = datasets()  # noqa: N806

    con = duckdb.connect()
    sources = {}
    for ds in DATASETS.values():
        if ds.layer == "audit" and ds.name.startswith("row_accounting_"):
            for source, landed, balanced in con.execute(
                    f"SELECT source, landed, balanced FROM '{_lake(e2e_run, 'audit', ds.name)}'").fetchall():
                sources[source] = (landed, balanced)
    assert {"telemetry", "access_events", "vehicle_passages", "parking", "work_orders", "fee_bills",
            "governance_ballots"} <= set(sources)
    assert all(balanced for _, balanced in sources.values()), sources
    # every feed delivers on every day; governance sources (votes, activities) may be quiet on a given day
    assert all(sources[s][0] > 0 for s in ("telemetry", "access_events", "vehicle_passages", "parking",
                                           "work_orders", "work_order_events", "fee_bills", "payments")), sources


def test_every_contract_published_its_day_and_people_counts_hold_no_small_cell(e2e_run):
    """Every contract's batch is in the outbox, its manifest states the contract's disclosure method, and:
    under suppression no unsuppressed count is between 1 and k-1; under the cell key method nothing is
    withheld and no positive count is up to js."""
    import json

    from exports.contracts import load_contracts

    con = duckdb.connect()
    for c in load_contracts():
        day_folder = e2e_run.root / "outbox" / c.consumer / c.dataset / e2e_run.day
        if not c.is_publication_day(e2e_run.day):  # a monthly dataset: no batch on other days
            assert not day_folder.exists(), c.id
            continue
        batch = day_folder / "v1"
        assert (batch / "manifest.json").exists() and (day_folder / "latest").read_text() == "v1\n", c.id
        if not c.counts_people:
            continue
        manifest = json.loads((batch / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["disclosure"] == c.disclosure.describe(), c.id
        data = f"'{batch / 'data.parquet'}'"
        if c.disclosure.is_cell_key:
            assert con.execute(f"SELECT count(*) FROM {data} WHERE suppressed").fetchall()[0][0] == 0, c.id
            low, high = 1, c.disclosure.js
        else:
            low, high = 1, c.k_threshold - 1
        for col in c.count_columns:
            small = con.execute(f"SELECT count(*) FROM {data} WHERE NOT suppressed "
                                f"AND \"{col}\" BETWEEN {low} AND {high}").fetchall()[0][0]
            assert small == 0, (c.id, col)
