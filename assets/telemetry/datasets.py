"""Telemetry datasets, each declared once: layer, grain, columns with DuckDB types, identifiers, suite, order.

The declaration feeds the lake writer (a partition must match it), the warehouse views and data dictionary,
the quality suites and the export contracts, so a column list is never copied by hand.
"""

from __future__ import annotations

from kernel.dataset import LINEAGE, PII_TOKEN, C, Dataset, accounting_dataset, ingest_dataset
from kernel.expectations import Expect

DEVICE_TYPES = ("smoke", "gas", "water_meter", "manhole", "sos_button", "elec_meter", "env", "streetlight",
                "ev_charger", "wearable", "e_fence", "nmv_gate")


DEVICE_REGISTRY = Dataset(
    "bronze", "device_registry", "one row per registered device, snapshot as of the partition day",
    "Device registry snapshot (carrier-platform devices and where they are installed).",
    (
        C("device_id", "VARCHAR", "Platform device id (CTWing deviceId, IoTDA device_id or ThingsBoard device name)",
          False),
        C("platform", "VARCHAR", "ctwing | iotda | thingsboard", False),
        C("community_id", "VARCHAR", "Community code (district 310107 + street + community)", False),
        C("community_name", "VARCHAR", "Community name"),
        C("street", "VARCHAR", "Sub-district (街镇)"),
        C("building_id", "VARCHAR", "Building within the community"),
        C("device_type", "VARCHAR", "smoke, gas, water_meter, elec_meter, env, streetlight, manhole, "
          "ev_charger, wearable, sos_button, e_fence, nmv_gate", False),
        C("vendor_model", "VARCHAR", "Vendor product model (assets/telemetry/vendors/models.csv)"),
        C("installed_on", "DATE", "Installation date"),
        C("report_interval_s", "INTEGER", "Expected seconds between reports", False),
    ),
    domain="telemetry", order_by="device_id",
)

TELEMETRY_BRONZE = Dataset(
    "bronze", "telemetry", "one row per reading (device, event time, metric) as delivered, deduplicated per file",
    "Typed long-format device telemetry parsed from CTWing, IoTDA and ThingsBoard payloads through the vendor "
    "adapters (assets/telemetry/vendors/); identifiers dropped or tokenised.",
    (
        C("community_id", "VARCHAR", "Community code of the feed", False),
        C("platform", "VARCHAR", "Platform envelope: ctwing | iotda | thingsboard", False),
        C("vendor_model", "VARCHAR", "Product model whose adapter mapped the reading"),
        C("device_id", "VARCHAR", "Platform device id", False),
        C("event_ts", "TIMESTAMPTZ", "Device event time", False),
        C("received_ts", "TIMESTAMPTZ", "Platform receive time"),
        C("metric", "VARCHAR", "Canonical metric name", False),
        C("value", "DOUBLE", "Value in the canonical unit", False),
        C("unit", "VARCHAR", "Canonical unit", False),
        C("vendor_key", "VARCHAR", "Property name as the vendor sent it", False),
        C("raw_value", "VARCHAR", "Value as the vendor sent it (decoded field for transparent payloads)"),
        C("quality_flag", "VARCHAR", "ok, or the correction applied (e.g. rsrp_sign_restored)", False),
        C("subject_token", "VARCHAR", "Keyed token of the wearer (wristbands only)", pii=PII_TOKEN),
        *LINEAGE,
    ),
    domain="telemetry",
)

