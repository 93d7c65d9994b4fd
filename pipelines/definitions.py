"""The Neuron code location: every area's ``Definitions`` merged, then policy applied across the graph in one pass.

Areas: each domain under ``assets/`` (found by folder), the exports (one asset per contract) and the
warehouse. Policy: the blocking PII scan on every lake asset (withdrawing what leaks) and every export; each
dataset's great-expectations suite plus the small-cell rule of every suppressed people count (the method and
k from the contracts); owners and
tags on every asset; a pool on the heavy ingest steps; jobs, schedules and the landing sensor.

This module is the definitions loader: the only place that reads settings when the code location loads.
"""

from __future__ import annotations

import warnings

import dagster as dg

from assets import registry
from connectors.dagster_assets import landing_assets
from exports import definitions as exports_area
from exports import incidents
from exports.contracts import Contract, disclosures, k_thresholds, load_contracts
from exports.definitions import export_files, export_key
from exports.outbox_store import mirror_outbox
from kernel import record_keys
from kernel.dataset import INTERNAL_LAYER, Dataset, small_cells_suppressed
from kernel.expectations import Spec, localised
from kernel.lake_asset import Area
from kernel.landing import FRESHNESS_CHECK
from kernel.partitions import partitions_def
from kernel.priorities import op_tags, upward_ranks
from kernel.resource import NeuronResource
from kernel.settings import Settings, load_settings
from kernel.tokens import Tokenizer
from pipelines import jobs
from pipelines.pools import INGEST_POOL  # the bronze parses: NEURON_INGEST_SLOTS at once per instance
from pipelines.retention import landing_retention_job, landing_retention_schedule
from quality.gx_checks import build_gx_checks
from quality.pii_checks import build_lake_pii_check, build_pii_check
from quality.pii_scan import redact
from warehouse import definitions as warehouse_area

OWNERS = {"export": "team:neuron-publishing", "warehouse": "team:neuron-warehouse"}
DEFAULT_OWNER = "team:neuron-data"


def _lake_files(ds: Dataset):
    def paths(neuron: NeuronResource, partition_key: str | None) -> list[str]:
        return neuron.lake.files(ds.layer, ds.name, partition_key) if partition_key else []

    return paths


def suite(ds: Dataset, area: Area) -> tuple[Spec, ...]:
    """A dataset's declared suite (in the partition time zone) plus the small-cell rule of its people counts,
    with the contracts' k."""
    tz = area.timezone
    suppressed = ds.counts and not area.disclosure(ds).is_cell_key
    return (*(localised(s, tz) for s in ds.suite), *((small_cells_suppressed(ds.counts, area.k(ds)),) if suppressed else ()))


def side_datasets(datasets: dict[str, Dataset]) -> dict[str, list[Dataset]]:
    """Datasets that are not assets (``asset=False``, written as a side product of a step) by the asset whose
    privacy check scans them: row accounting with the silver asset it accounts for (the step's declared
    ``accounting``), anything else with its domain's parser (the one step writing a quarantine). A side dataset
    with no such owner fails the load: every lake dataset is scanned."""
    steps = [step for domain in registry.domains() for step in domain.steps]
    owners: dict[str, list[Dataset]] = {}
    for ds in datasets.values():
        if ds.asset:
            continue
        owner = next((silver for step in steps for silver, suffix in step.accounting
                      if ds.name == f"row_accounting_{suffix or silver.name}"), None)
        if ds.layer == INTERNAL_LAYER:  # the exact twin of a protected gold, written by the same step
            owner = datasets.get(f"gold/{ds.name}")
        if owner is None and ds.layer != INTERNAL_LAYER:
            parsers = [step for domain in registry.domains() if domain.name == ds.domain
                       for step in domain.steps if step.parses]
            owner = parsers[0].outputs[0] if len(parsers) == 1 else None
        if owner is None or owner.key not in datasets:
            raise ValueError(f"{ds.key} is not an asset and no step is known to write it: its privacy scan "
                             "has no asset to run on (declare it as an asset, or extend side_datasets)")
        owners.setdefault(owner.key, []).append(ds)
    return owners


