"""Dagster assets of the vehicles domain: gate passages and parking sessions, landing -> bronze -> silver -> gold.

Thin glue over ``parse.py`` and the .sql files: plates become tokens and attributes at parse, resident or
visitor is decided by token against the property's register, gold counts are suppressed below k.
"""

import time

import dagster as dg
import duckdb
import polars as pl

from assets.accounting import accounting_check_spec, record_accounting
from assets.glue import key, md_table
from assets.privacy.plates import mark_residents
from assets.sqlfile import render
from assets.suppressed import Suppressed, k_for, write_suppressed
from assets.telemetry.parse import day_bounds
from assets.vehicles.occupancy import protect_occupancy
from assets.vehicles.parse import (
    HERE,
    PLATE_COLUMNS,
    Ingest,
    community_batches,
    parking_files,
    parse_parking,
    parse_passages,
    passage_files,
    registered_vehicles,
)
from pipelines.partitions import daily
from pipelines.resources import NeuronResource
from warehouse.dataset import Dataset
from warehouse.domains.vehicles import (
    ACCOUNTING_PARKING,
    ACCOUNTING_PASSAGES,
    CAR_PARKS,
    INGEST_PARKING,
    INGEST_PASSAGES,
    PARKING_OCCUPANCY_15MIN,
    PASSAGES_BRONZE,
    PASSAGES_QUARANTINE,
    PASSAGES_SILVER,
    PAYMENTS_BRONZE,
    PAYMENTS_SILVER,
    REGISTERED_VEHICLES,
    SESSIONS_BRONZE,
    SESSIONS_QUARANTINE,
    SESSIONS_SILVER,
    TOLLGATES,
    VEHICLE_FLOW_HOURLY,
)
from warehouse.io import append_part, create_view, write_dataset
from warehouse.lake import Lake

LANDING_SITES = dg.AssetKey(["landing", "sites"])
LANDING_PASSAGES = dg.AssetKey(["landing", "vehicle_passages"])
LANDING_PARKING = dg.AssetKey(["landing", "parking"])
KINDS = {"duckdb", "parquet"}


def _spec(ds: Dataset, group: str, deps: list) -> dg.AssetSpec:
    return dg.AssetSpec(key(ds), deps=deps, group_name=group, kinds=KINDS, description=ds.description)


def _meta(rows: int, started: float, **extra: object) -> dict[str, object]:
    return {"dagster/row_count": int(rows), "elapsed_s": round(time.monotonic() - started, 3), **extra}


def _reasons(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, int]]:
    return con.execute(f"SELECT reason, count(*) FROM {table} WHERE reason IS NOT NULL AND NOT dup_in_file "
                       "AND NOT dup_cross_file GROUP BY 1 ORDER BY 1").fetchall()


def _views(con: duckdb.DuckDBPyConnection, lake: Lake, day: str, **views: Dataset) -> dict[str, int]:
    return {name: create_view(con, name, lake, ds, day) for name, ds in views.items()}


# --- registries ------------------------------------------------------------------------------------------
@dg.multi_asset(specs=[_spec(TOLLGATES, "vehicles_bronze", [LANDING_SITES]),
                       _spec(CAR_PARKS, "vehicles_bronze", [LANDING_SITES])], partitions_def=daily)
def bronze_vehicle_sites(context: dg.AssetExecutionContext, neuron: NeuronResource):
    """Tollgates and car parks: the latest sites snapshot on or before the day."""
    t0 = time.monotonic()
    day = context.partition_key
    root = neuron.settings.landing_dir / "sites"
    con = neuron.duckdb()
    for ds, name, order in ((TOLLGATES, "tollgates.csv", "gate_id"), (CAR_PARKS, "car_parks.csv", "park_id")):
        snaps = sorted(p for p in root.glob(f"*/{name}") if p.parent.name <= day)
        if not snaps:
            raise dg.Failure(f"no {name} snapshot on or before {day} under {root}")
        n = write_dataset(con, neuron.lake, ds, day,
                          f"SELECT * FROM read_csv('{snaps[-1]}', header=true, all_varchar=true)", order_by=order)
        yield dg.MaterializeResult(asset_key=key(ds), metadata=_meta(n, t0, snapshot=snaps[-1].parent.name))


