"""Parsing ISC door events: one test per vendor quirk, over simulator output, without Dagster."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.access.parse import landing_files, load_vocabulary, parse_batch
from assets.privacy.tokens import Tokenizer
from assets.telemetry.parse import read_lines
from simulator.canaries import canary_residents
from tests.access.helpers import read_truth, simulate_access_day, truth_dir

DAY = "2026-11-21"
SEED = 5


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory):
    """Two communities with every fault on, parsed into the ``records`` table of one DuckDB connection."""
    landing = tmp_path_factory.mktemp("access_parse") / "landing"
    summary = simulate_access_day(landing, date.fromisoformat(DAY), 2, SEED, telemetry=False)
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE doors AS SELECT * FROM read_csv('{landing / 'sites' / DAY / 'doors.csv'}', "
                "header=true, all_varchar=true)")
    load_vocabulary(con)
    tok = Tokenizer("access-test-key-0123456789", 1)
    lines = read_lines(landing_files(landing, DAY), landing)
    parse_batch(con, lines, DAY, "Asia/Shanghai", tok.tokenize_series)
    return con, summary, landing, tok


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
    dups, distinct_versions = _one(con, """
        SELECT count(*) FILTER (WHERE dup_in_file),
            count(DISTINCT (source_file, event_id, status)) FILTER (WHERE reason IS NULL) FROM records""")
    accepted = _one(con, "SELECT count(*) FROM records WHERE reason IS NULL")[0]
    assert dups == summary["duplicates_in_file"] > 0
    assert accepted - dups == distinct_versions


def test_status_updates_keep_the_event_id_and_the_latest_envelope_wins(parsed):
    con, summary, _, _ = parsed
    final = dict(con.execute("""
        SELECT st, count(*) FROM (
            SELECT event_id, arg_max(status, {'s': send_ts, 'f': source_file, 'l': source_line, 'i': event_index}) AS st
            FROM records WHERE reason IS NULL AND NOT dup_in_file GROUP BY event_id)
        GROUP BY st""").fetchall())
    assert {str(k): v for k, v in final.items()} == summary["final_status"]
    assert set(final) >= {0, 1, 2, 4, 5}


def test_times_with_spaces_inside_are_repaired(parsed):
    con, summary, landing, _ = parsed
    repaired = _one(con, "SELECT count(DISTINCT event_id) FROM records WHERE reason IS NULL "
                         "AND time_quality = 'repaired'")[0]
    assert repaired == summary["time_repaired"] > 0
    # a repaired time is the device time, never the receive time
    assert _one(con, "SELECT count(*) FROM records WHERE time_quality = 'repaired' "
                     "AND (event_ts >= received_ts OR received_ts - event_ts > INTERVAL 4 SECOND)")[0] == 0


@pytest.mark.parametrize("text", ["2018-08-14T07: 20: 51.531+08: 00", "2018-08-15T 15:53:47.000+08:00"])
def test_each_malformed_time_shape_parses(text):
    con = duckdb.connect()
    ts = con.execute("SELECT TRY_CAST(replace(?, ' ', '') AS TIMESTAMPTZ) IS NOT NULL", [text]).fetchall()[0][0]
    assert ts


def test_sentinel_and_missing_happen_time_fall_back_to_the_receive_time_and_are_flagged(parsed):
    con, summary, _, _ = parsed
    n, equal = _one(con, "SELECT count(DISTINCT event_id), count(DISTINCT event_id) FILTER (WHERE event_ts = received_ts)"
                         " FROM records WHERE reason IS NULL AND time_quality = 'receive_time'")
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
