"""Telemetry steps: device registry and IoT-platform NDJSON -> bronze (+ quarantine, vocabulary gaps) -> silver -> gold.

Business logic lives in the .sql files and ``parse.py``; each step says what it reads and writes.
"""

from assets.intake.datasets import COMPLETENESS
from assets.telemetry.datasets import (
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
    alarm_columns,
)
from assets.telemetry.parse import alarm_flags_sql, ingest_day, landing_files, vocabulary_gap_summary
from kernel.accounting import write_ingest
from kernel.completeness import VIEW
from kernel.lake_asset import Step, lake_asset
from kernel.metadata import md_table
from kernel.partitions import day_bounds
from kernel.snapshot import registry_snapshot

bronze_device_registry = registry_snapshot(DEVICE_REGISTRY, "device_registry", "devices.csv",
                                           name="bronze_device_registry")


@lake_asset(TELEMETRY_BRONZE, TELEMETRY_QUARANTINE, INGEST_STATS, reads={"registry": DEVICE_REGISTRY},
            landing=["telemetry"], cost=65)
def bronze_telemetry(step: Step) -> dict:
    """Parse the day's landing files in bounded batches; every record ends accepted, quarantined or duplicate."""
    if not landing_files(step.landing_dir, step.day):
        step.context.log.warning(f"no telemetry landing files for {step.day}")
    tokenizer = step.neuron.tokenizer("telemetry")
    stats = ingest_day(step.con, step.lake, step.landing_dir, step.day, step.tz,
                       lambda v: tokenizer.tokenize_series(v, "person"), batch_bytes=step.settings.parse_batch_bytes)
    write_ingest(step.con, step.lake, INGEST_STATS, step.day, [stats])
    # vendor keys of registered devices that no adapter row maps (audit/telemetry_vocabulary_gaps has them all)
    gaps = vocabulary_gap_summary(step.con)
    bronze = {**stats.bronze_metadata(), "vocabulary_gap_records": sum(int(g[3]) for g in gaps),
              "vocabulary_gaps": md_table(gaps, ("platform", "vendor_model", "vendor_key", "records"))}
    return {TELEMETRY_BRONZE: bronze, TELEMETRY_QUARANTINE: stats.quarantine_metadata()}


@lake_asset(TELEMETRY_SILVER, reads={"bronze": TELEMETRY_BRONZE, "registry": DEVICE_REGISTRY,
                                     "quarantine": TELEMETRY_QUARANTINE, "ingest": INGEST_STATS},
            accounting=[TELEMETRY_SILVER], cost=8)
def silver_telemetry(step: Step) -> dict:
    with step.staged(step.sql("silver_telemetry.sql")) as staged:
        n = step.write(f"SELECT * EXCLUDE (n, registered) FROM {staged} WHERE registered")
        behind, identities, unregistered = step.con.execute(
            f"SELECT coalesce(sum(n), 0), count(*), count(*) FILTER (WHERE NOT registered) FROM {staged}").fetchall()[0]
    # bronze is counted from its own files; every bronze row must stand behind exactly one silver identity
    dup_cross = step.rows["bronze"] - identities
    step.account(ROW_ACCOUNTING, accepted=n, duplicates_cross_file=dup_cross, bronze_rows=step.rows["bronze"],
                 behind=behind, unregistered_in_bronze=unregistered)
    return {"duplicates_cross_file": dup_cross}


@lake_asset(DEVICE_ALARMS, reads={"silver": TELEMETRY_SILVER, "registry": DEVICE_REGISTRY}, cost=3)
def silver_device_alarms(step: Step) -> dict:
    start, end = day_bounds(step.day, step.tz)
    step.write(step.sql("device_alarms.sql", day_start=start, day_end=end, alarm_flags=alarm_flags_sql()))
    by_type = step.con.execute(f"SELECT alarm_type, count(*) FROM {step.read(DEVICE_ALARMS)} GROUP BY 1 ORDER BY 1"
                               ).fetchall()
    return {"by_type": md_table(by_type, ("alarm_type", "episodes"))}


@lake_asset(DEVICE_HEALTH_DAILY, reads={"silver": TELEMETRY_SILVER, "registry": DEVICE_REGISTRY,
                                        "alarms": DEVICE_ALARMS, VIEW: COMPLETENESS})
def gold_device_health_daily(step: Step) -> dict:
    step.write(step.sql("device_health_daily.sql", **alarm_columns(ALARM_TYPES)))
    rate = step.scalar(f"SELECT round(sum(reporting) / nullif(sum(devices), 0), 4) FROM {step.read(DEVICE_HEALTH_DAILY)}")
    return {"district_online_rate": float(rate or 0)}


@lake_asset(ENVIRONMENT_HOURLY, reads={"silver": TELEMETRY_SILVER, VIEW: COMPLETENESS})
def gold_environment_hourly(step: Step) -> None:
    step.write(step.sql("environment_hourly.sql", tz=step.tz))


STEPS = (bronze_device_registry, bronze_telemetry, silver_telemetry, silver_device_alarms, gold_device_health_daily,
         gold_environment_hourly)
