"""Vendor quirks of the vehicle feeds, parsed from simulator output without Dagster."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from assets.vehicles.parse import (
    parking_files,
    parse_parking,
    parse_passages,
    passage_files,
    registered_vehicles,
    repair_plate,
)
from kernel.partitions import day_bounds
from kernel.tokens import Tokenizer
from tests.assets.vehicles.conftest import Landed

TZ = "Asia/Shanghai"
TOKENIZER = Tokenizer("unit-test-key-for-vehicle-tests", 1)


def _con(landing: Path, day: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{TZ}'")
    sites = landing / "sites" / day
    con.execute(f"CREATE TEMP VIEW tollgates AS SELECT * FROM read_csv('{sites / 'tollgates.csv'}', all_varchar=true)")
    con.execute(f"CREATE TEMP VIEW car_parks AS SELECT * FROM read_csv('{sites / 'car_parks.csv'}', all_varchar=true)")
    return con


def _passages(landing: Path, day: str):
    con = _con(landing, day)
    start, end = day_bounds(day, TZ)
    stats = parse_passages(con, landing, passage_files(landing, day), start, end, TZ, TOKENIZER)
    return con, stats


def _copy(landed: Landed, tmp_path: Path) -> Path:
    dst = tmp_path / "landing"
    shutil.copytree(landed.landing, dst)
    return dst


def test_resent_motor_vehicle_ids_are_counted_as_duplicates_in_and_across_files(landed: Landed) -> None:
    con, stats = _passages(landed.landing, landed.day)
    truth = landed.summary["vehicle_passages"]
    assert stats.landed == truth["landed"]
    assert (stats.duplicates_in_file, stats.duplicates_cross_file) == (truth["duplicates_in_file"],
                                                                         truth["duplicates_cross_file"])
    kept = con.execute("SELECT count(*), count(DISTINCT passage_key) FILTER (WHERE reason IS NULL), "
                       "count(*) FILTER (WHERE reason IS NULL) FROM passages "
                       "WHERE NOT dup_in_file AND NOT dup_cross_file").fetchall()[0]
    assert kept[0] == truth["accepted"] + sum(truth["quarantined"].values())
    assert kept[1] == kept[2] == truth["accepted"]


def test_pass_time_is_local_shanghai_time_without_zone_or_epoch_ms_to_the_second(landed: Landed) -> None:
    con, _ = _passages(landed.landing, landed.day)
    raw, ts = con.execute("SELECT pass_time_raw, pass_ts FROM passages WHERE reason IS NULL "
                          "AND pass_time_form = 'compact_local' LIMIT 1").fetchall()[0]
    expected = datetime.strptime(raw, "%Y%m%d%H%M%S").replace(tzinfo=ZoneInfo(TZ))
    assert ts == expected
    # the subscription feed sends epoch milliseconds: the same instant, to the second
    rows = con.execute("SELECT pass_time_raw, pass_ts FROM passages WHERE reason IS NULL "
                       "AND pass_time_form = 'epoch_ms'").fetchall()
    assert rows and all(ts == datetime.fromtimestamp(int(raw) // 1000, ZoneInfo(TZ)) for raw, ts in rows)
    bad = con.execute("SELECT count(*) FROM passages WHERE reason = 'bad_pass_time' AND NOT dup_in_file "
                      "AND NOT dup_cross_file").fetchall()[0][0]
    assert bad == landed.summary["vehicle_passages"]["quarantined"]["bad_pass_time"] > 0


def test_device_id_key_variants_and_both_list_wrappers_parse(landed: Landed) -> None:
    variants = landed.summary["vehicle_passages"]["variants"]
    assert variants["device_id_key"] > 0 and variants["object_list_wrapper"] > 0
    con, stats = _passages(landed.landing, landed.day)
    rows = con.execute("SELECT count(*), count(device_sent), count(*) FILTER (WHERE reason = 'bad_json') "
                       "FROM passages").fetchall()[0]
    assert rows == (stats.landed, stats.landed, 0)
    files = {r[0] for r in con.execute("SELECT DISTINCT source_file FROM passages").fetchall()}
    texts = [(landed.landing / f).read_text(encoding="utf-8") for f in files]
    assert any('"DeviceId"' in t for t in texts) and any('"DeviceID"' in t for t in texts)
    assert any(t.startswith('{"MotorVehicleObjectList"') for t in texts)


def test_info_kind_sent_as_string_or_number_reads_as_integer(landed: Landed) -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in (landed.landing / "vehicle_passages").rglob("*.json"))
    assert '"InfoKind":"1"' in text and '"InfoKind":1' in text
    con, _ = _passages(landed.landing, landed.day)
    assert con.execute("SELECT DISTINCT TRY_CAST(info_kind_raw AS INTEGER) FROM passages WHERE reason IS NULL"
                       ).fetchall() == [(1,)]


def test_in_out_comes_from_the_registered_lane_or_an_explicit_in_out_never_from_direction(landed: Landed) -> None:
    con, _ = _passages(landed.landing, landed.day)
    got = con.sql("SELECT t.gate_id, p.direction, count(*) AS n FROM passages p JOIN tollgates t USING (tollgate_id) "
                  "WHERE p.reason IS NULL AND NOT p.dup_in_file AND NOT p.dup_cross_file GROUP BY ALL").pl()
    truth = pl.read_parquet(landed.landing / "_truth" / "vehicles" / landed.day / "gate_hour.parquet")
    want = truth.group_by("gate_id", "direction").agg(n=pl.col("vehicles").sum())
    assert got.sort(pl.all()).to_dicts() == want.with_columns(pl.col("n").cast(pl.Int64)).sort(pl.all()).to_dicts()
    assert set(got["direction"]) == {"in", "out"}
    sources = dict(con.execute("SELECT direction_source, count(*) FROM passages WHERE reason IS NULL "
                               "GROUP BY 1").fetchall())
    assert sources.keys() == {"explicit", "lane"}  # Zhejiang-style InOut on some gates, the registry elsewhere
    # Direction is the lane's travel direction: a gate whose entry lane travels west to east sends Direction 2 on
    # its entries, which the old convention (1 in, 2 out) would have counted as exits
    crossed = con.execute("SELECT count(*) FROM passages WHERE reason IS NULL AND direction = 'in' "
                          "AND travel_direction_raw = '2'").fetchall()[0][0]
    assert crossed > 0
    assert con.execute("SELECT count(*) FROM passages WHERE reason IS NULL AND direction_source = 'lane' "
                       "AND in_out_raw IS NOT NULL").fetchall()[0][0] == 0


def test_unknown_tollgate_is_quarantined(landed: Landed) -> None:
    con, _ = _passages(landed.landing, landed.day)
    n = con.execute("SELECT count(*) FROM passages WHERE reason = 'unknown_tollgate' AND NOT dup_in_file "
                    "AND NOT dup_cross_file").fetchall()[0][0]
    assert n == landed.summary["vehicle_passages"]["quarantined"]["unknown_tollgate"] > 0


def test_images_in_sub_image_lists_are_counted_whether_object_or_json_string(landed: Landed) -> None:
    con, stats = _passages(landed.landing, landed.day)
    # every object carries two sub-images and one storage URL, whichever form its SubImageList took
    assert con.execute("SELECT min(images_dropped), max(images_dropped) FROM passages").fetchall()[0] == (3, 3)
    text = "".join(p.read_text(encoding="utf-8") for p in (landed.landing / "vehicle_passages").rglob("*.json"))
    assert '"SubImageList":"{' in text and '"Data":"/9j/' in text


def test_ocr_confusions_full_width_and_separators_are_repaired_before_tokenising() -> None:
    assert repair_plate("沪A1O3I5") == "沪A10315"
    assert repair_plate("沪Ａ１２３４５") == "沪A12345"
    assert repair_plate("沪A·12345") == "沪A12345"
    assert repair_plate("浙O1234警") == "浙O1234警"  # O is a real police authority letter
    assert repair_plate("无牌") == "无牌"
    assert TOKENIZER.token(repair_plate("沪B1O0I7"), "plate") == TOKENIZER.token("沪B10017", "plate")


def test_money_strings_parse_as_fen_and_bad_values_are_quarantined(landed: Landed) -> None:
    con = _con(landed.landing, landed.day)
    stats = parse_parking(con, landed.landing, parking_files(landed.landing, landed.day), TOKENIZER)
    assert stats.landed == landed.summary["parking"]["landed"]
    bad = con.execute("SELECT total_raw FROM pk WHERE reason = 'bad_money' AND NOT dup_in_file "
                      "AND NOT dup_cross_file").fetchall()
    assert len(bad) == landed.summary["parking"]["quarantined"]["bad_money"] > 0
    assert all(v == "" or "." in v for (v,) in bad)
    fen = con.execute("SELECT DISTINCT typeof(CAST(total_raw AS BIGINT)) FROM pk WHERE reason IS NULL "
                      "AND event = 'leave'").fetchall()
    assert fen == [("BIGINT",)]


@pytest.mark.parametrize("value", ["", "12.50", "abc", "99999999999999999999"])
def test_a_yuan_looking_or_empty_money_string_quarantines_the_push(landed: Landed, tmp_path: Path, value: str) -> None:
    landing = _copy(landed, tmp_path)
    path = next(landing.glob(f"parking/{landed.day}/*/pushes.ndjson"))
    lines = path.read_text(encoding="utf-8").splitlines()
    i = next(i for i, line in enumerate(lines) if json.loads(line)["event_type"] == "leave"
             and json.loads(line)["total_value"] not in ("", "0") and "." not in json.loads(line)["total_value"])
    rec = json.loads(lines[i])
    rec["cash_value"] = value
    lines[i] = json.dumps(rec, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    con = _con(landing, landed.day)
    parse_parking(con, landing, parking_files(landing, landed.day), TOKENIZER)
    reason, detail = con.execute(f"SELECT reason, detail FROM pk WHERE source_file LIKE '%{path.parent.name}/pushes.ndjson' "
                                 f"AND source_line = {i + 1}").fetchall()[0]
    assert reason == "bad_money"
    assert detail == "money not in whole fen"  # names the problem, never echoes the value


def test_resident_register_is_tokenised_and_canary_plates_are_on_it(landed: Landed) -> None:
    con = _con(landed.landing, landed.day)
    sql = registered_vehicles(con, landed.landing, landed.day, TOKENIZER)
    reg = con.sql(sql).pl()
    assert reg.height == landed.summary["registered_vehicles"]
    assert reg["plate_token"].str.contains(r"^plate_v1_[a-z2-7]{32}$").all()
    canary_tokens = {TOKENIZER.token(c.plate, "plate") for c in landed.canaries}
    assert canary_tokens <= set(reg["plate_token"].to_list())
    assert "plate_raw" not in reg.columns


def test_canary_plates_appear_in_passages_and_parking_landing(landed: Landed) -> None:
    passages = "".join(p.read_text(encoding="utf-8") for p in (landed.landing / "vehicle_passages").rglob("*.json"))
    pushes = "".join(p.read_text(encoding="utf-8") for p in (landed.landing / "parking").rglob("*.ndjson"))
    plates = [c.plate for c in landed.canaries]
    assert all(p in pushes for p in plates)
    assert sum(p in passages for p in plates) >= len(plates) - 1  # a camera may misread one


def test_clean_day_has_no_quarantine_and_no_duplicates(tmp_path: Path) -> None:
    from tests.assets.vehicles.conftest import simulate_landing

    clean = simulate_landing(tmp_path / "landing", n=1, faults=False)
    con, stats = _passages(clean.landing, clean.day)
    assert stats.duplicates_in_file == stats.duplicates_cross_file == 0
    assert con.execute("SELECT count(*) FROM passages WHERE reason IS NOT NULL").fetchall()[0][0] == 0
    con = _con(clean.landing, clean.day)
    stats = parse_parking(con, clean.landing, parking_files(clean.landing, clean.day), TOKENIZER)
    assert con.execute("SELECT count(*) FROM pk WHERE reason IS NOT NULL OR dup_in_file OR dup_cross_file"
                       ).fetchall()[0][0] == 0
    assert pl.DataFrame(clean.summary["parking"]["sessions_by_status"], strict=False).width >= 2


def test_batches_keep_each_community_whole_so_resends_are_found(landed: Landed) -> None:
    from assets.vehicles.parse import community_batches

    files = passage_files(landed.landing, landed.day)
    batches = community_batches(files, max_bytes=1)  # as small as possible: one community per batch
    assert sum(len(b) for b in batches) == len(files)
    assert all(len({f.parent.name for f in b}) == 1 for b in batches)
    start, end = day_bounds(landed.day, TZ)
    dups = 0
    for batch in batches:
        con = _con(landed.landing, landed.day)
        stats = parse_passages(con, landed.landing, batch, start, end, TZ, TOKENIZER)
        dups += stats.duplicates_cross_file
    assert dups == landed.summary["vehicle_passages"]["duplicates_cross_file"]


def test_a_bare_single_motor_vehicle_object_is_wrapped_and_accepted(landed: Landed) -> None:
    n = landed.summary["vehicle_passages"]["variants"]["single_object"]
    files = list((landed.landing / "vehicle_passages" / landed.day).glob("*/single-*.json"))
    assert n == len(files) > 0
    assert all('"MotorVehicleObject":{' in f.read_text(encoding="utf-8") for f in files)
    con, _ = _passages(landed.landing, landed.day)
    got = con.execute("SELECT count(*), count(*) FILTER (WHERE reason IS NULL), max(source_line) FROM passages "
                      "WHERE source_file LIKE '%/single-%'").fetchall()[0]
    bad = con.execute("SELECT count(*) FROM passages WHERE source_file LIKE '%/single-%' AND reason IS NOT NULL "
                      "AND reason NOT IN ('bad_pass_time', 'unknown_tollgate')").fetchall()[0][0]
    assert got[0] == n and got[2] == 1 and bad == 0 and got[1] > 0


@pytest.mark.parametrize("envelope", ['"{plate}"', "17", "[\"{plate}\"]"])
def test_a_string_or_number_envelope_is_quarantined_without_raising_or_echoing(landed: Landed, tmp_path: Path,
                                                                               envelope: str) -> None:
    from assets.vehicles.parse import HERE
    from kernel.sqlfile import render

    landing = _copy(landed, tmp_path)
    plate = landed.canaries[0].plate
    folder = next((landing / "vehicle_passages" / landed.day).iterdir())
    body = envelope.replace("{plate}", plate)
    (folder / "odd.json").write_text('{"MotorVehicleListObject":{"MotorVehicleObject":' + body + "}}", encoding="utf-8")
    con, stats = _passages(landing, landed.day)  # a CAST to JSON[] here used to raise, echoing the plate
    reason = con.execute("SELECT list(reason) FROM passages WHERE source_file LIKE '%/odd.json'").fetchall()[0][0]
    assert reason == ["unknown_envelope"]  # a string where the list should be, or a list of strings
    quarantine = con.sql(render(HERE / "quarantine_passages.sql")).pl()
    assert plate not in str(quarantine.rows())
    assert stats.landed == landed.summary["vehicle_passages"]["landed"] + 1


def test_a_good_resend_after_a_bad_first_copy_is_accepted_not_dropped(landed: Landed, tmp_path: Path) -> None:
    landing = _copy(landed, tmp_path)
    con, _ = _passages(landing, landed.day)
    src, mvid = con.execute("SELECT source_file, motor_vehicle_id_raw FROM passages WHERE dup_in_file "
                            "AND regexp_full_match(motor_vehicle_id_raw, '[0-9]{48}') ORDER BY 1, 2 LIMIT 1"
                            ).fetchall()[0]
    path = landing / src
    doc = json.loads(path.read_text(encoding="utf-8"))
    objs = next(iter(doc.values()))["MotorVehicleObject"]
    first = next(o for o in objs if o["MotorVehicleID"] == mvid)
    first["PassTime"] = "2026-11-19 08:00"  # the first copy is bad; the re-send later in the file is good
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    con, _ = _passages(landing, landed.day)
    rows = con.execute(f"SELECT reason, dup_in_file, dup_cross_file FROM passages WHERE motor_vehicle_id_raw = '{mvid}' "
                       "ORDER BY source_file, source_line").fetchall()
    assert rows[0] == ("bad_pass_time", False, False)  # quarantined, counted once
    assert (None, False, False) in rows[1:]  # the good copy reaches bronze

    pk_con = _con(landing, landed.day)
    parse_parking(pk_con, landing, parking_files(landing, landed.day), TOKENIZER)
    src, serial = pk_con.execute("SELECT source_file, parking_serial FROM pk WHERE dup_in_file AND event = 'leave' "
                                 "ORDER BY 1, 2 LIMIT 1").fetchall()[0]
    path = landing / src
    lines = path.read_text(encoding="utf-8").splitlines()
    i = next(i for i, line in enumerate(lines) if json.loads(line)["parking_serial"] == serial
             and json.loads(line)["event_type"] == "leave")
    rec = json.loads(lines[i])
    rec["total_value"] = "12.50"
    lines[i] = json.dumps(rec, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pk_con = _con(landing, landed.day)
    parse_parking(pk_con, landing, parking_files(landing, landed.day), TOKENIZER)
    rows = pk_con.execute(f"SELECT reason, dup_in_file, dup_cross_file FROM pk WHERE parking_serial = '{serial}' "
                          "AND event = 'leave' ORDER BY file_rank, source_file, source_line").fetchall()
    assert rows[0] == ("bad_money", False, False)
    assert (None, False, False) in rows[1:]


def test_quarantine_keeps_park_and_serial_only_in_their_id_format(landed: Landed, tmp_path: Path) -> None:
    from assets.vehicles.parse import HERE
    from kernel.sqlfile import render

    landing = _copy(landed, tmp_path)
    plate = landed.canaries[0].plate
    path = next(landing.glob(f"parking/{landed.day}/*/pushes.ndjson"))
    lines = path.read_text(encoding="utf-8").splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])
    first["park_uuid"] = plate  # unknown_park, and a plate where an id should be
    second["parking_serial"], second["enter_time"] = plate, "soon"  # bad_time
    lines[0], lines[1] = json.dumps(first, ensure_ascii=False), json.dumps(second, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    con = _con(landing, landed.day)
    parse_parking(con, landing, parking_files(landing, landed.day), TOKENIZER)
    q = con.sql(render(HERE / "quarantine_parking.sql")).pl()
    rows = q.filter(pl.col("source_file").str.ends_with(f"{path.parent.name}/pushes.ndjson"),
                    pl.col("source_line") <= 2).sort("source_line")
    assert rows["reason"].to_list() == ["unknown_park", "bad_time"]
    assert rows["park_id"][0] is None and rows["parking_serial"][1] is None
    assert rows["park_id"][1] is not None and rows["parking_serial"][0] is not None  # well-formed ids are kept
    assert plate not in str(q.rows())


def test_a_plate_without_a_province_is_unknown_not_out_of_town(landed: Landed) -> None:
    from assets.vehicles.parse import plate_table

    con = _con(landed.landing, landed.day)
    parse_parking(con, landed.landing, parking_files(landed.landing, landed.day), TOKENIZER)
    raw = con.sql("SELECT DISTINCT plate_raw, plate_color_raw FROM pk").pl()
    army = raw.head(1).with_columns(plate_raw=pl.lit("AB12345"))  # military plate: letters, no province
    groups = plate_table(pl.concat([raw, army]), TOKENIZER, "4pyun")
    got = dict(groups.select("plate_raw", "plate_group").iter_rows())
    assert got["AB12345"] == "unknown"
    assert {got[p] for p in raw["plate_raw"].drop_nulls() if p.startswith("沪")} == {"local"}
    assert {got[p] for p in raw["plate_raw"].drop_nulls() if p[0] in "浙苏皖"} == {"out_of_town"}


def test_vectorised_plate_repair_equals_the_reference(landed: Landed) -> None:
    from assets.vehicles.parse import repair_plate_expr

    con, _ = _passages(landed.landing, landed.day)
    raw = con.sql("SELECT DISTINCT plate_raw FROM passages").pl()
    extra = pl.DataFrame({"plate_raw": ["沪A1O3I5", "沪Ａ１２３４５", "沪A·12345", "浙O1234警", " ", "", None]},
                         schema={"plate_raw": pl.String})
    frame = pl.concat([raw, extra]).with_columns(repaired=repair_plate_expr("plate_raw"))
    assert frame["repaired"].to_list() == [repair_plate(v) for v in frame["plate_raw"].to_list()]
