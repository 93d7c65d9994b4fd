"""Dagster assets of the vehicles domain: gate passages and parking sessions, landing -> bronze -> silver -> gold.

Thin glue over ``parse.py`` and the .sql files: plates become tokens and attributes at parse, resident or
visitor is decided by token against the property's register, gold counts are suppressed below k.
"""

import time

import dagster as dg
import duckdb
import polars as pl

from assets.accounting import accounting_check_spec, record_accounting
from assets.privacy.plates import mark_residents
from assets.sqlfile import render
from assets.suppressed import write_suppressed
from assets.telemetry.parse import day_bounds
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


def key(ds: Dataset) -> dg.AssetKey:
    return dg.AssetKey([ds.layer, ds.name])


def _spec(ds: Dataset, group: str, deps: list) -> dg.AssetSpec:
    return dg.AssetSpec(key(ds), deps=deps, group_name=group, kinds=KINDS, description=ds.description)


def _md_table(rows: list[tuple], header: tuple[str, ...]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


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
            part.bronze_rows = append_part(con, wb, PASSAGES_BRONZE, f"""
                SELECT a.community_id, a.motor_vehicle_id, a.tollgate_id, a.device_id, a.lane_no, a.info_kind,
                    a.has_plate, {plates}, a.plate_reliability, a.vehicle_class, a.vehicle_color, a.direction,
                    a.pass_ts, a.images_dropped, a.source_file, a.source_line
                FROM passages a LEFT JOIN plates p ON a.plate_raw IS NOT DISTINCT FROM p.plate_raw
                    AND a.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw
                WHERE a.reason IS NULL AND NOT a.dup_in_file AND NOT a.dup_cross_file
                ORDER BY a.community_id, a.pass_ts, a.motor_vehicle_id""")
            # no plate and no image reaches quarantine: ids and the reason only
            part.quarantined = append_part(con, wq, PASSAGES_QUARANTINE, """
                SELECT community_id,
                    CASE WHEN regexp_full_match(motor_vehicle_id, '[0-9]{48}') THEN motor_vehicle_id END
                        AS motor_vehicle_id,
                    CASE WHEN regexp_full_match(tollgate_id, '[0-9]{20}') THEN tollgate_id END AS tollgate_id, reason,
                    CASE reason WHEN 'bad_pass_time' THEN 'PassTime is not YYYYMMDDhhmmss'
                        WHEN 'unknown_tollgate' THEN 'TollgateID not in the sites registry' END AS detail,
                    source_file, source_line
                FROM passages WHERE reason IS NOT NULL AND NOT dup_in_file AND NOT dup_cross_file
                ORDER BY source_file, source_line""")
            stats.add(part)
    write_dataset(con, lake, INGEST_PASSAGES, day, stats.sql())
    reasons = sorted(stats.reasons.items())
    yield dg.MaterializeResult(asset_key=key(PASSAGES_BRONZE), metadata=_meta(
        stats.bronze_rows, t0, files=stats.files, landed=stats.landed, duplicates_in_file=stats.duplicates_in_file,
        duplicates_cross_file=stats.duplicates_cross_file, images_dropped=stats.images_dropped))
    yield dg.MaterializeResult(asset_key=key(PASSAGES_QUARANTINE), metadata=_meta(
        stats.quarantined, t0, by_reason=_md_table(reasons, ("reason", "records")),
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
    n = _write_frame(con, lake, PASSAGES_SILVER, day, frame, "community_id, pass_ts, motor_vehicle_id")
    files, lines, landed, dup_in, dup_cross = _ingest_row(con)
    # bronze is one row per MotorVehicleID already; anything dropped here (e.g. a tollgate that vanished
    # between parse and join) would unbalance the accounting and fail the check
    dup_silver = n_views["bronze"] - n
    check = record_accounting(con, lake, ACCOUNTING_PASSAGES, day, files=files, lines=lines, landed=landed,
                              accepted=n, quarantined=n_views["quarantine"], duplicates_in_file=dup_in,
                              duplicates_cross_file=dup_cross + dup_silver, asset_key=key(PASSAGES_SILVER),
                              check_name="row_accounting_vehicle_passages")
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
    accepted = "a.reason IS NULL AND NOT a.dup_in_file AND NOT a.dup_cross_file"
    n_pay = 0
    with lake.write_partition("bronze", SESSIONS_BRONZE.name, day) as wb, \
            lake.write_partition("quarantine", SESSIONS_QUARANTINE.name, day) as wq, \
            lake.write_partition("bronze", PAYMENTS_BRONZE.name, day) as wp:
        for batch in community_batches(files):
            part = parse_parking(con, s.landing_dir, batch, tokenizer)
            part.reasons = dict(_reasons(con, "pk"))
            part.bronze_rows = append_part(con, wb, SESSIONS_BRONZE, f"""
                SELECT a.community_id, a.park_id, a.parking_serial, a.event, {plates}, a.car_type,
                    to_timestamp(a.enter_ms / 1000.0) AS enter_ts,
                    CASE WHEN a.event = 'leave' THEN to_timestamp(a.leave_ms / 1000.0) END AS leave_ts,
                    a.enter_gate, CASE WHEN a.event = 'leave' THEN a.leave_gate END AS leave_gate,
                    CAST(a.total_raw AS BIGINT) AS total_fen, CAST(a.free_raw AS BIGINT) AS free_fen,
                    CAST(a.online_raw AS BIGINT) AS online_fen, CAST(a.cash_raw AS BIGINT) AS cash_fen,
                    a.total_spaces, a.remain_spaces, a.is_sync, coalesce(len(a.pays), 0) AS payments,
                    a.source_file, a.source_line
                FROM pk a LEFT JOIN plates p ON a.plate_raw IS NOT DISTINCT FROM p.plate_raw
                    AND a.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw
                WHERE {accepted} ORDER BY a.community_id, a.park_id, a.parking_serial, a.event""")
            n_pay += append_part(con, wp, PAYMENTS_BRONZE, f"""
                WITH u AS (
                    SELECT a.community_id, a.park_id, a.parking_serial, a.source_file, a.source_line,
                        unnest(a.pays) AS pay, generate_subscripts(a.pays, 1) AS item
                    FROM pk a WHERE {accepted} AND a.event = 'leave' AND len(a.pays) > 0
                )
                SELECT community_id, park_id, parking_serial, item, coalesce(pay->>'pay_type', 'unknown') AS pay_type,
                    to_timestamp(TRY_CAST(pay->>'pay_time' AS BIGINT) / 1000.0) AS pay_ts,
                    CAST(pay->>'value' AS BIGINT) AS value_fen,
                    CAST(coalesce(pay->>'free_value', '0') AS BIGINT) AS free_fen,
                    CAST(coalesce(pay->>'change_value', '0') AS BIGINT) AS change_fen,
                    pay->>'parking_order' AS parking_order, source_file, source_line
                FROM u ORDER BY community_id, park_id, parking_serial, item""")
            part.quarantined = append_part(con, wq, SESSIONS_QUARANTINE, """
                SELECT community_id, park_id, parking_serial,
                    CASE WHEN event IN ('enter', 'leave') THEN event END AS event, reason, detail, source_file,
                    source_line
                FROM pk a WHERE reason IS NOT NULL AND NOT dup_in_file AND NOT dup_cross_file
                ORDER BY source_file, source_line""")
            stats.add(part)
    write_dataset(con, lake, INGEST_PARKING, day, stats.sql())
    reasons = sorted(stats.reasons.items())
    yield dg.MaterializeResult(asset_key=key(SESSIONS_BRONZE), metadata=_meta(
        stats.bronze_rows, t0, files=stats.files, landed=stats.landed, duplicates_in_file=stats.duplicates_in_file,
        duplicates_cross_file=stats.duplicates_cross_file))
    yield dg.MaterializeResult(asset_key=key(SESSIONS_QUARANTINE), metadata=_meta(
        stats.quarantined, t0, by_reason=_md_table(reasons, ("reason", "records")),
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
    behind = int(frame["pushes"].sum()) if frame.height else 0
    n = _write_frame(con, lake, SESSIONS_SILVER, day, frame.drop("pushes"), "community_id, park_id, parking_serial")
    n_pay = write_dataset(con, lake, PAYMENTS_SILVER, day, """
        SELECT community_id, park_id, parking_serial, item,
            CASE WHEN lower(pay_type) IN ('wechat', 'alipay', 'unionpay', 'online', 'app', 'etc', '2', '3') THEN 'online'
                 WHEN lower(pay_type) IN ('cash', '1') THEN 'cash' ELSE 'other' END AS pay_type,
            pay_ts, value_fen, free_fen, change_fen
        FROM payments
        QUALIFY row_number() OVER (PARTITION BY park_id, parking_serial, item ORDER BY source_file, source_line) = 1
        """, order_by="community_id, park_id, parking_serial, item")
    files, lines, landed, dup_in, dup_cross = _ingest_row(con)
    # accepted = pushes standing behind a silver session; a push lost in pairing unbalances the check
    check = record_accounting(con, lake, ACCOUNTING_PARKING, day, files=files, lines=lines, landed=landed,
                              accepted=behind, quarantined=n_views["quarantine"], duplicates_in_file=dup_in,
                              duplicates_cross_file=dup_cross + (n_views["bronze"] - behind),
                              asset_key=key(SESSIONS_SILVER), check_name="row_accounting_parking",
                              sessions=n)
    by_status = frame.group_by("status").len().sort("status").rows() if frame.height else []
    yield dg.MaterializeResult(asset_key=key(SESSIONS_SILVER), metadata=_meta(
        n, t0, by_status=_md_table(by_status, ("status", "sessions")), pushes_behind=behind))
    yield dg.MaterializeResult(asset_key=key(PAYMENTS_SILVER), metadata=_meta(n_pay, t0))
    yield check


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
    res = write_suppressed(con, neuron.lake, PARKING_OCCUPANCY_15MIN, day,
                           render(HERE / "parking_occupancy_15min.sql", day=day, tz=neuron.settings.timezone),
                           dims=["community_id", "park_id", "slot_start"], value_cols=["entries", "exits"],
                           order_by="community_id, park_id, slot_start")
    return dg.MaterializeResult(metadata={**res.metadata(), "elapsed_s": round(time.monotonic() - t0, 3)})


VEHICLES_ASSETS = [bronze_vehicle_sites, bronze_registered_vehicles, bronze_vehicle_passages,
                   silver_vehicle_passages, bronze_parking, silver_parking, gold_vehicle_flow_hourly,
                   gold_parking_occupancy_15min]
