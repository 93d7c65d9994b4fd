"""The Neuron code location: every domain's assets, checks, jobs, schedules and sensors, merged in one place."""

from __future__ import annotations

import dagster as dg

from assets.telemetry.assets import TELEMETRY_ASSETS
from exports.assets import CONTRACTS, EXPORT_ASSETS
from pipelines.jobs import daily_job, daily_schedule, landing_sensor
from pipelines.resources import NeuronResource
from warehouse.assets import build_warehouse_asset

_lake_assets = [*TELEMETRY_ASSETS, *EXPORT_ASSETS]
_upstream = [k for a in _lake_assets for k in a.keys]
warehouse_asset = build_warehouse_asset(_upstream, CONTRACTS)

defs = dg.Definitions(
    assets=[*_lake_assets, warehouse_asset],
    jobs=[daily_job],
    schedules=[daily_schedule],
    sensors=[landing_sensor],
    resources={"neuron": NeuronResource()},
)