@dg.asset(key=key(REGISTERED_VEHICLES), partitions_def=daily, group_name="vehicles_bronze", kinds=KINDS,
          deps=[LANDING_PARKING], description=REGISTERED_VEHICLES.description)
def bronze_registered_vehicles(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    con = neuron.duckdb()
    sql = registered_vehicles(con, neuron.settings.landing_dir, day, neuron.tokenizer())
    n = write_dataset(con, neuron.lake, REGISTERED_VEHICLES, day, sql, order_by="community_id, plate_token")
    return dg.MaterializeResult(metadata=_meta(n, t0))


# --- passages --------------------------------------------------------------------------------------------
@dg.multi_asset(
    specs=[_spec(PASSAGES_BRONZE, "vehicles_bronze", [key(TOLLGATES), LANDING_PASSAGES]),
           _spec(PASSAGES_QUARANTINE, "vehicles_bronze", [key(TOLLGATES), LANDING_PASSAGES]),
           _spec(INGEST_PASSAGES, "vehicles_bronze", [key(TOLLGATES), LANDING_PASSAGES])],
    partitions_def=daily,
)
def bronze_vehicle_passages(context: dg.AssetExecutionContext, neuron: NeuronResource):
    """GA/T 1400 objects: every one ends in bronze, in quarantine (one reason) or counted as a re-send."""
    t0 = time.monotonic()
    day = context.partition_key
    s = neuron.settings
    lake = neuron.lake
    con = neuron.duckdb()
    _views(con, lake, day, tollgates=TOLLGATES)
    start, end = day_bounds(day, s.timezone)
    files = passage_files(s.landing_dir, day)
    stats = Ingest("vehicle_passages", files=len(files))
    tokenizer = neuron.tokenizer()
    plates = ", ".join(f"p.{c}" for c in PLATE_COLUMNS)
    with lake.write_partition("bronze", PASSAGES_BRONZE.name, day) as wb, \
            lake.write_partition("quarantine", PASSAGES_QUARANTINE.name, day) as wq:
        for batch in community_batches(files):
            part = parse_passages(con, s.landing_dir, batch, start, end, s.timezone, tokenizer)
            part.reasons = dict(_reasons(con, "passages"))
            part.bronze_rows = append_part(con, wb, PASSAGES_BRONZE,
                                           render(HERE / "bronze_passages_rows.sql", plates=plates))
            # no plate and no image reaches quarantine: ids and the reason only
            part.quarantined = append_part(con, wq, PASSAGES_QUARANTINE, render(HERE / "quarantine_passages.sql"))
            stats.add(part)
    write_dataset(con, lake, INGEST_PASSAGES, day, stats.sql())
    reasons = sorted(stats.reasons.items())
    yield dg.MaterializeResult(asset_key=key(PASSAGES_BRONZE), metadata=_meta(
        stats.bronze_rows, t0, files=stats.files, landed=stats.landed, duplicates_in_file=stats.duplicates_in_file,
        duplicates_cross_file=stats.duplicates_cross_file, images_dropped=stats.images_dropped))
    yield dg.MaterializeResult(asset_key=key(PASSAGES_QUARANTINE), metadata=_meta(
        stats.quarantined, t0, by_reason=md_table(reasons, ("reason", "records")),
        **{f"reason/{r}": n for r, n in reasons}))
    yield dg.MaterializeResult(asset_key=key(INGEST_PASSAGES), metadata={"dagster/row_count": 1})


def _residency(frame: pl.DataFrame, registered: pl.DataFrame) -> pl.DataFrame:
    """resident when the plate token is on this community's register (mark_residents on community|token)."""
    reg_keys = registered.select(pl.concat_str("community_id", pl.lit("|"), "plate_token").alias("k"))["k"]
    keyed = frame.with_columns(__k=pl.concat_str("community_id", pl.lit("|"), "plate_token"))
    return mark_residents(keyed, "__k", reg_keys, "__resident").with_columns(
        residency=pl.when(pl.col("__resident")).then(pl.lit("resident")).otherwise(pl.lit("visitor"))
    ).drop("__k", "__resident")


def _write_frame(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str, frame: pl.DataFrame,
                 order_by: str) -> int:
    con.register("_frame", frame)
    try:
        return write_dataset(con, lake, ds, day, "SELECT * FROM _frame", order_by=order_by)
    finally:
        con.unregister("_frame")


def _ingest_row(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int, int, int]:
    rows = con.execute("SELECT files, lines, landed, duplicates_in_file, duplicates_cross_file FROM ingest").fetchall()
    return rows[0] if rows else (0, 0, 0, 0, 0)


@dg.asset(
    key=key(PASSAGES_SILVER), partitions_def=daily, group_name="vehicles_silver", kinds=KINDS,
    deps=[key(PASSAGES_BRONZE), key(PASSAGES_QUARANTINE), key(INGEST_PASSAGES), key(TOLLGATES),
          key(REGISTERED_VEHICLES)],
    description=PASSAGES_SILVER.description,
    check_specs=[accounting_check_spec(key(PASSAGES_SILVER), "vehicle_passages")],
)
def silver_vehicle_passages(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    lake = neuron.lake
    con = neuron.duckdb()
    n_views = _views(con, lake, day, bronze=PASSAGES_BRONZE, quarantine=PASSAGES_QUARANTINE, ingest=INGEST_PASSAGES,
                     tollgates=TOLLGATES, registered=REGISTERED_VEHICLES)
    frame = con.sql(render(HERE / "silver_passages.sql", tz=neuron.settings.timezone)).pl()
    frame = _residency(frame, con.sql("SELECT community_id, plate_token FROM registered").pl())
    behind = int(frame["versions"].sum()) if frame.height else 0
    n = _write_frame(con, lake, PASSAGES_SILVER, day, frame.drop("versions"), "community_id, pass_ts, motor_vehicle_id")
    files, lines, landed, dup_in, dup_cross = _ingest_row(con)
    # duplicates collapsed here are measured (bronze rows behind each silver row, minus one); a bronze row that
    # joins no gate (its tollgate left the registry since bronze ran) is behind nothing and unbalances the check
    check = record_accounting(con, lake, ACCOUNTING_PASSAGES, day, files=files, lines=lines, landed=landed,
                              accepted=n, quarantined=n_views["quarantine"], duplicates_in_file=dup_in,
                              duplicates_cross_file=dup_cross + (behind - n), asset_key=key(PASSAGES_SILVER),
                              check_name="row_accounting_vehicle_passages", bronze_rows=n_views["bronze"],
                              lost_in_silver=n_views["bronze"] - behind)
    residents = int((frame["residency"] == "resident").sum()) if frame.height else 0
    return dg.MaterializeResult(metadata=_meta(n, t0, residents=residents, visitors=n - residents),
                                check_results=[check])


# --- parking ---------------------------------------------------------------------------------------------
@dg.multi_asset(
    specs=[_spec(SESSIONS_BRONZE, "vehicles_bronze", [key(CAR_PARKS), LANDING_PARKING]),
           _spec(SESSIONS_QUARANTINE, "vehicles_bronze", [key(CAR_PARKS), LANDING_PARKING]),
           _spec(PAYMENTS_BRONZE, "vehicles_bronze", [key(CAR_PARKS), LANDING_PARKING]),
           _spec(INGEST_PARKING, "vehicles_bronze", [key(CAR_PARKS), LANDING_PARKING])],
    partitions_def=daily,
)
def bronze_parking(context: dg.AssetExecutionContext, neuron: NeuronResource):
    """Parking-cloud pushes: money strings to BIGINT fen, plates to tokens; bad money goes to quarantine."""
    t0 = time.monotonic()
    day = context.partition_key
    s = neuron.settings
    lake = neuron.lake
    con = neuron.duckdb()
    _views(con, lake, day, car_parks=CAR_PARKS)
    files = parking_files(s.landing_dir, day)
    stats = Ingest("parking", files=len(files))
    tokenizer = neuron.tokenizer()
    plates = ", ".join(f"p.{c}" for c in PLATE_COLUMNS)
    n_pay = 0
    with lake.write_partition("bronze", SESSIONS_BRONZE.name, day) as wb, \
            lake.write_partition("quarantine", SESSIONS_QUARANTINE.name, day) as wq, \
            lake.write_partition("bronze", PAYMENTS_BRONZE.name, day) as wp:
        for batch in community_batches(files):
            part = parse_parking(con, s.landing_dir, batch, tokenizer)
            part.reasons = dict(_reasons(con, "pk"))
            part.bronze_rows = append_part(con, wb, SESSIONS_BRONZE,
                                           render(HERE / "bronze_parking_rows.sql", plates=plates))
            n_pay += append_part(con, wp, PAYMENTS_BRONZE, render(HERE / "bronze_payments_rows.sql"))
            part.quarantined = append_part(con, wq, SESSIONS_QUARANTINE, render(HERE / "quarantine_parking.sql"))
            stats.add(part)
    write_dataset(con, lake, INGEST_PARKING, day, stats.sql())
    reasons = sorted(stats.reasons.items())
    yield dg.MaterializeResult(asset_key=key(SESSIONS_BRONZE), metadata=_meta(
        stats.bronze_rows, t0, files=stats.files, landed=stats.landed, duplicates_in_file=stats.duplicates_in_file,
        duplicates_cross_file=stats.duplicates_cross_file))
    yield dg.MaterializeResult(asset_key=key(SESSIONS_QUARANTINE), metadata=_meta(
        stats.quarantined, t0, by_reason=md_table(reasons, ("reason", "records")),
        **{f"reason/{r}": n for r, n in reasons}))
    yield dg.MaterializeResult(asset_key=key(PAYMENTS_BRONZE), metadata=_meta(n_pay, t0))
    yield dg.MaterializeResult(asset_key=key(INGEST_PARKING), metadata={"dagster/row_count": 1})


@dg.multi_asset(
    specs=[_spec(SESSIONS_SILVER, "vehicles_silver", [key(SESSIONS_BRONZE), key(SESSIONS_QUARANTINE),
                                                      key(INGEST_PARKING), key(REGISTERED_VEHICLES)]),
           _spec(PAYMENTS_SILVER, "vehicles_silver", [key(PAYMENTS_BRONZE), key(SESSIONS_BRONZE)])],
    partitions_def=daily,
    check_specs=[accounting_check_spec(key(SESSIONS_SILVER), "parking")],
)
def silver_parking(context: dg.AssetExecutionContext, neuron: NeuronResource):
    """Sessions from paired pushes (status open/closed/exit_only/auto_closed) and their payments."""
    t0 = time.monotonic()
    day = context.partition_key
    lake = neuron.lake
    con = neuron.duckdb()
    n_views = _views(con, lake, day, bronze=SESSIONS_BRONZE, quarantine=SESSIONS_QUARANTINE, ingest=INGEST_PARKING,
                     registered=REGISTERED_VEHICLES, payments=PAYMENTS_BRONZE)
    start, _ = day_bounds(day, neuron.settings.timezone)
    frame = con.sql(render(HERE / "silver_sessions.sql", day_start=start)).pl()
    frame = _residency(frame, con.sql("SELECT community_id, plate_token FROM registered").pl())
    accepted = int(frame["pushes"].sum()) if frame.height else 0
    behind = int(frame["versions"].sum()) if frame.height else 0
    n = _write_frame(con, lake, SESSIONS_SILVER, day, frame.drop("pushes", "versions"),
                     "community_id, park_id, parking_serial")
    n_pay = write_dataset(con, lake, PAYMENTS_SILVER, day, render(HERE / "silver_payments.sql"),
                          order_by="community_id, park_id, parking_serial, item")
    files, lines, landed, dup_in, dup_cross = _ingest_row(con)
    # accepted = distinct pushes paired into a session; re-sends collapsed here are measured (bronze rows behind
    # the session minus its pushes); a bronze push behind no session unbalances the check
    check = record_accounting(con, lake, ACCOUNTING_PARKING, day, files=files, lines=lines, landed=landed,
                              accepted=accepted, quarantined=n_views["quarantine"], duplicates_in_file=dup_in,
                              duplicates_cross_file=dup_cross + (behind - accepted),
                              asset_key=key(SESSIONS_SILVER), check_name="row_accounting_parking",
                              sessions=n, bronze_rows=n_views["bronze"], lost_in_silver=n_views["bronze"] - behind)
    by_status = frame.group_by("status").len().sort("status").rows() if frame.height else []
    yield dg.MaterializeResult(asset_key=key(SESSIONS_SILVER), metadata=_meta(
        n, t0, by_status=md_table(by_status, ("status", "sessions")), pushes_behind=accepted))
    yield dg.MaterializeResult(asset_key=key(PAYMENTS_SILVER), metadata=_meta(n_pay, t0))
    yield check


def _write_protected(con: duckdb.DuckDBPyConnection, lake: Lake, day: str, out: pl.DataFrame, k: int) -> Suppressed:
    n = _write_frame(con, lake, PARKING_OCCUPANCY_15MIN, day, out, "community_id, park_id, slot_start")
    counts = dict(out["suppression"].value_counts().iter_rows()) if out.height else {}
    return Suppressed(rows=n, primary=int(counts.get("primary", 0)), complementary=int(counts.get("complementary", 0)),
                      k=k)


# --- gold ------------------------------------------------------------------------------------------------
@dg.asset(key=key(VEHICLE_FLOW_HOURLY), partitions_def=daily, group_name="vehicles_gold", kinds=KINDS,
          deps=[key(PASSAGES_SILVER), key(TOLLGATES)], description=VEHICLE_FLOW_HOURLY.description)
def gold_vehicle_flow_hourly(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    con = neuron.duckdb()
    _views(con, neuron.lake, day, silver=PASSAGES_SILVER, tollgates=TOLLGATES)
    res = write_suppressed(con, neuron.lake, VEHICLE_FLOW_HOURLY, day,
                           render(HERE / "vehicle_flow_hourly.sql", day=day),
                           dims=["community_id", "gate_id", "hour_start", "direction", "plate_group", "plate_type",
                                 "residency"], value_cols=["vehicles"],
                           order_by="community_id, gate_id, hour_start, direction, plate_group, plate_type, residency")
    return dg.MaterializeResult(metadata={**res.metadata(), "elapsed_s": round(time.monotonic() - t0, 3)})


@dg.asset(key=key(PARKING_OCCUPANCY_15MIN), partitions_def=daily, group_name="vehicles_gold", kinds=KINDS,
          deps=[key(SESSIONS_SILVER), key(CAR_PARKS)], description=PARKING_OCCUPANCY_15MIN.description)
def gold_parking_occupancy_15min(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    con = neuron.duckdb()
    _views(con, neuron.lake, day, sessions=SESSIONS_SILVER, car_parks=CAR_PARKS)
    # not write_suppressed: the stock columns need the run rule of occupancy.protect_occupancy
    k = k_for(PARKING_OCCUPANCY_15MIN)
    frame = con.sql(render(HERE / "parking_occupancy_15min.sql", day=day, tz=neuron.settings.timezone)).pl()
    res = _write_protected(con, neuron.lake, day, protect_occupancy(frame, k), k)
    return dg.MaterializeResult(metadata={**res.metadata(), "elapsed_s": round(time.monotonic() - t0, 3)})


VEHICLES_ASSETS = [bronze_vehicle_sites, bronze_registered_vehicles, bronze_vehicle_passages,
                   silver_vehicle_passages, bronze_parking, silver_parking, gold_vehicle_flow_hourly,
                   gold_parking_occupancy_15min]
