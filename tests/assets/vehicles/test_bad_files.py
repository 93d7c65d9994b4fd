"""Vehicle feeds as an adversary: bad files planted in a simulated day never fail the passages or parking parse.

GA/T 1400 documents (read whole) and parking NDJSON (read by line): a real file cut in half, junk with a correct
name, real content as UTF-16 with and without a byte-order mark, a zero-byte file and a whole file re-delivered
with rejected records in it, all in one community's folders. Materialised through Dagster and compared with
the real parsers' clean parse of the same day without them.
"""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

from tests.assets.bad_files import (
    add_malformed_lines,
    assert_whole_file_row,
    canonical,
    copy_landing,
    failed_checks,
    half,
    junk,
    lake_frame,
    materialise,
    utf16,
    without_files,
)
from tests.assets.vehicles.conftest import simulate_landing

pytestmark = pytest.mark.slow
DAY = "2026-11-16"
PASSAGES_UNREADABLE = {"passages-91.json": "not UTF-8",
                       "passages-92-utf16.json": "UTF-16",
                       "passages-93-utf16.json": "UTF-16|NUL bytes",
                       "passages-94.json": "zero-byte file"}
PASSAGES_CUT, PASSAGES_CUT_AGAIN = "passages-90-cut.json", "passages-95-cut-again.json"
PASSAGES_REDELIVERED = "passages-99-redelivered.json"
PARKING_UNREADABLE = {"pushes_junk.ndjson": "not UTF-8",
                      "pushes_utf16.ndjson": "UTF-16",
                      "pushes_utf16le.ndjson": "UTF-16|NUL bytes",
                      "pushes_zero.ndjson": "zero-byte file"}
PARKING_CUT, PARKING_REDELIVERED = "pushes_cut.ndjson", "pushes_redelivered.ndjson"


