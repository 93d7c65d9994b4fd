"""The simulator writes the real vendor shapes, mixed per community, and the parser accounts for every record.

A small simulated district-day through the real parser (no Dagster): models and platforms per community, every
shape present in the landing files, accounting and quarantine reasons equal to the simulator's truth, the
vocabulary gaps equal to the unmapped properties it injected, and no IMEI anywhere in the lake.
"""

from __future__ import annotations

import gzip
import re
from datetime import date

import duckdb
import polars as pl
import pytest

from tests.assets.telemetry.vendor_parse import TZ, fake_tokens

DAY, SEED, N = "2026-11-18", 5, 3


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory):
    from assets.telemetry.parse import ingest_day
    from kernel.lake import Lake
    from simulator.district import REGISTRY_COLUMNS, district_registry
    from simulator.telemetry import simulate_telemetry_day

    root = tmp_path_factory.mktemp("vendor_mix")
    regs = district_registry(N, SEED)
    truth = simulate_telemetry_day(root / "landing", regs, date.fromisoformat(DAY), SEED)
    con = duckdb.connect()
    con.register("reg_df", regs.select(REGISTRY_COLUMNS))
    con.execute("CREATE VIEW registry AS SELECT * FROM reg_df")
    stats = ingest_day(con, Lake(root / "lake"), root / "landing", DAY, TZ, fake_tokens)
    text = "\n".join(gzip.decompress(p.read_bytes()).decode("utf-8")
                     for p in sorted((root / "landing" / "telemetry" / DAY).glob("*/*.ndjson.gz")))
    return {"root": root, "regs": regs, "truth": truth, "stats": stats, "con": con, "text": text}


def _lake(day, layer: str, name: str) -> str:
    return f"read_parquet('{day['root'] / 'lake' / layer / name / f'date={DAY}' / '*.parquet'}')"


def test_one_district_mixes_platforms_and_product_models(day):
    regs = day["regs"]
    models = regs.group_by("device_type").agg(pl.col("vendor_model").n_unique(), pl.col("platform").unique())
    by_type = {r["device_type"]: r for r in models.to_dicts()}
    assert by_type["smoke"]["vendor_model"] == 2
    assert sorted(by_type["env"]["platform"]) == ["iotda", "thingsboard"]
    # one model per type within a community, as deployments are
    per_comm = regs.group_by("community_id", "device_type").agg(pl.col("vendor_model").n_unique())
    assert per_comm["vendor_model"].max() == 1


def test_the_landing_files_carry_every_real_shape(day):
    text = day["text"]
    for shape in ('"Alarm_Status":', '"Cell_ID":', '"CSQ":', '"APPdata":', '"payload":{"Cover_Status"',
                  '"messageType":"deviceOnlineOfflineReport"', '"resource":"device.status"',
                  '"topic":"v1/gateway/telemetry"', '"topic":"v1/devices/me/telemetry"', '"upPacketSN":-1',
                  '"IMSI":"undefined"', '"serviceId":""'):
        assert shape in text, shape
    # some IoTDA reports carry only event_time_ms
    assert '{"resource":"device.property","event":"report","event_time_ms"' in text


def test_accounting_and_quarantine_equal_the_simulator_truth(day):
    t, s, con = day["truth"], day["stats"], day["con"]
    assert s.landed == (t.readings + t.duplicate_readings - t.fault_readings["malformed_json"]
                        + t.faults["malformed_json"])
    reasons = dict(con.execute(f"SELECT reason, count(DISTINCT (source_file, source_line)) FROM "
                               f"{_lake(day, 'quarantine', 'telemetry')} GROUP BY 1").fetchall())
    injected = {f: n for f, n in t.faults.items() if f != "rsrp_sign_dropped" and n}
    assert reasons == injected
    assert t.status_messages > 0
    # bronze still holds the copies re-delivered in a later file (silver collapses them)
    online = con.execute(f"SELECT count(DISTINCT (device_id, event_ts)) FROM {_lake(day, 'bronze', 'telemetry')} "
                         "WHERE metric = 'online'").fetchall()[0][0]
    assert online == t.status_messages


def test_vocabulary_gaps_count_the_injected_unmapped_properties(day):
    t, con = day["truth"], day["con"]
    total, keys = con.execute(f"SELECT sum(records), list(DISTINCT vendor_key ORDER BY vendor_key) FROM "
                              f"{_lake(day, 'audit', 'telemetry_vocabulary_gaps')}").fetchall()[0]
    assert total == t.faults["unknown_metric"] > 0
    assert set(keys) <= {"ECL", "cpuTemp", "co2"}


def test_smoke_codes_become_flags_and_rsrp_sign_is_restored(day):
    con = day["con"]
    lian = con.execute(f"""SELECT list(DISTINCT metric ORDER BY metric), min(value) FILTER (WHERE metric = 'rsrp_dbm'),
        max(value) FILTER (WHERE metric = 'rsrp_dbm'), count(*) FILTER (WHERE quality_flag = 'rsrp_sign_restored')
        FROM {_lake(day, 'bronze', 'telemetry')} WHERE vendor_model = 'LA-NB-SMOKE'""").fetchall()[0]
    assert set(lian[0]) >= {"battery_pct", "csq", "rsrp_dbm", "smoke_alarm", "smoke_alarm_level", "snr_db",
                            "temperature_c"}
    assert lian[2] < 0 and lian[3] > 0


def test_no_imei_reaches_bronze_quarantine_or_the_gaps(day):
    con = day["con"]
    imeis = pl.Series(sorted(set(re.findall(r'"IMEI":"(86[0-9]{13})"', day["text"]))))
    assert imeis.len() > 100
    con.register("imeis", imeis.to_frame("imei"))
    for layer, name in (("bronze", "telemetry"), ("quarantine", "telemetry"), ("audit", "telemetry_vocabulary_gaps")):
        hits = con.execute(f"""
            SELECT count(*) FROM (SELECT unnest(regexp_extract_all(CAST(t AS VARCHAR), '86[0-9]{{13}}')) AS x
                                  FROM {_lake(day, layer, name)} t) JOIN imeis ON x = imei""").fetchall()[0][0]
        assert hits == 0, f"{layer}/{name}"
