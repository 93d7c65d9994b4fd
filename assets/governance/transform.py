"""Governance bronze -> silver -> gold as plain functions over DuckDB (the Dagster assets only wire them).

Multi-day reads: silver ballots read the earlier silver partitions of the votes open that day (so days are
processed in order), vote outcomes read the whole vote, and the monthly table reads the month to date.
The published table (governance_month_final) copies the previous day's monthly partition on the 1st only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from assets.disclosure import Protected, write_suppressed_grid
from assets.governance import datasets as g
from assets.governance.parse import BRONZE, HERE, QUARANTINE
from kernel.dataset import Dataset
from kernel.io import create_view, write_dataset
from kernel.lake import Lake
from kernel.sqlfile import render, run_script

SILVER = {"votes": g.VOTES_SILVER, "ballots": g.BALLOTS_SILVER, "announcements": g.ANNOUNCEMENTS_SILVER,
          "activities": g.ACTIVITIES_SILVER, "participation": g.PARTICIPATION_SILVER}
# one row per record identity; the earliest check-in (then sign-up) wins for a reused QR code
_DEDUP = {
    "votes": ("vote_id", "vote_id"),
    "announcements": ("notice_id", "publish_ts, source_file, source_line"),
    "activities": ("activity_id", "start_ts, source_file, source_line"),
    "participation": ("activity_id, person_token",
                      "checkin_ts NULLS LAST, signup_ts NULLS LAST, source_file, source_line"),
}
MAX_LOOKBACK_DAYS = 62


def days_view(con: duckdb.DuckDBPyConnection, name: str, lake: Lake, ds: Dataset, days: list[str]) -> int:
    """A temp view over several daily partitions of ``ds`` (a typed empty relation when none exists)."""
    files = [f for d in days for f in lake.files(ds.layer, ds.name, d)]
    sql = (f"SELECT * FROM read_parquet([{', '.join(repr(f) for f in files)}], hive_partitioning = false)"
           if files else ds.empty_sql())
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
    return con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]


def day_range(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


@dataclass
class SilverCounts:
    bronze: int
    accepted: int
    quarantined: int


def build_silver(con: duckdb.DuckDBPyConnection, lake: Lake, day: str, tz: str) -> dict[str, SilverCounts]:
    """Write the five silver partitions of ``day``; duplicates = bronze rows not accepted."""
    out: dict[str, SilverCounts] = {}
    for source, ds in SILVER.items():
        bronze_rows = create_view(con, "bronze", lake, BRONZE[source], day)
        quarantined = create_view(con, "quarantine", lake, QUARANTINE[source], day)
        if source == "ballots":
            create_view(con, "votes_today", lake, g.VOTES_SILVER, day)
            first = con.execute(f"SELECT min(CAST(timezone('{tz}', start_ts) AS DATE)) FROM votes_today "
                                "WHERE vote_id IN (SELECT vote_id FROM bronze)").fetchall()[0][0]
            d = date.fromisoformat(day)
            first = max(first or d, d - timedelta(days=MAX_LOOKBACK_DAYS))
            days_view(con, "prior", lake, g.BALLOTS_SILVER, day_range(first, d - timedelta(days=1)))
            sql = (HERE / "silver_ballots.sql").read_text()
        else:
            key, order_by = _DEDUP[source]
            sql = (f"SELECT * EXCLUDE (source_file, source_line) FROM bronze "
                   f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order_by}) = 1")
        n = write_dataset(con, lake, ds, day, sql, order_by=ds.order_by)
        out[source] = SilverCounts(bronze_rows, n, quarantined)
    return out


def build_vote_outcomes(con: duckdb.DuckDBPyConnection, lake: Lake, day: str, tz: str) -> int:
    create_view(con, "votes", lake, g.VOTES_SILVER, day)
    first = con.execute(f"SELECT min(CAST(timezone('{tz}', start_ts) AS DATE)) FROM votes").fetchall()[0][0]
    d = date.fromisoformat(day)
    days_view(con, "ballots", lake, g.BALLOTS_SILVER, day_range(max(first or d, d - timedelta(days=MAX_LOOKBACK_DAYS)), d))
    run_script(con, HERE / "rules.sql")
    return write_dataset(con, lake, g.VOTE_OUTCOMES, day, render(HERE / "vote_outcomes.sql", day=day, tz=tz),
                         order_by=g.VOTE_OUTCOMES.order_by)


def build_monthly(con: duckdb.DuckDBPyConnection, lake: Lake, day: str, registry: Dataset, k: int) -> Protected:
    """Month to date: partitions from the 1st of ``day``'s month to ``day`` (the last day is the final value);
    people counts below ``k`` suppressed as the declaration says."""
    d = date.fromisoformat(day)
    days = day_range(d.replace(day=1), d)
    create_view(con, "registry", lake, registry, day)
    for name, ds in (("votes_mtd", g.VOTES_SILVER), ("outcomes_mtd", g.VOTE_OUTCOMES),
                     ("activities_mtd", g.ACTIVITIES_SILVER), ("participation_mtd", g.PARTICIPATION_SILVER),
                     ("notices_mtd", g.ANNOUNCEMENTS_SILVER)):
        days_view(con, name, lake, ds, days)
    return write_suppressed_grid(con, lake, g.GOVERNANCE_MONTHLY, day,
                                 render(HERE / "governance_monthly.sql", day=day, month=d.replace(day=1).isoformat()),
                                 k)


@dataclass
class MonthFinal:
    rows: int
    month: str | None  # the month published, None on days that publish nothing
    withheld: bool     # the 1st, but the previous month's final partition was never built


def build_month_final(con: duckdb.DuckDBPyConnection, lake: Lake, day: str) -> MonthFinal:
    """Partition ``day`` of governance_month_final: on the 1st the previous month's final monthly figures
    (governance_monthly of ``day`` - 1, already suppressed), else an empty partition (written, so the export
    publishes an empty batch). Published once per (community, month), the figures cannot be differenced."""
    d = date.fromisoformat(day)
    ds = g.GOVERNANCE_MONTH_FINAL
    prev = (d - timedelta(days=1)).isoformat()
    files = lake.files(g.GOVERNANCE_MONTHLY.layer, g.GOVERNANCE_MONTHLY.name, prev) if d.day == 1 else []
    if not files:
        write_dataset(con, lake, ds, day, ds.empty_sql())
        return MonthFinal(0, None, d.day == 1)
    create_view(con, "month_final", lake, g.GOVERNANCE_MONTHLY, prev)
    n = write_dataset(con, lake, ds, day, "SELECT * FROM month_final", order_by=ds.order_by)
    return MonthFinal(n, (d - timedelta(days=1)).replace(day=1).isoformat(), False)
