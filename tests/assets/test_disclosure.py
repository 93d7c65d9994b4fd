"""The suppressed-gold writer: small cells withheld (null, flagged), derived rates nulled, partition written."""

from __future__ import annotations

from pathlib import Path

import duckdb

from assets.disclosure import write_suppressed_grid
from kernel.dataset import SUPPRESSION_COLUMNS, C, Dataset
from kernel.lake import Lake

FLOW = Dataset("gold", "flow_test", "community x hour", "test table", (
    C("community_id", "VARCHAR", "community", False),
    C("hour", "INTEGER", "hour", False),
    C("passes", "BIGINT", "people passing"),
    C("pass_share", "DOUBLE", "share of the community's day"),
    *SUPPRESSION_COLUMNS,
), domain="test", keys=("community_id", "hour"), counts=("passes",), derived=("pass_share",),
   margins=(("community_id",),))


def test_small_counts_are_withheld_with_their_companions_and_derived_columns(tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    con = duckdb.connect()
    sql = """SELECT * FROM (VALUES ('a', 0, 3, 0.1), ('a', 1, 20, 0.6), ('a', 2, 10, 0.3),
                                   ('b', 0, 0, 0.0), ('b', 1, 9, 0.5), ('b', 2, 9, 0.5))
             t(community_id, hour, passes, pass_share)"""
    res = write_suppressed_grid(con, lake, FLOW, "2026-11-20", sql, k=5)
    rows = con.execute(f"SELECT community_id, hour, passes, pass_share, suppressed, suppression "
                       f"FROM read_parquet({lake.files('gold', 'flow_test', '2026-11-20')}) ORDER BY 1, 2").fetchall()
    assert res.rows == 6 and res.primary == 1 and res.complementary >= 1
    by_cell = {(r[0], r[1]): r for r in rows}
    assert by_cell[("a", 0)][2:] == (None, None, True, "primary")
    hidden_a = [r for r in rows if r[0] == "a" and r[4]]
    assert len(hidden_a) >= 2  # the community total is published, so one hidden hour would be recoverable
    assert by_cell[("b", 0)][2:5] == (0, 0.0, False)  # zero is safe
    assert all(r[2] is None or r[2] == 0 or r[2] >= 5 for r in rows)


MONTHLY = Dataset("gold", "monthly_test", "community", "test table", (
    C("community_id", "VARCHAR", "community", False),
    C("ballots", "BIGINT", "ballots"),
    C("turnout", "DOUBLE", "share"),
    *SUPPRESSION_COLUMNS,
), domain="test", keys=("community_id",), counts=("ballots",), derived=("turnout",))


def _version(con, lake, rows: str) -> dict[str, tuple]:
    sql = f"SELECT * FROM (VALUES {rows}) t(community_id, ballots, turnout)"
    write_suppressed_grid(con, lake, MONTHLY, "2026-11-01", sql, k=5)
    out = con.execute(f"SELECT community_id, ballots, turnout, suppressed, suppression "
                      f"FROM read_parquet({lake.files('gold', 'monthly_test', '2026-11-01')})").fetchall()
    return {r[0]: r[1:] for r in out}


def test_a_correction_never_publishes_what_an_earlier_version_hid_nor_a_small_difference(tmp_path: Path):
    """v1: a=3 (hidden), b=40, c=40, d=50, e=12. v2 (late ballots): a=6, b=41 (one more), c=40 with another
    turnout, d=60 (ten more), e=12. Published: a stays hidden, b and c hidden (v2 - v1 would be one ballot or
    one voter's share), d and e published; re-running v2 changes nothing."""
    lake, con = Lake(tmp_path / "lake"), duckdb.connect()
    v1 = _version(con, lake, "('a', 3, 0.1), ('b', 40, 0.5), ('c', 40, 0.5), ('d', 50, 0.6), ('e', 12, 0.2)")
    assert v1["a"] == (None, None, True, "primary") and v1["b"][0] == 40
    rows2 = "('a', 6, 0.2), ('b', 41, 0.51), ('c', 40, 0.55), ('d', 60, 0.7), ('e', 12, 0.2)"
    v2 = _version(con, lake, rows2)
    assert v2["a"] == (None, None, True, "primary")  # hidden before: hidden now, though 6 >= k
    assert v2["b"] == (None, None, True, "correction") and v2["c"] == (None, None, True, "correction")
    assert v2["d"] == (60, 0.7, False, None) and v2["e"] == (12, 0.2, False, None)
    assert _version(con, lake, rows2) == v2  # idempotent
