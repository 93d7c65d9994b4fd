"""A district-day for the access tests: registry, telemetry (for fence alarms), canaries and access events.

Calls the simulators directly rather than simulator.district.simulate_day, so the access tests depend only on
the telemetry and access simulators.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from simulator import access
from simulator.canaries import canary_residents, write_canaries
from simulator.district import REGISTRY_COLUMNS, district_registry
from simulator.registry import communities
from simulator.telemetry import FaultRates, simulate_telemetry_day, write_truth


def simulate_access_day(landing: Path, day: date, n_communities: int, seed: int, faults: bool = True,
                        telemetry: bool = True) -> dict:
    """Simulate the sources the access groups read; returns the access simulator's summary."""
    canaries = canary_residents(seed)
    regs = district_registry(n_communities, seed)
    if telemetry:
        reg_dir = landing / "device_registry" / day.isoformat()
        reg_dir.mkdir(parents=True, exist_ok=True)
        regs.select(REGISTRY_COLUMNS).write_csv(reg_dir / "devices.csv")
        truth = simulate_telemetry_day(landing, regs, day, seed, None if faults else FaultRates.none(), 2)
        write_truth(landing, truth)
    write_canaries(landing, day.isoformat(), canaries)
    return access.simulate(landing, day, communities(n_communities, seed), regs, seed, canaries, faults=faults)


def truth_dir(landing: Path, day: str) -> Path:
    return landing / "_truth" / "access" / day


def read_truth(landing: Path, day: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(truth_dir(landing, day) / f"{name}.parquet")