def quality_checks(datasets: dict[str, Dataset], contracts: list[Contract], area: Area) -> list:
    """The privacy scan on every lake dataset (landing excepted: the raw zone) and export, the GX suite of every
    dataset that has one. A lake scan withdraws the partitions it finds personal data in."""
    checks = []
    side = side_datasets(datasets)
    for ds in datasets.values():
        key = dg.AssetKey([ds.layer, ds.name])
        tags = op_tags(area.ranks, ds.key)  # a dataset's checks run at its step's priority
        if ds.asset:
            checks.append(build_lake_pii_check(key, (ds, *side.get(ds.key, ())), area.partitions, op_tags=tags))
        if specs := suite(ds, area):
            checks.append(build_gx_checks(key, f"{ds.layer}.{ds.name}", specs, _lake_files(ds), area.partitions,
                                          redactor=redact, op_tags=tags))
    for contract in contracts:
        checks.append(build_pii_check(export_key(contract), export_files(contract), area.partitions))
    return checks


def _owned_and_tagged(spec: dg.AssetSpec) -> dg.AssetSpec:
    layer = spec.key.path[0]
    area = spec.group_name.rsplit("_", 1)[0] if spec.group_name and "_" in spec.group_name else layer
    tags = {**spec.tags, "layer": layer, "area": area}
    return spec.replace_attributes(owners=[OWNERS.get(layer, DEFAULT_OWNER)], tags=tags)


def build_definitions(settings: Settings) -> dg.Definitions:
    if settings.mode == "production":
        Tokenizer.from_settings(settings)  # fail at load, naming NEURON_TOKEN_KEY, not in the first run
        record_keys.secret(settings)  # and NEURON_PERTURBATION_KEY
    contracts = load_contracts()
    datasets = registry.datasets()
    area = Area(partitions=partitions_def(settings), k_thresholds=k_thresholds(contracts),
                disclosures=disclosures(contracts),
                ingest_pool=INGEST_POOL,
                ranks=upward_ranks(step for d in registry.domains() for step in d.steps))
    landing = tuple(s for d in registry.domains() for s in d.landing)
    areas = [domain.definitions(area, landing_specs=False) for domain in registry.domains()]
    areas.append(dg.Definitions(assets=[landing_assets(landing, area.partitions)]))
    areas.append(exports_area.definitions(area, datasets, contracts))
    areas.append(incidents.definitions(area.partitions))
    graph = dg.Definitions.merge(*areas)
    # the warehouse follows the lake and the outbox, not the pushes: a consumer down does not stop it
    lake_keys = [key for a in graph.assets or [] if isinstance(a, dg.AssetsDefinition) for key in a.keys
                 if key.path[0] not in ("publish", "incidents")]
    graph = dg.Definitions.merge(graph, warehouse_area.definitions(area, lake_keys, datasets, contracts,
                                                                     outbox_catch_up=mirror_outbox))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # map_asset_specs is preview in 1.13; opted in on purpose
        graph = graph.map_asset_specs(func=_owned_and_tagged)

    daily = jobs.daily_job(area.partitions, settings)
    freshness_checks = [c for a in areas for c in a.asset_checks or []
                        if all(k.name == FRESHNESS_CHECK for k in c.check_keys)]
    freshness_job, freshness_schedule = jobs.freshness(freshness_checks, settings.timezone)
    sources = tuple(s.name for d in registry.domains() for s in d.landing)
    return dg.Definitions.merge(graph, dg.Definitions(
        asset_checks=quality_checks(datasets, contracts, area),
        jobs=[daily, landing_retention_job, freshness_job],
        schedules=[jobs.daily_schedule(daily), landing_retention_schedule(settings.timezone), freshness_schedule],
        sensors=[jobs.landing_sensor(daily, sources, area.partitions), jobs.push_sensor(sources, area.partitions),
                 jobs.dead_run_sensor(),
                 jobs.automation_sensor()],
        resources={"neuron": NeuronResource()},
    ))


defs = build_definitions(load_settings())
