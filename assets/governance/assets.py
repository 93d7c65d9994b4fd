"""Dagster assets of the governance domain: landing -> bronze (+ quarantine) -> silver -> gold.

Thin glue over ``parse.py`` (bronze) and ``transform.py`` (silver, gold): one multi-asset per layer, so
the five governance sources of a day are parsed, accounted for and published together.
"""

import time

import dagster as dg

from assets.accounting import accounting_check_spec, record_accounting
from assets.glue import key
from assets.governance.parse import BRONZE, QUARANTINE, ingest, write_ingest_stats
from assets.governance.transform import (
    SILVER,
    build_month_final,
    build_monthly,
    build_silver,
    build_vote_outcomes,
)
from pipelines.partitions import daily
from pipelines.resources import NeuronResource
from warehouse.dataset import Dataset, accounting_dataset
from warehouse.domains import governance as g
from warehouse.io import create_view
from warehouse.schemas import DEVICE_REGISTRY

LANDING = dg.AssetKey(["landing", "governance"])
ACCOUNTING = {s: accounting_dataset(f"governance_{s}") for s in g.SOURCES}


def _md(rows: list[tuple], header: tuple[str, ...]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return dg.MetadataValue.md("\n".join(lines + ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]))


def _spec(ds: Dataset, deps: list[dg.AssetKey], group: str) -> dg.AssetSpec:
    return dg.AssetSpec(key(ds), deps=deps, group_name=group, kinds={"duckdb", "parquet"}, description=ds.description)


_BRONZE_DEPS = [LANDING, key(DEVICE_REGISTRY)]


@dg.multi_asset(
    specs=[*(_spec(BRONZE[s], _BRONZE_DEPS, "governance_bronze") for s in g.SOURCES),
           *(_spec(QUARANTINE[s], _BRONZE_DEPS, "governance_bronze") for s in g.SOURCES),
           _spec(g.INGEST_GOVERNANCE, _BRONZE_DEPS, "governance_bronze")],
    partitions_def=daily,
)
def bronze_governance(context: dg.AssetExecutionContext, neuron: NeuronResource):
    """Parse the day's e-voting and community-app exports; every record ends accepted, quarantined or duplicate."""
    t0 = time.monotonic()
    day = context.partition_key
    s = neuron.settings
    con = neuron.duckdb()
    create_view(con, "registry", neuron.lake, DEVICE_REGISTRY, day)
    stats = ingest(con, neuron.lake, s.landing_dir, day, s.timezone, neuron.tokenizer())  # no canaries, on purpose
    write_ingest_stats(con, neuron.lake, day, stats)
    elapsed = round(time.monotonic() - t0, 3)
    for source, st in stats.items():
        yield dg.MaterializeResult(asset_key=key(BRONZE[source]), metadata={
            "dagster/row_count": st.bronze_rows, "files": st.files, "lines": st.lines, "landed": st.landed,
            "duplicates_in_file": st.duplicates_in_file, "face_artefacts_dropped": st.face_artefacts_dropped,
            "elapsed_s": elapsed})
        reasons = sorted(st.reasons.items())
        yield dg.MaterializeResult(asset_key=key(QUARANTINE[source]), metadata={
            "dagster/row_count": st.quarantined, "by_reason": _md(reasons, ("reason", "records")),
            **{f"reason/{r}": n for r, n in reasons}})
    yield dg.MaterializeResult(asset_key=key(g.INGEST_GOVERNANCE), metadata={"dagster/row_count": len(stats)})


_SILVER_DEPS = [*(key(BRONZE[s]) for s in g.SOURCES), *(key(QUARANTINE[s]) for s in g.SOURCES),
                key(g.INGEST_GOVERNANCE)]


