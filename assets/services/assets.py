"""Property-services steps: landing CSV -> bronze (+ quarantine) -> silver -> gold (work_orders_daily and the
one-row-per-community community_daily). Logic lives in ``parse.py`` and the .sql files next to this module.
"""

import warnings
from pathlib import Path

import duckdb
import polars as pl

from assets.disclosure import Protected, write_protected_grid
from assets.intake.datasets import COMPLETENESS
from assets.services.datasets import (
    ACCOUNTING,
    ALARM_COLUMNS,
    BRONZE,
    CATEGORIES,
    COMMUNITY_DAILY,
    INGEST,
    QUARANTINE,
    SILVER,
    SOURCES,
    WORK_ORDERS_DAILY,
)
from assets.services.parse import ingest_day
from assets.telemetry.datasets import (
    DEVICE_ALARMS,
    DEVICE_HEALTH_DAILY,
    DEVICE_REGISTRY,
    ENVIRONMENT_HOURLY,
    alarm_columns,
)
from kernel.completeness import VIEW
from kernel.disclosure import Disclosure
from kernel.lake import Lake
from kernel.lake_asset import LakeAsset, Step, lake_asset
from kernel.sqlfile import render
from quality.suppression import UnprotectedCellWarning

HERE = Path(__file__).parent
LANDING = "property_services"
# how silver picks one row per record when the same record lands in more than one file
_SILVER_KEYS = {"work_order_events": "order_id, seq", "fee_bills": "bill_id", "payments": "payment_id"}


@lake_asset(*BRONZE.values(), *QUARANTINE.values(), INGEST, landing=[LANDING], cost=6)
def bronze_property_services(step: Step) -> dict:
    """Decode (UTF-8, then GB18030, else quarantine the file), tokenise, redact and type every export."""
    tokenizer = step.neuron.tokenizer("services")
    # the canaries are deliberately NOT given to the redactor: generic rules must catch them (or quarantine
    # the record), so the zero-hit scan of the lake is a real test
    stats = ingest_day(step.con, step.lake, step.landing_dir, step.day, step.tz,
                       tokenizer.tokenize_series)
    if not any(st.files for st in stats.values()):
        step.context.log.warning(f"no property-services landing files for {step.day}")
    return {ds: meta for source, st in stats.items()
            for ds, meta in ((BRONZE[source], st.bronze_metadata()), (QUARANTINE[source], st.quarantine_metadata()))}


def _silver(source: str) -> LakeAsset:
    ds = SILVER[source]
    reads = {"bronze": BRONZE[source], "quarantine": QUARANTINE[source], "ingest": INGEST}
    if source == "work_order_events":  # every accepted event's order is in the day's bronze orders
        reads["orders"] = BRONZE["work_orders"]

    def silver(step: Step) -> dict:
        if source == "work_orders":
            sql = step.sql("silver_work_orders.sql", tz=step.tz, day=step.day)
        else:
            sql = step.sql("silver_work_order_events.sql" if source == "work_order_events" else "silver_records.sql",
                           keys=_SILVER_KEYS[source])
        n = step.write(sql)
        step.account(ACCOUNTING[source], accepted=n, duplicates_cross_file=step.rows["bronze"] - n, source=source)
        extra = {}
        if source == "work_orders":
            extra["duplicates_flagged"] = step.scalar(f"SELECT count(*) FROM {step.read(ds)} "
                                                      "WHERE duplicate_of IS NOT NULL")
        return {"duplicates_cross_file": step.rows["bronze"] - n, **extra}

    silver.__name__ = silver.__qualname__ = f"silver_{source}"
    return lake_asset(ds, reads=reads, accounting=[ds])(silver)


# Under the cell key method the order statistics are recomputed from published values only: rates from the
# perturbed on-time and closed counts, the mean rating from the perturbed rating sum (each rating at most 5, so
# the sum's noise is 5 x a deviation of at most D: one resident's rating is lost in it) over the perturbed
# number of rated orders; the duration quantiles, which no count perturbation covers, only where at least
# MIN_ORDERS_FOR_HOURS orders were closed (as published), rounded to whole hours.
MIN_ORDERS_FOR_HOURS = 10
RATING_MAX = 5


