"""silver/device_alarms (``device_alarms.sql``: silence gaps on numbered devices, compared in microseconds; only the
alarm groups with a reading on are windowed, ``alarm_flags.sql``) and the incident engine's episodes against the
queries they replaced (``device_alarms_reference.sql``, ``alarm_flags_reference.sql``).

Random days with what the simulator never makes: devices the registry lacks or lists twice with different report
intervals, intervals NULL, zero or negative, readings at the same instant, OFFLINE and ONLINE messages between
readings, alarms that stay on, clear and come back, a device that reports only that it is offline.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from assets.telemetry.parse import HERE, alarm_flags_sql
from kernel.sqlfile import render

INCIDENT_EPISODES = HERE.parent / "incidents" / "episodes.sql"
REFERENCE = Path(__file__).with_name("device_alarms_reference.sql")
FLAGS_REFERENCE = Path(__file__).with_name("alarm_flags_reference.sql")
BOUNDS = dict(day_start="2026-11-19 16:00:00+00", day_end="2026-11-20 16:00:00+00")


def _flags(path: Path) -> str:
    return "\n".join(ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.lstrip().startswith("--"))


def _day(con: duckdb.DuckDBPyConnection, seed: int, rows: int) -> None:
    con.execute(f"SELECT setseed({seed / 1000})")
    # few devices and coarse times: groups with many readings, ties at one instant, long silences
    con.execute(f"""CREATE OR REPLACE TABLE silver AS
        SELECT '3101070010' || lpad((d % 3)::VARCHAR, 2, '0') AS community_id, 'b' || (d % 7) AS building_id,
            'dev' || d AS device_id, 'smoke' AS device_type, 'ctwing' AS platform,
            TIMESTAMPTZ '2026-11-20 00:00:00+08' + to_minutes((random() * 1439)::INT) AS event_ts,
            m AS metric,
            CASE m WHEN 'battery_pct' THEN (random() * 40)::INT + 5
                   WHEN 'online' THEN (random() < 0.7)::INT
                   WHEN 'temperature' THEN random() * 30
                   ELSE (random() < 0.2)::INT END AS value,
            'u' AS unit, 'ok' AS quality_flag,
            CASE WHEN random() < 0.3 THEN 'person_v1_' || (random() * 3)::INT END AS subject_token, 1 AS n,
            true AS registered
        FROM (SELECT (random() * 45)::INT AS d,
                  ['smoke_alarm', 'gas_alarm', 'sos', 'fall', 'intrusion', 'cover_open', 'battery_pct', 'online',
                   'temperature', 'temperature'][1 + (random() * 9)::INT] AS m
              FROM range({rows}))""")
    con.execute("""INSERT INTO silver SELECT '310107001000', 'b0', 'dev44', 'smoke', 'ctwing',
        TIMESTAMPTZ '2026-11-20 03:00:00+08', 'online', 0, 'u', 'ok', NULL, 1, true  -- said offline, nothing else""")
    con.execute("DELETE FROM silver WHERE device_id = 'dev44' AND metric <> 'online'")
    # silver holds one row per reading identity (silver_telemetry.sql): ties on (device, metric, time) differ in value
    con.execute("CREATE OR REPLACE TABLE silver AS SELECT DISTINCT ON (device_id, event_ts, metric, value) * FROM silver")
    # dev0..dev39 registered (dev40..44 are not), dev3 and dev7 twice with other intervals; odd intervals
    con.execute("""CREATE OR REPLACE TABLE registry AS
        SELECT '3101070010' || lpad((i % 3)::VARCHAR, 2, '0') AS community_id, 'b' || (i % 7) AS building_id,
            'dev' || i AS device_id, 'smoke' AS device_type,
            CASE WHEN i % 11 = 0 THEN NULL WHEN i % 13 = 0 THEN 0 WHEN i = 17 THEN -60
                 ELSE [600, 900, 1800, 3600][1 + i % 4] END AS report_interval_s
        FROM range(40) t(i)
        UNION ALL SELECT '310107001009', 'b9', 'dev3', 'smoke', 300
        UNION ALL SELECT '310107001009', 'b9', 'dev7', 'smoke', NULL
        UNION ALL SELECT '310107001009', 'b9', 'dev99', 'smoke', 3600  -- registered, never reports""")


@pytest.mark.parametrize("seed", range(6))
def test_device_alarms_equal_the_reference(seed: int) -> None:
    con = duckdb.connect()
    _day(con, seed, rows=3000 + 700 * seed)
    got = con.execute(f"SELECT * FROM ({render(HERE / 'device_alarms.sql', alarm_flags=alarm_flags_sql(), **BOUNDS)}) "
                      "ORDER BY ALL").fetchall()
    want = con.execute(f"SELECT * FROM ({render(REFERENCE, alarm_flags=_flags(FLAGS_REFERENCE), **BOUNDS)}) "
                       "ORDER BY ALL").fetchall()
    kinds = {r[5] for r in want}
    assert len(want) > 40 and {"offline", "smoke", "low_battery"} <= kinds, kinds  # the day reaches every rule
    assert sum(1 for r in want if r[5] == "offline" and r[7] not in (24.0, None)) > 5  # silences, not only 'never'
    assert got == want


@pytest.mark.parametrize("seed", range(4))
def test_the_incident_engines_episodes_equal_the_reference(seed: int) -> None:
    con = duckdb.connect()
    _day(con, seed, rows=3000)
    con.execute("""CREATE OR REPLACE TABLE silver AS SELECT DATE '2026-11-20' AS day,
        device_id || '|' || metric AS grp, event_ts AS first_seen, * FROM silver""")
    got = con.execute(f"SELECT * FROM ({render(INCIDENT_EPISODES, alarm_flags=alarm_flags_sql())}) ORDER BY ALL"
                      ).fetchall()
    want = con.execute(f"SELECT * FROM ({render(INCIDENT_EPISODES, alarm_flags=_flags(FLAGS_REFERENCE))}) "
                       "ORDER BY ALL").fetchall()
    assert len(want) > 50 and got == want
