"""Real vendor payloads end to end: landing line -> bronze or quarantine -> silver, alarms and device health.

Each test feeds real-shaped payloads (tests/fixtures/vendors/, SOURCE.md there) through the real parser and the
domain's SQL, with a small registry; times are asserted in Asia/Shanghai.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from assets.telemetry.parse import VENDORS
from tests.assets.telemetry.vendor_parse import (
    FIXTURES,
    TZ,
    fixture,
    parse_fixture,
    parse_lines,
    registry_frame,
)

LIAN = "acf7baaee65e431eadfb8f5fe50e8b81"
GAS = "15017777100000000000003"
IOTDA = "612779690ad1ed028666ec69_node01"


def _local(ts: datetime) -> str:
    return ts.astimezone(ZoneInfo(TZ)).strftime("%Y-%m-%d %H:%M:%S")


def test_lian_alarm_status_reaches_device_alarms_as_one_smoke_episode(tmp_path):
    parsed, _ = parse_fixture(tmp_path, "ctwing", "lian_smoke_alarm")
    silver, alarms, _ = parsed.silver_and_alarms()
    smoke = silver.filter(pl.col("metric") == "smoke_alarm").sort("event_ts")
    assert smoke["value"].to_list() == [1.0, 0.0, 0.0]  # codes 1 (alarm), 2 (silenced), 7 (normal)
    episodes = alarms.filter(pl.col("alarm_type") == "smoke")
    assert episodes.height == 1
    row = episodes.row(0, named=True)
    assert row["device_id"] == LIAN and row["device_type"] == "smoke" and row["community_id"] == "310107001001"
    assert _local(row["event_ts"]) == "2020-12-03 17:00:00"


def test_a_silenced_heartbeat_is_no_smoke_episode(tmp_path):
    parsed, _ = parse_fixture(tmp_path, "ctwing", "lian_smoke_heartbeat")
    silver, alarms, _ = parsed.silver_and_alarms()
    assert silver.filter(pl.col("metric") == "smoke_alarm")["value"].to_list() == [0.0]
    assert alarms.filter(pl.col("alarm_type") == "smoke").height == 0


def test_status_messages_are_online_evidence_never_missing_timestamps(tmp_path):
    """IoTDA device.status and CTWing deviceOnlineOfflineReport: `online` readings, no quarantine but the
    unmapped state; a device that said ONLINE is reporting, one that only said OFFLINE is not (and is offline)."""
    ct, _ = fixture("ctwing", "online_offline")
    io, _ = fixture("iotda", "device_status")
    # the CTWing device's reports are of 2020-05-14; shift nothing, parse each day on its own
    p1 = parse_lines(tmp_path / "a", "2021-09-01", {"iotda": io[:1]})
    p2 = parse_lines(tmp_path / "b", "2020-05-14", {"ctwing": [ct[0]]})  # OFFLINE only
    for parsed in (p1, p2):
        q = parsed.frame("quarantine", "telemetry")
        assert q.height == 0
    _, alarms1, health1 = p1.silver_and_alarms()
    elec = health1.filter(pl.col("device_type") == "elec_meter").row(0, named=True)
    assert elec["devices"] == 1 and elec["reporting"] == 1  # said ONLINE
    _, alarms2, health2 = p2.silver_and_alarms()
    water = health2.filter(pl.col("device_type") == "water_meter").row(0, named=True)
    assert water["reporting"] == 0  # the HQ water meter only said OFFLINE
    offline = alarms2.filter((pl.col("alarm_type") == "offline")
                             & (pl.col("device_id") == "44d0b9e48d404094bbbcf889e4e64ece"))
    assert offline.height == 1 and _local(offline["event_ts"][0]) == "2020-05-14 16:07:11"


def test_offline_then_online_is_one_offline_episode(tmp_path):
    io, _ = fixture("iotda", "device_status")
    # OFFLINE at 10:30, ONLINE again 6 hours later: the silence after OFFLINE is the same episode
    back = io[0].replace("20210901T012225Z", "20210901T083000Z")
    parsed = parse_lines(tmp_path, "2021-09-01", {"iotda": [io[1], back]})
    _, alarms, health = parsed.silver_and_alarms()
    offline = alarms.filter((pl.col("alarm_type") == "offline") & (pl.col("device_id") == IOTDA))
    assert [_local(t) for t in offline["event_ts"]] == ["2021-09-01 10:30:00"]
    assert health.filter(pl.col("device_type") == "elec_meter")["reporting"].to_list() == [1]


def test_unmapped_keys_of_a_known_device_are_quarantined_and_counted_as_vocabulary_gaps(tmp_path):
    lines, _ = fixture("ctwing", "flat_payloads")
    unknown = json.loads(lines[1])
    unknown["deviceId"] = "15017777199999999999999"  # not registered: its keys are no vocabulary gap
    parsed = parse_lines(tmp_path, "2020-12-03", {"ctwing": [*lines, json.dumps(unknown)]})
    q = parsed.frame("quarantine", "telemetry")
    assert set(q.filter(pl.col("device_id") == GAS)["reason"]) == {"unknown_metric"}
    assert set(q.filter(pl.col("device_id") == unknown["deviceId"])["reason"]) == {"unknown_device"}
    gaps = parsed.frame("audit", "telemetry_vocabulary_gaps").sort("vendor_key")
    assert gaps.select("platform", "vendor_model").unique().rows() == [("ctwing", "STW-NB-GAS")]
    assert dict(gaps.select("vendor_key", "records").rows()) == {k: 1 for k in json.loads(lines[1])["payload"]}
    assert gaps["day"].cast(pl.String).unique().to_list() == ["2020-12-03"]
    # the bronze asset's metadata summary reads the same counts
    from assets.telemetry.parse import vocabulary_gap_summary

    summary = vocabulary_gap_summary(parsed.con)
    assert {(p, m, k) for p, m, k, _ in summary} == {("ctwing", "STW-NB-GAS", k) for k in json.loads(lines[1])["payload"]}
    # every landed record is accounted for
    s = parsed.stats
    assert s.landed == s.bronze_rows + s.quarantined + s.duplicates_in_file


def test_a_new_product_model_is_a_csv_change(tmp_path):
    """The 赛特威尔 gas detector (STW-NB-GAS, flat payload) becomes readable by adding adapter rows only."""
    vendors = tmp_path / "vendors"
    shutil.copytree(VENDORS, vendors)
    with (vendors / "vendor_keys.csv").open("a", encoding="utf-8") as fh:
        fh.write("ctwing,STW-NB-GAS,gas_value,gas_lel_pct,1,metric,\n"
                 "ctwing,STW-NB-GAS,battery_value,battery_pct,1,metric,\n"
                 "ctwing,STW-NB-GAS,temperature,temperature_c,1,metric,\n"
                 "ctwing,STW-NB-GAS,gas_sensor_state,,,code,0 normal / 1 low / 2 high concentration\n"
                 "ctwing,STW-NB-GAS,valve_state,,,ignore,\nctwing,STW-NB-GAS,fan_state,,,ignore,\n"
                 "ctwing,STW-NB-GAS,medium,,,ignore,\nctwing,STW-NB-GAS,battery_voltage,,,ignore,\n"
                 "ctwing,STW-NB-GAS,error_code,,,ignore,\n")
    with (vendors / "vendor_codes.csv").open("a", encoding="utf-8") as fh:
        fh.write("ctwing,STW-NB-GAS,gas_sensor_state,0,gas_alarm,0,normal\n"
                 "ctwing,STW-NB-GAS,gas_sensor_state,1,gas_alarm,1,low-concentration alarm\n"
                 "ctwing,STW-NB-GAS,gas_sensor_state,2,gas_alarm,1,high-concentration alarm\n")
    with (vendors / "models.csv").open("a", encoding="utf-8") as fh:
        fh.write("ctwing,STW-NB-GAS,15017777,gas,flat,赛特威尔 NB gas detector; flat payload\n")
    parsed, _ = parse_fixture(tmp_path / "run", "ctwing", "flat_payloads", vendors=vendors)
    bronze = parsed.frame("bronze", "telemetry").filter(pl.col("device_id") == GAS)
    assert sorted(bronze.select("metric", "value").rows()) == [
        ("battery_pct", 100.0), ("gas_alarm", 0.0), ("gas_lel_pct", 0.0), ("temperature_c", 0.0)]
    assert set(bronze["vendor_model"]) == {"STW-NB-GAS"}
    assert parsed.frame("quarantine", "telemetry").height == 0
    assert parsed.frame("audit", "telemetry_vocabulary_gaps").height == 0


def test_every_adapter_row_is_unique_and_points_at_a_declared_metric():
    con = duckdb.connect()
    from assets.telemetry.parse import load_vocabulary

    load_vocabulary(con)
    dup = con.execute("SELECT platform, vendor_model, vendor_key FROM vendor_keys GROUP BY ALL HAVING count(*) > 1"
                      ).fetchall()
    assert dup == []
    assert con.execute("SELECT platform, vendor_model, vendor_key, code FROM vendor_codes GROUP BY ALL "
                       "HAVING count(*) > 1").fetchall() == []
    undeclared = con.execute("""
        SELECT metric FROM vendor_keys WHERE role = 'metric' AND metric NOT IN (SELECT metric FROM metrics)
        UNION ALL SELECT metric FROM vendor_codes WHERE metric NOT IN (SELECT metric FROM metrics)""").fetchall()
    assert undeclared == []
    assert set(con.sql("SELECT DISTINCT role FROM vendor_keys").pl()["role"]) <= {
        "metric", "code", "identifier", "identifier:person", "ignore"}
    assert set(con.sql("SELECT DISTINCT type FROM codecs").pl()["type"]) <= {"uint", "int", "bcd"}
    # every codec key is mapped for its model (or for any model of the platform)
    unmapped = con.execute("""SELECT c.vendor_model, c.vendor_key FROM codecs c WHERE NOT EXISTS (
        SELECT 1 FROM vendor_keys k WHERE k.platform = c.platform AND k.vendor_key = c.vendor_key
        AND k.vendor_model IN (c.vendor_model, '*'))""").fetchall()
    assert unmapped == []


def test_no_imei_cell_id_or_identifier_value_in_any_written_file(tmp_path):
    lines, _ = fixture("ctwing", "lian_smoke_heartbeat")
    msg = json.loads(lines[0])
    imei = msg["IMEI"]
    # the same IMEI under a key no adapter knows, as a number: it must not survive in quarantine raw_value
    msg["payload"]["serviceData"]["Module_SN"] = int(imei)
    msg["timestamp"] += 60_000
    wrist = ('{"resource":"device.property","event":"report","event_time":"20201203T080000Z","notify_data":'
             '{"header":{"device_id":"' + IOTDA + '"},"body":{"services":[{"service_id":"Wearable","properties":'
             '{"heartRate":72,"wearerId":"P3101070010010007"},"event_time":"20201203T075959Z"}]}}}')
    parsed = parse_lines(tmp_path, "2020-12-03", {"ctwing": [lines[0], json.dumps(msg)], "iotda": [wrist]})
    q = parsed.frame("quarantine", "telemetry")
    assert q.filter(pl.col("vendor_key") == "Module_SN")["raw_value"].to_list() == [None]
    assert q.filter(pl.col("vendor_key") == "Module_SN")["reason"].to_list() == ["unknown_metric"]
    bronze = parsed.frame("bronze", "telemetry")
    assert bronze.filter(pl.col("device_id") == IOTDA)["subject_token"].to_list() == [
        parsed_token("P3101070010010007")]
    written = list((tmp_path / "lake").rglob("*.parquet"))
    assert len(written) >= 3
    con = duckdb.connect()
    for path in written:
        text = repr(con.execute(f"SELECT * FROM '{path}'").fetchall())
        for secret in (imei, str(float(int(imei))), f"{int(imei):.6g}", "12345678", "P3101070010010007"):
            assert secret not in text, f"{secret} in {path.relative_to(tmp_path)}"


def parsed_token(raw: str) -> str:
    from tests.assets.telemetry.vendor_parse import fake_tokens

    return fake_tokens(pl.Series([raw]))[0]


def test_times_use_the_one_vendor_time_parser(tmp_path):
    """CTWing epoch ms, IoTDA compact UTC and ISO ms, ThingsBoard ms: all land on the right Shanghai second."""
    parsed, _ = parse_fixture(tmp_path, "iotda", "property_report")
    bronze = parsed.frame("bronze", "telemetry").sort("event_ts")
    # the envelope had only event_time_ms: the receive time is still read (it drives timezone_confusion)
    first = bronze.row(0, named=True)
    assert _local(first["event_ts"]) == "2021-09-01 09:22:20"
    assert _local(first["received_ts"]) == "2021-09-01 09:22:25"
    q = parsed.frame("quarantine", "telemetry")
    assert set(q["reason"]) == {"timezone_confusion", "missing_timestamp"}


def test_registry_fixture_models_are_declared_or_deliberately_unknown():
    declared = set(pl.read_csv(VENDORS / "models.csv")["vendor_model"])
    used = set(registry_frame("ctwing", "iotda", "thingsboard")["vendor_model"])
    # STW-NB-GAS and HQ-NB-WATER are registered without adapters on purpose (vocabulary-gap and status tests)
    assert used - declared == {"STW-NB-GAS", "HQ-NB-WATER"}
    assert (FIXTURES / "ctwing" / "SOURCE.md").exists()
