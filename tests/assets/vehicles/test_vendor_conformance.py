"""Conformance: each real-shaped vendor payload in tests/fixtures/vendors/ goes through the real parsers and must
give exactly its expected canonical rows (<payload>.expected.csv), with no raw plate anywhere in what is written.

Where each payload shape comes from is in the fixture folders' SOURCE.md. A new vendor variant is a new payload,
its expected rows and, if needed, a line in one of the mapping CSVs of assets/vehicles/ (docs/vendors/vehicles.md).
Set NEURON_REGENERATE_FIXTURES=1 to rewrite the expected files (then review every changed row by hand).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.vehicles.assets import PLATES
from assets.vehicles.parse import HERE, parse_parking, parse_passages
from kernel.partitions import day_bounds
from kernel.sqlfile import render
from kernel.tokens import Tokenizer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "vendors"
TZ = "Asia/Shanghai"
COMMUNITY = "310107001001"
PASSAGE_DAY = "2024-05-20"
TOKENIZER = Tokenizer("unit-test-key-for-vendor-fixtures", 1)
REGENERATE = os.environ.get("NEURON_REGENERATE_FIXTURES") == "1"
PLATE_LIKE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z·.\- ]?[A-Z0-9OI·]{4,6}")

GAT1400 = sorted(p.name for p in (FIXTURES / "gat1400").glob("*.json"))
PARKING = sorted(p.name for p in (FIXTURES / "parking").glob("*.ndjson"))


def _con(registry: str, csv: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{TZ}'")
    con.execute(f"CREATE TEMP VIEW {registry} AS SELECT * FROM read_csv('{csv}', all_varchar=true)")
    return con


def _raw_plates(text: str) -> set[str]:
    """Every plate string of a payload (PlateNo / plate / plateNo values and bare strings that look like one)."""
    found = set(re.findall(r'"(?:PlateNo|plate|plateNo)"\s*:\s*"([^"]+)"', text))
    found |= {m for m in PLATE_LIKE.findall(text)}
    return {p for p in found if p not in ("无牌",)}


def _check(name: str, folder: str, got: pl.DataFrame) -> None:
    expected = FIXTURES / folder / (Path(name).stem + ".expected.csv")
    text = got.with_columns(pl.all().cast(pl.String)).sort("source_line", "status")
    if REGENERATE:
        text.write_csv(expected)
    want = pl.read_csv(expected, infer_schema=False).with_columns(pl.all().fill_null(""))
    assert text.with_columns(pl.all().fill_null("")).to_dicts() == want.to_dicts()


def _assert_no_plate(frames: list[pl.DataFrame], payload: str) -> None:
    plates = _raw_plates(payload)
    assert plates, "the fixture should carry plates to look for"
    dump = json.dumps([f.with_columns(pl.all().cast(pl.String)).rows() for f in frames], ensure_ascii=False)
    assert not [p for p in plates if p in dump]


@pytest.mark.parametrize("name", GAT1400)
def test_gat1400_payload_gives_its_canonical_rows(name: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    folder = landing / "vehicle_passages" / PASSAGE_DAY / COMMUNITY
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "gat1400" / name, folder / name)
    con = _con("tollgates", FIXTURES / "gat1400" / "tollgates.csv")
    start, end = day_bounds(PASSAGE_DAY, TZ)
    parse_passages(con, landing, [folder / name], start, end, TZ, TOKENIZER)
    got = con.sql(f"""
        SELECT a.source_line,
            CASE WHEN a.reason IS NOT NULL THEN 'quarantined' WHEN a.dup_in_file OR a.dup_cross_file THEN 'duplicate'
                 ELSE 'accepted' END AS status,
            a.reason, t.gate_id, a.gate_match, a.direction, a.direction_source,
            strftime(timezone('{TZ}', a.pass_ts), '%Y-%m-%d %H:%M:%S') AS pass_time_local, a.pass_time_form,
            CASE WHEN a.passage_key IS NULL THEN NULL WHEN a.passage_key LIKE 'k%' THEN 'composite'
                 ELSE 'motor_vehicle_id' END AS key_kind,
            -- a rejected record keeps no plate attributes in quarantine; show them for what is accepted
            CASE WHEN a.reason IS NULL THEN p.plate_group END AS plate_group,
            CASE WHEN a.reason IS NULL THEN p.plate_type END AS plate_type,
            CASE WHEN a.reason IS NULL THEN p.plate_colour END AS plate_colour,
            CASE WHEN a.reason IS NULL THEN p.plate_token IS NOT NULL END AS has_token, a.images_dropped
        FROM passages a
        LEFT JOIN tollgates t ON t.tollgate_id = a.tollgate_id
        LEFT JOIN plates p ON a.plate_raw IS NOT DISTINCT FROM p.plate_raw
            AND a.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw AND p.colour_scheme = 'gat1400'
        """).pl()
    _check(name, "gat1400", got)
    # what the step writes: bronze rows and quarantine rows, never a raw plate
    bronze = con.sql(render(HERE / "bronze_passages_rows.sql", plates=PLATES)).pl()
    quarantine = con.sql(render(HERE / "quarantine_passages.sql")).pl()
    assert bronze.height == got.filter(pl.col("status") == "accepted").height
    assert quarantine.height == got.filter(pl.col("status") == "quarantined").height
    _assert_no_plate([bronze, quarantine], (FIXTURES / "gat1400" / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", PARKING)
def test_parking_payload_gives_its_canonical_rows(name: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    folder = landing / "parking" / PASSAGE_DAY / COMMUNITY
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "parking" / name, folder / name)
    con = _con("car_parks", FIXTURES / "parking" / "car_parks.csv")
    parse_parking(con, landing, [folder / name], TOKENIZER, TZ)
    got = con.sql(f"""
        SELECT a.source_line,
            CASE WHEN a.reason IS NOT NULL THEN 'quarantined' WHEN a.dup_in_file OR a.dup_cross_file THEN 'duplicate'
                 ELSE 'accepted' END AS status,
            a.reason, a.vendor, a.park_id, a.parking_serial, a.event,
            strftime(timezone('{TZ}', a.enter_ts), '%Y-%m-%d %H:%M:%S') AS enter_local,
            strftime(timezone('{TZ}', a.leave_ts), '%Y-%m-%d %H:%M:%S') AS leave_local,
            CAST(round(a.duration_s) AS BIGINT) AS duration_s,
            CASE WHEN a.reason IS NULL THEN TRY_CAST(a.total_raw AS BIGINT) END AS total_fen,
            CASE WHEN a.reason IS NULL THEN p.plate_group END AS plate_group,
            CASE WHEN a.reason IS NULL THEN p.plate_type END AS plate_type,
            CASE WHEN a.reason IS NULL THEN p.plate_colour END AS plate_colour,
            CASE WHEN a.reason IS NULL THEN p.plate_token IS NOT NULL END AS has_token
        FROM pk a LEFT JOIN plates p ON a.plate_raw IS NOT DISTINCT FROM p.plate_raw
            AND a.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw
            AND p.colour_scheme IS NOT DISTINCT FROM a.colour_scheme""").pl()
    _check(name, "parking", got)
    bronze = con.sql(render(HERE / "bronze_parking_rows.sql", plates=PLATES)).pl()
    quarantine = con.sql(render(HERE / "quarantine_parking.sql")).pl()
    assert bronze.height == got.filter(pl.col("status") == "accepted").height
    assert quarantine.height == got.filter(pl.col("status") == "quarantined").height
    _assert_no_plate([bronze, quarantine], (FIXTURES / "parking" / name).read_text(encoding="utf-8"))


def test_every_payload_has_its_expected_rows_and_a_source() -> None:
    for folder, names in (("gat1400", GAT1400), ("parking", PARKING)):
        source = (FIXTURES / folder / "SOURCE.md").read_text(encoding="utf-8")
        for name in names:
            assert (FIXTURES / folder / (Path(name).stem + ".expected.csv")).exists(), name
            assert name in source, f"{folder}/SOURCE.md does not say where {name} comes from"
