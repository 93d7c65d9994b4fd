"""Dagster assets of the access-control domain: door registry and ISC door events -> bronze (+ quarantine)
-> silver -> gold gate flows, security events and daily traffic.

Thin glue: each asset opens an in-memory DuckDB, runs the domain's SQL (the .sql files next to this module)
and writes one lake partition atomically; metadata holds counts only, never values.
"""

import os
import time

import dagster as dg

from assets.access.parse import HERE as SQL_DIR
from assets.access.parse import SOURCE, ingest_day, landing_files, write_ingest_stats
from assets.accounting import ACCOUNTING_CHECK, accounting_check_spec, record_accounting
from assets.glue import key, md_table, open_views
from assets.sqlfile import render
from assets.suppressed import write_suppressed
from pipelines.partitions import daily
from pipelines.resources import NeuronResource
from warehouse.domains.access import (
    ACCESS_BRONZE,
    ACCESS_DAILY,
    ACCESS_DOORS,
    ACCESS_INGEST,
    ACCESS_QUARANTINE,
    ACCESS_SILVER,
    DIRECTIONS,
    GATE_FLOW_HOURLY,
    ROW_ACCOUNTING,
    SECURITY_EVENTS,
    VERIFY_MODES,
)
from warehouse.io import create_view, write_dataset
from warehouse.schemas import DEVICE_ALARMS

LANDING_ACCESS = dg.AssetKey(["landing", "access_events"])
LANDING_SITES = dg.AssetKey(["landing", "sites"])
KINDS = {"duckdb", "parquet"}


def _elapsed(started: float) -> float:
    return round(time.monotonic() - started, 3)


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


@dg.asset(
    key=key(ACCESS_DOORS), partitions_def=daily, group_name="access_bronze", kinds=KINDS,
    description=ACCESS_DOORS.description, deps=[LANDING_SITES],
)
def bronze_access_doors(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    root = neuron.settings.landing_dir / "sites"
    snapshots = sorted(p for p in root.glob("*/doors.csv") if p.parent.name <= day)
    if not snapshots:
        raise dg.Failure(f"no door registry snapshot on or before {day} under {root}")
    snap = snapshots[-1]
    con = neuron.duckdb()
    n = write_dataset(con, neuron.lake, ACCESS_DOORS, day,
                      f"SELECT * FROM read_csv('{snap}', header=true, all_varchar=true)", order_by="door_id")
    conventions = con.execute(
        f"SELECT vendor_convention, count(*) FROM read_csv('{snap}', header=true, all_varchar=true) "
        "GROUP BY 1 ORDER BY 1").fetchall()
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "elapsed_s": _elapsed(t0),
                                          "snapshot": snap.parent.name,
                                          **{f"convention/{c}": k for c, k in conventions}})


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key(ACCESS_BRONZE), deps=[key(ACCESS_DOORS), LANDING_ACCESS], group_name="access_bronze",
                     kinds=KINDS, description=ACCESS_BRONZE.description),
        dg.AssetSpec(key(ACCESS_QUARANTINE), deps=[key(ACCESS_DOORS), LANDING_ACCESS], group_name="access_bronze",
                     kinds=KINDS, description=ACCESS_QUARANTINE.description),
        dg.AssetSpec(key(ACCESS_INGEST), deps=[key(ACCESS_DOORS)], group_name="access_bronze",
                     kinds={"parquet"}, description=ACCESS_INGEST.description),
    ],
    partitions_def=daily,
)
def bronze_access_events(context: dg.AssetExecutionContext, neuron: NeuronResource):
    """Parse the day's ISC envelopes in bounded batches; every record ends accepted, quarantined or duplicate."""
    t0 = time.monotonic()
    day = context.partition_key
    s = neuron.settings
    if not landing_files(s.landing_dir, day):
        context.log.warning(f"no access-event landing files for {day}")
    con = open_views(neuron, day, doors=ACCESS_DOORS)
    tokenizer = neuron.tokenizer()
    stats = ingest_day(con, neuron.lake, s.landing_dir, day, s.timezone, tokenizer.tokenize_series)
    write_ingest_stats(con, neuron.lake, day, stats)
    reasons = sorted(stats.reasons.items())
    yield dg.MaterializeResult(asset_key=key(ACCESS_BRONZE), metadata={
        "dagster/row_count": stats.bronze_rows, "elapsed_s": _elapsed(t0), "files": stats.files,
        "lines": stats.lines, "landed": stats.landed, "duplicates_in_file": stats.duplicates_in_file,
        "names_dropped": stats.names_dropped, **{f"face_stripped/{k}": v for k, v in stats.face.items()}})
    yield dg.MaterializeResult(asset_key=key(ACCESS_QUARANTINE), metadata={
        "dagster/row_count": stats.quarantined, "by_reason": md_table(reasons, ("reason", "records")),
        **{f"reason/{r}": n for r, n in reasons}})
    yield dg.MaterializeResult(asset_key=key(ACCESS_INGEST), metadata={"dagster/row_count": 1})


