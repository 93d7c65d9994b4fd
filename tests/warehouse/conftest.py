"""A small lake written with the real lake writer: the simulator's registries over two days (one community
renamed on the second), a door registry naming one community the device registry does not, a few telemetry
readings either side of local midnight, an hour of gold and the telemetry row accounting."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.access.datasets import ACCESS_DOORS
from assets.telemetry.datasets import DEVICE_REGISTRY, ENVIRONMENT_HOURLY, TELEMETRY_SILVER
from kernel.dataset import Dataset, accounting_dataset
from kernel.lake import Lake
from simulator.registry import communities, devices
from simulator.sites import doors

DAY1, DAY2 = "2026-11-19", "2026-11-20"
SEED = 7
RENAMED_TO = "梅岭北苑"


def write_frame(lake: Lake, ds: Dataset, day: str, frame: pl.DataFrame) -> int:
    """A partition of ``ds`` from a Polars frame, through the declared projection (as the assets write)."""
    con = duckdb.connect()
    con.register("frame", frame.to_arrow())
    return lake.write_query(con, f"SELECT {ds.select_list()} FROM frame", ds.layer, ds.name, day)


def write_rows(lake: Lake, ds: Dataset, day: str, rows: list[dict[str, str]]) -> int:
    """A partition of ``ds`` from rows of SQL expressions per column (columns not given are null)."""
    selects = [", ".join(f'CAST({r.get(c.name, "NULL")} AS {c.type}) AS "{c.name}"' for c in ds.columns)
               for r in rows]
    return lake.write_query(duckdb.connect(), " UNION ALL ".join(f"SELECT {s}" for s in selects),
                            ds.layer, ds.name, day)


@dataclass
class SmallLake:
    data: Path  # NEURON_DATA_DIR layout: lake/, outbox/, warehouse/neuron.duckdb
    lake: Lake
    communities: pl.DataFrame  # as the device registry names them on DAY1
    renamed: str  # the community renamed on DAY2
    doors_only: str  # a community only the door registry lists (on DAY2)
    readings: dict[str, int]  # silver telemetry rows per day

    @property
    def warehouse(self) -> Path:
        return self.data / "warehouse" / "neuron.duckdb"

    @property
    def outbox(self) -> Path:
        return self.data / "outbox"


def make_small_lake(data: Path) -> SmallLake:
    lake = Lake(data / "lake")
    comms = communities(3, SEED)
    regs = devices(comms, SEED)
    write_frame(lake, DEVICE_REGISTRY, DAY1, regs)
    renamed = comms["community_id"][0]
    write_frame(lake, DEVICE_REGISTRY, DAY2, regs.with_columns(
        pl.when(pl.col("community_id") == renamed).then(pl.lit(RENAMED_TO)).otherwise(pl.col("community_name"))
        .alias("community_name")))
    four = communities(4, SEED)
    write_frame(lake, ACCESS_DOORS, DAY2, doors(four, SEED))
    cid = f"'{renamed}'"
    reading = {"community_id": cid, "device_id": "'dev-1'", "device_type": "'env'", "platform": "'iotda'",
               "metric": "'pm25'", "value": "35", "unit": "'ug/m3'", "quality_flag": "'ok'"}
    readings = {
        # 15:30 UTC on DAY1 is 23:30 in Shanghai: the evening peak, hour 23 in gold
        DAY1: write_rows(lake, TELEMETRY_SILVER, DAY1, [
            {**reading, "event_ts": f"TIMESTAMPTZ '{DAY1} 15:30:00+00'"},
            {**reading, "event_ts": f"TIMESTAMPTZ '{DAY1} 15:45:00+00'"}]),
        # 16:10 UTC on DAY1 is already 00:10 on DAY2 locally: DAY2's partition
        DAY2: write_rows(lake, TELEMETRY_SILVER, DAY2, [
            {**reading, "event_ts": f"TIMESTAMPTZ '{DAY1} 16:10:00+00'"}]),
    }
    write_rows(lake, ENVIRONMENT_HOURLY, DAY1, [
        {"community_id": cid, "hour_start": f"TIMESTAMP '{DAY1} 23:00:00'", "devices": "1", "pm25_avg": "35",
         "observations": "2"}])
    write_rows(lake, accounting_dataset("telemetry"), DAY1, [
        {"source": "'telemetry'", "files": "1", "lines": "2", "landed": "2", "accepted": "2", "quarantined": "0",
         "duplicates_in_file": "0", "duplicates_cross_file": "0", "balanced": "true",
         "computed_at": f"TIMESTAMPTZ '{DAY2} 01:00:00+08'"}])
    return SmallLake(data, lake, comms, renamed, four["community_id"][3], readings)


@pytest.fixture
def small_lake(tmp_path: Path) -> SmallLake:
    return make_small_lake(tmp_path / "data")