TELEMETRY_QUARANTINE = Dataset(
    "quarantine", "telemetry", "one row per rejected record (a reading, a line that yields none, or a whole "
    "file that cannot be read: source_line 0, reason unreadable_file)",
    "Every telemetry record that was not accepted, with exactly one reason.",
    (
        C("community_id", "VARCHAR", "Community code of the feed"),
        C("platform", "VARCHAR", "Envelope platform, if recognised"),
        C("device_id", "VARCHAR", "Platform device id, if present"),
        C("event_ts", "TIMESTAMPTZ", "Event time, if parseable"),
        C("vendor_key", "VARCHAR", "Vendor property name, for reading-level rejections"),
        C("raw_value", "VARCHAR", "Vendor value, only for keys mapped to a metric (out_of_range...); withheld for "
          "unknown keys and codes, which may carry an identifier"),
        C("reason", "VARCHAR", "Machine-readable reason", False),
        C("detail", "VARCHAR", "Human-readable detail"),
        *LINEAGE,
    ),
    domain="telemetry",
)

TELEMETRY_SILVER = Dataset(
    "silver", "telemetry", "one row per distinct reading (device, event time, metric)",
    "Cleaned telemetry: duplicates across files removed, units canonical, joined to the device registry.",
    (
        C("community_id", "VARCHAR", "Community code", False),
        C("building_id", "VARCHAR", "Building code"),
        C("device_id", "VARCHAR", "Platform device id", False),
        C("device_type", "VARCHAR", "Device type from the registry", False),
        C("platform", "VARCHAR", "ctwing | iotda | thingsboard", False),
        C("event_ts", "TIMESTAMPTZ", "Device event time", False),
        C("metric", "VARCHAR", "Canonical metric", False),
        C("value", "DOUBLE", "Value in the canonical unit", False),
        C("unit", "VARCHAR", "Canonical unit", False),
        C("quality_flag", "VARCHAR", "ok or the correction applied", False),
        C("subject_token", "VARCHAR", "Wearer token (wristbands)", pii=PII_TOKEN),
    ),
    domain="telemetry",
    suite=(
        *(Expect.not_null(c) for c in ("community_id", "device_id", "device_type", "event_ts", "metric", "value")),
        Expect.in_set("platform", ["ctwing", "iotda", "thingsboard"]),
        Expect.in_set("device_type", list(DEVICE_TYPES)),
        Expect.in_set("quality_flag", ["ok", "rsrp_sign_restored"]),
        # vendors drop RSRP's sign; silver must hold the restored negative dBm
        Expect.between("value", -140, 200_000, name="value_plausible", severity="WARN",
                       description="any canonical value lies between the smallest and largest metric bound"),
        Expect.sql("rsrp_negative", "SELECT * FROM {batch} WHERE metric = 'rsrp_dbm' AND value >= 0",
                   description="RSRP is a negative dBm value after sign restoration"),
        Expect.sql("pm_not_negative", "SELECT * FROM {batch} WHERE metric IN ('pm25_ugm3', 'pm10_ugm3') AND value < 0",
                   description="particulate concentrations are never negative"),
        Expect.sql("one_local_day", "SELECT * FROM {batch} WHERE CAST(timezone('@tz@', event_ts) AS DATE) "
                   "<> (SELECT min(CAST(timezone('@tz@', event_ts) AS DATE)) FROM {batch})",
                   description="a partition holds readings of one local day only (the partition time zone)"),
        Expect.regex("device_id", r"^([0-9]{23}|[0-9a-f]{32}|[0-9a-f]{24}_[0-9A-Z_]+|[A-Z]{3}-[0-9]{12}-[0-9]{2,})$",
                     severity="WARN", description="device ids follow the CTWing (23 digits or 32 hex), IoTDA "
                     "(product_node) or ThingsBoard device-name form"),
        Expect.regex("subject_token", r"^person_v[0-9]+_[a-z2-7]+$",
                     description="wearer identifiers are keyed tokens, never raw ids"),
    ),
)

