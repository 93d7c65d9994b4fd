"""Vehicle steps: gate passages and parking sessions, landing -> bronze -> silver -> gold.

Plates become tokens and attributes at parse, resident or visitor is decided by token against the property's
register, gold counts are suppressed below k. Logic lives in ``parse.py``, ``occupancy.py`` and the .sql files.
"""

import duckdb
import polars as pl

from assets.disclosure import summarise, write_internal, write_protected, write_protected_grid
from assets.intake.datasets import COMPLETENESS
from assets.privacy.plates import mark_residents
from assets.vehicles.datasets import (
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
from assets.vehicles.occupancy import protect_occupancy
from assets.vehicles.parse import (
    PLATE_COLUMNS,
    community_batches,
    parking_files,
    parse_parking,
    parse_passages,
    passage_files,
    registered_vehicles,
)
from kernel.accounting import IngestStats, write_ingest
from kernel.completeness import VIEW
from kernel.io import append_part
from kernel.lake_asset import Step, lake_asset
from kernel.metadata import md_table
from kernel.partitions import day_bounds
from kernel.snapshot import registry_snapshot

PLATES = ", ".join(f"p.{c}" for c in PLATE_COLUMNS)

bronze_tollgates = registry_snapshot(TOLLGATES, "sites", "tollgates.csv", name="bronze_tollgates")
bronze_car_parks = registry_snapshot(CAR_PARKS, "sites", "car_parks.csv", name="bronze_car_parks")


def _reasons(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    return dict(con.execute(f"SELECT reason, count(*) FROM {table} WHERE reason IS NOT NULL AND NOT dup_in_file "
                            "AND NOT dup_cross_file GROUP BY 1 ORDER BY 1").fetchall())


def _residency(frame: pl.DataFrame, registered: pl.DataFrame) -> pl.DataFrame:
    """resident when the plate token is on this community's register (mark_residents on community|token)."""
    reg_keys = registered.select(pl.concat_str("community_id", pl.lit("|"), "plate_token").alias("k"))["k"]
    keyed = frame.with_columns(__k=pl.concat_str("community_id", pl.lit("|"), "plate_token"))
    return mark_residents(keyed, "__k", reg_keys, "__resident").with_columns(
        residency=pl.when(pl.col("__resident")).then(pl.lit("resident")).otherwise(pl.lit("visitor"))
    ).drop("__k", "__resident")


@lake_asset(REGISTERED_VEHICLES, landing=["parking"])
def bronze_registered_vehicles(step: Step) -> None:
    step.write(registered_vehicles(step.con, step.landing_dir, step.day, step.neuron.tokenizer("vehicles")))


@lake_asset(PASSAGES_BRONZE, PASSAGES_QUARANTINE, INGEST_PASSAGES, reads={"tollgates": TOLLGATES},
            landing=["vehicle_passages"], cost=12)
def bronze_vehicle_passages(step: Step) -> dict:
    """GA/T 1400 objects: every one ends in bronze, in quarantine (one reason) or counted as a re-send."""
    start, end = day_bounds(step.day, step.tz)
    files = passage_files(step.landing_dir, step.day)
    stats = IngestStats("vehicle_passages", files=len(files))
    tokenizer = step.neuron.tokenizer("vehicles")
    with step.lake.write_partition("bronze", PASSAGES_BRONZE.name, step.day) as wb, \
            step.lake.write_partition("quarantine", PASSAGES_QUARANTINE.name, step.day) as wq:
        for batch in community_batches(files):
            part = parse_passages(step.con, step.landing_dir, batch, start, end, step.tz, tokenizer)
            part.reasons.update(_reasons(step.con, "passages"))
            part.bronze_rows = append_part(step.con, wb, PASSAGES_BRONZE, step.sql("bronze_passages_rows.sql",
                                                                                    plates=PLATES))
            # no plate and no image reaches quarantine: ids and the reason only
            part.quarantined = append_part(step.con, wq, PASSAGES_QUARANTINE, step.sql("quarantine_passages.sql"))
            stats.add(part)
    write_ingest(step.con, step.lake, INGEST_PASSAGES, step.day, [stats])
    return {PASSAGES_BRONZE: stats.bronze_metadata(), PASSAGES_QUARANTINE: stats.quarantine_metadata()}


@lake_asset(PASSAGES_SILVER, reads={"bronze": PASSAGES_BRONZE, "quarantine": PASSAGES_QUARANTINE,
                                    "ingest": INGEST_PASSAGES, "tollgates": TOLLGATES,
                                    "registered": REGISTERED_VEHICLES},
            accounting=[(PASSAGES_SILVER, "vehicle_passages")])
def silver_vehicle_passages(step: Step) -> dict:
    frame = step.con.sql(step.sql("silver_passages.sql", tz=step.tz)).pl()
    frame = _residency(frame, step.con.sql("SELECT community_id, plate_token FROM registered").pl())
    behind = int(frame["versions"].sum()) if frame.height else 0
    n = step.write_frame(frame.drop("versions"))
    # duplicates collapsed here are measured (bronze rows behind each silver row, minus one); a bronze row that
    # joins no gate (its tollgate left the registry since bronze ran) is behind nothing and unbalances the check
    step.account(ACCOUNTING_PASSAGES, accepted=n, duplicates_cross_file=behind - n, bronze_rows=step.rows["bronze"],
                 lost_in_silver=step.rows["bronze"] - behind)
    residents = int((frame["residency"] == "resident").sum()) if frame.height else 0
    return {"residents": residents, "visitors": n - residents}


@lake_asset(SESSIONS_BRONZE, SESSIONS_QUARANTINE, PAYMENTS_BRONZE, INGEST_PARKING, reads={"car_parks": CAR_PARKS},
            landing=["parking"], cost=4)
def bronze_parking(step: Step) -> dict:
    """Parking-cloud pushes: money strings to BIGINT fen, plates to tokens; bad money goes to quarantine."""
    files = parking_files(step.landing_dir, step.day)
    stats = IngestStats("parking", files=len(files))
    tokenizer = step.neuron.tokenizer("vehicles")
    with step.lake.write_partition("bronze", SESSIONS_BRONZE.name, step.day) as wb, \
            step.lake.write_partition("quarantine", SESSIONS_QUARANTINE.name, step.day) as wq, \
            step.lake.write_partition("bronze", PAYMENTS_BRONZE.name, step.day) as wp:
        for batch in community_batches(files):
            part = parse_parking(step.con, step.landing_dir, batch, tokenizer, step.tz)
            part.reasons.update(_reasons(step.con, "pk"))
            part.bronze_rows = append_part(step.con, wb, SESSIONS_BRONZE, step.sql("bronze_parking_rows.sql",
                                                                                    plates=PLATES))
            append_part(step.con, wp, PAYMENTS_BRONZE, step.sql("bronze_payments_rows.sql"))
            part.quarantined = append_part(step.con, wq, SESSIONS_QUARANTINE, step.sql("quarantine_parking.sql"))
            stats.add(part)
    write_ingest(step.con, step.lake, INGEST_PARKING, step.day, [stats])
    return {SESSIONS_BRONZE: stats.bronze_metadata(), SESSIONS_QUARANTINE: stats.quarantine_metadata()}


@lake_asset(SESSIONS_SILVER, PAYMENTS_SILVER,
            reads={"bronze": SESSIONS_BRONZE, "quarantine": SESSIONS_QUARANTINE, "ingest": INGEST_PARKING,
                   "registered": REGISTERED_VEHICLES, "payments": PAYMENTS_BRONZE},
            accounting=[(SESSIONS_SILVER, "parking")])
def silver_parking(step: Step) -> dict:
    """Sessions from paired pushes (status open/closed/exit_only/auto_closed) and their payments."""
    start, _ = day_bounds(step.day, step.tz)
    frame = step.con.sql(step.sql("silver_sessions.sql", day_start=start)).pl()
    frame = _residency(frame, step.con.sql("SELECT community_id, plate_token FROM registered").pl())
    accepted = int(frame["pushes"].sum()) if frame.height else 0
    behind = int(frame["versions"].sum()) if frame.height else 0
    n = step.write_frame(frame.drop("pushes", "versions"))
    step.write(step.sql("silver_payments.sql"), PAYMENTS_SILVER)
    # accepted = distinct pushes paired into a session; re-sends collapsed here are measured (bronze rows behind
    # the session minus its pushes); a bronze push behind no session unbalances the check
    step.account(ACCOUNTING_PARKING, accepted=accepted, duplicates_cross_file=behind - accepted,
                 sessions=n, bronze_rows=step.rows["bronze"], lost_in_silver=step.rows["bronze"] - behind)
    by_status = frame.group_by("status").len().sort("status").rows() if frame.height else []
    return {SESSIONS_SILVER: {"by_status": md_table(by_status, ("status", "sessions")), "pushes_behind": accepted}}


@lake_asset(VEHICLE_FLOW_HOURLY, reads={"silver": PASSAGES_SILVER, "tollgates": TOLLGATES, VIEW: COMPLETENESS})
def gold_vehicle_flow_hourly(step: Step) -> dict:
    return write_protected(step, step.sql("vehicle_flow_hourly.sql", day=step.day)).metadata()


@lake_asset(PARKING_OCCUPANCY_15MIN, reads={"sessions": SESSIONS_SILVER, "car_parks": CAR_PARKS,
                                            VIEW: COMPLETENESS})
def gold_parking_occupancy_15min(step: Step) -> dict:
    sql = step.sql("parking_occupancy_15min.sql", day=step.day, tz=step.tz)
    disclosure = step.disclosure()
    if disclosure.is_cell_key:  # every count perturbed, available follows the published stock
        return write_protected_grid(step.con, step.lake, step.output, step.day, sql, disclosure, recompute={
            "available": pl.max_horizontal(pl.col("capacity").cast(pl.Int64) - pl.col("occupied"), pl.lit(0))
        }).metadata()
    # suppression: the stock columns need the run rule of occupancy.protect_occupancy
    exact = step.con.sql(sql).pl()
    out = protect_occupancy(exact, step.k())
    write_internal(step.con, step.lake, step.output, step.day, exact)
    return summarise(out, step.write_frame(out), step.k()).metadata()


STEPS = (bronze_tollgates, bronze_car_parks, bronze_registered_vehicles, bronze_vehicle_passages,
         silver_vehicle_passages, bronze_parking, silver_parking, gold_vehicle_flow_hourly,
         gold_parking_occupancy_15min)
