"""Dagster assets of the telemetry domain: landing -> bronze (+ quarantine) -> silver -> gold.

Thin glue: each asset opens an in-memory DuckDB, runs the domain's SQL over the partition's Parquet and
writes one lake partition atomically; business logic lives in the .sql files and ``parse.py``.
"""


import os
import time

import dagster as dg

from assets.accounting import ACCOUNTING_CHECK, accounting_check_spec, record_accounting
from assets.glue import key, md_table, open_views
from assets.sqlfile import render
from assets.telemetry.parse import HERE, day_bounds, ingest_day, landing_files, write_ingest_stats
from pipelines.partitions import daily
from pipelines.resources import NeuronResource
from warehouse.io import create_view, write_dataset
from warehouse.schemas import (
    ALARM_TYPES,
    DEVICE_ALARMS,
    DEVICE_HEALTH_DAILY,
    DEVICE_REGISTRY,
    ENVIRONMENT_HOURLY,
    INGEST_STATS,
    ROW_ACCOUNTING,
    TELEMETRY_BRONZE,
    TELEMETRY_QUARANTINE,
    TELEMETRY_SILVER,
    Dataset,
)


def _common(ds: Dataset, rows: int, started: float, **extra: object) -> dict[str, object]:
    return {"dagster/row_count": rows, "elapsed_s": round(time.monotonic() - started, 3), **extra}


LANDING_TELEMETRY = dg.AssetKey(["landing", "telemetry"])
LANDING_REGISTRY = dg.AssetKey(["landing", "device_registry"])


@dg.asset(
    key=key(DEVICE_REGISTRY), partitions_def=daily, group_name="telemetry_bronze", kinds={"duckdb", "parquet"},
    description=DEVICE_REGISTRY.description, deps=[LANDING_REGISTRY],
)
def bronze_device_registry(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    root = neuron.settings.landing_dir / "device_registry"
    snapshots = sorted(p for p in root.glob("*/devices.csv") if p.parent.name <= day)
    if not snapshots:
        raise dg.Failure(f"no device registry snapshot on or before {day} under {root}")
    snap = snapshots[-1]
    con = neuron.duckdb()
    n = write_dataset(con, neuron.lake, DEVICE_REGISTRY, day,
                      f"SELECT * FROM read_csv('{snap}', header=true, all_varchar=true)", order_by="device_id")
    return dg.MaterializeResult(metadata=_common(DEVICE_REGISTRY, n, t0, snapshot=snap.parent.name))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key(TELEMETRY_BRONZE), deps=[key(DEVICE_REGISTRY), LANDING_TELEMETRY],
                     group_name="telemetry_bronze",
                     kinds={"duckdb", "parquet"}, description=TELEMETRY_BRONZE.description),
        dg.AssetSpec(key(TELEMETRY_QUARANTINE), deps=[key(DEVICE_REGISTRY), LANDING_TELEMETRY],
                     group_name="telemetry_bronze",
                     kinds={"duckdb", "parquet"}, description=TELEMETRY_QUARANTINE.description),
        dg.AssetSpec(key(INGEST_STATS), deps=[key(DEVICE_REGISTRY)], group_name="telemetry_bronze",
                     kinds={"parquet"}, description=INGEST_STATS.description),
    ],
    partitions_def=daily,
)
def bronze_telemetry(context: dg.AssetExecutionContext, neuron: NeuronResource):
    """Parse the day's landing files in bounded batches; every record ends accepted, quarantined or duplicate."""
    t0 = time.monotonic()
    day = context.partition_key
    s = neuron.settings
    lake = neuron.lake
    if not landing_files(s.landing_dir, day):
        context.log.warning(f"no telemetry landing files for {day}")
    con = neuron.duckdb()
    create_view(con, "registry", lake, DEVICE_REGISTRY, day)
    tokenizer = neuron.tokenizer()
    stats = ingest_day(con, lake, s.landing_dir, day, s.timezone, lambda v: tokenizer.tokenize_series(v, "person"))
    write_ingest_stats(con, lake, day, stats)
    reasons = sorted(stats.reasons.items())
    yield dg.MaterializeResult(asset_key=key(TELEMETRY_BRONZE), metadata=_common(
        TELEMETRY_BRONZE, stats.bronze_rows, t0, files=stats.files, lines=stats.lines, landed=stats.landed,
        duplicates_in_file=stats.duplicates_in_file, subjects_tokenised=stats.subjects_tokenised))
    yield dg.MaterializeResult(asset_key=key(TELEMETRY_QUARANTINE), metadata=_common(
        TELEMETRY_QUARANTINE, stats.quarantined, t0,
        by_reason=md_table(reasons, ("reason", "records")),
        **{f"reason/{r}": n for r, n in reasons}))
    yield dg.MaterializeResult(asset_key=key(INGEST_STATS), metadata={"dagster/row_count": 1})


