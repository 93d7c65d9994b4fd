"""A deterministic district: communities, buildings and the IoT devices installed in them.

Reference data for the simulator and the device-registry export that vendors deliver to the landing zone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

DISTRICT_CODE = "310107"  # Putuo District, Shanghai
STREETS = (
    "长寿路街道", "曹杨新村街道", "长风新村街道", "宜川路街道", "甘泉路街道",
    "石泉路街道", "万里街道", "真如镇街道", "长征镇", "桃浦镇",
)
_NAME_PARTS = ("梅岭", "曹杨", "兰溪", "真光", "武宁", "中山", "枣阳", "光复", "桃浦", "金沙",
               "白玉", "宜川", "甘泉", "石泉", "万里", "清涧", "祁连", "长风", "铜川", "绿洲")
_NAME_SUFFIX = ("新村", "小区", "苑", "公寓", "花园", "坊")


@dataclass(frozen=True)
class DeviceType:
    name: str
    platform: str  # the platform of the type's first (default) model
    per_community: int
    interval_s: int
    model: str


@dataclass(frozen=True)
class ProductModel:
    """One vendor product model as deployed: the platform it reports through and the payload shape it sends.

    Shapes (what ``simulator.telemetry`` writes, and ``assets/telemetry`` parses):
    ``thing`` CTWing thing-model ``payload.serviceData``; ``thing_lian`` the LiAn NB smoke detector's thing model
    (``Alarm_Status`` codes, ``IMEI``, ``Cell_ID``, ``CSQ``, positive RSRP); ``appdata`` CTWing transparent
    ``payload.APPdata`` (base64 bytes, decoded by the model's codec); ``flat`` CTWing flat payload;
    ``property`` IoTDA ``device.property``; ``property_ms`` the same with only ``event_time_ms`` on the envelope;
    ``tb_gateway`` ThingsBoard gateway telemetry; ``tb_device`` ThingsBoard device telemetry (ts/values, some flat).
    """

    model: str
    platform: str
    shape: str
    product_id: str


# Per device type, the models deployed; a community gets one model per type (index by community), so a
# district mixes vendors the way real deployments do.
MODELS: dict[str, tuple[ProductModel, ...]] = {
    "smoke": (ProductModel("JTY-GD-NB01", "ctwing", "thing", "15000000"),
              ProductModel("LA-NB-SMOKE", "ctwing", "thing_lian", "15014772")),
    "gas": (ProductModel("GT-NB-CH4", "ctwing", "thing", "15001111"),),
    "water_meter": (ProductModel("LXSY-NB-20", "ctwing", "appdata", "15002222"),),
    "manhole": (ProductModel("MH-NB-TILT", "ctwing", "flat", "15003333"),),
    "sos_button": (ProductModel("SOS-NB-01", "ctwing", "thing", "15004444"),),
    "elec_meter": (ProductModel("DDZY-IOT", "iotda", "property", "5f3a0005"),
                   ProductModel("DDZY-IOT-MS", "iotda", "property_ms", "5f3a000c")),
    "env": (ProductModel("AQM-PM-N", "iotda", "property", "5f3a0006"),
            ProductModel("AQM-TB-GW", "thingsboard", "tb_gateway", ""),
            ProductModel("AQM-TB", "thingsboard", "tb_device", "")),
    "streetlight": (ProductModel("SLC-IOT", "iotda", "property", "5f3a0007"),),
    "ev_charger": (ProductModel("EVC-7KW", "iotda", "property", "5f3a0008"),),
    "wearable": (ProductModel("OLD-BAND-4G", "iotda", "property", "5f3a0009"),),
    "e_fence": (ProductModel("PF-9KV", "iotda", "property", "5f3a000a"),),
    "nmv_gate": (ProductModel("NMV-GATE", "iotda", "property_ms", "5f3a000b"),),
}
MODEL_BY_NAME = {m.model: m for models in MODELS.values() for m in models}


# Counts and report intervals give ~67k readings per community-day, the design's district-day volume.
DEVICE_TYPES: tuple[DeviceType, ...] = (
    DeviceType("smoke", "ctwing", 80, 3600, "JTY-GD-NB01"),
    DeviceType("gas", "ctwing", 30, 3600, "GT-NB-CH4"),
    DeviceType("water_meter", "ctwing", 60, 3600, "LXSY-NB-20"),
    DeviceType("manhole", "ctwing", 8, 1800, "MH-NB-TILT"),
    DeviceType("sos_button", "ctwing", 10, 3600, "SOS-NB-01"),
    DeviceType("elec_meter", "iotda", 60, 900, "DDZY-IOT"),
    DeviceType("env", "iotda", 2, 300, "AQM-PM-N"),
    DeviceType("streetlight", "iotda", 20, 900, "SLC-IOT"),
    DeviceType("ev_charger", "iotda", 6, 300, "EVC-7KW"),
    DeviceType("wearable", "iotda", 15, 300, "OLD-BAND-4G"),
    DeviceType("e_fence", "iotda", 4, 300, "PF-9KV"),
    DeviceType("nmv_gate", "iotda", 3, 300, "NMV-GATE"),
)
DEVICE_TYPE_BY_NAME = {d.name: d for d in DEVICE_TYPES}


def communities(n: int, seed: int) -> pl.DataFrame:
    """``n`` communities spread over the district's ten streets, deterministic by seed."""
    rng = np.random.default_rng([seed, 1])
    street_idx = np.arange(n) % len(STREETS)
    seq = np.arange(n) // len(STREETS) + 1
    ids = [f"{DISTRICT_CODE}{s + 1:03d}{q:03d}" for s, q in zip(street_idx, seq, strict=True)]
    names = [
        f"{_NAME_PARTS[rng.integers(len(_NAME_PARTS))]}{_NAME_SUFFIX[rng.integers(len(_NAME_SUFFIX))]}{i % 97 + 1}"
        for i in range(n)
    ]
    return pl.DataFrame(
        {
            "community_id": ids,
            "community_name": names,
            "street": [STREETS[i] for i in street_idx],
            "size_factor": rng.uniform(0.7, 1.3, n).round(3),
            "buildings": rng.integers(8, 40, n),
        }
    )


def devices(comms: pl.DataFrame, seed: int) -> pl.DataFrame:
    """The device registry for the given communities (one row per device)."""
    frames = []
    for t_idx, dt in enumerate(DEVICE_TYPES):
        rng = np.random.default_rng([seed, 2, t_idx])
        counts = np.maximum(1, np.round(dt.per_community * comms["size_factor"].to_numpy())).astype(np.int64)
        comm_idx = np.repeat(np.arange(comms.height), counts)
        n = comm_idx.size
        seq = np.concatenate([np.arange(c) for c in counts])
        comm_ids = comms["community_id"].to_numpy()[comm_idx]
        buildings = comms["buildings"].to_numpy()[comm_idx]
        bld = rng.integers(0, 1 << 30, n) % buildings + 1
        options = MODELS[dt.name]
        model_idx = comm_idx % len(options)
        model = np.array([m.model for m in options], dtype=object)[model_idx]
        platform = np.array([m.platform for m in options], dtype=object)[model_idx]
        product = np.array([m.product_id for m in options], dtype=object)[model_idx]
        # a CTWing deviceId is the productId and a 15-digit serial (not the IMEI, which the device reports apart)
        serial = 100000000000000 + rng.integers(0, 10**9, n) * 1000 + seq % 1000
        iotda_product = f"{(0x5F3A0000 + t_idx):08x}{'a1b2c3d4e5f6a7b8'}"
        dev_ids = [
            f"{p}{s:015d}" if pf == "ctwing"
            else f"{iotda_product}_{c}{dt.name[:2].upper()}{q:04d}" if pf == "iotda"
            else f"{dt.name[:3].upper()}-{c}-{q:02d}"  # a ThingsBoard device name
            for p, s, pf, c, q in zip(product, serial, platform, comm_ids, seq, strict=True)
        ]
        frames.append(
            pl.DataFrame(
                {
                    "device_id": dev_ids,
                    "platform": platform.astype(str),
                    "community_id": comm_ids,
                    "building_id": [f"{c}-B{b:02d}" for c, b in zip(comm_ids, bld, strict=True)],
                    "device_type": dt.name,
                    "vendor_model": model.astype(str),
                    "installed_on": pl.Series(
                        np.datetime64("2024-01-01") + rng.integers(0, 600, n).astype("timedelta64[D]")
                    ),
                    "report_interval_s": np.full(n, dt.interval_s, dtype=np.int32),
                    "seq": seq,
                }
            )
        )
    regs = pl.concat(frames)
    return regs.join(comms.select("community_id", "community_name", "street"), on="community_id", how="left")
