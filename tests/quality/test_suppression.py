"""Small-cell suppression: every hidden value must stay underivable from what the release publishes (LP audit)."""

from __future__ import annotations

import itertools
import random
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from quality.suppression import TOTAL, SuppressionError, UnprotectedCellWarning, suppress

# ---------------------------------------------------------------------------------------------- helpers


def with_margin_rows(interior: pl.DataFrame, dims: list[str], value_cols: list[str], keep: list[list[str]]):
    """Append margin rows: for each grouping, sums over the other dims, which hold TOTAL."""
    parts = [interior]
    for grouping in keep:
        rest = [d for d in dims if d not in grouping]
        agg = (
            interior.group_by(grouping).agg(pl.col(value_cols).sum())
            if grouping
            else interior.select(pl.col(value_cols).sum())
        )
        parts.append(agg.with_columns([pl.lit(TOTAL).alias(d) for d in rest]).select(interior.columns))
    return pl.concat(parts, how="vertical_relaxed")


def interior_cover(df: pl.DataFrame, dims: list[str]) -> tuple[list[int], list[list[int]]]:
    """Interior row indices, and for every row the interior rows it sums."""
    keys = df.select(dims).rows()
    interior = [i for i, key in enumerate(keys) if TOTAL not in key]
    covers = []
    for key in keys:
        covers.append(
            [r for r in interior if all(kv == TOTAL or kv == keys[r][j] for j, kv in enumerate(key))]
        )
    return interior, covers


def declared_groups(df: pl.DataFrame, dims: list[str], margins: list[list[str]], interior: list[int]):
    keys = df.select(dims).rows()
    groups = []
    for grouping in margins:
        idx = [dims.index(d) for d in grouping]
        by: dict[tuple, list[int]] = {}
        for r in interior:
            by.setdefault(tuple(keys[r][j] for j in idx), []).append(r)
        groups.extend(by.values())
    return groups


def feasible_range(truth: np.ndarray, hidden: list[int], published_sums: list[list[int]], target: list[int]):
    """Min and max of sum(target) over non-negative hidden cells consistent with every published sum."""
    var = {r: j for j, r in enumerate(hidden)}
    cols = [var[r] for r in target if r in var]
    if not cols:
        return 0.0, 0.0
    a_eq, b_eq = [], []
    for cells in published_sums:
        row = np.zeros(len(hidden))
        for r in cells:
            if r in var:
                row[var[r]] = 1.0
        if row.any():
            a_eq.append(row)
            b_eq.append(truth[cells].sum() - truth[[r for r in cells if r not in var]].sum())
    c = np.zeros(len(hidden))
    c[cols] = 1.0
    kwargs = {"A_eq": np.array(a_eq), "b_eq": np.array(b_eq)} if a_eq else {}
    low = linprog(c, bounds=(0, None), method="highs", **kwargs)
    high = linprog(-c, bounds=(0, None), method="highs", **kwargs)
    assert low.status == 0, low.message
    return low.fun, (np.inf if high.status == 3 else -high.fun)


def assert_protected(df, out, dims, value_cols, k, margins):
    interior, covers = interior_cover(df, dims)
    declared = declared_groups(df, dims, margins, interior)
    hidden_rows = [i for i, s in enumerate(out["suppressed"]) if s]
    for v in value_cols:
        truth = df[v].to_numpy().astype(float)
        # the attacker sees every published row and every declared total; zeros hidden as partners stay free
        hidden = [r for r in interior if out["suppressed"][r]]
        published = [covers[i] for i in range(df.height) if not out["suppressed"][i] and i not in interior]
        for i in hidden_rows:
            if truth[i] == 0:
                continue
            low, high = feasible_range(truth, hidden, published + declared, covers[i])
            assert high - low > 1e-6, f"{df.row(i)} column {v} is derivable: [{low}, {high}]"
    for i, row in enumerate(out.iter_rows(named=True)):
        original = df.row(i, named=True)
        for v in value_cols:
            if row["suppressed"]:
                assert row[v] is None
            else:
                assert row[v] == original[v]
                assert not 0 < original[v] < k, "a small cell was published"
        assert row["suppression"] in (("primary", "complementary") if row["suppressed"] else (None,))
        assert (row["suppression"] == "primary") == any(0 < original[v] < k for v in value_cols)


