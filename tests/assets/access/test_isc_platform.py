"""What the ISC platform really sends, end to end from the simulated landing: one test per behaviour.

Two communities: the first a legacy integration (currentVerifyMode, UserType, ISO receive times), the second the
platform's own feed (no currentVerifyMode, no UserType, ExtReceiveTime in epoch microseconds, local or offset
happenTime, ExtEventPersonNo "0" for strangers, a controller with its clock years off); both subscriptions carry
field-detection, people-counting and video events. Landing -> ingest_day (bronze, quarantine, other-ability
counts, vocabulary gaps) -> the real silver SQL.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.access.datasets import (
    ACCESS_BRONZE,
    ACCESS_OTHER,
    ACCESS_QUARANTINE,
    ACCESS_VOCABULARY_GAPS,
    USER_TYPES,
    VERIFY_MODES,
)
from assets.access.parse import HERE, ingest_day, landing_files
from kernel.io import create_view
from kernel.lake import Lake
from kernel.ndjson import read_lines
from kernel.tokens import Tokenizer
from tests.assets.access.helpers import simulate_access_day

DAY = "2026-11-23"
SEED = 17
TZ = "Asia/Shanghai"
TOKENIZER = Tokenizer("access-platform-key-0123456789", 1)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("access_platform")
    landing = root / "landing"
    summary = simulate_access_day(landing, date.fromisoformat(DAY), 2, SEED, telemetry=False)
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE doors AS SELECT * FROM read_csv('{landing / 'sites' / DAY / 'doors.csv'}', "
                "header = true, all_varchar = true)")
    lake = Lake(root / "lake")
    stats = ingest_day(con, lake, landing, DAY, TZ, TOKENIZER.tokenize_series)
    for name, ds in (("bronze", ACCESS_BRONZE), ("quarantine", ACCESS_QUARANTINE), ("other", ACCESS_OTHER),
                     ("gaps", ACCESS_VOCABULARY_GAPS)):
        create_view(con, name, lake, ds, DAY)
    con.execute(f"CREATE TEMP TABLE silver AS {(HERE / 'silver_access.sql').read_text()}")
    # the raw events as landed, read with DuckDB's JSON functions (not the parser's struct) to compare against
    lines = read_lines(landing_files(landing, DAY), landing)
    con.register("lines_df", lines)
    con.execute("""CREATE TEMP TABLE raw_events AS
        SELECT community_id, json_extract_string(line, '$.params.ability') AS ability,
            unnest(CAST(json_extract(line, '$.params.events') AS JSON[])) AS e
        FROM lines_df WHERE json_valid(line)""")
    con.execute("""CREATE TEMP TABLE raw AS
        SELECT community_id, ability, e->>'eventId' AS event_id, e->>'happenTime' AS happen,
            e->'data'->>'ExtReceiveTime' AS received, e->'data'->>'ExtEventPersonNo' AS person,
            e->'data'->>'ExtEventCardNo' AS card, e->'data'->>'currentVerifyMode' AS mode,
            e->'data'->>'UserType' AS user_type, e->>'srcIndex' AS src
        FROM raw_events""")
    platform = con.execute("SELECT DISTINCT community_id FROM raw WHERE ability = 'event_acs' AND received NOT LIKE "
                           "'%-%'").fetchall()
    assert len(platform) == 1  # the second community only
    return {"con": con, "lake": lake, "summary": summary, "stats": stats, "landing": landing,
            "platform": platform[0][0]}


def _one(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchall()[0]


def test_platform_events_without_verify_mode_or_user_type_are_accepted(day):
    con, c = day["con"], day["platform"]
    landed, bare = _one(con, f"SELECT count(*), count(*) FILTER (WHERE mode IS NULL AND user_type IS NULL) FROM raw "
                             f"WHERE community_id = '{c}' AND ability = 'event_acs'")
    assert landed == bare > 5000  # the platform's own shape throughout
    q = dict(con.execute(f"SELECT reason, count(*) FROM quarantine WHERE community_id = '{c}' GROUP BY 1").fetchall())
    assert set(q) <= {"malformed_json", "unknown_door"}  # only the simulator's own faults
    modes = dict(con.execute(f"SELECT verify_mode, count(*) FROM silver WHERE community_id = '{c}' "
                             "AND event_kind <> 'door_forced' GROUP BY 1").fetchall())
    assert set(modes) == {"face", "card", "id_card", "multi"} and set(modes) <= set(VERIFY_MODES)
    users = dict(con.execute(f"SELECT user_type, count(*) FROM silver WHERE community_id = '{c}' GROUP BY 1"
                             ).fetchall())
    assert set(users) == {"unknown", "stranger"} and set(users) <= set(USER_TYPES)


def test_the_verify_mode_follows_from_the_event_type(day):
    con, c = day["con"], day["platform"]
    got = con.execute(f"SELECT DISTINCT event_type, verify_mode FROM silver WHERE community_id = '{c}' "
                      "AND event_kind <> 'door_forced' ORDER BY 1").fetchall()
    assert got == [(196883, "multi"), (196893, "face"), (197160, "face"), (197162, "id_card"), (198914, "card"),
                   (198916, "card")]


def test_receive_time_in_epoch_microseconds_is_read_exactly(day):
    con, c = day["con"], day["platform"]
    n, exact = _one(con, f"""
        SELECT count(*), count(*) FILTER (WHERE b.received_ts = make_timestamptz(CAST(r.received AS BIGINT)))
        FROM bronze b JOIN raw r USING (event_id) WHERE b.community_id = '{c}' AND b.status = 0""")
    assert n == exact > 5000


def test_local_happen_time_without_offset_is_asia_shanghai_to_the_second(day):
    con, c = day["con"], day["platform"]
    n, exact = _one(con, f"""
        SELECT count(*), count(*) FILTER (WHERE b.event_ts = timezone('{TZ}', CAST(r.happen AS TIMESTAMP)))
        FROM bronze b JOIN raw r USING (event_id)
        WHERE b.community_id = '{c}' AND regexp_full_match(r.happen, '\\d{{4}}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d')
            AND b.time_quality = 'ok'""")
    assert n == exact > 1000
    # the device time, a second or so before the platform received it, never the receive time
    assert _one(con, f"SELECT count(*) FROM bronze WHERE community_id = '{c}' AND time_quality = 'ok' "
                     "AND (event_ts > received_ts OR received_ts - event_ts > INTERVAL 4 SECOND)")[0] == 0


def test_broken_happen_times_are_repaired_and_the_plain_local_form_is_not_broken(day):
    con, summary = day["con"], day["summary"]
    # "2026-11-2308: 14: 05.123" (date and hour glued, spaces after colons) is 2026-11-23 08:14:05 local
    n, right, repaired = _one(con, f"""
        SELECT count(*),
            count(*) FILTER (WHERE strftime(timezone('{TZ}', b.event_ts), '%Y-%m-%d%H:%M:%S')
                                   = left(regexp_replace(r.happen, '\\s', '', 'g'), 18)),
            count(*) FILTER (WHERE b.time_quality = 'repaired')
        FROM bronze b JOIN raw r USING (event_id)
        WHERE r.happen ~ '^\\d{{4}}-\\d\\d-\\d{{4}}: .*' AND b.time_quality <> 'clock_skew'""")
    assert n == right == repaired > 0
    # the plain "yyyy-MM-dd HH:mm:ss" form is not a repair (the old repair dropped its space and broke it)
    assert _one(con, "SELECT count(*) FROM bronze b JOIN raw r USING (event_id) WHERE b.time_quality <> 'ok' "
                     "AND regexp_full_match(r.happen, '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d') "
                     "AND b.time_quality <> 'clock_skew'")[0] == 0
    assert _one(con, "SELECT count(*) FROM silver WHERE time_quality = 'repaired'")[0] == summary["time_repaired"] > 0


def test_src_index_codes_are_32_hex_or_uuid_and_match_the_registry(day):
    con = day["con"]
    kinds = dict(con.execute("""
        SELECT CASE WHEN regexp_full_match(door_id, '[0-9a-f]{32}') THEN 'hex'
                    WHEN regexp_full_match(door_id, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}') THEN 'uuid' END,
            count(*) FROM silver GROUP BY 1""").fetchall())
    assert set(kinds) == {"hex", "uuid"} and min(kinds.values()) > 1000
    assert _one(con, "SELECT count(*) FROM silver WHERE door_id NOT IN (SELECT door_id FROM doors)")[0] == 0


def test_person_number_zero_is_no_person_and_never_one_shared_token(day):
    con, c, summary = day["con"], day["platform"], day["summary"]
    zeros = _one(con, f"SELECT count(*) FROM raw WHERE community_id = '{c}' AND person = '0'")[0]
    assert zeros > 100
    zero_token = TOKENIZER.token("0", "person")
    assert _one(con, f"SELECT count(*) FROM bronze WHERE person_token = '{zero_token}'")[0] == 0
    strangers, tokens = _one(con, f"SELECT count(*), count(person_token) FROM silver WHERE community_id = '{c}' "
                                  "AND user_type = 'stranger'")
    assert strangers == summary["stranger_person_zero"] > 0 and tokens == 0
    # a shared pseudo-person would make every stranger one credential denied again and again
    assert summary["security_events"].get("repeated_denied", 0) < 10


def test_other_abilities_are_routed_and_counted_never_quarantined(day):
    con, summary, stats = day["con"], day["summary"], day["stats"]
    got = dict(con.execute("SELECT ability || '/' || event_class, sum(events) FROM other GROUP BY 1").fetchall())
    assert got == summary["routed_by_class"]
    assert set(got) == {"event_pdc/people_counting", "event_rule/field_detection", "event_vss/motion_detection",
                        "event_vss/video_loss"}
    assert sum(got.values()) == stats.counters["routed_non_door"] == summary["routed_non_door"]
    assert {k: v for k, v in stats.counters.items() if k.startswith("routed/")} == \
        {f"routed/{k}": v for k, v in got.items()}
    assert _one(con, "SELECT count(*) FROM quarantine WHERE event_id LIKE 'oth%'")[0] == 0
    assert _one(con, "SELECT count(*) FROM bronze WHERE event_id LIKE 'oth%'")[0] == 0
    # a video-loss sample carries the sentinel time and no receive time: counted, hour unknown
    assert _one(con, "SELECT count(*) FROM other WHERE event_class = 'video_loss' AND hour_start IS NOT NULL")[0] == 0
    assert stats.counters["vocabulary_gaps"] == 0 and _one(con, "SELECT count(*) FROM gaps")[0] == 0


def test_row_accounting_balances_with_the_routed_events(day):
    stats, summary = day["stats"], day["summary"]
    assert stats.landed == summary["landed"]
    assert stats.landed == (stats.bronze_rows + stats.quarantined + stats.duplicates_in_file
                            + stats.counters["routed_non_door"])
    assert stats.quarantined == summary["quarantined"]


def test_a_device_clock_years_off_falls_back_to_the_receive_time_and_is_flagged(day):
    con, summary = day["con"], day["summary"]
    n, doors, at_receive, years_off = _one(con, """
        SELECT count(*), count(DISTINCT b.door_id), count(*) FILTER (WHERE b.event_ts = b.received_ts),
            count(*) FILTER (WHERE year(neuron_time(r.happen, 'Asia/Shanghai')) < 2026)
        FROM silver b JOIN (SELECT DISTINCT event_id, happen FROM raw) r USING (event_id)
        WHERE b.time_quality = 'clock_skew'""")
    assert n == at_receive == years_off == summary["clock_skew"] > 0
    assert doors == 1


def test_no_raw_person_or_card_number_in_any_written_parquet(day):
    con, lake = day["con"], day["lake"]
    raw = {v for (v,) in con.execute("SELECT person FROM raw WHERE person NOT IN ('', '0') UNION "
                                     "SELECT card FROM raw WHERE card NOT IN ('', '0')").fetchall()}
    assert len(raw) > 1000
    words: set[str] = set()
    for f in sorted(Path(lake.root).rglob("*.parquet")):
        text = duckdb.sql(f"SELECT * FROM read_parquet('{f}')").pl().select(pl.all().cast(pl.String)).write_csv()
        words |= set(re.split(r"[^0-9A-Za-z]+", text))
    assert words & raw == set()
