"""Parsing ISC door events: one test per vendor quirk, over simulator output, without Dagster."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.access.parse import HERE, landing_files, load_vocabulary, parse_batch
from kernel.ndjson import read_lines
from kernel.sqlfile import run_script
from kernel.tokens import Tokenizer
from simulator.canaries import canary_residents
from tests.assets.access.helpers import read_truth, simulate_access_day, truth_dir

DAY = "2026-11-21"
SEED = 5


TOKENIZER = Tokenizer("access-test-key-0123456789", 1)


def _connect(landing: Path) -> duckdb.DuckDBPyConnection:
    """A connection with the day's door registry (table ``doors``) and the vendor vocabularies."""
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE doors AS SELECT * FROM read_csv('{landing / 'sites' / DAY / 'doors.csv'}', "
                "header=true, all_varchar=true)")
    load_vocabulary(con)
    return con


def _parse(con: duckdb.DuckDBPyConnection, lines: pl.DataFrame) -> None:
    """The real parser: ``records`` for the lines, then the bronze rows (table ``bronze``) as ingest writes them."""
    parse_batch(con, lines, DAY, "Asia/Shanghai", TOKENIZER.tokenize_series)
    run_script(con, HERE / "bronze_outputs.sql")
    con.execute("CREATE OR REPLACE TEMP TABLE bronze AS SELECT * FROM batch_bronze")


