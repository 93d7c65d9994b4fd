"""Community and district dimensions: names and streets from the registry snapshots (latest wins), codes from
the community code, district names from the reference table, in dim and beside silver and gold."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from kernel.lake import Lake
from tests.warehouse.conftest import DAY1, DAY2, RENAMED_TO, SmallLake
from warehouse.catalog import DISTRICTS_CSV, build_warehouse


def test_community_dimension_takes_the_latest_name_and_codes_from_the_community_code(small_lake: SmallLake):
    build_warehouse(small_lake.warehouse, small_lake.lake, small_lake.outbox)
    con = duckdb.connect(str(small_lake.warehouse), read_only=True)
    rows = {r[0]: r for r in con.execute(
        "SELECT community_id, community_name, street_name, street_code, district_code, district_name_zh, "
        "district_name_en, first_seen, last_seen FROM dim.community").fetchall()}
    comms = small_lake.communities
    assert set(rows) == {*comms["community_id"], small_lake.doors_only}
    for cid, name, street in comms.select("community_id", "community_name", "street").iter_rows():
        got = rows[cid]
        assert got[1] == (RENAMED_TO if cid == small_lake.renamed else name)  # the latest snapshot's name wins
        assert got[2] == street
        assert got[3] == cid[:9] and got[4] == "310107" == cid[:6]
        assert got[5:7] == ("普陀区", "Putuo District")
        assert (str(got[7]), str(got[8])) == (DAY1, DAY2)
    # a community only the door registry lists: seen, coded, but not named
    assert rows[small_lake.doors_only][1:3] == (None, None)
    assert (str(rows[small_lake.doors_only][7]), rows[small_lake.doors_only][4]) == (DAY2, "310107")
    # where analysts look first
    everything = con.execute("SELECT * FROM dim.community ORDER BY ALL").fetchall()
    for alias in ("silver.dim_community", "gold.dim_community"):
        assert con.execute(f"SELECT * FROM {alias} ORDER BY ALL").fetchall() == everything


def test_district_dimension_is_the_reference_table(small_lake: SmallLake):
    build_warehouse(small_lake.warehouse, small_lake.lake, small_lake.outbox)
    con = duckdb.connect(str(small_lake.warehouse), read_only=True)
    districts = con.execute("SELECT district_code, district_name_zh, district_name_en FROM dim.district "
                            "ORDER BY 1").fetchall()
    with open(DISTRICTS_CSV, encoding="utf-8") as fh:
        reference = [(r["district_code"], r["district_name_zh"], r["district_name_en"]) for r in csv.DictReader(fh)]
    assert districts == sorted(reference) and len(districts) == 16
    assert districts[0][:2] == ("310101", "黄浦区") and districts[-1][:2] == ("310151", "崇明区")
    for alias in ("silver.dim_district", "gold.dim_district"):
        assert con.execute(f"SELECT count(*) FROM {alias}").fetchall()[0][0] == 16


def test_the_documented_join_names_a_gold_row(small_lake: SmallLake):
    """docs/warehouse.md: gold joins the community dimension on community_id, the district on district_code."""
    build_warehouse(small_lake.warehouse, small_lake.lake, small_lake.outbox)
    con = duckdb.connect(str(small_lake.warehouse), read_only=True)
    rows = con.execute("""
        SELECT c.community_name, c.street_name, d.district_name_zh, g.pm25_avg
        FROM gold.environment_hourly AS g
        JOIN dim.community AS c USING (community_id)
        JOIN dim.district AS d USING (district_code)
    """).fetchall()
    street = small_lake.communities.filter(community_id=small_lake.renamed)["street"][0]
    assert rows == [(RENAMED_TO, street, "普陀区", 35.0)]


def test_dimensions_are_empty_and_typed_without_a_registry(tmp_path: Path):
    path = tmp_path / "neuron.duckdb"
    build_warehouse(path, Lake(tmp_path / "lake"), tmp_path / "outbox", datasets={})
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM dim.community").fetchall() == [(0,)]
    assert [c[:2] for c in con.execute("DESCRIBE dim.community").fetchall()] == [
        ("community_id", "VARCHAR"), ("community_name", "VARCHAR"), ("street_name", "VARCHAR"),
        ("street_code", "VARCHAR"), ("district_code", "VARCHAR"), ("district_name_zh", "VARCHAR"),
        ("district_name_en", "VARCHAR"), ("first_seen", "DATE"), ("last_seen", "DATE")]