@dg.asset(
    key=key(TELEMETRY_SILVER), partitions_def=daily, group_name="telemetry_silver", kinds={"duckdb", "parquet"},
    deps=[key(TELEMETRY_BRONZE), key(TELEMETRY_QUARANTINE), key(INGEST_STATS), key(DEVICE_REGISTRY)],
    description=TELEMETRY_SILVER.description,
    check_specs=[accounting_check_spec(key(TELEMETRY_SILVER))],
)
def silver_telemetry(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    lake = neuron.lake
    con = neuron.duckdb()
    bronze_rows = create_view(con, "bronze", lake, TELEMETRY_BRONZE, day)
    create_view(con, "registry", lake, DEVICE_REGISTRY, day)
    quarantined = create_view(con, "quarantine", lake, TELEMETRY_QUARANTINE, day)
    create_view(con, "ingest", lake, INGEST_STATS, day)
    staging = neuron.settings.data_dir / ".duckdb_tmp" / f"silver_telemetry_{day}_{os.getpid()}.parquet"
    try:
        con.execute(f"COPY ({(HERE / 'silver_telemetry.sql').read_text()}) TO '{staging}' (FORMAT parquet)")
        n = write_dataset(con, lake, TELEMETRY_SILVER, day,
                          f"SELECT * EXCLUDE (n, registered) FROM read_parquet('{staging}') WHERE registered")
        behind, identities, unregistered = con.execute(
            f"SELECT coalesce(sum(n), 0), count(*), count(*) FILTER (WHERE NOT registered) "
            f"FROM read_parquet('{staging}')").fetchall()[0]
    finally:
        staging.unlink(missing_ok=True)
    rows = con.execute("SELECT landed, duplicates_in_file, files, lines FROM ingest").fetchall()
    landed, dup_in, files, lines = rows[0] if rows else (0, 0, 0, 0)
    # bronze is counted from its own files; every bronze row must stand behind exactly one identity
    dup_cross = bronze_rows - identities
    check = record_accounting(con, lake, ROW_ACCOUNTING, day, files=files, lines=lines, landed=landed, accepted=n,
                              quarantined=quarantined, duplicates_in_file=dup_in, duplicates_cross_file=dup_cross,
                              unregistered_in_bronze=unregistered)
    if behind != bronze_rows:  # every bronze row must stand behind exactly one silver identity
        check = dg.AssetCheckResult(check_name=ACCOUNTING_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                    metadata={**check.metadata, "bronze_rows": bronze_rows, "behind_identities": behind})
    return dg.MaterializeResult(
        metadata=_common(TELEMETRY_SILVER, n, t0, duplicates_cross_file=dup_cross),
        check_results=[check],
    )


@dg.asset(
    key=key(DEVICE_ALARMS), partitions_def=daily, group_name="telemetry_silver", kinds={"duckdb", "parquet"},
    deps=[key(TELEMETRY_SILVER), key(DEVICE_REGISTRY)], description=DEVICE_ALARMS.description,
)
def silver_device_alarms(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    lake = neuron.lake
    con = open_views(neuron, day, silver=TELEMETRY_SILVER, registry=DEVICE_REGISTRY)
    start, end = day_bounds(day, neuron.settings.timezone)
    n = write_dataset(con, lake, DEVICE_ALARMS, day, render(HERE / "device_alarms.sql", day_start=start, day_end=end),
                      order_by="community_id, event_ts, device_id, alarm_type")
    by_type = con.execute(
        f"SELECT alarm_type, count(*) FROM read_parquet('{lake.partition_dir('silver', 'device_alarms', day)}/*.parquet') "
        "GROUP BY 1 ORDER BY 1").fetchall()
    return dg.MaterializeResult(metadata=_common(DEVICE_ALARMS, n, t0, by_type=md_table(by_type, ("alarm_type", "episodes"))))


@dg.asset(
    key=key(DEVICE_HEALTH_DAILY), partitions_def=daily, group_name="telemetry_gold", kinds={"duckdb", "parquet"},
    deps=[key(TELEMETRY_SILVER), key(DEVICE_ALARMS), key(DEVICE_REGISTRY)], description=DEVICE_HEALTH_DAILY.description,
)
def gold_device_health_daily(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    lake = neuron.lake
    con = open_views(neuron, day, silver=TELEMETRY_SILVER, registry=DEVICE_REGISTRY, alarms=DEVICE_ALARMS)
    counts = ", ".join(f"count(*) FILTER (WHERE alarm_type = '{t}') AS alarms_{t}" for t in ALARM_TYPES)
    select = ", ".join(f"coalesce(a.alarms_{t}, 0) AS alarms_{t}" for t in ALARM_TYPES)
    n = write_dataset(con, lake, DEVICE_HEALTH_DAILY, day,
                      render(HERE / "device_health_daily.sql", alarm_columns=counts, alarm_select=select),
                      order_by="community_id, device_type")
    rate = con.execute(
        f"SELECT round(sum(reporting) / nullif(sum(devices), 0), 4) FROM read_parquet('{lake.partition_dir('gold', 'device_health_daily', day)}/*.parquet')"
    ).fetchall()[0][0]
    return dg.MaterializeResult(metadata=_common(DEVICE_HEALTH_DAILY, n, t0, district_online_rate=float(rate or 0)))


@dg.asset(
    key=key(ENVIRONMENT_HOURLY), partitions_def=daily, group_name="telemetry_gold", kinds={"duckdb", "parquet"},
    deps=[key(TELEMETRY_SILVER)], description=ENVIRONMENT_HOURLY.description,
)
def gold_environment_hourly(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    con = open_views(neuron, day, silver=TELEMETRY_SILVER)
    n = write_dataset(con, neuron.lake, ENVIRONMENT_HOURLY, day,
                      render(HERE / "environment_hourly.sql", tz=neuron.settings.timezone),
                      order_by="community_id, hour_start")
    return dg.MaterializeResult(metadata=_common(ENVIRONMENT_HOURLY, n, t0))


TELEMETRY_ASSETS = [bronze_device_registry, bronze_telemetry, silver_telemetry, silver_device_alarms,
                    gold_device_health_daily, gold_environment_hourly]
