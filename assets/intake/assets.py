"""audit/completeness: per source, community and day, expected (from the registries) against received.

One step after every domain's silver: it reads the registries and, per source, the parsed (bronze and
quarantine) and accepted (silver) rows by community, counts the landing files each community delivered, and
writes one row per source and community with a status (``kernel.completeness``). Gold steps read it to flag
their rows and null what a missing source would otherwise show as zero; ``inputs_complete`` checks withhold a
gold table whose source is missing for every community.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.access.datasets import ACCESS_BRONZE, ACCESS_DOORS, ACCESS_OTHER, ACCESS_QUARANTINE, ACCESS_SILVER
from assets.intake.datasets import COMPLETENESS
from assets.services.datasets import BRONZE as SERVICES_BRONZE
from assets.services.datasets import QUARANTINE as SERVICES_QUARANTINE
from assets.services.datasets import SILVER as SERVICES_SILVER
from assets.telemetry.datasets import (
    DEVICE_REGISTRY,
    TELEMETRY_BRONZE,
    TELEMETRY_QUARANTINE,
    TELEMETRY_SILVER,
)
from assets.vehicles.datasets import (
    CAR_PARKS,
    PASSAGES_BRONZE,
    PASSAGES_QUARANTINE,
    PASSAGES_SILVER,
    PAYMENTS_BRONZE,
    PAYMENTS_SILVER,
    SESSIONS_BRONZE,
    SESSIONS_QUARANTINE,
    SESSIONS_SILVER,
    TOLLGATES,
)
from kernel.dataset import Dataset
from kernel.lake_asset import Step, lake_asset
from kernel.metadata import md_table

# telemetry devices report at least hourly: a community whose readings cover fewer local hours is partial
MIN_TELEMETRY_HOURS = 24

# source -> (parsed datasets, accepted datasets with their record-time column; telemetry counts devices too)
RECEIVED: dict[str, tuple[Dataset, ...]] = {
    "telemetry": (TELEMETRY_BRONZE, TELEMETRY_QUARANTINE),
    "access_events": (ACCESS_BRONZE, ACCESS_QUARANTINE),
    "vehicle_passages": (PASSAGES_BRONZE, PASSAGES_QUARANTINE),
    "parking": (SESSIONS_BRONZE, SESSIONS_QUARANTINE, PAYMENTS_BRONZE),
    "property_services": tuple(ds for ds in (*SERVICES_BRONZE.values(), *SERVICES_QUARANTINE.values())
                               if "community_id" in ds.column_names),
}
ACCEPTED: dict[str, tuple[tuple[Dataset, str | None], ...]] = {
    "telemetry": ((TELEMETRY_SILVER, "event_ts"),),
    "access_events": ((ACCESS_SILVER, "event_ts"), (ACCESS_OTHER, None)),
    "vehicle_passages": ((PASSAGES_SILVER, "pass_ts"),),
    "parking": ((SESSIONS_SILVER, "enter_ts"), (PAYMENTS_SILVER, "pay_ts")),
    "property_services": tuple((ds, "event_ts" if "event_ts" in ds.column_names else None)
                               for ds in SERVICES_SILVER.values()),
}
REGISTRIES = {"registry": DEVICE_REGISTRY, "doors": ACCESS_DOORS, "tollgates": TOLLGATES, "car_parks": CAR_PARKS}


def _name(ds: Dataset) -> str:
    return f"{ds.layer}_{ds.name}"


READS: dict[str, Dataset] = {**REGISTRIES, **{_name(ds): ds for dss in RECEIVED.values() for ds in dss},
                             **{_name(ds): ds for pairs in ACCEPTED.values() for ds, _ in pairs}}


def landing_files(landing: Path, day: str) -> pl.DataFrame:
    """(source, community_id, files) for the day: community folders, or telemetry's ``<community>-`` file names."""
    rows: list[tuple[str, str, int]] = []
    for source in RECEIVED:
        root = landing / source / day
        if not root.is_dir():
            continue
        counts: dict[str, int] = {}
        for p in root.rglob("*"):
            if not p.is_file() or p.name.endswith(".part"):
                continue
            parts = p.relative_to(root).parts
            community = (parts[0] if len(parts) > 1 and parts[0][:1].isdigit()
                         else p.name.split("-", 1)[0] if p.name[:1].isdigit() else None)
            if community:
                counts[community] = counts.get(community, 0) + 1
        rows += [(source, c, n) for c, n in counts.items()]
    return pl.DataFrame(rows, schema={"source": pl.Utf8, "community_id": pl.Utf8, "files": pl.Int64}, orient="row")


@lake_asset(COMPLETENESS, reads=READS)
def audit_completeness(step: Step) -> dict:
    """Completeness per source and community: registries against landing files, parsed and accepted records."""
    con = step.con
    for source, dss in RECEIVED.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {source}_received AS "
                    + " UNION ALL ".join(f"SELECT community_id, count(*) AS n FROM {_name(ds)} GROUP BY ALL"
                                         for ds in dss))
    for source, pairs in ACCEPTED.items():
        units = "device_id" if source == "telemetry" else "NULL"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {source}_accepted AS " + " UNION ALL ".join(
            f"SELECT community_id, {units} AS units, {ts or 'NULL::TIMESTAMPTZ'} AS ts FROM {_name(ds)}"
            for ds, ts in pairs))
    con.register("files", landing_files(step.landing_dir, step.day))
    n = step.write(step.sql("completeness.sql", tz=step.tz, min_hours=MIN_TELEMETRY_HOURS))
    by_status = con.execute(f"SELECT source, status, count(*) FROM {step.read(COMPLETENESS)} "
                            "GROUP BY ALL ORDER BY 1, 2").fetchall()
    short = con.execute(f"SELECT source, community_id, status, reason FROM {step.read(COMPLETENESS)} "
                        "WHERE status IN ('missing', 'partial') ORDER BY 1, 2").fetchall()
    absent = con.execute(f"SELECT source FROM {step.read(COMPLETENESS)} WHERE status <> 'not_expected' "
                         "GROUP BY 1 HAVING bool_and(status = 'missing') ORDER BY 1").fetchall()
    meta: dict[str, object] = {
        "rows": n,
        "by_status": md_table(by_status, ("source", "status", "communities")),
        "incomplete": md_table(short, ("source", "community", "status", "reason")),
        "communities_incomplete": len({c for _, c, _, _ in short}),
        "sources_missing_everywhere": ", ".join(s for (s,) in absent) or "none",
    }
    for source, status, count in by_status:
        meta[f"{source}/{status}"] = count
    if short or absent:
        step.context.log.warning(
            f"completeness {step.day}: sources missing for every community: {meta['sources_missing_everywhere']}; "
            f"{len(short)} source-community pairs incomplete: "
            + "; ".join(f"{s} {c} {st} ({r})" for s, c, st, r in short[:20]))
    return meta


STEPS = (audit_completeness,)