def _with_rejected_objects(doc: str) -> str:
    """The document with three objects every parse rejects (bad PassTime, a gate neither by TollgateID nor by
    camera, a lane registered neither as entry nor as exit and no InOut) added."""
    data = json.loads(doc)
    objs = data["MotorVehicleListObject"]["MotorVehicleObject"]
    first = {k: v for k, v in objs[0].items() if k not in ("InOut", "DeviceId")}
    objs += [{**first, "PassTime": "2026-13-45"},
             {**first, "TollgateID": "99999999999999999999", "DeviceID": "99999999999999999999"},
             {**first, "LaneNo": 9}]
    return json.dumps(data, ensure_ascii=False)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory):
    from assets.vehicles.assets import PLATES
    from assets.vehicles.datasets import CAR_PARKS, TOLLGATES
    from assets.vehicles.parse import HERE, parking_files, parse_parking, parse_passages, passage_files
    from kernel.io import create_view
    from kernel.partitions import day_bounds
    from kernel.resource import NeuronResource
    from kernel.sqlfile import render
    from tests.conftest import use_data_root

    with pytest.MonkeyPatch.context() as mp:
        root = use_data_root(mp, tmp_path_factory.mktemp("vehicles_bad") / "data")
        landing = root / "landing"
        landed = simulate_landing(landing, DAY, n=2, seed=17)
        pv = sorted(p for p in (landing / "vehicle_passages" / DAY).iterdir() if p.is_dir())[0]
        pk = landing / "parking" / DAY / pv.name
        c = pv.name
        orig_pv = max(pv.glob("passages-*.json"), key=lambda p: p.stat().st_size)
        orig_pv.write_text(_with_rejected_objects(orig_pv.read_text(encoding="utf-8")), encoding="utf-8")
        orig_pk = pk / "pushes.ndjson"
        orig_pk.write_text(add_malformed_lines(orig_pk.read_text(encoding="utf-8"), every=5), encoding="utf-8")
        clean = copy_landing(landing, root / "clean_landing")

        other_pv = sorted(pv.glob("passages-*.json"))[0].read_text(encoding="utf-8")
        cut = half(orig_pv.read_bytes())
        for name, data in {PASSAGES_CUT: cut, PASSAGES_CUT_AGAIN: cut, "passages-91.json": junk(seed=5),
                           "passages-92-utf16.json": utf16(other_pv, bom=True),
                           "passages-93-utf16.json": utf16(other_pv, bom=False), "passages-94.json": b"",
                           PASSAGES_REDELIVERED: orig_pv.read_bytes()}.items():
            (pv / name).write_bytes(data)
        pushes = orig_pk.read_text(encoding="utf-8")
        for name, data in {PARKING_CUT: half(orig_pk.read_bytes()), "pushes_junk.ndjson": junk(seed=6),
                           "pushes_utf16.ndjson": utf16(pushes, bom=True),
                           "pushes_utf16le.ndjson": utf16(pushes, bom=False), "pushes_zero.ndjson": b"",
                           PARKING_REDELIVERED: orig_pk.read_bytes()}.items():
            (pk / name).write_bytes(data)

        res = materialise(DAY, ("vehicles_bronze", "vehicles_silver"))

        # the clean parse: the real parsers over the pristine copy, with the registries the run wrote
        neuron = NeuronResource()
        tz, tok = neuron.settings.timezone, neuron.tokenizer("vehicles")
        con = duckdb.connect()
        create_view(con, "tollgates", neuron.lake, TOLLGATES, DAY)
        create_view(con, "car_parks", neuron.lake, CAR_PARKS, DAY)
        start, end = day_bounds(DAY, tz)
        out = {}
        out["pv_stats"] = parse_passages(con, clean, passage_files(clean, DAY), start, end, tz, tok)
        out["pv_bronze"] = con.sql(render(HERE / "bronze_passages_rows.sql", plates=PLATES)).pl()
        out["pv_quarantine"] = con.sql(render(HERE / "quarantine_passages.sql")).pl()
        out["pv_alone"] = parse_passages(con, clean, [clean / orig_pv.relative_to(landing)], start, end, tz, tok)
        out["pv_alone_rejected"] = con.execute("SELECT count(*) FROM passages WHERE reason IS NOT NULL").fetchall()[0][0]
        out["pk_stats"] = parse_parking(con, clean, parking_files(clean, DAY), tok)
        out["pk_bronze"] = con.sql(render(HERE / "bronze_parking_rows.sql", plates=PLATES)).pl()
        out["pk_quarantine"] = con.sql(render(HERE / "quarantine_parking.sql")).pl()
        out["pk_alone"] = parse_parking(con, clean, [clean / orig_pk.relative_to(landing)], tok)
        out["pk_alone_rejected"] = con.execute("SELECT count(*) FROM pk WHERE reason IS NOT NULL").fetchall()[0][0]
        yield {"root": root, "c": c, "res": res, "landed": landed, **out,
               "pv": f"vehicle_passages/{DAY}/{c}", "pk": f"parking/{DAY}/{c}", "orig_pv": orig_pv.name}


def _lake(day, layer: str, name: str) -> pl.DataFrame:
    return lake_frame(day["root"] / "lake", layer, name, DAY)


def _planted(folder: str, *names: str) -> set[str]:
    return {f"{folder}/{n}" for n in names}


def test_the_steps_succeed_and_every_blocking_check_passes(day):
    assert day["res"].success
    assert failed_checks(day["res"]) == []


def test_passages_of_every_other_file_are_in_bronze_exactly_as_without_the_bad_files(day):
    bronze = _lake(day, "bronze", "vehicle_passages")
    planted = _planted(day["pv"], *PASSAGES_UNREADABLE, PASSAGES_CUT, PASSAGES_CUT_AGAIN, PASSAGES_REDELIVERED)
    assert not bronze["source_file"].is_in(sorted(planted)).any()  # a re-delivered passage is a duplicate
    assert canonical(bronze).equals(canonical(day["pv_bronze"]))


