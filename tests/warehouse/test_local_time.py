"""Local time beside UTC: every TIMESTAMPTZ column of a view has ``<col>_local``, a TIMESTAMP in the district's
time zone, right after it; it reads the same in every session and agrees with gold's local hours."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from kernel.lake import Lake
from tests.warehouse.conftest import DAY1, DAY2, SmallLake
from warehouse.catalog import build_warehouse


def test_every_timestamptz_column_has_a_local_twin_beside_it(tmp_path: Path):
    path = tmp_path / "neuron.duckdb"
    build_warehouse(path, Lake(tmp_path / "lake"), tmp_path / "outbox")
    con = duckdb.connect(str(path), read_only=True)
    objects = con.execute("SELECT schema_name, table_name, list(column_name ORDER BY column_index), "
                          "list(data_type ORDER BY column_index) FROM duckdb_columns() "
                          "WHERE database_name = current_database() GROUP BY 1, 2").fetchall()
    zoned = 0
    for schema, name, columns, types in objects:
        for i, (column, type_) in enumerate(zip(columns, types, strict=True)):
            if type_ == "TIMESTAMP WITH TIME ZONE":
                zoned += 1
                assert columns[i + 1] == f"{column}_local", f"{schema}.{name}.{column}"
                assert types[i + 1] == "TIMESTAMP", f"{schema}.{name}.{column}_local"
    assert zoned > 40  # silver event times, audit computed_at, meta generated_at / received_at / built_at...


def test_local_time_is_the_same_in_every_session_and_matches_gold_hours(small_lake: SmallLake):
    build_warehouse(small_lake.warehouse, small_lake.lake, small_lake.outbox, timezone="Asia/Shanghai")
    for session_zone in ("UTC", "America/New_York", "Asia/Shanghai"):
        con = duckdb.connect(str(small_lake.warehouse), read_only=True)
        con.execute(f"SET TimeZone = '{session_zone}'")
        rows = con.execute("SELECT date, event_ts_local FROM silver.telemetry ORDER BY event_ts").fetchall()
        assert [(str(d), t) for d, t in rows] == [
            (DAY1, datetime(2026, 11, 19, 23, 30)), (DAY1, datetime(2026, 11, 19, 23, 45)),
            (DAY2, datetime(2026, 11, 20, 0, 10))]
        # the evening peak is hour 23 in silver's local column and in gold alike
        silver_hour = con.execute(f"SELECT DISTINCT date_trunc('hour', event_ts_local) FROM silver.telemetry "
                                  f"WHERE date = DATE '{DAY1}'").fetchall()
        gold_hour = con.execute("SELECT hour_start FROM gold.environment_hourly").fetchall()
        assert silver_hour == gold_hour == [(datetime(2026, 11, 19, 23, 0),)]
        con.close()


def test_the_time_zone_is_recorded_and_derived_columns_are_documented(small_lake: SmallLake):
    build_warehouse(small_lake.warehouse, small_lake.lake, small_lake.outbox, timezone="Asia/Shanghai")
    con = duckdb.connect(str(small_lake.warehouse), read_only=True)
    assert con.execute("SELECT time_zone FROM meta.warehouse").fetchall() == [("Asia/Shanghai",)]
    assert con.execute("SELECT column_title_zh, derived_from, column_type FROM meta.data_dictionary "
                       "WHERE layer = 'silver' AND dataset = 'telemetry' AND column_name = 'event_ts_local'"
                       ).fetchall() == [("事件时间（本地时间）", "event_ts", "TIMESTAMP")]
    # audit.row_accounting carries the local twin of computed_at through its union
    assert con.execute("SELECT computed_at_local FROM audit.row_accounting").fetchall() == [
        (datetime(2026, 11, 20, 1, 0),)]
