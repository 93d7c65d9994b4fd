"""Simulated services sources (placeholder until the domain lands)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from simulator.canaries import Canary


def simulate(landing: Path, day: date, communities: pl.DataFrame, devices: pl.DataFrame, seed: int,
             canaries: list[Canary], faults: bool = True) -> dict:
    return {}