def _silver(con: duckdb.DuckDBPyConnection) -> None:
    """Run the real silver SQL over ``bronze`` into table ``silver``."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE silver AS {(HERE / 'silver_access.sql').read_text()}")


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory):
    """Two communities with every fault on, parsed into ``records``/``bronze`` and deduplicated into ``silver``."""
    landing = tmp_path_factory.mktemp("access_parse") / "landing"
    summary = simulate_access_day(landing, date.fromisoformat(DAY), 2, SEED, telemetry=False)
    con = _connect(landing)
    _parse(con, read_lines(landing_files(landing, DAY), landing))
    _silver(con)
    return con, summary, landing, TOKENIZER


@pytest.fixture(scope="module")
def lines(parsed) -> pl.DataFrame:
    _, _, landing, _ = parsed
    return read_lines(landing_files(landing, DAY), landing)


def _pass_envelope(lines: pl.DataFrame) -> tuple[int, dict]:
    """Index and JSON of the first intact envelope whose first event is a first delivery of a verified pass."""
    for i, text in enumerate(lines["line"]):
        try:
            env = json.loads(text)
        except json.JSONDecodeError:
            continue
        e = env["params"]["events"][0]
        if ("currentVerifyMode" in e["data"] and e["status"] == 0 and e.get("happenTime", "").count(" ") == 0
                and "happenTime" in e and not e["srcIndex"].startswith("ffffffff") and e["happenTime"][11:13] > "08"):
            return i, env
    raise AssertionError("no verified pass envelope in the simulated day")


def _edited(lines: pl.DataFrame, i: int, env: dict) -> pl.DataFrame:
    """Line ``i`` of the simulated landing with its text replaced by ``env``."""
    return lines.slice(i, 1).with_columns(line=pl.lit(json.dumps(env, ensure_ascii=False)))


def _one(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchall()[0]


def test_both_direction_conventions_normalise_to_the_true_directions(parsed):
    con, summary, landing, _ = parsed
    assert summary["conventions"] == ["inout_10", "inout_12"]
    got = pl.from_arrow(con.sql("""
        SELECT d.vendor_convention, r.direction, count(DISTINCT r.event_id) AS n
        FROM records r JOIN doors d USING (door_id)
        WHERE r.reason IS NULL AND r.event_kind <> 'door_forced' GROUP BY ALL""").arrow())
    doors = pl.read_csv(landing / "sites" / DAY / "doors.csv").select(pl.col("door_id").alias("gate_id"),
                                                                      "vendor_convention")
    truth = read_truth(landing, DAY, "gate_hour").join(doors, on="gate_id")  # strangers are always denied
    want = truth.group_by("vendor_convention", "direction").agg(pl.col("passes").sum() + pl.col("denied").sum())
    merged = got.join(want.rename({"passes": "want"}), on=["vendor_convention", "direction"], how="full",
                      coalesce=True)
    assert merged.filter(pl.col("n") != pl.col("want")).height == 0, merged
    # '2' means out only under inout_12, '0' only under inout_10; unknown (-1) occurs only under inout_10
    assert set(got.filter(pl.col("vendor_convention") == "inout_12")["direction"]) == {"in", "out"}
    assert set(got.filter(pl.col("vendor_convention") == "inout_10")["direction"]) == {"in", "out", "unknown"}


def test_a_resent_event_id_in_the_same_file_is_an_in_file_duplicate(parsed):
    con, summary, _, _ = parsed
    dups = _one(con, "SELECT count(*) FILTER (WHERE dup_in_file) FROM records")[0]
    accepted = _one(con, "SELECT count(*) FROM records WHERE reason IS NULL AND NOT routed")[0]
    bronze = _one(con, "SELECT count(*) FROM bronze")[0]
    silver, behind = _one(con, "SELECT count(*), sum(versions) FROM silver")
    assert dups == summary["duplicates_in_file"] > 0
    assert accepted - dups == bronze == behind
    assert silver == summary["door_events"] == summary["accepted"] - summary["routed_non_door"]
    assert bronze - silver == summary["duplicates_cross_file"] > 0


def test_status_updates_keep_the_event_id_and_the_newest_status_wins_over_stale_resends(parsed):
    con, summary, _, _ = parsed
    assert summary["stale_resends"] > 0 and summary["bad_send_time"] > 0  # the day holds both hazards
    final = dict(con.execute("SELECT status, count(*) FROM silver GROUP BY 1").fetchall())
    assert {str(k): v for k, v in final.items()} == summary["final_status"]
    assert set(final) >= {0, 1, 2, 4, 5}
    assert _one(con, "SELECT count(*) FROM bronze WHERE send_ts IS NULL")[0] > 0


def test_a_stale_resend_that_is_the_only_surviving_original_never_wins(parsed):
    """Drop every first delivery (status 0, sent before the update) of updated events, as a truncated line does:
    the only status-0 copy left is the stale re-send sent after the update, and the update must still win.
    Found on the three-community session day, where one such event ended with status 0 instead of 4."""
    con, _, _, _ = parsed
    want = dict(con.execute("SELECT event_id, status FROM silver WHERE status > 0").fetchall())
    con.execute("CREATE OR REPLACE TEMP TABLE bronze_ok AS SELECT * FROM bronze")
    try:
        con.execute("""CREATE OR REPLACE TEMP TABLE bronze AS
            WITH first_update AS (SELECT event_id, min(send_ts) AS sent FROM bronze_ok WHERE status > 0 GROUP BY 1)
            SELECT b.* FROM bronze_ok b LEFT JOIN first_update u USING (event_id)
            WHERE NOT (b.status = 0 AND u.sent IS NOT NULL AND b.send_ts < u.sent)""")
        stale_only = _one(con, "SELECT count(DISTINCT event_id) FROM bronze WHERE status = 0 AND event_id IN "
                               "(SELECT event_id FROM bronze WHERE status > 0)")[0]
        _silver(con)
        got = dict(con.execute("SELECT event_id, status FROM silver WHERE status > 0").fetchall())
    finally:
        con.execute("CREATE OR REPLACE TEMP TABLE bronze AS SELECT * FROM bronze_ok")
        _silver(con)
    assert stale_only > 0  # the day holds stale status-0 re-sends of updated events, so this case is exercised
    assert got == want


def test_an_unparseable_send_time_never_makes_a_version_the_latest(parsed):
    """Blank out the sendTime of every status-0 copy of updated events: the update must still win."""
    con, _, _, _ = parsed
    want = dict(con.execute("SELECT event_id, status FROM silver WHERE status > 0").fetchall())
    assert want
    con.execute("CREATE OR REPLACE TEMP TABLE bronze_ok AS SELECT * FROM bronze")
    try:
        con.execute("""CREATE OR REPLACE TEMP TABLE bronze AS
            SELECT * REPLACE (CASE WHEN status = 0 AND event_id IN (SELECT event_id FROM silver WHERE status > 0)
                                   THEN NULL ELSE send_ts END AS send_ts) FROM bronze_ok""")
        _silver(con)
        got = dict(con.execute("SELECT event_id, status FROM silver WHERE status > 0").fetchall())
    finally:
        con.execute("CREATE OR REPLACE TEMP TABLE bronze AS SELECT * FROM bronze_ok")
        _silver(con)
    assert got == want


def test_times_with_spaces_inside_are_repaired(parsed):
    con, summary, landing, _ = parsed
    repaired = _one(con, "SELECT count(*) FROM silver WHERE time_quality = 'repaired'")[0]
    assert repaired == summary["time_repaired"] > 0
    # a repaired time is the device time, never the receive time
    assert _one(con, "SELECT count(*) FROM records WHERE time_quality = 'repaired' "
                     "AND (event_ts >= received_ts OR received_ts - event_ts > INTERVAL 4 SECOND)")[0] == 0


@pytest.mark.parametrize("quirk", ["space_colon", "space_t"])
def test_each_malformed_time_shape_parses_to_the_true_instant(parsed, lines, quirk):
    """A real envelope whose happenTime gets the vendor's spaces ("07: 20: 51.531+08: 00", "T 15:53:47")."""
    _, _, landing, _ = parsed
    i, env = _pass_envelope(lines)
    event = env["params"]["events"][0]
    true = event["happenTime"]
    event["happenTime"] = (true[:11] + true[11:].replace(":", ": ") if quirk == "space_colon"
                           else true.replace("T", "T ", 1))
    con = _connect(landing)
    _parse(con, _edited(lines, i, env))
    got, quality, reason = _one(con, "SELECT event_ts, time_quality, reason FROM records WHERE event_index = 0")
    want = con.execute("SELECT CAST(? AS TIMESTAMPTZ)", [true]).fetchall()[0][0]
    assert (got, quality, reason) == (want, "repaired", None)