def assert_really_unprotectable(df, err: SuppressionError, dims, margins, k):
    """Each reported cell is determined by declared margins + published zeros even if all else were hidden."""
    interior, covers = interior_cover(df, dims)
    declared = declared_groups(df, dims, margins, interior)
    keys = df.select(dims).rows()
    declared_keys = {
        (tuple(sorted(g)), tuple(keys[r][dims.index(d)] for d in sorted(g)))
        for g in margins
        for r in interior
    }
    for cell in err.cells:
        i = keys.index(tuple(cell[d] for d in dims))
        truth = df[cell["column"]].to_numpy().astype(float)
        fixed_dims = tuple(sorted(d for d in dims if cell[d] != TOTAL))
        if (fixed_dims, tuple(cell[d] for d in fixed_dims)) in declared_keys:
            assert 0 < truth[i] < k  # a declared total that is itself small
            continue
        free = [r for r in interior if truth[r] > 0]
        low, high = feasible_range(truth, free, declared, covers[i])
        assert high - low < 1e-6, f"{cell} was reported unprotectable but has range [{low}, {high}]"


small_counts = st.one_of(st.integers(0, 4), st.integers(0, 4), st.integers(0, 30))


@st.composite
def tables(draw, n_dims: int = 2, sizes: tuple[int, int] = (2, 6), max_value_cols: int = 1):
    dims = ["a", "b", "c"][:n_dims]
    levels = [[f"{d}{i}" for i in range(draw(st.integers(*sizes)))] for d in dims]
    value_cols = ["n", "m"][: draw(st.integers(1, max_value_cols))]
    cells = list(itertools.product(*levels))
    data = {d: [c[j] for c in cells] for j, d in enumerate(dims)}
    for v in value_cols:
        data[v] = draw(st.lists(small_counts, min_size=len(cells), max_size=len(cells)))
    interior = pl.DataFrame(data)
    proper = [list(g) for r in range(n_dims) for g in itertools.combinations(dims, r)]
    rows = draw(st.lists(st.sampled_from(proper), unique_by=tuple, max_size=len(proper)))
    declared = draw(st.lists(st.sampled_from(proper), unique_by=tuple, max_size=2))
    df = with_margin_rows(interior, dims, value_cols, rows)
    order = draw(st.permutations(range(df.height)))
    return df[list(order)], dims, value_cols, declared


def run_and_check(df, dims, value_cols, k, margins):
    try:
        out = suppress(df, dims, value_cols, k=k, margins=margins)
    except SuppressionError as err:
        assert margins, "only declared margins can make a cell unprotectable"
        assert_really_unprotectable(df, err, dims, margins, k)
        return None
    assert_protected(df, out, dims, value_cols, k, margins)
    return out


# ------------------------------------------------------------------------------------------- properties

LP_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@LP_SETTINGS
@given(tables(), st.sampled_from([3, 5, 10]))
def test_no_suppressed_cell_is_derivable_in_two_way_tables(table, k: int) -> None:
    df, dims, value_cols, declared = table
    run_and_check(df, dims, value_cols, k, declared)


@LP_SETTINGS
@given(tables(), st.sampled_from([3, 5]))
def test_margin_rows_alone_never_make_a_table_unprotectable(table, k: int) -> None:
    df, dims, value_cols, _ = table
    out = suppress(df, dims, value_cols, k=k)
    assert_protected(df, out, dims, value_cols, k, [])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(n_dims=3, sizes=(2, 3), max_value_cols=2), st.sampled_from([3, 5]))
def test_no_suppressed_cell_is_derivable_in_three_way_tables_with_two_value_columns(table, k: int) -> None:
    df, dims, value_cols, declared = table
    run_and_check(df, dims, value_cols, k, declared)