def order_stats_recompute(closed: str) -> dict[str, pl.Expr]:
    n = pl.col(closed)
    return {
        "on_time_rate": pl.when(n > 0).then((pl.col("on_time") / n).clip(0, 1).round(4)),
        "satisfaction_avg": pl.when(pl.col("rated") > 0).then(
            (pl.col("rating_sum") / pl.col("rated")).clip(1, RATING_MAX).round(2)),
        "median_hours_to_close": pl.when(n >= MIN_ORDERS_FOR_HOURS).then(pl.col("median_hours_to_close").round(0)),
        "p90_hours_to_close": pl.when(n >= MIN_ORDERS_FOR_HOURS).then(pl.col("p90_hours_to_close").round(0)),
    }


def _disclosure(d: Disclosure | int) -> Disclosure:
    return d if isinstance(d, Disclosure) else Disclosure("suppression", k=d)


def build_work_orders_daily(con: duckdb.DuckDBPyConnection, lake: Lake, day: str, tz: str,
                            disclosure: Disclosure | int) -> Protected:
    """Write gold/work_orders_daily from the views ``orders`` (silver) and ``registry``.

    Under suppression (``disclosure`` an int k, or a Disclosure), community_daily publishes each community's
    totals, so they are declared margins of this grid. A cell that its own margin discloses (the community's
    only non-zero category, so the total equals it and is < k) cannot be protected here: it stays suppressed
    with a warning, and community_daily withholds that total (it suppresses every work-order total < k), so the
    margin is never actually published. Under the cell key method every cell and total is perturbed.
    """
    stats = render(HERE / "work_order_stats.sql", keys="community_id, category", tz=tz, day=day)
    sql = render(HERE / "work_orders_daily.sql", stats=stats, categories=list(CATEGORIES))
    return write_protected_grid(con, lake, WORK_ORDERS_DAILY, day, sql, _disclosure(disclosure), on_unprotectable="warn",
                                recompute=order_stats_recompute("closed"), magnitudes={"rating_sum": RATING_MAX})


@lake_asset(WORK_ORDERS_DAILY, reads={"orders": SILVER["work_orders"], "registry": DEVICE_REGISTRY,
                                      VIEW: COMPLETENESS})
def gold_work_orders_daily(step: Step) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnprotectedCellWarning)
        res = build_work_orders_daily(step.con, step.lake, step.day, step.tz, step.disclosure())
    unprotectable = sum(1 for w in caught if issubclass(w.category, UnprotectedCellWarning))
    if unprotectable:
        step.context.log.warning("work_orders_daily: cells disclosed by their community total stay suppressed; "
                                 "community_daily withholds those totals (< k)")
    return {**res.metadata(), "unprotectable_warnings": unprotectable}


COMMUNITY_DAILY_INPUTS = {"orders": SILVER["work_orders"], "bills": SILVER["fee_bills"], "payments": SILVER["payments"],
                          "registry": DEVICE_REGISTRY, "health": DEVICE_HEALTH_DAILY, "alarms": DEVICE_ALARMS,
                          "env": ENVIRONMENT_HOURLY}


def build_community_daily(con: duckdb.DuckDBPyConnection, lake: Lake, day: str, tz: str,
                          disclosure: Disclosure | int) -> Protected:
    """Write gold/community_daily from the views of community_daily.sql (``COMMUNITY_DAILY_INPUTS``). The
    work-order totals are people counts: under suppression any total in 1..k-1 is suppressed (with the row),
    which is what lets work_orders_daily declare them as margins; under the cell key method they are cells of
    their own (the same orders' keys as the categories they sum)."""
    stats = render(HERE / "work_order_stats.sql", keys="community_id", tz=tz, day=day)
    sql = render(HERE / "community_daily.sql", stats=stats, day=day, **alarm_columns(ALARM_COLUMNS))
    return write_protected_grid(con, lake, COMMUNITY_DAILY, day, sql, _disclosure(disclosure),
                                recompute=order_stats_recompute("work_orders_closed"),
                                magnitudes={"rating_sum": RATING_MAX})


@lake_asset(COMMUNITY_DAILY, reads={**COMMUNITY_DAILY_INPUTS, VIEW: COMPLETENESS})
def gold_community_daily(step: Step) -> dict:
    return build_community_daily(step.con, step.lake, step.day, step.tz, step.disclosure()).metadata()


STEPS = (bronze_property_services, *(_silver(s) for s in SOURCES), gold_work_orders_daily, gold_community_daily)