DEVICE_ALARMS = Dataset(
    "silver", "device_alarms", "one row per alarm episode (device, alarm type, start time)",
    "Alarm episodes: smoke, gas, SOS, fall, fence intrusion, manhole open, low battery, offline.",
    (
        C("alarm_id", "VARCHAR", "Stable id: hash of device, type and start time", False),
        C("community_id", "VARCHAR", "Community code", False),
        C("building_id", "VARCHAR", "Building code"),
        C("device_id", "VARCHAR", "Platform device id", False),
        C("device_type", "VARCHAR", "Device type", False),
        C("alarm_type", "VARCHAR", "smoke, gas, sos, fall, fence_intrusion, manhole_open, low_battery, offline",
          False),
        C("event_ts", "TIMESTAMPTZ", "Start of the episode", False),
        C("value", "DOUBLE", "Triggering value (e.g. battery %, %LEL)"),
        C("subject_token", "VARCHAR", "Wearer token for SOS/fall from wristbands", pii=PII_TOKEN),
    ),
    domain="telemetry", order_by="community_id, event_ts, device_id, alarm_type",
    suite=(
        *(Expect.not_null(c) for c in ("alarm_id", "community_id", "device_id", "alarm_type", "event_ts")),
        Expect.unique("alarm_id", mostly=0.999,
                      description="alarm ids are unique; more than 0.1 % duplicates means a replayed feed"),
        Expect.in_set("alarm_type", ["smoke", "gas", "sos", "fall", "fence_intrusion", "manhole_open",
                                     "low_battery", "offline"]),
    ),
)

ALARM_TYPES = ("smoke", "gas", "sos", "fall", "fence_intrusion", "manhole_open", "low_battery", "offline")
# the alarm episodes that are security events (gold/security_events) and incidents for 智能公安 (assets/incidents);
# low battery and offline are device health, not incidents
SECURITY_ALARM_TYPES = ("smoke", "gas", "sos", "fall", "fence_intrusion", "manhole_open")


def alarm_columns(types: tuple[str, ...]) -> dict[str, str]:
    """``alarm_columns``/``alarm_select`` of the SQL files that count alarm episodes per type."""
    return {"alarm_columns": ", ".join(f"count(*) FILTER (WHERE alarm_type = '{t}') AS alarms_{t}" for t in types),
            "alarm_select": ", ".join(f"coalesce(a.alarms_{t}, 0) AS alarms_{t}" for t in types)}

DEVICE_HEALTH_DAILY = Dataset(
    "gold", "device_health_daily", "one row per community and device type per day",
    "Device fleet health per community: registered, reporting, online rate, low battery, alarms by type.",
    (
        C("community_id", "VARCHAR", "Community code", False),
        C("device_type", "VARCHAR", "Device type", False),
        C("devices", "BIGINT", "Devices registered", False),
        C("reporting", "BIGINT", "Devices with at least one accepted reading or an ONLINE status message (an "
          "OFFLINE message alone does not count)", False),
        C("online_rate", "DOUBLE", "reporting / devices", False),
        C("low_battery", "BIGINT", "Devices whose battery fell below 20 %", False),
        *(C(f"alarms_{t}", "BIGINT", f"Alarm episodes of type {t}", False) for t in ALARM_TYPES),
    ),
    domain="telemetry", order_by="community_id, device_type",
    suite=(
        *(Expect.not_null(c) for c in ("community_id", "device_type", "devices", "reporting", "online_rate")),
        Expect.unique("community_id", "device_type", name="one_row_per_community_device_type"),
        Expect.in_set("device_type", list(DEVICE_TYPES)),
        Expect.between("online_rate", 0, 1),
        Expect.sql("reporting_within_fleet", "SELECT * FROM {batch} WHERE reporting > devices OR low_battery > devices",
                   description="reporting and low-battery devices never exceed the registered fleet"),
        Expect.between("online_rate", 0.8, 1, name="online_rate_healthy", mostly=0.9, severity="WARN",
                       description="most community fleets are at least 80 % online"),
        Expect.row_count_between(1, None, description="a day with no fleet rows is a broken registry feed"),
    ),
    sources={"telemetry": ("reporting", "online_rate", "low_battery", *(f"alarms_{a}" for a in ("smoke", "gas", "sos", "fall", "fence_intrusion", "manhole_open", "low_battery", "offline")))},
)