@settings(max_examples=100, deadline=None)
@given(st.lists(small_counts, min_size=2, max_size=12), st.sampled_from([3, 5, 10]))
def test_one_way_table_hides_at_least_k_behind_a_published_total(counts: list[int], k: int) -> None:
    interior = pl.DataFrame({"a": [f"a{i}" for i in range(len(counts))], "n": counts})
    df = with_margin_rows(interior, ["a"], ["n"], [[]])
    out = suppress(df, ["a"], ["n"], k=k)
    assert_protected(df, out, ["a"], ["n"], k, [])
    total = sum(counts)
    if total >= k:
        interior_rows, covers = interior_cover(df, ["a"])
        hidden = [r for r in interior_rows if out["suppressed"][r]]
        truth = df["n"].to_numpy().astype(float)
        for r in hidden:
            if 0 < truth[r] < k:
                _, high = feasible_range(truth, hidden, [covers[-1]], [r])
                assert high >= k, f"cell {r} is known to be below k"


# ----------------------------------------------------------------------------------------- examples


def hourly(counts: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"community": ["c1"] * len(counts), "hour": [f"{h:02d}" for h in range(len(counts))], "n": counts}
    )


def test_zero_and_large_cells_stay_published_when_nothing_is_small() -> None:
    df = hourly([0, 7, 12, 0, 5, 30])
    out = suppress(df, ["community", "hour"], ["n"], k=5, margins=[["community"]])
    assert not out["suppressed"].any()
    assert out["n"].to_list() == df["n"].to_list()
    assert out["suppression"].null_count() == df.height


def test_single_small_cell_gets_one_partner_and_zeros_are_untouched() -> None:
    df = hourly([0, 3, 12, 0, 6, 30])
    out = suppress(df, ["community", "hour"], ["n"], k=5, margins=[["community"]])
    assert out["suppression"].to_list() == [None, "primary", None, None, "complementary", None]
    assert out["n"].to_list() == [0, None, 12, 0, None, 30]  # 6 is the smallest that lifts 3 to >= 5


def test_k_comes_from_the_argument() -> None:
    df = hourly([3, 7, 12, 20])
    assert suppress(df, ["community", "hour"], ["n"], k=3, margins=[["community"]])["suppressed"].sum() == 0
    hidden = suppress(df, ["community", "hour"], ["n"], k=10, margins=[["community"]])
    assert hidden["suppression"].to_list()[:2] == ["primary", "primary"]


def test_suppressed_values_are_null_never_zero() -> None:
    df = hourly([1, 2, 9, 40])
    out = suppress(df, ["community", "hour"], ["n"], k=5, margins=[["community"]])
    assert out.filter(pl.col("suppressed"))["n"].null_count() == out["suppressed"].sum() > 0
    assert 0 not in out.filter(pl.col("suppressed"))["n"].to_list()


