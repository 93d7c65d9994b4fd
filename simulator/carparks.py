"""Vehicle gates (GA/T 1400 tollgates), car parks and each property's registered resident vehicles.

Reference data for the vehicle simulator; written to landing as the sites registry (no plates) and, per
community, the property's registered-vehicle list (raw plates: landing only, tokenised at parse).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from simulator.canaries import Canary

DISTRICT_CENTRE = "31010700"  # GB/T 28181 centre code: Shanghai (31) Putuo (0107) base unit 00
TOLLGATE_TYPE = "121"  # front-end checkpoint range (111-130); the exact code is not public [U]
CAMERA_TYPE = "132"  # IPC
NETWORK = "7"  # Internet
SERIAL_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # GA 36: no I or O
SH_AUTHORITY = "ABCDEFGHJKLMN"
OTHER_PROVINCES = "苏浙皖鲁豫赣闽鄂湘粤京川"
# Deployments differ per community (``feed_of``): which GA/T 1400 notification shape its cameras send and which
# parking cloud its car parks push to. Communities 0, 3, 6... standard; 1, 4, ... subscription notifications with
# 10-digit ids, epoch-ms PassTime and short TollgateIDs, and the method/data parking cloud; 2, 5, ... subscription
# notifications with bare lists, empty MotorVehicleID and TollgateID (the gate is found by its camera).
FEEDS = ("standard", "subscription", "subscription_bare")
# GA/T 1400 travel direction codes of a gate's (entry lane, exit lane), by gate number: Direction says where the
# lane goes (east to west...), never whether it enters; gate 1's entry lane travels west to east (code 2)
LANE_TRAVEL = ((3, 4), (2, 1), (1, 2), (6, 5))


def feed_of(index: int) -> str:
    return FEEDS[index % len(FEEDS)]


@dataclass(frozen=True)
class Sites:
    tollgates: pl.DataFrame  # community_id, gate_id, gate_name, tollgate_id, device_id, lanes, park_id,
    #                          tollgate_alias, in_out, lane_in_out (lane 1 enters, lane 2 leaves)
    car_parks: pl.DataFrame  # park_id, community_id, park_name, capacity, gates, vendor, vendor_park_id
    residents: pl.DataFrame  # community_id, plate, plate_color (4pyun code), car_type


def _gb_code(community_id: str, type_code: str, gate: int) -> str:
    street, seq = int(community_id[6:9]), int(community_id[9:12])
    return f"{DISTRICT_CENTRE}00{type_code}{NETWORK}{street:02d}{seq:03d}{gate}"


def _park_uuid(community_id: str, k: int, seed: int) -> str:
    h = hashlib.md5(f"{seed}-{community_id}-{k}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def random_plates(rng: np.random.Generator, n: int, local_share: float, nev_share: float) -> tuple[list[str], np.ndarray]:
    """``n`` GA 36 plates (ordinary 7-char, NEV 8-char green) and their 4pyun colour codes (1 blue, 5 green)."""
    local = rng.random(n) < local_share
    nev = rng.random(n) < nev_share
    prov = np.where(local, "沪", np.array(list(OTHER_PROVINCES))[rng.integers(0, len(OTHER_PROVINCES), n)])
    auth = np.array(list(SH_AUTHORITY))[rng.integers(0, len(SH_AUTHORITY), n)]
    f = pl.DataFrame({
        "prov": prov, "auth": auth, "nev": nev, "one": rng.random(n) < 0.35,
        "letter": np.array(list(SERIAL_LETTERS))[rng.integers(0, len(SERIAL_LETTERS), n)],
        "digits": pl.Series(rng.integers(0, 10**6, n)).cast(pl.String).str.zfill(6),
        "kind": np.where(rng.random(n) < 0.85, "D", "F"),
    })
    d = pl.col("digits")
    plate = (
        pl.when(pl.col("nev") & pl.col("one"))
        .then(pl.concat_str("prov", "auth", "kind", "letter", d.str.slice(0, 4)))
        .when(pl.col("nev"))
        .then(pl.concat_str("prov", "auth", "kind", d.str.slice(5, 1), d.str.slice(0, 4)))
        .when(pl.col("one"))
        .then(pl.concat_str("prov", "auth", "letter", d.str.slice(0, 4)))
        .otherwise(pl.concat_str("prov", "auth", d.str.slice(0, 5)))
    )
    plates = f.select(plate.alias("p"))["p"].to_list()
    return plates, np.where(nev, 5, 1)


def build(communities: pl.DataFrame, seed: int, canaries: list[Canary]) -> Sites:
    """Gates, car parks and resident vehicles for every community, deterministic by seed."""
    rng = np.random.default_rng([seed, 7001])
    gate_rows, park_rows, res_frames = [], [], []
    for ci, row in enumerate(communities.iter_rows(named=True)):
        cid, size = row["community_id"], float(row["size_factor"])
        n_parks = int(rng.integers(1, 3))
        n_gates = max(n_parks, int(rng.integers(1, 4)))
        for g in range(1, n_gates + 1):
            park_k = (g - 1) % n_parks
            gate_rows.append({
                "community_id": cid, "gate_id": f"{cid}-G{g}", "gate_name": f"{row['community_name']}{g}号车行口",
                "tollgate_id": _gb_code(cid, TOLLGATE_TYPE, g), "device_id": _gb_code(cid, CAMERA_TYPE, g),
                "lanes": 2, "park_id": _park_uuid(cid, park_k, seed),
                # the serial part of the code is what the short-id deployments send as TollgateID
                "tollgate_alias": _gb_code(cid, TOLLGATE_TYPE, g)[-6:], "in_out": "both", "lane_in_out": "1:in;2:out",
            })
        n_res = int(round(230 * size))
        for k in range(n_parks):
            gates = ",".join(f"{cid}-G{g}" for g in range(1, n_gates + 1) if (g - 1) % n_parks == k)
            park_rows.append({"park_id": _park_uuid(cid, k, seed), "community_id": cid,
                              "park_name": f"{row['community_name']}{'地面' if k == 0 else '地下'}停车场",
                              "capacity": int(round(n_res * 1.1 / n_parks)) + 30, "gates": gates,
                              "vendor": "method_data" if feed_of(ci) == "subscription" else "4pyun",
                              "vendor_park_id": f"{k + 1:03d}" if feed_of(ci) == "subscription" else ""})
        plates, colours = random_plates(rng, n_res, local_share=0.9, nev_share=0.22)
        # canary residents own a car in the community given by their index
        for i, c in enumerate(canaries):
            if i % communities.height == ci:
                plates[i] = c.plate
                colours[i] = 1
        res_frames.append(pl.DataFrame({
            "community_id": cid, "plate": plates, "plate_color": colours.astype(np.int64),
            "car_type": np.where(rng.random(n_res) < 0.9, 2, 4).astype(np.int64),
        }))
    residents = pl.concat(res_frames).unique(subset=["community_id", "plate"], keep="first", maintain_order=True)
    return Sites(pl.DataFrame(gate_rows), pl.DataFrame(park_rows), residents)


def _write_csv(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    frame.write_csv(tmp)
    tmp.rename(path)


def write(landing: Path, day: date, sites: Sites) -> None:
    """landing/sites/<day>/{tollgates,car_parks}.csv and landing/parking/<day>/<community>/registered_vehicles.csv."""
    d = day.isoformat()
    _write_csv(sites.tollgates, landing / "sites" / d / "tollgates.csv")
    _write_csv(sites.car_parks, landing / "sites" / d / "car_parks.csv")
    for (cid,), frame in sites.residents.group_by("community_id", maintain_order=True):
        _write_csv(frame.select("plate", "plate_color", "car_type"),
                   landing / "parking" / d / str(cid) / "registered_vehicles.csv")
