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