def test_daily_total_equal_to_its_only_busy_hour_is_unprotectable() -> None:
    df = hourly([0, 0, 2, 0])
    with pytest.raises(SuppressionError, match="declared margins") as err:
        suppress(df, ["community", "hour"], ["n"], k=5, margins=[["community"]])
    assert err.value.cells == [{"community": "c1", "hour": "02", "column": "n"}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = suppress(
            df, ["community", "hour"], ["n"], k=5, margins=[["community"]], on_unprotectable="warn"
        )
    assert any(issubclass(w.category, UnprotectedCellWarning) for w in caught)
    assert out["n"].to_list() == [0, 0, None, 0]


def test_margin_row_total_is_suppressed_when_no_other_cell_can_hide_it() -> None:
    interior = hourly([0, 2, 0, 0])
    df = with_margin_rows(interior, ["community", "hour"], ["n"], [["community"]])
    out = suppress(df, ["community", "hour"], ["n"], k=5)
    assert out["suppression"].to_list() == [None, "primary", None, None, "primary"]  # the total is 2 too
    df = with_margin_rows(hourly([0, 2, 0, 9]), ["community", "hour"], ["n"], [["community"]])
    assert suppress(df, ["community", "hour"], ["n"], k=5)["suppressed"].to_list() == [
        False,
        True,
        False,
        True,
        False,
    ]


def test_sparse_two_way_table_with_every_margin_row_is_protected() -> None:
    # zeros block the obvious partners, so protection has to run through the margin rows.
    cells = {("x", "p"): 2, ("x", "q"): 9, ("y", "p"): 8, ("y", "q"): 0, ("x", "r"): 0, ("y", "r"): 7}
    df = pl.DataFrame({"a": [k[0] for k in cells], "b": [k[1] for k in cells], "n": list(cells.values())})
    full = with_margin_rows(df, ["a", "b"], ["n"], [["a"], ["b"], []])
    out = run_and_check(full, ["a", "b"], ["n"], 5, [])
    assert out is not None and out["suppressed"].sum() >= 4


def test_bridge_between_two_hidden_blocks_is_caught_by_the_audit() -> None:
    # Every row and column has >= 2 small cells, so the classic rule adds nothing, yet (a1, b2) links two
    # otherwise separate blocks and equals (rows a0+a1 hidden sum) - (columns b0+b1 hidden sum).
    small = {(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 2), (2, 3), (3, 2), (3, 3)}
    cells = [(f"a{i}", f"b{j}", 3 if (i, j) in small else 20) for i in range(4) for j in range(4)]
    df = pl.DataFrame(cells, schema=["a", "b", "n"], orient="row")
    out = run_and_check(df, ["a", "b"], ["n"], 5, [["a"], ["b"]])
    assert out is not None and out["suppression"].to_list().count("complementary") >= 1


def test_primary_test_is_per_column_but_suppression_is_per_row() -> None:
    df = pl.DataFrame(
        {
            "community": ["c1"] * 4,
            "hour": ["00", "01", "02", "03"],
            "entries": [7, 8, 9, 10],
            "exits": [2, 6, 7, 8],
        }
    )
    out = suppress(df, ["community", "hour"], ["entries", "exits"], k=5, margins=[["community"]])
    first = out.row(0, named=True)
    assert first["suppression"] == "primary" and first["entries"] is None and first["exits"] is None
    assert_protected(df, out, ["community", "hour"], ["entries", "exits"], 5, [["community"]])


def test_output_does_not_depend_on_input_row_order() -> None:
    rng = random.Random(7)
    interior = pl.DataFrame(
        {
            "a": [f"a{i}" for i in range(5) for _ in range(5)],
            "b": [f"b{j}" for _ in range(5) for j in range(5)],
            "n": [rng.choice([0, 1, 2, 3, 6, 9, 15]) for _ in range(25)],
        }
    )
    df = with_margin_rows(interior, ["a", "b"], ["n"], [["a"], ["b"], []])
    base = suppress(df, ["a", "b"], ["n"], k=5).sort("a", "b")
    for seed in range(3):
        shuffled = df.sample(fraction=1.0, shuffle=True, seed=seed)
        assert suppress(shuffled, ["a", "b"], ["n"], k=5).sort("a", "b").equals(base)


def test_inconsistent_margin_row_is_rejected() -> None:
    df = pl.concat([hourly([1, 9]), pl.DataFrame({"community": ["c1"], "hour": [TOTAL], "n": [11]})])
    with pytest.raises(ValueError, match="does not equal"):
        suppress(df, ["community", "hour"], ["n"])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"k": 0}, ValueError),
        ({"margins": [["community", "hour"]]}, ValueError),
        ({"margins": [["gate"]]}, ValueError),
        ({"value_cols": ["missing"]}, KeyError),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict, error: type[Exception]) -> None:
    args = {"dims": ["community", "hour"], "value_cols": ["n"]} | kwargs
    with pytest.raises(error):
        suppress(hourly([1, 9]), **args)


def test_negative_or_null_counts_are_rejected() -> None:
    with pytest.raises(ValueError):
        suppress(hourly([1, -1]), ["community", "hour"], ["n"])
    with pytest.raises(ValueError):
        suppress(
            hourly([1, 9]).with_columns(pl.lit(None, dtype=pl.Int64).alias("n")), ["community", "hour"], ["n"]
        )
