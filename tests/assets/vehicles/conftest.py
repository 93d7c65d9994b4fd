"""One simulated vehicles day shared by the unit tests of this folder (landing only, no Dagster)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

DAY = "2026-11-19"


@dataclass
class Landed:
    landing: Path
    day: str
    summary: dict
    canaries: list


def simulate_landing(landing: Path, day: str = DAY, n: int = 3, seed: int = 5, faults: bool = True) -> Landed:
    from simulator import vehicles
    from simulator.canaries import canary_residents, write_canaries
    from simulator.registry import communities

    canaries = canary_residents(seed)
    write_canaries(landing, day, canaries)
    summary = vehicles.simulate(landing, date.fromisoformat(day), communities(n, seed), None, seed, canaries,
                                faults=faults)
    return Landed(landing, day, summary, canaries)


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Landed:
    return simulate_landing(tmp_path_factory.mktemp("vehicles") / "landing")