def test_sentinel_and_missing_happen_time_fall_back_to_the_receive_time_and_are_flagged(parsed):
    con, summary, _, _ = parsed
    n, equal = _one(con, "SELECT count(*), count(*) FILTER (WHERE event_ts = received_ts) FROM silver "
                         "WHERE time_quality = 'receive_time'")
    assert n == equal == summary["time_from_receive"] > 0
    assert con.execute("SELECT TRY_CAST('1900-01-00T00:00:00.000+08:00' AS TIMESTAMPTZ)").fetchall()[0][0] is None


def test_truncated_lines_and_unknown_doors_are_quarantined_with_one_reason_each(parsed):
    con, summary, _, _ = parsed
    got = dict(con.execute("SELECT reason, count(*) FROM records WHERE reason IS NOT NULL GROUP BY 1").fetchall())
    assert got == summary["quarantine_by_reason"]
    assert set(got) == {"malformed_json", "unknown_door"}


def test_every_record_is_accounted_for(parsed):
    con, summary, _, _ = parsed
    landed, quarantined = _one(con, "SELECT count(*), count(*) FILTER (WHERE reason IS NOT NULL) FROM records")
    assert landed == summary["landed"]
    assert quarantined == summary["quarantined"]


def test_face_artefacts_are_counted_but_never_extracted(parsed):
    con, _, _, _ = parsed
    keys, images, urls, vectors = _one(con, "SELECT sum(face.face_keys), sum(face.images), sum(face.image_urls), "
                                            "sum(face.embeddings) FROM acs_lines")
    assert keys > 0 and images > 0 and urls > 0 and vectors > 0
    frame = pl.from_arrow(con.sql("SELECT * EXCLUDE (reason, detail) FROM records").arrow())
    text = frame.select(pl.all().cast(pl.String)).write_csv()
    assert "http" not in text and "/9j/" not in text and not re.search(r"\[-?0\.\d+,", text)


