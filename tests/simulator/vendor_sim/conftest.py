"""One staged district-day (2 communities) and one vendor server for every vendor-simulator test."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from simulator.vendor_sim.catalog import VendorPlatform
from simulator.vendor_sim.faults import Faults
from simulator.vendor_sim.server import VendorServer

DAY = date(2026, 11, 20)


@pytest.fixture(scope="session")
def vendor_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vendor_sim")


@pytest.fixture(scope="session")
def platform(vendor_workdir: Path) -> VendorPlatform:
    return VendorPlatform.stage(vendor_workdir, DAY, communities=2, seed=7)


@pytest.fixture(scope="session")
def _server(platform: VendorPlatform):
    server = VendorServer(platform).start()
    yield server
    server.stop()


@pytest.fixture
def server(_server: VendorServer) -> VendorServer:
    """The session's server with every fault off and nothing remembered."""
    _server.faults.update({k: v for k, v in Faults().to_dict().items() if k != "down"})
    _server.faults.down = False
    _server.reset()
    yield _server
    _server.faults.down = False
