"""silver/access_events (``silver_access.sql``: the version logic only over events bronze holds more than once)
against the one-pass query it replaced (``silver_access_reference.sql``).

Random bronze days with what the simulator rarely or never makes: an event re-sent in several files and lines,
status updates out of order, two copies of one status with different payloads, sendTime missing, a NULL eventId
(bronze requires one; the queries must still agree), doors the registry lists twice or not at all.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from kernel.sqlfile import render

SQL = Path(__file__).resolve().parents[3] / "assets" / "access" / "silver_access.sql"
REFERENCE = Path(__file__).with_name("silver_access_reference.sql")


def _day(con: duckdb.DuckDBPyConnection, seed: int, rows: int) -> None:
    con.execute(f"SELECT setseed({seed / 1000})")
    # few event ids: many events with several rows (re-sends, status updates), many with one
    con.execute(f"""CREATE OR REPLACE TABLE bronze AS
        SELECT
            CASE WHEN random() < 0.005 THEN NULL ELSE 'acs' || (random() * {rows // 2})::INT END AS event_id,
            '310107001001' AS community_id,
            'door' || (random() * 12)::INT AS door_id,
            [196893, 198914, 197151][1 + (random() * 2)::INT] AS event_type,
            ['pass', 'denied', 'door_forced'][1 + (random() * 2)::INT] AS event_kind,
            TIMESTAMPTZ '2026-11-20 00:00:00+08' + to_seconds((random() * 86399)::INT) AS event_ts,
            CASE WHEN random() < 0.1 THEN NULL
                 ELSE TIMESTAMPTZ '2026-11-20 00:00:00+08' + to_seconds((random() * 86399)::INT) END AS received_ts,
            ['ok', 'repaired', 'receive_time', 'clock_skew'][1 + (random() * 3)::INT] AS time_quality,
            ['in', 'out', 'unknown'][1 + (random() * 2)::INT] AS direction,
            ['face', 'card', NULL][1 + (random() * 2)::INT] AS verify_mode,
            ['granted', 'denied', NULL][1 + (random() * 2)::INT] AS result,
            ['resident', 'visitor', 'unknown'][1 + (random() * 2)::INT] AS user_type,
            CASE WHEN random() < 0.3 THEN NULL ELSE 'person_v1_' || (random() * 50)::INT END AS person_token,
            CASE WHEN random() < 0.5 THEN NULL ELSE 'card_v1_' || (random() * 50)::INT END AS card_token,
            [0, 0, 0, 1, 2, 4, 5][1 + (random() * 6)::INT] AS status,
            CASE WHEN random() < 0.05 THEN NULL
                 ELSE TIMESTAMPTZ '2026-11-20 00:00:00+08' + to_seconds((random() * 600)::INT) END AS send_ts,
            (random() * 3)::INT AS event_index,
            'access_events/2026-11-20/isc/f' || (random() * 5)::INT || '.ndjson.gz' AS source_file,
            (random() * 400)::BIGINT AS source_line
        FROM range({rows})""")
    # one row per (file, line, position), as the parser delivers them
    con.execute("CREATE OR REPLACE TABLE bronze AS SELECT DISTINCT ON (source_file, source_line, event_index) * "
                "FROM bronze")
    con.execute("""CREATE OR REPLACE TABLE doors AS
        SELECT 'door' || i AS door_id, '310107001001' AS community_id, 'b' || i AS building_id,
            ['gate', 'building'][1 + i % 2] AS kind, 'gate ' || i AS gate_name
        FROM range(11) t(i)  -- door11 and door12 are not registered
        UNION ALL SELECT 'door3', '310107001001', 'b3', 'gate', 'gate 3'  -- listed twice""")


@pytest.mark.parametrize("seed", range(6))
def test_silver_access_equals_the_reference(seed: int) -> None:
    con = duckdb.connect()
    _day(con, seed, rows=3000 + 500 * seed)
    got = con.execute(f"SELECT * FROM ({render(SQL)}) ORDER BY ALL").fetchall()
    want = con.execute(f"SELECT * FROM ({render(REFERENCE)}) ORDER BY ALL").fetchall()
    versions = [r[-1] for r in want]
    assert len(want) > 500 and max(versions) >= 3 and versions.count(1) > 100  # both kinds of event
    assert got == want
