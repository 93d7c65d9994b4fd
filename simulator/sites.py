"""The access-control door registry (community gates and building unit doors), as the platform exports it.

Deterministic from the communities and the seed; written to ``landing/sites/<day>/doors.csv``.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

DOOR_COLUMNS = ("door_id", "device_gb_code", "community_id", "building_id", "gate_name", "kind", "vendor_convention")
_GATE_NAMES = ("南门", "北门", "东门", "西门", "东南门", "西北门")
# GB/T 28181 rule A: centre 8 (district + base unit 00) + industry 08 + type 137 (our choice for door
# controllers, a peripheral) + network 8 (social resources) + serial 6
_GB_PREFIX = "310107" + "00" + "08" + "137" + "8"


def _index_code(seed: int, cid: str, j: int, uuid: bool) -> str:
    """An ISC resource index code: 32 lower-case hex digits, or the same as a dashed UUID (both seen in ISC
    payloads' srcIndex)."""
    h = hashlib.md5(f"{seed}/{cid}/{j}".encode()).hexdigest()
    # never starts with 8 f: the simulator's unregistered doors do (simulator.access)
    h = ("e" + h[1:]) if h.startswith("ffffffff") else h
    if uuid:
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    # a 32-hex code starting with a letter: a leading run of 11+ digits would read as a phone or ID number to the
    # PII scanner
    return "abcdef"[int(h[0], 16) % 6] + h[1:] if h[0].isdigit() else h


def doors(comms: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Two to four pedestrian gates plus one unit door per building for every community.

    Each community's integration uses one ExtEventInOut convention; both occur in any district of two or
    more communities (the first community is inout_10, the second inout_12). Door ids are ISC resource index
    codes: 32-hex in some communities, UUIDs in others (the first is 32-hex, the second UUID).
    """
    rng = np.random.default_rng([seed, 30])
    n = comms.height
    n_gates = rng.integers(2, 5, n)
    conv = np.where(rng.random(n) < 0.5, "inout_10", "inout_12")
    conv[0:1] = "inout_10"
    conv[1:2] = "inout_12"
    uuid = rng.random(n) < 0.5
    uuid[0:1] = False
    uuid[1:2] = True
    rows: dict[str, list] = {c: [] for c in DOOR_COLUMNS}
    serial = 0
    for i, (cid, buildings) in enumerate(zip(comms["community_id"], comms["buildings"], strict=True)):
        items = [("gate", None, _GATE_NAMES[g]) for g in range(int(n_gates[i]))]
        items += [("unit_door", f"{cid}-B{b:02d}", f"{b}号楼单元门") for b in range(1, int(buildings) + 1)]
        for j, (kind, building, name) in enumerate(items):
            serial += 1
            rows["door_id"].append(_index_code(seed, cid, j, bool(uuid[i])))
            rows["device_gb_code"].append(f"{_GB_PREFIX}{serial:06d}")
            rows["community_id"].append(cid)
            rows["building_id"].append(building)
            rows["gate_name"].append(name)
            rows["kind"].append(kind)
            rows["vendor_convention"].append(str(conv[i]))
    return pl.DataFrame(rows, schema={c: pl.String for c in DOOR_COLUMNS})


def write_doors(landing: Path, day: date, table: pl.DataFrame) -> Path:
    """``landing/sites/<day>/doors.csv``, written aside then renamed."""
    out = Path(landing) / "sites" / day.isoformat()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "doors.csv.part"
    table.select(DOOR_COLUMNS).write_csv(tmp)
    tmp.rename(out / "doors.csv")
    return out / "doors.csv"