@dg.asset(
    key=key(ACCESS_SILVER), partitions_def=daily, group_name="access_silver", kinds=KINDS,
    deps=[key(ACCESS_BRONZE), key(ACCESS_QUARANTINE), key(ACCESS_INGEST), key(ACCESS_DOORS)],
    description=ACCESS_SILVER.description,
    check_specs=[accounting_check_spec(key(ACCESS_SILVER))],
)
def silver_access_events(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    lake = neuron.lake
    con = neuron.duckdb()
    bronze_rows = create_view(con, "bronze", lake, ACCESS_BRONZE, day)
    create_view(con, "doors", lake, ACCESS_DOORS, day)
    quarantined = create_view(con, "quarantine", lake, ACCESS_QUARANTINE, day)
    create_view(con, "ingest", lake, ACCESS_INGEST, day)
    staging = neuron.settings.data_dir / ".duckdb_tmp" / f"silver_access_{day}_{os.getpid()}.parquet"
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        con.execute(f"COPY ({(SQL_DIR / 'silver_access.sql').read_text()}) TO '{staging}' (FORMAT parquet)")
        n = write_dataset(con, lake, ACCESS_SILVER, day, f"SELECT * FROM read_parquet('{staging}')",
                          order_by="community_id, event_ts, event_id")
        behind = con.execute(f"SELECT coalesce(sum(versions), 0) FROM read_parquet('{staging}')").fetchall()[0][0]
        by_status = con.execute(f"SELECT status, count(*) FROM read_parquet('{staging}') GROUP BY 1 ORDER BY 1"
                                ).fetchall()
    finally:
        staging.unlink(missing_ok=True)
    rows = con.execute("SELECT landed, duplicates_in_file, files, lines FROM ingest").fetchall()
    landed, dup_in, files, lines = rows[0] if rows else (0, 0, 0, 0)
    dup_cross = bronze_rows - n  # re-sends across files and superseded status versions
    check = record_accounting(con, lake, ROW_ACCOUNTING, day, files=files, lines=lines, landed=landed, accepted=n,
                              quarantined=quarantined, duplicates_in_file=dup_in, duplicates_cross_file=dup_cross)
    if behind != bronze_rows:  # a bronze row whose door left the registry would vanish here
        check = dg.AssetCheckResult(check_name=ACCOUNTING_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                    metadata={**check.metadata, "bronze_rows": bronze_rows, "behind_events": behind})
    return dg.MaterializeResult(
        metadata={"dagster/row_count": n, "elapsed_s": _elapsed(t0), "duplicates_cross_file": dup_cross,
                  **{f"status/{s}": k for s, k in by_status}},
        check_results=[check],
    )


@dg.asset(
    key=key(GATE_FLOW_HOURLY), partitions_def=daily, group_name="access_gold", kinds=KINDS,
    deps=[key(ACCESS_SILVER), key(ACCESS_DOORS)], description=GATE_FLOW_HOURLY.description,
)
def gold_gate_flow_hourly(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    con = open_views(neuron, day, silver=ACCESS_SILVER, doors=ACCESS_DOORS)
    sql = render(SQL_DIR / "gate_flow_hourly.sql", day=day, tz=neuron.settings.timezone,
                 directions=_sql_list(DIRECTIONS), modes=_sql_list(VERIFY_MODES))
    res = write_suppressed(con, neuron.lake, GATE_FLOW_HOURLY, day, sql,
                           dims=["community_id", "gate_id", "hour_start", "direction", "verify_mode"],
                           value_cols=["passes", "visitors", "strangers", "denied"],
                           order_by="community_id, gate_id, hour_start, direction, verify_mode")
    return dg.MaterializeResult(metadata={**res.metadata(), "elapsed_s": _elapsed(t0)})


@dg.asset(
    key=key(SECURITY_EVENTS), partitions_def=daily, group_name="access_gold", kinds=KINDS,
    deps=[key(ACCESS_SILVER), key(DEVICE_ALARMS)], description=SECURITY_EVENTS.description,
)
def gold_security_events(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    con = open_views(neuron, day, silver=ACCESS_SILVER, alarms=DEVICE_ALARMS)
    n = write_dataset(con, neuron.lake, SECURITY_EVENTS, day,
                      render(SQL_DIR / "security_events.sql", tz=neuron.settings.timezone),
                      order_by="community_id, event_minute, event_type, building_id")
    by_type = con.execute(
        f"SELECT event_type, sum(events) FROM read_parquet('{neuron.lake.partition_dir('gold', SECURITY_EVENTS.name, day)}"
        "/*.parquet') GROUP BY 1 ORDER BY 1").fetchall() if n else []
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "elapsed_s": _elapsed(t0),
                                          **{f"events/{t}": int(k) for t, k in by_type}})


@dg.asset(
    key=key(ACCESS_DAILY), partitions_def=daily, group_name="access_gold", kinds=KINDS,
    deps=[key(ACCESS_SILVER), key(ACCESS_DOORS)], description=ACCESS_DAILY.description,
)
def gold_access_daily(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    con = open_views(neuron, day, silver=ACCESS_SILVER, doors=ACCESS_DOORS)
    res = write_suppressed(con, neuron.lake, ACCESS_DAILY, day, (SQL_DIR / "access_daily.sql").read_text(),
                           dims=["community_id"],
                           value_cols=["passes", "residents", "visitors", "strangers", "denied", "persons"],
                           order_by="community_id")
    return dg.MaterializeResult(metadata={**res.metadata(), "elapsed_s": _elapsed(t0)})


ACCESS_ASSETS: list[dg.AssetsDefinition] = [
    bronze_access_doors, bronze_access_events, silver_access_events, gold_gate_flow_hourly, gold_security_events,
    gold_access_daily,
]

__all__ = ["ACCESS_ASSETS", "SOURCE"]
