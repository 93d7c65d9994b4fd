"""work_orders_daily and community_daily published together must never let a hidden small cell be derived
(the reviewer's case: one community repair 20, complaint 3; another with a single small category)."""

from __future__ import annotations

import warnings

import duckdb
import polars as pl
import pytest

from assets.services.assets import COMMUNITY_DAILY_INPUTS, build_community_daily, build_work_orders_daily
from kernel.completeness import VIEW
from kernel.lake import Lake
from kernel.record_keys import install_record_key
from kernel.settings import load_settings

DAY = "2026-11-20"
TZ = "Asia/Shanghai"
K = 5


def _orders(counts: dict[tuple[str, str], int]) -> list[tuple[str, str, str]]:
    return [(f"WO{cid[-3:]}{cat[:3]}{i:03d}", cid, cat) for (cid, cat), n in counts.items() for i in range(n)]


def with_completeness(con):
    """Every source complete (audit/completeness lists nothing short): the gold steps' completeness view."""
    con.execute(f"CREATE VIEW {VIEW} AS SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS community_id, "
                "NULL::VARCHAR AS status WHERE false")
    return con


@pytest.fixture
def published(tmp_path):
    """Gold built from orders opened today: A repair 20 + complaint 3; B complaint 3 only; C repair 12 (the
    suppression fallback: the contracts name the cell key method)."""
    con = with_completeness(install_record_key(duckdb.connect(), load_settings({"NEURON_MODE": "test"})))
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


def _cell_key_version(tmp_path, closed: list[tuple[str, int]], name: str) -> dict:
    """work_orders_daily under the cell key method for orders closed today with the given ratings."""
    from kernel.disclosure import Disclosure

    con = with_completeness(install_record_key(duckdb.connect(), load_settings({"NEURON_MODE": "test"})))
    for view, ds in COMMUNITY_DAILY_INPUTS.items():
        con.execute(f"CREATE TEMP TABLE {view} AS {ds.empty_sql()}")
    con.register("o", pl.DataFrame(closed, schema=["order_id", "satisfaction"], orient="row"))
    con.execute(f"""INSERT INTO orders BY NAME SELECT order_id, '310107000001' AS community_id, 'repair' AS category,
        'app' AS channel, TIMESTAMPTZ '{DAY} 08:00:00+08' AS created_ts, 'closed' AS status, 0 AS reopened_count,
        TIMESTAMPTZ '{DAY} 20:00:00+08' AS sla_due_ts, TIMESTAMPTZ '{DAY} 12:00:00+08' AS closed_ts,
        satisfaction FROM o""")
    con.execute("INSERT INTO registry BY NAME SELECT '310107000001' AS community_id, 'd1' AS device_id")
    lake = Lake(tmp_path / name)
    build_work_orders_daily(con, lake, DAY, TZ, Disclosure("cell_key", max_deviation=2, variance=1.0))
    row = pl.read_parquet(lake.files("gold", "work_orders_daily", DAY)).filter(category="repair").row(0, named=True)
    assert not row["suppressed"]
    return row


def test_a_late_order_differenced_between_versions_reveals_neither_the_count_nor_its_rating(tmp_path):
    """The issue's attack: v1 has 12 rated orders, a late file adds one rated 1 (v2). The reader knows exactly
    one order was added and the true counts; from the two published mean ratings every rating 1..5 stays
    possible, because each version's rating sum carries its own perturbation of up to 5 x 2."""
    base = [(f"WO{i:03d}", 5 if i % 3 else 4) for i in range(12)]
    v1 = _cell_key_version(tmp_path, base, "v1")
    v2 = _cell_key_version(tmp_path, [*base, ("WO999", 1)], "v2")
    assert abs(v1["closed"] - 12) <= 2 and abs(v2["closed"] - 13) <= 2
    avg1, avg2 = v1["satisfaction_avg"], v2["satisfaction_avg"]
    n1, n2 = 12, 13  # the reader's best case: the true numbers of rated orders
    possible = set()
    for r in range(1, 6):
        for s in range(n1, 5 * n1 + 1):  # the 12 unknown ratings' sum
            for a in range(-2, 3):
                for c in range(-2, 3):
                    for b in range(-2, 3):
                        for e in range(-2, 3):
                            m1, m2 = n1 + b, n2 + e
                            p1 = min(max((s + 5 * a) / m1, 1), 5)
                            p2 = min(max((s + r + 5 * c) / m2, 1), 5)
                            if abs(round(p1, 2) - avg1) < 1e-9 and abs(round(p2, 2) - avg2) < 1e-9:
                                possible.add(r)
    assert possible == {1, 2, 3, 4, 5}
