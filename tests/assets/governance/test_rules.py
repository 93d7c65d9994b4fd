"""The owners'-assembly rule (rules.sql) on hand-checked examples: quorum 2/3 of area AND owners taking part;
ordinary matters need more than half, major matters at least 3/4, of participating area AND owners."""

from __future__ import annotations

import duckdb
import pytest

from assets.governance.parse import HERE
from kernel.sqlfile import run_script


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    run_script(c, HERE / "rules.sql")
    return c


def outcome(con, matter: str, eo: int, ec: int, po: int, pc: int, ao: int, ac: int) -> tuple[bool, bool]:
    return con.execute("SELECT gov_quorum_met(?, ?, ?, ?), gov_passed(?, ?, ?, ?, ?, ?, ?)",
                       [eo, ec, po, pc, matter, eo, ec, po, pc, ao, ac]).fetchall()[0]


# areas in 0.01 m²: 1,000,000 = 10,000.00 m²
@pytest.mark.parametrize(("case", "matter", "args", "expected"), [
    # 70 of 100 owners and 7,000 of 10,000 m² take part (quorum: 210 >= 200); 36 owners / 3,600 m² agree
    ("ordinary_passes_with_simple_majority", "ordinary", (100, 1_000_000, 70, 700_000, 36, 360_000), (True, True)),
    # the same votes on a major matter: 36/70 < 3/4
    ("major_needs_three_quarters", "major", (100, 1_000_000, 70, 700_000, 36, 360_000), (True, False)),
    # 35 of 70 owners is exactly half, not more than half, although 5,000 of 7,000 m² agree
    ("area_majority_without_headcount_majority_fails", "ordinary",
     (100, 1_000_000, 70, 700_000, 35, 500_000), (True, False)),
    # headcount majority (50 of 70) without area majority (3,000 of 7,000 m²)
    ("headcount_majority_without_area_majority_fails", "ordinary",
     (100, 1_000_000, 70, 700_000, 50, 300_000), (True, False)),
    # 66 of 100 owners: 198 < 200, everyone agrees
    ("headcount_quorum_missed_fails", "ordinary", (100, 1_000_000, 66, 900_000, 66, 900_000), (False, False)),
    # 90 owners but only 6,600 of 10,000 m²
    ("area_quorum_missed_fails", "ordinary", (100, 1_000_000, 90, 660_000, 90, 660_000), (False, False)),
    # exactly two thirds takes part (66 of 99, 6,600 of 9,900 m²): 以上 includes the bound
    ("quorum_exactly_two_thirds_is_met", "ordinary", (99, 990_000, 66, 660_000, 34, 340_000), (True, True)),
    # exactly three quarters agree on a major matter (60 of 80, 6,000 of 8,000 m²)
    ("major_exactly_three_quarters_passes", "major", (100, 1_000_000, 80, 800_000, 60, 600_000), (True, True)),
    # one hundredth of a m² short of three quarters
    ("major_just_below_three_quarters_fails", "major", (100, 1_000_000, 80, 800_000, 60, 599_999), (True, False)),
    # exactly half on an ordinary matter is not 过半数
    ("ordinary_exactly_half_fails", "ordinary", (100, 1_000_000, 80, 800_000, 40, 400_000), (True, False)),
    ("nobody_voted", "ordinary", (100, 1_000_000, 0, 0, 0, 0), (False, False)),
])
def test_vote_rule(con, case, matter, args, expected):
    assert outcome(con, matter, *args) == expected, case


def test_simulator_truth_uses_the_same_rule(con):
    """The simulator's independent implementation agrees with the SQL macros on the same examples."""
    import polars as pl

    from simulator.governance import outcomes

    votes = pl.DataFrame({"vote_id": ["a", "b", "c"], "matter_class": ["ordinary", "major", "ordinary"],
                          "eligible_owners": [3, 4, 3], "eligible_area_m2": [300.0, 400.0, 300.0]})
    # a: 2 of 3 owners (exactly 2/3), both agree -> passes; b: 3 of 4 take part, 2 agree (2/3 < 3/4) -> fails;
    # c: 3 take part, 2 agree by headcount but with only 100 of 300 m² -> fails
    ballots = pl.DataFrame({
        "vote_id": ["a", "a", "b", "b", "b", "c", "c", "c"],
        "area_m2": [100.0, 100.0, 100.0, 100.0, 100.0, 50.0, 50.0, 200.0],
        "choice": ["agree", "agree", "agree", "agree", "oppose", "agree", "agree", "oppose"],
        "fate": ["counted"] * 8})
    got = outcomes(votes, ballots).sort("vote_id").select("quorum_met", "passed").rows()
    assert got == [(True, True), (True, False), (True, False)]
    assert outcome(con, "ordinary", 3, 30000, 2, 20000, 2, 20000) == (True, True)
    assert outcome(con, "major", 4, 40000, 3, 30000, 2, 20000) == (True, False)
    assert outcome(con, "ordinary", 3, 30000, 3, 30000, 2, 10000) == (True, False)
