"""Silver telemetry's identity query (``silver_telemetry.sql``, two passes) against its one-pass reference.

The rewrite picks the earliest file and line only among the identities that bronze repeats. Random bronze days
full of repeats that differ in every non-identity column (platform, unit, quality flag, subject token, file,
line), NULLs in the identity, devices the registry lacks or lists twice, must give the reference's rows exactly.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from kernel.sqlfile import render

SQL = Path(__file__).resolve().parents[3] / "assets" / "telemetry" / "silver_telemetry.sql"
REFERENCE = Path(__file__).with_name("silver_reference.sql")
# a value as text: NaN equals NaN, and 0.0 and -0.0 (one identity) read alike, whichever row a query kept
COLUMNS = ("community_id, building_id, device_id, device_type, platform, event_ts, metric, "
           "CASE WHEN isnan(value) THEN 'NaN' ELSE CAST(value + 0.0 AS VARCHAR) END AS value, unit, "
           "quality_flag, subject_token, n, registered")


def _day(con: duckdb.DuckDBPyConnection, seed: int, rows: int) -> None:
    # few devices, times and values: many identities repeat, across files and inside one file
    con.execute(f"SELECT setseed({seed / 1000})")
    con.execute(f"""CREATE OR REPLACE TABLE bronze AS
        SELECT
            CASE WHEN random() < 0.01 THEN NULL ELSE 'dev' || (random() * 40)::INT END AS device_id,
            CASE WHEN random() < 0.01 THEN NULL
                 ELSE TIMESTAMPTZ '2026-11-20 00:00:00+08' + to_minutes((random() * 30)::INT) END AS event_ts,
            CASE WHEN random() < 0.01 THEN NULL ELSE ['temp_c', 'rsrp_dbm', 'smoke'][1 + (random() * 2)::INT] END
                AS metric,
            CASE WHEN random() < 0.02 THEN NULL WHEN random() < 0.02 THEN -0.0 WHEN random() < 0.02 THEN 'NaN'::DOUBLE
                 WHEN random() < 0.5 THEN -114.0 ELSE (random() * 3)::INT END AS value,
            ['ctwing', 'iotda', 'thingsboard'][1 + (random() * 2)::INT] AS platform,
            ['C', 'dBm', NULL][1 + (random() * 2)::INT] AS unit,
            ['ok', 'rsrp_sign_restored'][1 + (random() * 1)::INT] AS quality_flag,
            CASE WHEN random() < 0.5 THEN NULL ELSE 'person_v1_' || (random() * 5)::INT END AS subject_token,
            'telemetry/2026-11-20/ctwing/f' || (random() * 9)::INT || '.ndjson.gz' AS source_file,
            (random() * 50)::BIGINT AS source_line
        FROM range({rows})""")
    con.execute("""CREATE OR REPLACE TABLE registry AS
        SELECT '31010700100' || (i % 3) AS community_id, 'b' || i AS building_id, 'dev' || i AS device_id,
            ['smoke_detector', 'meter'][1 + i % 2] AS device_type
        FROM range(30) t(i)
        UNION ALL SELECT '310107001009', 'b2x', 'dev2', 'smoke_detector'  -- a device listed twice""")


@pytest.mark.parametrize("seed", range(8))
def test_two_pass_identity_equals_the_reference(seed: int) -> None:
    con = duckdb.connect()
    _day(con, seed, rows=4000 + 500 * seed)
    got = con.execute(f"SELECT {COLUMNS} FROM ({render(SQL)}) ORDER BY ALL").fetchall()
    want = con.execute(f"SELECT {COLUMNS} FROM ({render(REFERENCE)}) ORDER BY ALL").fetchall()
    assert len(want) > 100 and any(r[-2] > 2 for r in want)  # the day has identities repeated more than twice
    assert got == want


def test_earliest_file_then_line_wins() -> None:
    con = duckdb.connect()
    con.execute("""CREATE TABLE bronze AS SELECT * FROM (VALUES
        ('d1', TIMESTAMPTZ '2026-11-20 01:00:00+08', 'rsrp_dbm', -114.0, 'ctwing', 'dBm', 'rsrp_sign_restored',
         NULL, 'telemetry/2026-11-20/ctwing/b.ndjson.gz', 1),
        ('d1', TIMESTAMPTZ '2026-11-20 01:00:00+08', 'rsrp_dbm', -114.0, 'ctwing', 'dBm', 'ok',
         'person_v1_x', 'telemetry/2026-11-20/ctwing/a.ndjson.gz', 9),
        ('d1', TIMESTAMPTZ '2026-11-20 01:00:00+08', 'rsrp_dbm', -114.0, 'iotda', 'dBm', 'ok',
         'person_v1_y', 'telemetry/2026-11-20/ctwing/a.ndjson.gz', 7)
        ) t(device_id, event_ts, metric, value, platform, unit, quality_flag, subject_token, source_file, source_line)""")
    con.execute("CREATE TABLE registry AS SELECT '310107001001' AS community_id, 'b1' AS building_id, "
                "'d1' AS device_id, 'meter' AS device_type")
    rows = con.execute(f"SELECT platform, quality_flag, subject_token, n, registered FROM ({render(SQL)})").fetchall()
    assert rows == [("iotda", "ok", "person_v1_y", 3, True)]
