"""Access-control steps: door registry and ISC door events -> bronze (+ quarantine) -> silver -> gold gate
flows, security events and daily traffic. Logic lives in ``parse.py`` and the .sql files next to this module.
"""

from assets.access.datasets import (
    ACCESS_BRONZE,
    ACCESS_DAILY,
    ACCESS_DOORS,
    ACCESS_INGEST,
    ACCESS_OTHER,
    ACCESS_QUARANTINE,
    ACCESS_SILVER,
    ACCESS_VOCABULARY_GAPS,
    DIRECTIONS,
    GATE_FLOW_HOURLY,
    ROW_ACCOUNTING,
    SECURITY_EVENTS,
    VERIFY_MODES,
)
from assets.access.parse import SOURCE, ingest_day, landing_files
from assets.disclosure import write_protected
from assets.intake.datasets import COMPLETENESS
from assets.telemetry.datasets import DEVICE_ALARMS, SECURITY_ALARM_TYPES
from kernel.accounting import write_ingest
from kernel.completeness import VIEW
from kernel.lake_asset import Step, lake_asset
from kernel.snapshot import registry_snapshot


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


bronze_access_doors = registry_snapshot(ACCESS_DOORS, "sites", "doors.csv", name="bronze_access_doors",
                                        count_by=("vendor_convention", "convention"))


@lake_asset(ACCESS_BRONZE, ACCESS_QUARANTINE, ACCESS_INGEST, ACCESS_OTHER, ACCESS_VOCABULARY_GAPS,
            reads={"doors": ACCESS_DOORS}, landing=[SOURCE], cost=26)
def bronze_access_events(step: Step) -> dict:
    """Parse the day's ISC envelopes in bounded batches; every record ends accepted, quarantined or duplicate."""
    if not landing_files(step.landing_dir, step.day):
        step.context.log.warning(f"no access-event landing files for {step.day}")
    tokenize = step.neuron.tokenizer("access").tokenize_series
    stats = ingest_day(step.con, step.lake, step.landing_dir, step.day, step.tz, tokenize,
                       batch_bytes=step.settings.parse_batch_bytes)
    write_ingest(step.con, step.lake, ACCESS_INGEST, step.day, [stats])
    return {ACCESS_BRONZE: stats.bronze_metadata(), ACCESS_QUARANTINE: stats.quarantine_metadata()}


@lake_asset(ACCESS_SILVER, reads={"bronze": ACCESS_BRONZE, "doors": ACCESS_DOORS, "quarantine": ACCESS_QUARANTINE,
                                  "ingest": ACCESS_INGEST},
            accounting=[ACCESS_SILVER], cost=6)
def silver_access_events(step: Step) -> dict:
    with step.staged(step.sql("silver_access.sql")) as staged:
        n = step.write(f"SELECT * FROM {staged}")
        behind = step.scalar(f"SELECT coalesce(sum(versions), 0) FROM {staged}")
        by_status = step.con.execute(f"SELECT status, count(*) FROM {staged} GROUP BY 1 ORDER BY 1").fetchall()
    dup_cross = step.rows["bronze"] - n  # re-sends across files and superseded status versions
    # events of other abilities (field detection, people counting...) were accepted into bronze/access_other_events
    # by the parser: they count as accepted records, never as door events (docs/vendors/access.md)
    routed = int(step.scalar("SELECT coalesce(sum(routed_non_door), 0) FROM ingest"))
    # a bronze row whose door left the registry would stand behind no event and unbalance the check
    step.account(ROW_ACCOUNTING, accepted=n + routed, duplicates_cross_file=dup_cross,
                 bronze_rows=step.rows["bronze"], behind=behind, routed_non_door=routed)
    return {"duplicates_cross_file": dup_cross, "routed_non_door": routed,
            **{f"status/{s}": k for s, k in by_status}}


@lake_asset(GATE_FLOW_HOURLY, reads={"silver": ACCESS_SILVER, "doors": ACCESS_DOORS, VIEW: COMPLETENESS})
def gold_gate_flow_hourly(step: Step) -> dict:
    sql = step.sql("gate_flow_hourly.sql", day=step.day, tz=step.tz, directions=_sql_list(DIRECTIONS),
                   modes=_sql_list(VERIFY_MODES))
    return write_protected(step, sql).metadata()


@lake_asset(SECURITY_EVENTS, reads={"silver": ACCESS_SILVER, "alarms": DEVICE_ALARMS, VIEW: COMPLETENESS})
def gold_security_events(step: Step) -> dict:
    alarm_types = "(" + ", ".join(f"'{t}'" for t in SECURITY_ALARM_TYPES) + ")"
    n = step.write(step.sql("security_events.sql", tz=step.tz, alarm_types=alarm_types))
    by_type = step.con.execute(f"SELECT event_type, sum(events) FROM {step.read(SECURITY_EVENTS)} GROUP BY 1 "
                               "ORDER BY 1").fetchall() if n else []
    return {f"events/{t}": int(k) for t, k in by_type}


@lake_asset(ACCESS_DAILY, reads={"silver": ACCESS_SILVER, "doors": ACCESS_DOORS, VIEW: COMPLETENESS})
def gold_access_daily(step: Step) -> dict:
    return write_protected(step, step.sql("access_daily.sql", day=step.day)).metadata()


STEPS = (bronze_access_doors, bronze_access_events, silver_access_events, gold_gate_flow_hourly, gold_security_events,
         gold_access_daily)
