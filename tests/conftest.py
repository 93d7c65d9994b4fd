"""Shared fixtures: an isolated data root per test session and one simulated day run through Dagster."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

os.environ["NEURON_MODE"] = "test"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

E2E_DAY = "2026-11-20"


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh NEURON_DATA_DIR (and DAGSTER_HOME) for one test."""
    monkeypatch.setenv("NEURON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "data" / "dagster_home"))
    for var in ("NEURON_LANDING_DIR", "NEURON_LAKE_DIR", "NEURON_WAREHOUSE_PATH", "NEURON_OUTBOX_DIR"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "data" / "dagster_home").mkdir(parents=True)
    return tmp_path / "data"


@dataclass
class DayRun:
    root: Path
    day: str
    truth: object
    result: object


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory: pytest.TempPathFactory):
    """Simulate a small district-day with every fault switched on and run the daily job through Dagster."""
    from pipelines.cli import prepare_dagster_home, run_day
    from simulator.district import simulate_day

    root = tmp_path_factory.mktemp("e2e") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEURON_DATA_DIR", str(root))
        mp.setenv("DAGSTER_HOME", str(prepare_dagster_home(root / "dagster_home")))
        sim = simulate_day(root / "landing", date.fromisoformat(E2E_DAY), n_communities=3, seed=7)
        result = run_day(E2E_DAY)
        yield DayRun(root, E2E_DAY, sim.telemetry, result)


_exit_status = {"code": 0}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter teardown once pytest has printed its summary.

    duckdb's nanobind bindings print dozens of "leaked function" lines at teardown (cosmetic, see
    ../shared/reference/gx.md §6); they would bury pytest's closing line. The exit status is pytest's own.
    """
    if os.environ.get("NEURON_PYTEST_CLEAN_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status["code"])