@dg.multi_asset(
    specs=[_spec(SILVER[s], _SILVER_DEPS, "governance_silver") for s in g.SOURCES],
    check_specs=[accounting_check_spec(key(SILVER[s])) for s in g.SOURCES],
    partitions_def=daily,
)
def silver_governance(context: dg.AssetExecutionContext, neuron: NeuronResource):
    """Cleaned governance records of the day, with one row-accounting check per source."""
    t0 = time.monotonic()
    day = context.partition_key
    lake = neuron.lake
    con = neuron.duckdb()
    counts = build_silver(con, lake, day, neuron.settings.timezone)
    create_view(con, "ingest", lake, g.INGEST_GOVERNANCE, day)
    ingest_rows = {r[0]: r[1:] for r in con.execute(
        "SELECT source, files, lines, landed, duplicates_in_file FROM ingest").fetchall()}
    for source, c in counts.items():
        files, lines, landed, dup_in = ingest_rows.get(source, (0, 0, 0, 0))
        ak = key(SILVER[source])
        check = record_accounting(con, lake, ACCOUNTING[source], day, files=files, lines=lines, landed=landed,
                                  accepted=c.accepted, quarantined=c.quarantined, duplicates_in_file=dup_in,
                                  duplicates_cross_file=c.bronze - c.accepted, asset_key=ak)
        yield dg.MaterializeResult(asset_key=ak, metadata={
            "dagster/row_count": c.accepted, "duplicates_dropped": c.bronze - c.accepted,
            "elapsed_s": round(time.monotonic() - t0, 3)}, check_results=[check])


@dg.asset(
    key=key(g.VOTE_OUTCOMES), partitions_def=daily, group_name="governance_gold", kinds={"duckdb", "parquet"},
    deps=[key(g.VOTES_SILVER), key(g.BALLOTS_SILVER)], description=g.VOTE_OUTCOMES.description,
)
def gold_vote_outcomes(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    con = neuron.duckdb()
    n = build_vote_outcomes(con, neuron.lake, day, neuron.settings.timezone)
    passed = con.execute(f"SELECT count(*) FILTER (WHERE passed) FROM read_parquet("
                         f"'{neuron.lake.partition_dir('gold', 'vote_outcomes', day)}/*.parquet')").fetchall()[0][0]
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "passed": int(passed),
                                          "elapsed_s": round(time.monotonic() - t0, 3)})


@dg.asset(
    key=key(g.GOVERNANCE_MONTHLY), partitions_def=daily, group_name="governance_gold", kinds={"duckdb", "parquet"},
    deps=[key(g.VOTE_OUTCOMES), *(key(SILVER[s]) for s in g.SOURCES), key(DEVICE_REGISTRY)],
    description=g.GOVERNANCE_MONTHLY.description,
)
def gold_governance_monthly(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    con = neuron.duckdb()
    res = build_monthly(con, neuron.lake, context.partition_key, DEVICE_REGISTRY)
    return dg.MaterializeResult(metadata={**res.metadata(), "elapsed_s": round(time.monotonic() - t0, 3)})


@dg.asset(
    key=key(g.GOVERNANCE_MONTH_FINAL), partitions_def=daily, group_name="governance_gold",
    kinds={"duckdb", "parquet"}, description=g.GOVERNANCE_MONTH_FINAL.description,
    # partition D reads governance_monthly of D-1 (the previous month's last day when D is the 1st)
    deps=[dg.AssetDep(key(g.GOVERNANCE_MONTHLY),
                      partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1))],
)
def gold_governance_month_final(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    """What 智联普陀 receives: complete months only, once (empty on days other than the 1st)."""
    res = build_month_final(neuron.duckdb(), neuron.lake, context.partition_key)
    if res.withheld:
        context.log.warning("previous month's final governance_monthly partition is missing: nothing published")
    return dg.MaterializeResult(metadata={"dagster/row_count": res.rows, "month_published": res.month or "none",
                                          "withheld_incomplete_month": res.withheld})


GOVERNANCE_ASSETS: list[dg.AssetsDefinition] = [bronze_governance, silver_governance, gold_vote_outcomes,
                                                gold_governance_monthly, gold_governance_month_final]
