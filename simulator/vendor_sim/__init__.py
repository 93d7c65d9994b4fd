"""The vendor-platform simulator: one simulated district-day served through the vendors' real protocols (pull
history, file exports, pushes), with a ledger of everything emitted and switchable faults. docs/connectors.md
is the wire contract.

    platform = VendorPlatform.stage(workdir, day, communities=6, seed=42)   # catalog.py
    with serve(platform, faults=Faults(rate_limit=5)) as server:             # server.py, faults.py
        config = server.config                                               # connectors.config.VendorConfig
        report = push_day(platform, collector_url, config)                   # push.py
    landed_records(landing, day, source)  # keys in a landing zone, to compare with platform.ledger (ledger.py)
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "VendorPlatform": "catalog", "Credentials": "catalog", "History": "catalog",
    "Faults": "faults", "FaultSpecError": "faults",
    "record_key": "ledger", "raw_key": "ledger", "landed_records": "ledger", "vehicle_objects": "ledger",
    "VendorServer": "server", "UvicornThread": "server", "serve": "server",
    "push_day": "push", "push_plan": "push", "PushReport": "push", "SourceReport": "push",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy: the catalog's scan workers import no web server
    if name not in _EXPORTS:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f"simulator.vendor_sim.{_EXPORTS[name]}"), name)
