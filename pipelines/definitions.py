"""The Neuron code location: every domain's assets, checks, jobs, schedules and sensors, merged in one place."""

from __future__ import annotations

import dagster as dg

from assets.telemetry.assets import TELEMETRY_ASSETS
from pipelines.resources import NeuronResource

defs = dg.Definitions(
    assets=[*TELEMETRY_ASSETS],
    resources={"neuron": NeuronResource()},
)