ENVIRONMENT_HOURLY = Dataset(
    "gold", "environment_hourly", "one row per community and local hour",
    "Air and noise per community-hour (PM2.5, PM10 averages; noise as energy-averaged LAeq and max).",
    (
        C("community_id", "VARCHAR", "Community code", False),
        C("hour_start", "TIMESTAMP", "Start of the hour, Asia/Shanghai local time", False),
        C("pm25_avg", "DOUBLE", "Mean PM2.5, µg/m³"),
        C("pm10_avg", "DOUBLE", "Mean PM10, µg/m³"),
        C("noise_laeq", "DOUBLE", "Energy-averaged noise level, dB(A)"),
        C("noise_max", "DOUBLE", "Maximum noise level, dB(A)"),
        C("observations", "BIGINT", "Readings behind the row", False),
        C("devices", "BIGINT", "Environment monitors reporting in the hour", False),
    ),
    domain="telemetry", order_by="community_id, hour_start",
    suite=(
        Expect.not_null("community_id"), Expect.not_null("hour_start"),
        Expect.unique("community_id", "hour_start", name="one_row_per_community_hour"),
        Expect.between("pm25_avg", 0, 1000), Expect.between("pm10_avg", 0, 2000),
        Expect.between("noise_laeq", 20, 140), Expect.between("noise_max", 20, 140),
        Expect.sql("pm10_not_below_pm25", "SELECT * FROM {batch} WHERE pm10_avg < pm25_avg", severity="WARN",
                   description="PM10 includes PM2.5, so its mean is not lower"),
        Expect.sql("full_day_per_community", "SELECT community_id FROM {batch} GROUP BY 1 HAVING count(*) <> 24",
                   severity="WARN", description="every community reports all 24 hours"),
    ),
    sources={"telemetry": ("pm25_avg", "pm10_avg", "noise_laeq", "noise_max", "observations", "devices")},
)

ROW_ACCOUNTING = accounting_dataset("telemetry")

VOCABULARY_GAPS = Dataset(
    "audit", "telemetry_vocabulary_gaps", "one row per day, platform, product model and unmapped vendor key",
    "Vendor keys (and status/alarm codes) of registered devices that no adapter row maps: each such reading is "
    "quarantined (unknown_metric, unknown_code, no_codec) and counted here, so an operator sees which CSV rows "
    "to add (docs/vendors/telemetry.md).",
    (
        C("day", "DATE", "Partition day", False),
        C("platform", "VARCHAR", "ctwing | iotda | thingsboard", False),
        C("vendor_model", "VARCHAR", "Product model of the device (registry, else the CTWing productId)"),
        C("vendor_key", "VARCHAR", "Unmapped property name ('<payload>' for a transparent payload with no codec)",
          False),
        C("records", "BIGINT", "Readings quarantined for it", False),
    ),
    domain="telemetry", asset=False, order_by="platform, vendor_model, vendor_key",
)

INGEST_STATS = ingest_dataset(
    "ingest", "telemetry", "What the bronze parser read: files, lines, landed records, rows written, in-file duplicates.",
    (
        C("duplicates_cross_file", "BIGINT", "Rejected lines repeating, byte for byte, a rejected line of an earlier "
          "file of the community (a re-delivered file): counted once in quarantine, here the copies", False),
        C("files_quarantined", "BIGINT", "Files that could not be read (truncated or corrupt gzip, not UTF-8, "
          "zero bytes...), each one record quarantined as unreadable_file", False),
    ),
)
DATASETS = (
    DEVICE_REGISTRY, TELEMETRY_BRONZE, TELEMETRY_QUARANTINE, TELEMETRY_SILVER, DEVICE_ALARMS,
    DEVICE_HEALTH_DAILY, ENVIRONMENT_HOURLY, INGEST_STATS, ROW_ACCOUNTING, VOCABULARY_GAPS,
)
