"""The Neuron code location: every domain's assets, checks, jobs, schedules and sensors, merged in one place.

Policy applied across the graph lives here: every silver, gold and export asset gets the blocking PII scan,
every dataset with a declared suite gets its great-expectations checks.
"""

from __future__ import annotations

import dagster as dg

from assets.access.assets import ACCESS_ASSETS
from assets.governance.assets import GOVERNANCE_ASSETS
from assets.services.assets import SERVICES_ASSETS
from assets.telemetry.assets import TELEMETRY_ASSETS
from assets.vehicles.assets import VEHICLES_ASSETS
from exports.assets import CONTRACTS, EXPORT_ASSETS, export_files
from pipelines.freshness import freshness_checks, freshness_job, freshness_schedule, landing_specs
from pipelines.jobs import daily_job, daily_schedule, landing_sensor
from pipelines.partitions import daily
from pipelines.resources import NeuronResource
from pipelines.retention import landing_retention_job, landing_retention_schedule
from pipelines.settings import load_settings
from quality.gx_checks import build_gx_checks
from quality.pii_checks import build_pii_check
from quality.pii_scan import redact
from warehouse.assets import build_warehouse_asset
from warehouse.lake import Lake
from warehouse.schemas import DATASETS

PUBLISHED_LAYERS = ("silver", "gold")


def _lake_files(layer: str, name: str):
    def paths(partition_key: str | None) -> list[str]:
        return Lake(load_settings().lake_dir).files(layer, name, partition_key) if partition_key else []

    return paths


def _checks() -> list[dg.AssetChecksDefinition]:
    checks = []
    for ds in DATASETS.values():
        key = dg.AssetKey([ds.layer, ds.name])
        if ds.layer in PUBLISHED_LAYERS:
            checks.append(build_pii_check(key, _lake_files(ds.layer, ds.name), daily))
        if ds.suite:
            checks.append(build_gx_checks(key, f"{ds.layer}.{ds.name}", ds.suite, _lake_files(ds.layer, ds.name),
                                          daily, redactor=redact))
    for contract in CONTRACTS:
        key = dg.AssetKey(["export", contract.consumer, contract.dataset])
        checks.append(build_pii_check(key, export_files(contract), daily))
    return checks


if load_settings().mode == "production":
    # fail at code-location load, naming NEURON_TOKEN_KEY, rather than in the first run that tokenises
    from assets.privacy.tokens import Tokenizer

    Tokenizer.from_env()

_lake_assets = [*TELEMETRY_ASSETS, *ACCESS_ASSETS, *VEHICLES_ASSETS, *SERVICES_ASSETS, *GOVERNANCE_ASSETS,
                *EXPORT_ASSETS]
_upstream = [k for a in _lake_assets for k in a.keys]
warehouse_asset = build_warehouse_asset(_upstream, CONTRACTS)

defs = dg.Definitions(
    assets=[*landing_specs, *_lake_assets, warehouse_asset],
    asset_checks=[*_checks(), *freshness_checks],
    jobs=[daily_job, landing_retention_job, freshness_job],
    schedules=[daily_schedule, landing_retention_schedule, freshness_schedule],
    sensors=[landing_sensor],
    resources={"neuron": NeuronResource()},
)
