"""Vectorised generator of a district-day of device telemetry as CTWing, IoTDA and ThingsBoard send it.

Each community runs one product model per device type (``simulator.registry.MODELS``), so one district mixes
vendors and payload shapes: CTWing thing models (a LiAn smoke detector with Alarm_Status codes, IMEI, Cell_ID,
CSQ), transparent APPdata, flat payloads and online/offline reports; IoTDA device.property (some with only
event_time_ms) and device.status; ThingsBoard device and gateway telemetry.

Writes gzipped NDJSON into the landing layout, with switchable vendor faults and a ground-truth file that
tests compare the pipeline against. Deterministic by seed; no per-reading Python loops.
"""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

from simulator.registry import DEVICE_TYPE_BY_NAME, DEVICE_TYPES, MODEL_BY_NAME

SHANGHAI = timezone(timedelta(hours=8))

FAULT_CLASSES = (
    "malformed_json", "missing_device_id", "missing_timestamp", "unknown_device", "future_timestamp",
    "timezone_confusion", "out_of_range", "rsrp_sign_dropped", "unknown_metric",
)


@dataclass
class FaultRates:
    """Share of messages affected per fault class (each message gets at most one fault)."""

    malformed_json: float = 0.0005
    missing_device_id: float = 0.0003
    missing_timestamp: float = 0.0003
    unknown_device: float = 0.0005
    future_timestamp: float = 0.0003
    timezone_confusion: float = 0.0005  # IoTDA only: local time sent with a 'Z'
    out_of_range: float = 0.0005
    rsrp_sign_dropped: float = 0.02  # RSRP 114 for -114 dBm (the LiAn smoke detector always does it)
    unknown_metric: float = 0.0005  # a property no adapter maps yet (a firmware update): a vocabulary gap
    duplicate_in_file: float = 0.003  # platform retries inside the same delivery
    duplicate_cross_file: float = 0.003  # retries re-delivered in a later file
    offline_devices: float = 0.01  # devices silent for the whole day
    outages: float = 0.05  # CTWing/IoTDA devices that go OFFLINE and come back ONLINE (status messages)

    @classmethod
    def none(cls) -> FaultRates:
        return cls(**{k: 0.0 for k in asdict(cls())})


# vendor keys per device type: (key, generator name); generators are defined in _values()
_KEYS: dict[str, tuple[str, ...]] = {
    "smoke": ("Smoke_Alarm", "Smoke_Value", "Battery_Level", "RSRP", "SNR"),
    "gas": ("Gas_Alarm", "Gas_Concentration", "Battery_Level", "RSRP", "SNR"),
    "water_meter": ("Water_Volume_L", "Battery_Level", "RSRP"),
    "manhole": ("Cover_Status", "Tilt_Angle", "liquid_level", "Battery_Level"),
    "sos_button": ("SOS_Status", "Battery_Level"),
    "elec_meter": ("energy", "power"),
    "env": ("pm25", "pm10", "noise", "temperature", "humidity"),
    "streetlight": ("lampOn", "power"),
    "ev_charger": ("charging", "power", "fault"),
    "wearable": ("heartRate", "steps", "sos", "fall", "battery"),
    "e_fence": ("intrusion", "voltage"),
    "nmv_gate": ("passes", "ebikeBlocked"),
}
# the key an out-of-range fault corrupts, and the absurd value it gets
_OUT_OF_RANGE = {
    "smoke": ("Battery_Level", 180), "gas": ("Gas_Concentration", 250), "water_meter": ("Battery_Level", -3),
    "manhole": ("Tilt_Angle", 720), "sos_button": ("Battery_Level", 255), "elec_meter": ("power", -500),
    "env": ("pm25", -12), "streetlight": ("power", -1), "ev_charger": ("power", 999999),
    "wearable": ("heartRate", 400), "e_fence": ("voltage", 99), "nmv_gate": ("passes", -4),
}
_SERVICE_ID = {"elec_meter": "Meter", "env": "AirQuality", "streetlight": "Lamp", "ev_charger": "Connector",
               "wearable": "Wearable", "e_fence": "Fence", "nmv_gate": "Gate"}


