"""work_orders_daily and community_daily published together must never let a hidden small cell be derived
(the reviewer's case: one community repair 20, complaint 3; another with a single small category)."""

from __future__ import annotations

import warnings

import duckdb
import polars as pl
import pytest

from assets.services.assets import COMMUNITY_DAILY_INPUTS, build_community_daily, build_work_orders_daily
from kernel.lake import Lake
from kernel.record_keys import install_record_key
from kernel.settings import load_settings

DAY = "2026-11-20"
TZ = "Asia/Shanghai"
K = 5


def _orders(counts: dict[tuple[str, str], int]) -> list[tuple[str, str, str]]:
    return [(f"WO{cid[-3:]}{cat[:3]}{i:03d}", cid, cat) for (cid, cat), n in counts.items() for i in range(n)]


@pytest.fixture
def published(tmp_path):
    """Gold built from orders opened today: A repair 20 + complaint 3; B complaint 3 only; C repair 12 (the
    suppression fallback: the contracts name the cell key method)."""
    con = install_record_key(duckdb.connect(), load_settings({"NEURON_MODE": "test"}))
    for name, ds in COMMUNITY_DAILY_INPUTS.items():
        con.execute(f"CREATE TEMP TABLE {name} AS {ds.empty_sql()}")
    rows = _orders({("310107000001", "repair"): 20, ("310107000001", "complaint"): 3,
                    ("310107000002", "complaint"): 3, ("310107000003", "repair"): 12})
    con.register("o", pl.DataFrame(rows, schema=["order_id", "community_id", "category"], orient="row"))
    con.execute(f"""INSERT INTO orders BY NAME SELECT order_id, community_id, category, 'app' AS channel,
        TIMESTAMPTZ '{DAY} 10:00:00+08' AS created_ts, 'pending' AS status, 0 AS reopened_count,
        TIMESTAMPTZ '{DAY} 20:00:00+08' AS sla_due_ts FROM o""")
    con.execute("INSERT INTO registry BY NAME SELECT DISTINCT community_id, community_id || '-d' AS device_id FROM o")
    lake = Lake(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_work_orders_daily(con, lake, DAY, TZ, K)
    build_community_daily(con, lake, DAY, TZ, K)
    read = lambda n: pl.read_parquet(lake.files("gold", n, DAY))  # noqa: E731
    return read("work_orders_daily"), read("community_daily")


def test_small_cells_hidden_and_not_derivable_from_community_totals(published):
    wod, cd = published
    cell = wod.filter(community_id="310107000001", category="complaint")
    assert cell["opened"][0] is None and cell["suppressed"][0]
    for cid, grp in wod.group_by("community_id"):
        total = cd.filter(community_id=cid[0])["work_orders_opened"][0]
        hidden = grp.filter(pl.col("opened").is_null())
        if hidden.height == 0:
            continue
        if total is not None:
            # with the total published, one hidden cell would equal total - the published cells
            assert hidden.height >= 2, cid
            assert total - grp["opened"].drop_nulls().sum() >= K
        else:
            assert cd.filter(community_id=cid[0])["suppressed"][0]


def test_community_totals_below_k_are_withheld(published):
    wod, cd = published
    b = cd.filter(community_id="310107000002")
    assert b["work_orders_opened"][0] is None and b["suppressed"][0]
    assert cd.filter(pl.col("work_orders_opened").is_between(1, K - 1)).height == 0
    # the community with only large cells keeps its numbers (not collateral damage of B)
    c = wod.filter(community_id="310107000003", category="repair")
    assert c["opened"][0] == 12
