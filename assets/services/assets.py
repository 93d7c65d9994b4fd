"""Dagster assets of the property-services domain: landing CSV -> bronze (+ quarantine) -> silver -> gold
(work_orders_daily and the one-row-per-community community_daily). Thin glue over parse.py and the .sql files.
"""

import time
import warnings

import dagster as dg
import duckdb

from assets.accounting import accounting_check_spec, record_accounting
from assets.glue import key, md_table
from assets.services.parse import HERE, ingest_day
from assets.sqlfile import render
from assets.suppressed import Suppressed, write_suppressed
from pipelines.partitions import daily
from pipelines.resources import NeuronResource
from quality.suppression import UnprotectedCellWarning
from warehouse.domains.services import (
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
from warehouse.io import create_view, write_dataset
from warehouse.lake import Lake
from warehouse.schemas import DEVICE_ALARMS, DEVICE_HEALTH_DAILY, DEVICE_REGISTRY, ENVIRONMENT_HOURLY

LANDING = dg.AssetKey(["landing", "property_services"])
# how silver picks one row per record when the same record lands in more than one file
_SILVER_KEYS = {"work_order_events": "order_id, seq", "fee_bills": "bill_id", "payments": "payment_id"}


COMMUNITY_DAILY_INPUTS = {"orders": SILVER["work_orders"], "bills": SILVER["fee_bills"], "payments": SILVER["payments"],
                          "registry": DEVICE_REGISTRY, "health": DEVICE_HEALTH_DAILY, "alarms": DEVICE_ALARMS,
                          "env": ENVIRONMENT_HOURLY}


def _meta(rows: int, started: float, **extra: object) -> dict[str, object]:
    return {"dagster/row_count": rows, "elapsed_s": round(time.monotonic() - started, 3), **extra}


@dg.multi_asset(
    specs=[
        *(dg.AssetSpec(key(ds), deps=[LANDING], group_name="services_bronze", kinds={"duckdb", "parquet"},
                       description=ds.description) for ds in (*BRONZE.values(), *QUARANTINE.values())),
        dg.AssetSpec(key(INGEST), deps=[LANDING], group_name="services_bronze", kinds={"parquet"},
                     description=INGEST.description),
    ],
    partitions_def=daily,
)
def bronze_property_services(context: dg.AssetExecutionContext, neuron: NeuronResource):
    """Decode (UTF-8, then GB18030, else quarantine the file), tokenise, redact and type every export."""
    t0 = time.monotonic()
    day = context.partition_key
    s = neuron.settings
    tokenizer = neuron.tokenizer()
    # the canaries are deliberately NOT given to the redactor: generic rules must catch them (or quarantine
    # the record), so the zero-hit scan of the lake is a real test
    stats = ingest_day(neuron.duckdb(), neuron.lake, s.landing_dir, day, s.timezone,
                       lambda v: tokenizer.tokenize_series(v, "phone"))
    if not any(st.files for st in stats.values()):
        context.log.warning(f"no property-services landing files for {day}")
    for source, st in stats.items():
        yield dg.MaterializeResult(asset_key=key(BRONZE[source]), metadata=_meta(
            st.bronze_rows, t0, files=st.files, rows_read=st.lines, landed=st.landed,
            duplicates_in_file=st.duplicates_in_file,
            encodings=md_table(sorted(st.encodings.items()), ("encoding", "files"))))
        reasons = sorted(st.reasons.items())
        yield dg.MaterializeResult(asset_key=key(QUARANTINE[source]), metadata=_meta(
            st.quarantined, t0, undecodable_files=st.undecodable, files_quarantined=st.files_quarantined,
            by_reason=md_table(reasons, ("reason", "records")),
            **{f"reason/{r}": n for r, n in reasons}))
    yield dg.MaterializeResult(asset_key=key(INGEST), metadata={"dagster/row_count": len(stats)})


def _silver_asset(source: str) -> dg.AssetsDefinition:
    ds = SILVER[source]

    @dg.asset(
        key=key(ds), partitions_def=daily, group_name="services_silver",
        kinds={"duckdb", "parquet"}, description=ds.description,
        deps=[key(BRONZE[source]), key(QUARANTINE[source]), key(INGEST)]
        + ([key(BRONZE["work_orders"])] if source == "work_order_events" else []),
        check_specs=[accounting_check_spec(key(ds))],
    )
    def _asset(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
        t0 = time.monotonic()
        day = context.partition_key
        lake = neuron.lake
        con = neuron.duckdb()
        bronze_rows = create_view(con, "bronze", lake, BRONZE[source], day)
        quarantined = create_view(con, "quarantine", lake, QUARANTINE[source], day)
        create_view(con, "ingest", lake, INGEST, day)
        if source == "work_orders":
            sql = render(HERE / "silver_work_orders.sql", tz=neuron.settings.timezone, day=day)
        else:
            if source == "work_order_events":  # every accepted event's order is in the day's bronze orders
                create_view(con, "orders", lake, BRONZE["work_orders"], day)
            sql = render(HERE / f"silver_{'work_order_events' if source == 'work_order_events' else 'records'}.sql",
                         keys=_SILVER_KEYS[source])
        n = write_dataset(con, lake, ds, day, sql, order_by=ds.columns[0].name)
        rows = con.execute(f"SELECT files, lines, landed, duplicates_in_file FROM ingest WHERE source = '{source}'"
                           ).fetchall()
        files, lines, landed, dup_in = rows[0] if rows else (0, 0, 0, 0)
        check = record_accounting(con, lake, ACCOUNTING[source], day, files=files, lines=lines, landed=landed,
                                  accepted=n, quarantined=quarantined, duplicates_in_file=dup_in,
                                  duplicates_cross_file=bronze_rows - n)
        extra = {}
        if source == "work_orders":
            extra["duplicates_flagged"] = con.execute(
                f"SELECT count(*) FROM read_parquet('{lake.partition_dir('silver', 'work_orders', day)}/*.parquet') "
                "WHERE duplicate_of IS NOT NULL").fetchall()[0][0]
        return dg.MaterializeResult(metadata=_meta(n, t0, duplicates_cross_file=bronze_rows - n, **extra),
                                    check_results=[check])

    _asset.__name__ = f"silver_{source}"
    return _asset


def build_work_orders_daily(con: duckdb.DuckDBPyConnection, lake: Lake, day: str, tz: str) -> Suppressed:
    """Write gold/work_orders_daily from the views ``orders`` (silver) and ``registry``.

    community_daily publishes each community's totals, so they are declared margins of this grid. A cell
    that its own margin discloses (the community's only non-zero category, so the total equals it and is
    < k) cannot be protected here: it stays suppressed with a warning, and community_daily withholds that
    total (it suppresses every work-order total < k), so the margin is never actually published.
    """
    stats = render(HERE / "work_order_stats.sql", keys="community_id, category", tz=tz, day=day)
    sql = render(HERE / "work_orders_daily.sql", stats=stats, categories=list(CATEGORIES))
    return write_suppressed(con, lake, WORK_ORDERS_DAILY, day, sql, dims=["community_id", "category"],
                            value_cols=["opened", "closed"], margins=[["community_id"]], on_unprotectable="warn",
                            derived_cols=["on_time_rate", "median_hours_to_close", "p90_hours_to_close",
                                          "satisfaction_avg"], order_by="community_id, category")


def build_community_daily(con: duckdb.DuckDBPyConnection, lake: Lake, day: str, tz: str) -> Suppressed:
    """Write gold/community_daily from the views of community_daily.sql. The work-order totals are people
    counts: any total in 1..k-1 is suppressed (with the row), which is what lets work_orders_daily declare
    them as margins."""
    stats = render(HERE / "work_order_stats.sql", keys="community_id", tz=tz, day=day)
    counts = ", ".join(f"count(*) FILTER (WHERE alarm_type = '{t}') AS alarms_{t}" for t in ALARM_COLUMNS)
    select = ", ".join(f"coalesce(a.alarms_{t}, 0) AS alarms_{t}" for t in ALARM_COLUMNS)
    sql = render(HERE / "community_daily.sql", stats=stats, alarm_counts=counts, alarm_select=select)
    return write_suppressed(con, lake, COMMUNITY_DAILY, day, sql, dims=["community_id"],
                            value_cols=["work_orders_opened", "work_orders_closed", "elderly_care_events"],
                            derived_cols=["on_time_rate", "median_hours_to_close", "p90_hours_to_close",
                                          "satisfaction_avg"], order_by="community_id")


@dg.asset(
    key=key(WORK_ORDERS_DAILY), partitions_def=daily, group_name="services_gold", kinds={"duckdb", "parquet"},
    deps=[key(SILVER["work_orders"]), key(DEVICE_REGISTRY)], description=WORK_ORDERS_DAILY.description,
)
def gold_work_orders_daily(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    lake = neuron.lake
    con = neuron.duckdb()
    create_view(con, "orders", lake, SILVER["work_orders"], day)
    create_view(con, "registry", lake, DEVICE_REGISTRY, day)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnprotectedCellWarning)
        res = build_work_orders_daily(con, lake, day, neuron.settings.timezone)
    unprotectable = sum(1 for w in caught if issubclass(w.category, UnprotectedCellWarning))
    if unprotectable:
        context.log.warning("work_orders_daily: cells disclosed by their community total stay suppressed; "
                            "community_daily withholds those totals (< k)")
    return dg.MaterializeResult(metadata=_meta(res.rows, t0, **res.metadata(), unprotectable_warnings=unprotectable))


@dg.asset(
    key=key(COMMUNITY_DAILY), partitions_def=daily, group_name="services_gold", kinds={"duckdb", "parquet"},
    deps=[key(SILVER["work_orders"]), key(SILVER["fee_bills"]), key(SILVER["payments"]), key(DEVICE_REGISTRY),
          key(DEVICE_HEALTH_DAILY), key(DEVICE_ALARMS), key(ENVIRONMENT_HOURLY)],
    description=COMMUNITY_DAILY.description,
)
def gold_community_daily(context: dg.AssetExecutionContext, neuron: NeuronResource) -> dg.MaterializeResult:
    t0 = time.monotonic()
    day = context.partition_key
    lake = neuron.lake
    con = neuron.duckdb()
    for name, ds in COMMUNITY_DAILY_INPUTS.items():
        create_view(con, name, lake, ds, day)
    res = build_community_daily(con, lake, day, neuron.settings.timezone)
    return dg.MaterializeResult(metadata=_meta(res.rows, t0, **res.metadata()))


SERVICES_ASSETS: list[dg.AssetsDefinition] = [
    bronze_property_services, *(_silver_asset(s) for s in SOURCES), gold_work_orders_daily, gold_community_daily,
]