@dataclass
class DayTruth:
    """What the simulator wrote for one day: the numbers the pipeline must reproduce."""

    day: str
    communities: int
    devices: int
    files: int = 0
    lines: int = 0
    messages: int = 0  # distinct platform messages (before duplication)
    readings: int = 0  # readings in distinct messages
    faults: dict[str, int] = field(default_factory=dict)  # messages per fault class
    fault_readings: dict[str, int] = field(default_factory=dict)  # readings per fault class
    duplicate_lines_in_file: int = 0
    duplicate_lines_cross_file: int = 0
    duplicate_readings: int = 0
    offline_devices: int = 0
    status_messages: int = 0  # online/offline messages (one reading each), included in messages and readings
    wearer_ids: list[str] = field(default_factory=list)


def _episode(rng: np.random.Generator, dev: np.ndarray, k: np.ndarray, n_dev: int, p: float, length: int) -> np.ndarray:
    """1 where a device is inside a short alarm episode, else 0 (vectorised over messages)."""
    has = rng.random(n_dev) < p
    start = rng.integers(0, 200, n_dev)
    return (has[dev] & (k >= start[dev]) & (k < start[dev] + length)).astype(np.int64)


def _values(dt: str, rng: np.random.Generator, dev: np.ndarray, k: np.ndarray, hour: np.ndarray,
            n_dev: int) -> dict[str, np.ndarray]:
    m = dev.size
    battery = np.clip(rng.normal(75, 18, n_dev), 5, 100).round()[dev] - (k // 24)
    rsrp = -np.clip(rng.normal(100, 10, n_dev), 60, 135).round()[dev] + rng.integers(-3, 4, m)
    snr = np.clip(rng.normal(12, 5, m), -5, 35).round(1)
    day_curve = np.sin((hour - 6) / 24 * 2 * np.pi)
    out: dict[str, np.ndarray] = {}
    if dt == "smoke":
        alarm = _episode(rng, dev, k, n_dev, 0.004, 3)
        out = {"Smoke_Alarm": alarm, "Smoke_Value": (rng.random(m) * 2 + alarm * 40).round(1),
               "Battery_Level": battery, "RSRP": rsrp, "SNR": snr}
    elif dt == "gas":
        alarm = _episode(rng, dev, k, n_dev, 0.004, 2)
        out = {"Gas_Alarm": alarm, "Gas_Concentration": (rng.random(m) * 3 + alarm * 30).round(1),
               "Battery_Level": battery, "RSRP": rsrp, "SNR": snr}
    elif dt == "water_meter":
        base = rng.uniform(1e5, 9e5, n_dev)[dev]
        out = {"Water_Volume_L": (base + k * rng.uniform(0, 40, m)).round(1), "Battery_Level": battery, "RSRP": rsrp}
    elif dt == "manhole":
        open_ = _episode(rng, dev, k, n_dev, 0.02, 2)
        out = {"Cover_Status": open_, "Tilt_Angle": (rng.random(m) * 2 + open_ * 60).round(1),
               "liquid_level": rng.uniform(100, 800, m).round(), "Battery_Level": battery}
    elif dt == "sos_button":
        out = {"SOS_Status": _episode(rng, dev, k, n_dev, 0.01, 1), "Battery_Level": battery}
    elif dt == "elec_meter":
        base = rng.uniform(1e3, 2e4, n_dev)[dev]
        power = np.clip(800 + 600 * day_curve + rng.normal(0, 300, m), 20, None).round()
        out = {"energy": (base + k * 0.25).round(2), "power": power}
    elif dt == "env":
        pm25 = np.clip(35 + 15 * day_curve + rng.normal(0, 6, m), 2, None).round(1)
        out = {"pm25": pm25, "pm10": (pm25 * rng.uniform(1.3, 1.8, m)).round(1),
               "noise": np.clip(52 + 8 * day_curve + rng.normal(0, 3, m), 30, 100).round(1),
               "temperature": (14 + 5 * day_curve + rng.normal(0, 1, m)).round(1),
               "humidity": np.clip(65 - 10 * day_curve + rng.normal(0, 4, m), 10, 100).round(1)}
    elif dt == "streetlight":
        on = ((hour >= 17) | (hour < 6)).astype(np.int64)
        out = {"lampOn": on, "power": (on * rng.normal(80, 4, m)).round(1)}
    elif dt == "ev_charger":
        charging = (rng.random(m) < 0.3).astype(np.int64)
        out = {"charging": charging, "power": (charging * rng.normal(6800, 200, m)).round(),
               "fault": _episode(rng, dev, k, n_dev, 0.02, 4)}
    elif dt == "wearable":
        out = {"heartRate": np.clip(rng.normal(76, 9, m), 45, 140).round(), "steps": (k * rng.uniform(5, 30, m)).round(),
               "sos": _episode(rng, dev, k, n_dev, 0.01, 1), "fall": _episode(rng, dev, k, n_dev, 0.005, 1),
               "battery": battery}
    elif dt == "e_fence":
        out = {"intrusion": _episode(rng, dev, k, n_dev, 0.02, 1), "voltage": rng.normal(8.5, 0.3, m).round(2)}
    elif dt == "nmv_gate":
        peak = np.exp(-((hour - 8) ** 2) / 2) + np.exp(-((hour - 18) ** 2) / 3)
        out = {"passes": rng.poisson(2 + 20 * peak), "ebikeBlocked": _episode(rng, dev, k, n_dev, 0.05, 1)}
    return out


def _fmt_iotda(ts_ms: np.ndarray) -> pl.Series:
    return pl.Series(ts_ms, dtype=pl.Int64).cast(pl.Datetime("ms")).dt.strftime("%Y%m%dT%H%M%SZ")


def _fmt_iso_ms(ts_ms: np.ndarray) -> pl.Series:
    return pl.Series(ts_ms, dtype=pl.Int64).cast(pl.Datetime("ms")).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")


_B64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8)