def test_identifiers_become_tokens_and_canaries_never_appear(parsed):
    con, _, landing, tok = parsed
    canaries = canary_residents(SEED)
    frame = pl.from_arrow(con.sql("SELECT * EXCLUDE (reason, detail) FROM records").arrow())
    text = frame.select(pl.all().cast(pl.String)).write_csv()
    for c in canaries:
        assert c.person_number not in text and c.card_number not in text and c.name not in text
    tokens = set(frame["person_token"].drop_nulls())
    assert {tok.token(c.person_number, "person") for c in canaries} <= tokens  # planted, and tokenised
    assert all(re.fullmatch(r"person_v1_[a-z2-7]{32}", t) for t in tokens)
    assert all(re.fullmatch(r"card_v1_[a-z2-7]{32}", t) for t in frame["card_token"].drop_nulls())
    assert not re.search(r"R3101070\d{10}", text)  # resident numbers
    summary = json.loads((truth_dir(landing, DAY) / "summary.json").read_text())
    assert summary["landed"] == frame.height


def test_a_clean_day_has_nothing_to_quarantine_or_deduplicate(tmp_path: Path):
    landing = tmp_path / "landing"
    summary = simulate_access_day(landing, date.fromisoformat(DAY), 1, SEED, faults=False, telemetry=False)
    assert summary["quarantined"] == summary["duplicates_in_file"] == summary["duplicates_cross_file"] == 0
    assert summary["landed"] == summary["accepted"] > 5000


def _drop_times(e: dict) -> None:
    e.pop("happenTime")
    e["data"].pop("ExtReceiveTime")


EDITS = {
    "missing_event_id": lambda e: e.pop("eventId"),
    "unknown_event_type": lambda e: e.update(eventType=123456),
    "missing_timestamp": _drop_times,
    "unknown_verify_mode": lambda e: e["data"].update(currentVerifyMode="palmVein"),
    "bad_status": lambda e: e.update(status=3),
}


@pytest.mark.parametrize("reason", sorted(EDITS))
def test_records_the_simulator_never_breaks_are_quarantined_with_their_reason(parsed, lines, reason):
    """A real envelope with its first event edited one way; the other events of the envelope stay accepted."""
    _, _, landing, _ = parsed
    i, env = _pass_envelope(lines)
    EDITS[reason](env["params"]["events"][0])
    con = _connect(landing)
    _parse(con, _edited(lines, i, env))
    got = con.execute("SELECT event_index, reason FROM records ORDER BY event_index").fetchall()
    assert got == [(0, reason)] + [(k, None) for k in range(1, len(env["params"]["events"]))]
    assert _one(con, "SELECT count(*) FROM batch_quarantine WHERE detail IS NOT NULL")[0] == 1


def test_a_door_with_an_unknown_direction_convention_is_quarantined_not_read_as_unknown(parsed, lines):
    con, _, landing, _ = parsed
    door, accepted = _one(con, """SELECT door_id, count(*) FROM records WHERE reason IS NULL
                                  GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1""")
    other = _one(con, "SELECT count(*) FROM records WHERE reason IS NULL")[0] - accepted
    con2 = _connect(landing)
    con2.execute("UPDATE doors SET vendor_convention = 'inout_01' WHERE door_id = ?", [door])
    _parse(con2, lines)
    got = dict(con2.execute("SELECT coalesce(reason, 'accepted'), count(*) FROM records WHERE door_id = ? "
                            "GROUP BY 1", [door]).fetchall())
    assert got == {"unknown_convention": accepted}
    assert _one(con2, "SELECT count(*) FROM records WHERE reason IS NULL")[0] == other
