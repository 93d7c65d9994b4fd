"""One simulated district-day in the landing zone: every source, the canaries and the ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from simulator import access, governance, services, vehicles
from simulator.canaries import canary_residents, write_canaries
from simulator.registry import communities, devices
from simulator.telemetry import DayTruth, FaultRates, simulate_telemetry_day, write_truth

REGISTRY_COLUMNS = ("device_id", "platform", "community_id", "community_name", "street", "building_id",
                    "device_type", "vendor_model", "installed_on", "report_interval_s")


@dataclass
class SimulationResult:
    day: str
    landing: Path
    telemetry: DayTruth
    # per domain: the summary its simulator returned (full truth tables live under landing/_truth/<domain>/)
    domains: dict[str, dict]


def district_registry(n_communities: int, seed: int) -> pl.DataFrame:
    regs = devices(communities(n_communities, seed), seed)
    wearer = pl.format("P{}{}", pl.col("community_id"), pl.col("seq").cast(pl.String).str.zfill(4))
    return regs.with_columns(wearer_id=pl.when(pl.col("device_type") == "wearable").then(wearer))


def simulate_day(landing: Path, day: date, n_communities: int = 6, seed: int = 42,
                 rates: FaultRates | None = None, threads: int = 2) -> SimulationResult:
    """Simulate every source for one day; files appear whole (written aside, then renamed)."""
    landing = Path(landing)
    regs = district_registry(n_communities, seed)
    canaries = canary_residents(seed)
    # the first wristband of the district is worn by a canary resident
    first = regs.filter(pl.col("device_type") == "wearable").row(0, named=True)["device_id"]
    regs = regs.with_columns(
        wearer_id=pl.when(pl.col("device_id") == first).then(pl.lit(canaries[0].person_number))
        .otherwise(pl.col("wearer_id"))
    )
    reg_dir = landing / "device_registry" / day.isoformat()
    reg_dir.mkdir(parents=True, exist_ok=True)
    tmp = reg_dir / "devices.csv.part"
    regs.select(REGISTRY_COLUMNS).write_csv(tmp)
    tmp.rename(reg_dir / "devices.csv")
    truth = simulate_telemetry_day(landing, regs, day, seed, rates, threads)
    write_truth(landing, truth)
    write_canaries(landing, day.isoformat(), canaries)
    faults = rates is None or rates != FaultRates.none()
    comms = communities(n_communities, seed)
    domains = {
        name: module.simulate(landing, day, comms, regs, seed, canaries, faults=faults)
        for name, module in (("access", access), ("vehicles", vehicles), ("services", services),
                             ("governance", governance))
    }
    return SimulationResult(day.isoformat(), landing, truth, domains)