def _base64_rows(data: np.ndarray) -> pl.Series:
    """Base64 of each row of a (rows x bytes) uint8 matrix whose width is a multiple of 3, vectorised."""
    rows, width = data.shape
    g = data.reshape(rows, width // 3, 3).astype(np.uint32)
    n = (g[..., 0] << 16) | (g[..., 1] << 8) | g[..., 2]
    idx = np.stack([(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63], axis=-1).reshape(rows, -1)
    chars = np.ascontiguousarray(_B64[idx])
    return pl.Series(chars.view(f"S{chars.shape[1]}").ravel()).cast(pl.String)


def _be(values: np.ndarray, nbytes: int) -> np.ndarray:
    """Big-endian two's-complement bytes of integer ``values`` as a (rows x nbytes) uint8 matrix."""
    v = values.astype(np.int64) & ((1 << (8 * nbytes)) - 1)
    return np.stack([(v >> (8 * (nbytes - 1 - i))) & 0xFF for i in range(nbytes)], axis=-1).astype(np.uint8)


def _imei(device_ids: pl.Series) -> pl.Series:
    """A module IMEI per device: 15 digits starting 86, derived from the device id but not contained in it."""
    digits = (device_ids.hash(7) % 10**13).cast(pl.String).str.zfill(13)
    return digits.to_frame("d").select(pl.concat_str(pl.lit("86"), pl.col("d")).alias("IMEI"))["IMEI"]


# keys of the LiAn NB smoke detector's thing model, as a real one sends them (docs/vendors/telemetry.md)
_LIAN_KEYS = ("TData", "SNR", "RSRP", "IMEI", "Cell_ID_Length", "Cell_ID", "CSQ", "Battery_Level", "Alarm_Status",
              "AlarmLevel")
_LIAN_READINGS = 7  # all but IMEI, Cell_ID (identifiers) and Cell_ID_Length (framing)
_CODEC_READINGS = 3  # LXSY-NB-20: volume, battery, RSRP (vendors/codecs.csv)
# a property no adapter maps yet, per platform: what a firmware update adds (a vocabulary gap)
_UNMAPPED = {"ctwing": "ECL", "iotda": "cpuTemp", "thingsboard": "co2"}
# faults a shape cannot carry (ThingsBoard uses the server's time when ts is absent, so a missing ts is no fault)
_NOT_APPLICABLE = {
    "thing": {"timezone_confusion"}, "thing_lian": {"timezone_confusion"},
    "appdata": {"timezone_confusion", "unknown_metric"}, "flat": {"timezone_confusion"},
    "property": set(), "property_ms": set(),
    "tb_device": {"timezone_confusion", "missing_timestamp", "rsrp_sign_dropped"},
    "tb_gateway": {"timezone_confusion", "missing_timestamp", "rsrp_sign_dropped", "missing_device_id"},
}


def _ctwing_envelope(df: pl.DataFrame, topic: str, payload: pl.Expr) -> pl.Series:
    return df.select(pl.struct(
        upPacketSN=pl.lit(-1), upDataSN=pl.lit(-1), topic=pl.lit(topic), timestamp=pl.col("ts"),
        tenantId=pl.lit("2000031415"), serviceId=pl.lit(""), protocol=pl.lit("lwm2m"),
        productId=pl.col("product_id"), messageType=pl.lit("dataReport"), deviceType=pl.lit(""),
        deviceId=pl.col("deviceId"), assocAssetId=pl.lit(""), IMSI=pl.lit("undefined"), IMEI=pl.col("IMEI"),
        payload=payload,
    ).struct.json_encode().alias("line"))["line"]


def _encode(shape: str, dt_name: str, df: pl.DataFrame, keys: list[str]) -> pl.Series:
    """The lines of one shape: ``df`` holds deviceId, product_id, ts (event ms), recv (ms), the value columns."""
    m = df.height
    if shape in ("thing", "flat"):
        body = pl.struct(*keys)
        payload = pl.struct(serviceId=pl.lit("notification"), serviceData=body) if shape == "thing" else body
        return _ctwing_envelope(df, "v1/up/ad19prof" if shape == "thing" else "v1/up/ad", payload)
    if shape == "thing_lian":
        return _ctwing_envelope(df, "v1/up/ad19prof",
                                pl.struct(serviceId=pl.lit("notification"), serviceData=pl.struct(*keys)))
    if shape == "appdata":
        data = np.concatenate([np.full((m, 1), 1, dtype=np.uint8),
                               _be(np.round(df["Water_Volume_L"].to_numpy() * 10), 4),
                               _be(df["Battery_Level"].to_numpy(), 1), _be(df["RSRP"].to_numpy(), 2),
                               np.zeros((m, 1), dtype=np.uint8)], axis=1)
        df = df.with_columns(appdata=_base64_rows(data))
        return _ctwing_envelope(df, "v1/up/ad", pl.struct(APPdata=pl.col("appdata")))
    if shape in ("property", "property_ms"):
        envelope = dict(resource=pl.lit("device.property"), event=pl.lit("report"))
        if shape == "property":
            envelope["event_time"] = _fmt_iotda(df["recv"].to_numpy())
        return df.select(pl.struct(
            **envelope, event_time_ms=_fmt_iso_ms(df["recv"].to_numpy()),
            request_id=pl.col("req").cast(pl.String).str.zfill(16),
            notify_data=pl.struct(
                header=pl.struct(app_id=pl.lit("neuron-putuo"), device_id=pl.col("deviceId"),
                                 node_id=pl.col("deviceId").str.split("_").list.last(),
                                 product_id=pl.col("deviceId").str.split("_").list.first(),
                                 gateway_id=pl.col("deviceId")),
                body=pl.struct(services=pl.concat_list(pl.struct(
                    service_id=pl.lit(_SERVICE_ID[dt_name]), properties=pl.struct(*keys),
                    event_time=_fmt_iotda(df["svc_ts"].to_numpy())))),
            ),
        ).struct.json_encode().alias("line"))["line"]
    values = df.select(pl.struct(*keys).struct.json_encode().alias("v"))["v"]
    entry = pl.concat_str([pl.lit('{"ts":'), pl.col("ts").cast(pl.String), pl.lit(',"values":'), pl.col("v"),
                           pl.lit("}")])
    frame = df.select("deviceId", "ts", "recv", "flat").with_columns(v=values)
    if shape == "tb_gateway":
        payload = pl.concat_str([pl.lit('{"'), pl.col("deviceId"), pl.lit('":['), entry, pl.lit("]}")])
        return frame.select(pl.concat_str([pl.lit('{"topic":"v1/gateway/telemetry","received_ms":'),
                                           pl.col("recv").cast(pl.String), pl.lit(',"payload":'), payload,
                                           pl.lit("}")]).alias("line"))["line"]
    # device telemetry: ts/values, or (flat) the bare values stamped with the server's receive time
    payload = pl.when(pl.col("flat")).then(pl.col("v")).otherwise(entry)
    return frame.select(pl.concat_str([pl.lit('{"topic":"v1/devices/me/telemetry","device":"'), pl.col("deviceId"),
                                       pl.lit('","received_ms":'), pl.col("recv").cast(pl.String),
                                       pl.lit(',"payload":'), payload, pl.lit("}")]).alias("line"))["line"]


# per shape: (device-id field, timestamp field, what replaces the timestamp field) as regex edits of the line
_FAULT_EDITS = {
    "ctwing": (r'"deviceId":"[^"]*",', r'"timestamp":-?\d+,', ""),
    "iotda": (r'"device_id":"[^"]*",', r',"event_time":"[^"]*"\}\]', "}]"),
    "thingsboard": (r'"device":"[^"]*",', r'"ts":-?\d+,', ""),
}


def _messages_for_type(dt_name: str, regs: pl.DataFrame, day: date, rng: np.random.Generator,
                       rates: FaultRates, unknown_ids: dict[str, np.ndarray]) -> pl.DataFrame:
    """All messages of one device type for the given devices: community_id, platform, ts, line, fault.

    The devices of one type may run several product models (per community); each model's messages are written
    in its own shape (``simulator.registry.MODELS``).
    """
    dt = DEVICE_TYPE_BY_NAME[dt_name]
    n_dev = regs.height
    day_start_ms = int(datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).timestamp() * 1000)
    per_dev = 86400 // dt.interval_s
    offline = rng.random(n_dev) < rates.offline_devices
    dev = np.repeat(np.arange(n_dev), per_dev)
    k = np.tile(np.arange(per_dev), n_dev)
    offset = rng.integers(0, dt.interval_s * 1000, n_dev)
    jitter = rng.integers(0, max(1, dt.interval_s * 50), dev.size)
    ts = day_start_ms + offset[dev] + k * dt.interval_s * 1000 + jitter
    keep = (~offline[dev]) & (ts < day_start_ms + 86_400_000)
    dev, k, ts = dev[keep], k[keep], ts[keep]
    m = dev.size
    hour = ((ts - day_start_ms) // 3_600_000).astype(np.float64)
    vals = _values(dt_name, rng, dev, k, hour, n_dev)
    models = regs["vendor_model"].to_numpy().astype(object)[dev]
    shape = np.array([MODEL_BY_NAME[x].shape for x in regs["vendor_model"].to_list()], dtype=object)[dev] \
        if n_dev else np.array([], dtype=object)
    platform = regs["platform"].to_numpy().astype(object)[dev]

    # one fault per message at most; a fault the message's shape cannot carry is dropped
    applicable = [f for f in FAULT_CLASSES if not (f == "rsrp_sign_dropped" and "RSRP" not in vals)]
    probs = np.array([getattr(rates, f) for f in applicable])
    u = rng.random(m)
    fault_idx = np.searchsorted(np.cumsum(probs), u, side="right")
    fault = np.array([*applicable, ""], dtype=object)[np.minimum(fault_idx, len(applicable))]
    for sh, bad in _NOT_APPLICABLE.items():
        fault[(shape == sh) & np.isin(fault, list(bad))] = ""

    device_ids = regs["device_id"].to_numpy()[dev].astype(object)
    is_unknown = fault == "unknown_device"
    for pf, ghosts in unknown_ids.items():
        sel = is_unknown & (platform == pf)
        if sel.any():
            device_ids[sel] = ghosts[rng.integers(0, ghosts.size, int(sel.sum()))]
    ev_ts = ts.copy()
    ev_ts[fault == "future_timestamp"] += 2 * 86_400_000
    oor_key, oor_val = _OUT_OF_RANGE[dt_name]
    vals[oor_key] = np.where(fault == "out_of_range", oor_val, vals[oor_key])
    if "RSRP" in vals:
        vals["RSRP"] = np.where(fault == "rsrp_sign_dropped", -vals["RSRP"], vals["RSRP"])
    recv = ts + rng.integers(200, 5000, m)
    svc_ts = ev_ts.copy()
    svc_ts[fault == "timezone_confusion"] += 8 * 3_600_000  # local wall time labelled as UTC
    # ThingsBoard device telemetry: a tenth of the clean messages are flat (server time)
    flat = (shape == "tb_device") & (fault == "") & (rng.random(m) < 0.1)

    base = pl.DataFrame({"deviceId": device_ids.astype(str), "ts": ev_ts, "recv": recv, "svc_ts": svc_ts,
                         "req": np.arange(m) + int(rng.integers(1 << 40)), "flat": flat,
                         "product_id": np.array([MODEL_BY_NAME[x].product_id for x in models], dtype=object)
                         .astype(str) if m else np.array([], dtype=str),
                         **{key: vals[key] for key in _KEYS[dt_name]}})
    readings = np.full(m, len(_KEYS[dt_name]), dtype=np.int64)
    lines = np.empty(m, dtype=object)
    for sh in np.unique(shape) if m else []:
        rows = np.flatnonzero(shape == sh)
        part = base[rows]
        keys = list(_KEYS[dt_name])
        if sh == "thing_lian":
            alarm = vals["Smoke_Alarm"][rows]
            first = np.r_[True, (dev[rows][1:] != dev[rows][:-1]) | (alarm[1:] != alarm[:-1])] & (alarm == 1)
            part = part.with_columns(
                TData=pl.Series(vals.get("TData", np.round(rng.normal(22, 3, rows.size), 0))).cast(pl.Int64),
                RSRP=pl.col("RSRP").abs().cast(pl.Int64),  # this module always drops the sign
                IMEI=_imei(part["deviceId"]), Cell_ID_Length=pl.lit(8),
                Cell_ID=pl.Series(rng.integers(10_000_000, 99_999_999, rows.size)).cast(pl.String),
                CSQ=pl.Series(rng.integers(5, 31, rows.size)),
                Battery_Level=pl.col("Battery_Level").cast(pl.Int64),
                # 1 alarm on its first report, 2 (silenced at the device) while it lasts, 7 normal
                Alarm_Status=pl.Series(np.where(alarm == 1, np.where(first, 1, 2), 7)),
                AlarmLevel=pl.Series(alarm * 100),
            )
            keys = list(_LIAN_KEYS)
            readings[rows] = _LIAN_READINGS
        elif sh == "appdata":
            readings[rows] = _CODEC_READINGS
        elif sh.startswith("tb_"):
            part = part.rename({"pm25": "pm2_5"}) if "pm25" in part.columns else part
            keys = ["pm2_5" if key == "pm25" else key for key in keys]
        if dt_name == "wearable":
            part = part.with_columns(wearerId=pl.Series(regs["wearer_id"].to_numpy()[dev[rows]]))
            keys.append("wearerId")
        unmapped = fault[rows] == "unknown_metric"
        if unmapped.any():
            extra = _UNMAPPED[MODEL_BY_NAME[models[rows[0]]].platform]
            part = part.with_columns(pl.when(pl.Series(unmapped)).then(pl.lit(1)).alias(extra))
            keys.append(extra)
            readings[rows[unmapped]] += 1
        if "IMEI" not in part.columns:
            part = part.with_columns(IMEI=_imei(part["deviceId"]))
        encoded = _encode(sh, dt_name, part, keys)
        if unmapped.any():  # the unmapped key only in the messages that carry it
            encoded = encoded.str.replace(rf',"{extra}":null', "")
        lines[rows] = encoded.to_numpy()
    # field-removal and truncation faults are applied to the encoded line, where they really happen
    frame = pl.DataFrame({"line": pl.Series(lines, dtype=pl.String), "fault": fault.astype(str),
                          "platform": platform.astype(str)})
    out = frame["line"]
    for pf, (device_field, ts_field, ts_repl) in _FAULT_EDITS.items():
        is_pf = pl.col("platform") == pf
        out = frame.with_columns(line=out).select(
            pl.when(is_pf & (pl.col("fault") == "missing_device_id")).then(pl.col("line").str.replace(device_field, ""))
            .when(is_pf & (pl.col("fault") == "missing_timestamp")).then(pl.col("line").str.replace(ts_field, ts_repl))
            .otherwise(pl.col("line"))
        )["line"]
    out = frame.with_columns(line=out).select(
        pl.when(pl.col("fault") == "malformed_json")
        .then(pl.col("line").str.slice(0, pl.col("line").str.len_chars() // 2)).otherwise(pl.col("line"))
    )["line"]
    comm = regs["community_id"].to_numpy()[dev]
    return pl.DataFrame({"community_id": comm, "device_id": device_ids.astype(str), "platform": platform.astype(str),
                         "ts": ts, "line": out, "fault": fault.astype(str), "readings": readings,
                         "device_type": dt_name})


def _status_messages(regs: pl.DataFrame, day: date, rng: np.random.Generator, rate: float) -> pl.DataFrame:
    """Online/offline messages: a share of the CTWing and IoTDA devices drop off the network for a moment.

    Each outage is an OFFLINE then an ONLINE message (CTWing deviceOnlineOfflineReport eventType 0/1, IoTDA
    device.status), shorter than four report intervals. One reading each; no faults.
    """
    regs = regs.filter(pl.col("platform").is_in(["ctwing", "iotda"]))
    n = regs.height
    pick = rng.random(n) < rate
    regs = regs.filter(pl.Series(pick))
    if regs.height == 0:
        return pl.DataFrame()
    day_start_ms = int(datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).timestamp() * 1000)
    interval = regs["report_interval_s"].to_numpy().astype(np.int64) * 1000
    down = day_start_ms + rng.integers(3_600_000, 72_000_000, regs.height)
    up = down + (interval * rng.uniform(0.5, 1.5, regs.height)).astype(np.int64)
    dev = np.tile(regs["device_id"].to_numpy().astype(str), 2)
    plat = np.tile(regs["platform"].to_numpy().astype(str), 2)
    comm = np.tile(regs["community_id"].to_numpy(), 2)
    model = np.tile(regs["vendor_model"].to_numpy().astype(str), 2)
    ts = np.concatenate([down, up])
    online = np.r_[np.zeros(regs.height, dtype=np.int64), np.ones(regs.height, dtype=np.int64)]
    df = pl.DataFrame({"device_id": dev, "platform": plat, "ts": ts, "online": online,
                       "product_id": [MODEL_BY_NAME[x].product_id for x in model]})
    ctwing = df.select(pl.struct(
        timestamp=pl.col("ts"), tenantId=pl.lit("2000031415"), protocol=pl.lit("lwm2m"),
        productId=pl.col("product_id"), messageType=pl.lit("deviceOnlineOfflineReport"), iccid=pl.lit("undefined"),
        eventType=pl.col("online"), deviceId=pl.col("device_id"),
    ).struct.json_encode().alias("line"))["line"]
    t = _fmt_iotda(ts)
    iotda = df.with_columns(t=t).select(pl.struct(
        resource=pl.lit("device.status"), event=pl.lit("update"), event_time=pl.col("t"),
        notify_data=pl.struct(
            header=pl.struct(app_id=pl.lit("neuron-putuo"), device_id=pl.col("device_id"),
                             node_id=pl.col("device_id").str.split("_").list.last(),
                             product_id=pl.col("device_id").str.split("_").list.first(),
                             gateway_id=pl.col("device_id")),
            body=pl.struct(status=pl.when(pl.col("online") == 1).then(pl.lit("ONLINE")).otherwise(pl.lit("OFFLINE")),
                           last_online_time=pl.col("t")),
        ),
    ).struct.json_encode().alias("line"))["line"]
    line = pl.select(pl.when(pl.Series(plat) == "ctwing").then(ctwing).otherwise(iotda))
    return pl.DataFrame({"community_id": comm, "device_id": dev, "platform": plat, "ts": ts,
                         "line": line.to_series(), "fault": "", "readings": np.ones(ts.size, dtype=np.int64),
                         "device_type": "status"})


CHUNK_COMMUNITIES = 40  # generated together; keeps the simulator's memory flat for a 600-community day


def simulate_telemetry_day(landing: Path, regs: pl.DataFrame, day: date, seed: int,
                           rates: FaultRates | None = None, threads: int = 2) -> DayTruth:
    """Write one day of telemetry for every device in ``regs`` to ``landing/telemetry/<day>/``."""
    rates = rates or FaultRates()
    out_dir = landing / "telemetry" / day.isoformat()
    for platform in ("ctwing", "iotda", "thingsboard"):
        (out_dir / platform).mkdir(parents=True, exist_ok=True)
    truth = DayTruth(day=day.isoformat(), communities=regs["community_id"].n_unique(), devices=regs.height,
                     faults={f: 0 for f in FAULT_CLASSES}, fault_readings={f: 0 for f in FAULT_CLASSES})
    if "wearer_id" not in regs.columns:
        regs = regs.with_columns(wearer_id=pl.lit(None, dtype=pl.String))
    comm_ids = regs["community_id"].unique(maintain_order=True).to_list()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for chunk_idx in range(0, len(comm_ids), CHUNK_COMMUNITIES):
            chunk = regs.filter(pl.col("community_id").is_in(comm_ids[chunk_idx:chunk_idx + CHUNK_COMMUNITIES]))
            _simulate_chunk(out_dir, chunk, day, [seed, day.toordinal(), chunk_idx], rates, truth, pool)
    return truth


def _simulate_chunk(out_dir: Path, regs: pl.DataFrame, day: date, chunk_seed: list[int], rates: FaultRates,
                    truth: DayTruth, pool: ThreadPoolExecutor) -> None:
    unknown_ids = {"ctwing": np.array([f"{15099999:08d}{i:015d}" for i in range(50)], dtype=object),
                   "iotda": np.array([f"5f3a00ffa1b2c3d4e5f6a7b8_GHOST{i:04d}" for i in range(50)], dtype=object),
                   "thingsboard": np.array([f"ENV-310107999{i:03d}-99" for i in range(50)], dtype=object)}
    frames = []
    for t_idx, dt in enumerate(DEVICE_TYPES):
        sub = regs.filter(pl.col("device_type") == dt.name)
        if sub.height == 0:
            continue
        rng = np.random.default_rng([*chunk_seed, t_idx])
        frames.append(_messages_for_type(dt.name, sub, day, rng, rates, unknown_ids))
    status = _status_messages(regs, day, np.random.default_rng([*chunk_seed, 77]), rates.outages)
    if status.height:
        frames.append(status)
        truth.status_messages += status.height
    msgs = pl.concat(frames)
    truth.messages += msgs.height
    truth.readings += int(msgs["readings"].sum())
    counts = msgs.group_by("fault").agg(pl.len().alias("n"), pl.col("readings").sum().alias("r"))
    for row in counts.iter_rows(named=True):
        if row["fault"]:
            truth.faults[row["fault"]] += row["n"]
            truth.fault_readings[row["fault"]] += row["r"]

    # platform retries: copies of clean messages, in the same file or re-delivered in a later file
    rng = np.random.default_rng([*chunk_seed, 99])
    u = rng.random(msgs.height)
    clean = (msgs["fault"] == "").to_numpy() | (msgs["fault"] == "rsrp_sign_dropped").to_numpy()
    dup_in = clean & (u < rates.duplicate_in_file)
    dup_x = clean & (u >= rates.duplicate_in_file) & (u < rates.duplicate_in_file + rates.duplicate_cross_file)
    truth.duplicate_lines_in_file += int(dup_in.sum())
    truth.duplicate_lines_cross_file += int(dup_x.sum())
    truth.duplicate_readings += int(msgs.filter(pl.Series(dup_in | dup_x))["readings"].sum())
    main = pl.concat([msgs, msgs.filter(pl.Series(dup_in))]).sort("community_id", "platform", "ts")
    retry = msgs.filter(pl.Series(dup_x)).sort("community_id", "platform", "ts")

    jobs = []
    for (comm, platform), part in main.partition_by(["community_id", "platform"], as_dict=True).items():
        jobs.append((out_dir / platform / f"{comm}-0001.ndjson.gz", part["line"]))
    for (comm, platform), part in retry.partition_by(["community_id", "platform"], as_dict=True).items():
        jobs.append((out_dir / platform / f"{comm}-0002-retry.ndjson.gz", part["line"]))

    def write(job: tuple[Path, pl.Series]) -> int:
        path, lines = job
        tmp = path.with_suffix(".part")
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fh:
            fh.write("\n".join(lines.to_list()))
            fh.write("\n")
        tmp.rename(path)  # the landing zone only ever shows whole files
        return lines.len()

    truth.lines += sum(pool.map(write, jobs))
    truth.files += len(jobs)
    # an OFFLINE message is no proof of life, but every device with an outage also reports readings
    reporting = msgs.filter(pl.col("fault") != "unknown_device")["device_id"].n_unique()
    truth.offline_devices += regs.height - reporting


def write_truth(landing: Path, truth: DayTruth) -> Path:
    path = landing / "_truth" / "telemetry" / f"{truth.day}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(truth)
    data.pop("wearer_ids")
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    return path
