"""Vendor variants are data: GA/T 1400 wrappers, field spellings, in/out rules and parking vendors are CSV rows in
assets/vehicles/, and the behaviours issue 13 asks for (composite-key dedup, in/out never from Direction)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

import assets.vehicles.parse as parse
from assets.vehicles.parse import parse_parking, parse_passages, passage_files
from kernel.partitions import day_bounds
from kernel.tokens import Tokenizer
from tests.assets.vehicles.conftest import Landed

FIXTURES = Path(__file__).parents[2] / "fixtures" / "vendors"
TZ = "Asia/Shanghai"
DAY = "2024-05-20"
COMMUNITY = "310107001001"
TOKENIZER = Tokenizer("unit-test-key-for-vendor-mappings", 1)


def _obj(**fields: object) -> dict:
    base = {"MotorVehicleID": "", "InfoKind": 1, "TollgateID": "31010700001217001011",
            "DeviceID": "31010700001327001011", "LaneNo": 1, "HasPlate": "1", "PlateColor": "5",
            "PlateNo": "沪A12345", "Direction": "2", "PassTime": "20240520081503"}
    return {**base, **fields}


def _parse_docs(tmp_path: Path, docs: dict[str, dict]) -> duckdb.DuckDBPyConnection:
    folder = tmp_path / "landing" / "vehicle_passages" / DAY / COMMUNITY
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (folder / name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{TZ}'")
    con.execute(f"CREATE TEMP VIEW tollgates AS SELECT * FROM read_csv('{FIXTURES / 'gat1400' / 'tollgates.csv'}', "
                "all_varchar=true)")
    start, end = day_bounds(DAY, TZ)
    parse_passages(con, tmp_path / "landing", sorted(folder.glob("*.json")), start, end, TZ, TOKENIZER)
    return con


def _list(*objs: dict) -> dict:
    return {"MotorVehicleListObject": {"MotorVehicleObject": list(objs)}}


def test_direction_is_the_lane_travel_direction_and_never_says_in_or_out(tmp_path: Path) -> None:
    con = _parse_docs(tmp_path, {"a.json": _list(
        _obj(LaneNo=1, Direction="2", PassTime="20240520080000"),  # entry lane travelling west to east
        _obj(LaneNo=2, Direction="1", PassTime="20240520080100"),  # exit lane travelling east to west
        _obj(LaneNo=1, Direction="1", PassTime="20240520080200"),  # the old 1 = in reading agrees here by chance
        _obj(LaneNo=5, Direction="1", PassTime="20240520080300"),  # an unregistered lane: Direction does not help
    )})
    got = con.execute("SELECT source_line, direction, direction_source, reason FROM passages ORDER BY 1").fetchall()
    assert got == [(1, "in", "lane", None), (2, "out", "lane", None), (3, "in", "lane", None),
                   (4, None, None, "unknown_direction")]


def test_explicit_in_out_wins_and_a_one_way_gate_decides_without_lanes(tmp_path: Path) -> None:
    con = _parse_docs(tmp_path, {"a.json": _list(
        _obj(LaneNo=2, InOut="in", PassTime="20240520090000"),
        _obj(TollgateID="31010700001217001012", DeviceID="31010700001327001012", LaneNo=7, PassTime="20240520090100"),
        _obj(TollgateID="", DeviceID="31010700001327001013", LaneNo=1, Direction="3", PassTime="20240520090200"),
    )})
    got = con.execute("SELECT direction, direction_source, gate_match FROM passages ORDER BY source_line").fetchall()
    assert got == [("in", "explicit", "tollgate_id"), ("in", "gate", "tollgate_id"), ("out", "gate", "device_id")]


@pytest.mark.parametrize("mvid", ["", "1000100001", None])
def test_a_resent_passage_without_a_standard_id_counts_as_one_duplicate(tmp_path: Path, mvid: str | None) -> None:
    first = _obj(MotorVehicleID=mvid, TollgateID="001011", PassTime="1716170400000")
    other = _obj(MotorVehicleID=mvid, TollgateID="001011", PassTime="1716170460000", PlateNo="沪B54321")
    if mvid is None:
        first.pop("MotorVehicleID")
        other.pop("MotorVehicleID")
    note = lambda *objs: {"SubscribeNotificationListObject": {"SubscribeNotificationObject": [  # noqa: E731
        {"NotificationID": "1", "MotorVehicleObjectList": {"MotorVehicleObject": list(objs)}}]}}
    con = _parse_docs(tmp_path, {"a.json": note(first, other, first), "b.json": note(first)})
    rows = con.execute("SELECT count(*) FILTER (WHERE reason IS NULL AND NOT dup_in_file AND NOT dup_cross_file), "
                       "count(*) FILTER (WHERE dup_in_file), count(*) FILTER (WHERE dup_cross_file), "
                       "count(DISTINCT passage_key), count(*) FILTER (WHERE passage_key NOT LIKE 'k%') "
                       "FROM passages").fetchall()[0]
    assert rows == (2, 1, 1, 2, 0)  # two passages; the re-send in the file and the one in the next file


def test_a_copy_without_its_48_digit_id_is_the_passage_with_that_id(tmp_path: Path) -> None:
    mvid = "310107000012170010110220240520081503000010200001"
    con = _parse_docs(tmp_path, {"a.json": _list(_obj(MotorVehicleID=mvid)),
                                 "b.json": _list(_obj(MotorVehicleID="not-an-id"))})
    assert con.execute("SELECT list(passage_key ORDER BY source_file), list(dup_cross_file ORDER BY source_file) "
                       "FROM passages").fetchall()[0] == ([mvid, mvid], [False, True])


def test_cars_without_a_plate_in_one_second_stay_two_passages_when_their_ids_differ(tmp_path: Path) -> None:
    con = _parse_docs(tmp_path, {"a.json": _list(_obj(MotorVehicleID="1000100007", PlateNo="无牌", HasPlate="0"),
                                                 _obj(MotorVehicleID="1000100008", PlateNo="无牌", HasPlate="0"))})
    assert con.execute("SELECT count(DISTINCT passage_key), count(*) FILTER (WHERE dup_in_file) FROM passages"
                       ).fetchall()[0] == (2, 0)


def _mappings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: dict[str, str]) -> None:
    """A copy of the mapping CSVs with ``extra`` lines appended, used by the parsers for this test."""
    folder = tmp_path / "mappings"
    folder.mkdir()
    for f in parse.HERE.glob("*.csv"):
        shutil.copy(f, folder / f.name)
    for name, lines in extra.items():
        with (folder / name).open("a", encoding="utf-8") as out:
            out.write(lines)
    monkeypatch.setattr(parse, "MAPPING_DIR", folder)


def test_a_new_field_spelling_and_a_new_wrapper_are_mapping_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"VehicleList": {"Vehicles": [{k if k != "PlateNo" else "PlateNumber": v for k, v in _obj().items()}]}}
    before = _parse_docs(tmp_path / "before", {"a.json": doc})
    assert before.execute("SELECT list(reason) FROM passages").fetchall()[0][0] == ["unknown_envelope"]
    _mappings(tmp_path, monkeypatch, {
        "gat1400_fields.csv": "plate,PlateNumber,a vendor spelling (test)\n",
        "gat1400_wrappers.csv": "10,VehicleList,$.VehicleList.Vehicles,list_or_object,a vendor wrapper (test)\n"})
    after = _parse_docs(tmp_path / "after", {"a.json": doc})
    got = after.execute("SELECT p.reason, q.plate_group, q.plate_token IS NOT NULL FROM passages p JOIN plates q "
                        "USING (plate_raw, plate_color_raw)").fetchall()
    assert got == [(None, "local", True)]


def test_a_new_parking_vendor_is_mapping_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _mappings(tmp_path, monkeypatch, {
        "parking_vendors.csv": "acme,$.carNo,4pyun,event_time,false,a third cloud (test)\n",
        "parking_fields.csv": "acme,park,$.lotCode,\nacme,event,$.direction,\nacme,plate,$.carNo,\n"
                              "acme,enter_time,$.time,epoch\nacme,leave_time,$.time,epoch\n"
                              "acme,duration,$.stayMinutes,min\nacme,total_value,$.fee,yuan\n",
        "parking_events.csv": "acme,IN,enter\nacme,OUT,leave\n"})
    folder = tmp_path / "landing" / "parking" / DAY / COMMUNITY
    folder.mkdir(parents=True)
    (folder / "acme.ndjson").write_text(
        '{"lotCode":"001","direction":"IN","carNo":"沪A12345","time":"2024-05-20 09:00:00"}\n'
        '{"lotCode":"001","direction":"OUT","carNo":"沪A12345","time":"2024-05-20 10:30:00","stayMinutes":90,'
        '"fee":"12.50"}\n', encoding="utf-8")
    registry = tmp_path / "car_parks.csv"
    registry.write_text(pl.read_csv(FIXTURES / "parking" / "car_parks.csv", infer_schema=False)
                        .with_columns(vendor=pl.lit("acme")).write_csv(), encoding="utf-8")
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{TZ}'")
    con.execute(f"CREATE TEMP VIEW car_parks AS SELECT * FROM read_csv('{registry}', all_varchar=true)")
    parse_parking(con, tmp_path / "landing", [folder / "acme.ndjson"], TOKENIZER, TZ)
    got = con.execute(f"""SELECT reason, event, parking_serial IS NOT NULL,
        strftime(timezone('{TZ}', enter_ts), '%H:%M:%S'), total_raw, CAST(duration_s AS BIGINT)
        FROM pk ORDER BY source_line""").fetchall()
    # the exit pairs with the entry; the yuan fee becomes fen; minutes become seconds
    assert got == [(None, "enter", True, "09:00:00", None, None), (None, "leave", True, "09:00:00", "1250", 5400)]
    assert con.execute("SELECT count(DISTINCT parking_serial) FROM pk").fetchall()[0][0] == 1


def test_a_mapping_naming_an_unknown_canonical_field_fails_loudly(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _mappings(tmp_path, monkeypatch, {"parking_fields.csv": "4pyun,colour_of_car,$.car_color,\n"})
    with pytest.raises(ValueError, match="colour_of_car"):
        parse.parking_sql()


def test_the_simulated_day_mixes_the_real_shapes_per_community(landed: Landed) -> None:
    variants = landed.summary["vehicle_passages"]["variants"]
    assert variants["subscription_notification"] > 0 and variants["bare_notification_list"] > 0
    assert variants["disposition_alarm"] > 0
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{TZ}'")
    sites = landed.landing / "sites" / landed.day
    con.execute(f"CREATE TEMP VIEW tollgates AS SELECT * FROM read_csv('{sites / 'tollgates.csv'}', all_varchar=true)")
    con.execute(f"CREATE TEMP VIEW car_parks AS SELECT * FROM read_csv('{sites / 'car_parks.csv'}', all_varchar=true)")
    start, end = day_bounds(landed.day, TZ)
    parse_passages(con, landed.landing, passage_files(landed.landing, landed.day), start, end, TZ, TOKENIZER)
    by = con.sql("SELECT community_id, list(DISTINCT gate_match ORDER BY gate_match) AS gm, "
                 "list(DISTINCT pass_time_form ORDER BY pass_time_form) AS forms, "
                 "count(*) FILTER (WHERE regexp_full_match(motor_vehicle_id_raw, '[0-9]{48}')) AS standard_ids "
                 "FROM passages WHERE reason IS NULL GROUP BY 1 ORDER BY 1").pl()
    assert by["gm"].to_list() == [["tollgate_id"], ["alias"], ["device_id"]]
    assert by["forms"].to_list() == [["compact_local"], ["epoch_ms"], ["compact_local"]]
    assert by["standard_ids"].to_list()[1:] == [0, 0]
    vendors = con.sql(f"SELECT vendor, count(*) FROM read_csv('{sites / 'car_parks.csv'}', all_varchar=true) "
                      "GROUP BY 1 ORDER BY 1").fetchall()
    assert [v for v, _ in vendors] == ["4pyun", "method_data"]
    from assets.vehicles.parse import parking_files

    parse_parking(con, landed.landing, parking_files(landed.landing, landed.day), TOKENIZER, TZ)
    assert dict(con.execute("SELECT vendor, count(*) > 0 FROM pk WHERE reason IS NULL GROUP BY 1").fetchall()) == {
        "4pyun": True, "method_data": True}