def test_each_bad_passage_file_is_one_quarantine_row_and_a_repeated_document_counts_once(day):
    q = _lake(day, "quarantine", "vehicle_passages")
    for name, kind in PASSAGES_UNREADABLE.items():
        assert_whole_file_row(q, f"{day['pv']}/{name}", kind, community=day["c"])
    assert_whole_file_row(q, f"{day['pv']}/{PASSAGES_CUT}", "not valid JSON", reason="bad_json", community=day["c"])
    planted = _planted(day["pv"], *PASSAGES_UNREADABLE, PASSAGES_CUT)
    assert not q["source_file"].is_in(sorted(_planted(day["pv"], PASSAGES_CUT_AGAIN, PASSAGES_REDELIVERED))).any()
    assert canonical(without_files(q, planted)).equals(canonical(day["pv_quarantine"]))


def test_passages_accounting_balances_with_the_redelivered_document_counted_once(day):
    acc = _lake(day, "audit", "row_accounting_vehicle_passages").row(0, named=True)
    clean, alone, rejected = day["pv_stats"], day["pv_alone"], day["pv_alone_rejected"]
    truth = day["landed"].summary["vehicle_passages"]
    assert acc["balanced"] and rejected >= 3
    assert acc["files"] == clean.files + 7
    assert acc["landed"] == clean.landed + 4 + 2 + alone.landed  # unreadable, the cut document twice, the copy
    assert acc["quarantined"] == day["pv_quarantine"].height + 4 + 1
    assert acc["accepted"] == truth["accepted"]
    assert acc["duplicates_cross_file"] == (truth["duplicates_cross_file"] + 1 + alone.landed
                                            - alone.duplicates_in_file)
    assert acc["duplicates_in_file"] == truth["duplicates_in_file"] + alone.duplicates_in_file


def test_parking_pushes_of_every_other_file_are_in_bronze_exactly_as_without_the_bad_files(day):
    bronze = _lake(day, "bronze", "parking_sessions")
    planted = _planted(day["pk"], *PARKING_UNREADABLE, PARKING_CUT, PARKING_REDELIVERED)
    assert not bronze["source_file"].is_in(sorted(planted)).any()
    assert canonical(bronze).equals(canonical(day["pk_bronze"]))


def test_each_bad_parking_file_is_one_quarantine_row_and_redelivered_bad_lines_count_once(day):
    q = _lake(day, "quarantine", "parking_sessions")
    for name, kind in PARKING_UNREADABLE.items():
        assert_whole_file_row(q, f"{day['pk']}/{name}", kind, community=day["c"])
    # the cut copy repeats the original's complete lines (duplicates); only its cut last line is new, and bad
    cut = q.filter(pl.col("source_file") == f"{day['pk']}/{PARKING_CUT}")
    assert cut["reason"].to_list() == ["bad_json"]
    assert not q["source_file"].is_in([f"{day['pk']}/{PARKING_REDELIVERED}"]).any()
    planted = _planted(day["pk"], *PARKING_UNREADABLE, PARKING_CUT)
    assert canonical(without_files(q, planted)).equals(canonical(day["pk_quarantine"]))


def test_parking_accounting_balances_with_the_redelivered_file_counted_once(day):
    acc = _lake(day, "audit", "row_accounting_parking").row(0, named=True)
    ingest = _lake(day, "audit", "ingest_parking").row(0, named=True)
    clean, alone, rejected = day["pk_stats"], day["pk_alone"], day["pk_alone_rejected"]
    assert acc["balanced"] and rejected >= 6
    cut_lines = ingest["lines"] - clean.lines - 4 - alone.lines  # the complete lines of the cut copy, + its cut one
    assert 0 < cut_lines < alone.lines
    assert acc["files"] == clean.files + 6
    assert acc["landed"] == clean.landed + 4 + alone.landed + cut_lines
    assert acc["quarantined"] == day["pk_quarantine"].height + 4 + 1
    assert acc["accepted"] == day["landed"].summary["parking"]["accepted"]
    assert ingest["files_quarantined"] == 4
    # every other line of the copies repeats one of the original: accepted ones and rejected ones alike are
    # duplicates (in the file or across files), none is quarantined a second time
    assert ingest["duplicates_cross_file"] + ingest["duplicates_in_file"] == (
        clean.duplicates_cross_file + clean.duplicates_in_file + alone.landed + cut_lines - 1)
