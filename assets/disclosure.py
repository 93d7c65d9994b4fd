"""Gold tables that count people: aggregate in DuckDB, protect the counts as the contracts say, write the partition.

One mechanism for every people-count gold. What to protect is read from the dataset's declaration (``keys``
are the grid's dimensions, ``counts`` the people counts, ``derived`` what is nulled with them, ``margins`` the
totals published elsewhere, ``subsets`` counts that may not exceed another); how, from the contracts that
publish it (``Step.disclosure``: the method and its parameters, resolved by the root), so the gold table and
what the district receives can never disagree.

* ``suppression`` (``quality.suppression``): small cells withheld with complementary cells.
* ``cell_key`` (``quality.cellkey``): the SQL adds, next to each count ``c``, a column ``ck_c``: the sum of
  ``neuron_record_key(identity)`` over the records ``c`` counts (``kernel.record_keys``). Each count is replaced
  by its perturbed value and the ``ck_`` columns are dropped; nothing is withheld (``suppressed`` is false).
  Every derived column is recomputed from published values (``recompute``: parking's available = capacity -
  published occupied; work-order rates from perturbed auxiliary counts, the mean rating from a ``magnitudes``
  sum perturbed by its bound); a dataset with a derived column and no such rule is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from kernel.dataset import COMPLETENESS_NAMES, INTERNAL_LAYER, Dataset
from kernel.disclosure import Disclosure
from kernel.io import write_frame
from kernel.lake import Lake
from kernel.lake_asset import Step
from quality.cellkey import PTable
from quality.suppression import suppress

CELL_KEY_PREFIX = "ck_"


@dataclass(frozen=True)
class Protected:
    """What the protection did, for the step's metadata (no count of people, only of cells)."""

    rows: int
    disclosure: Disclosure
    primary: int = 0
    complementary: int = 0
    cells_perturbed: int = 0
    max_abs_deviation: int = 0
    mean_abs_deviation: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    def metadata(self) -> dict[str, object]:
        d = self.disclosure
        if d.is_cell_key:
            return {"disclosure": "cell_key", "max_deviation": d.max_deviation, "variance": d.variance,
                    "js": d.js, "cells_perturbed": self.cells_perturbed,
                    "max_abs_deviation": self.max_abs_deviation,
                    "mean_abs_deviation": round(self.mean_abs_deviation, 4), **self.extra}
        return {"disclosure": "suppression", "suppressed_primary": self.primary,
                "suppressed_complementary": self.complementary, "k_threshold": d.k, **self.extra}


def summarise(out: pl.DataFrame, rows: int, k: int) -> Protected:
    counts = dict(out["suppression"].value_counts().iter_rows()) if out.height else {}
    return Protected(rows=rows, disclosure=Disclosure("suppression", k=k), primary=int(counts.get("primary", 0)),
                     complementary=int(counts.get("complementary", 0)),
                     extra={"suppressed_correction": int(counts.get("correction", 0))})


def _unprotected(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.lit(False).alias("suppressed"), pl.lit(None, pl.String).alias("suppression"))


def _clamp_subsets(out: pl.DataFrame, ds: Dataset) -> pl.DataFrame:
    """A part never exceeds its whole after perturbation (post-processing of published values only)."""
    if not ds.subsets:
        return out
    return out.with_columns([pl.min_horizontal(part, whole).alias(part) for part, whole in ds.subsets])


def perturb_grid(frame: pl.DataFrame, ds: Dataset, disclosure: Disclosure,
                 recompute: Mapping[str, pl.Expr] | None = None,
                 magnitudes: Mapping[str, int] | None = None) -> tuple[pl.DataFrame, dict[str, float]]:
    """``frame`` with every count of ``ds.counts`` replaced by its cell-key perturbation (``ck_<count>`` columns
    carry the cell keys). Auxiliary counts (any other column with a ``ck_`` partner: on-time orders, rated
    orders) are perturbed the same way, and ``magnitudes`` (sums of bounded values: a rating sum, each
    contribution at most ``m``) get ``m`` x a perturbation of the table's interior row; both only feed
    ``recompute``, which derives each derived column from published values (post-processing only), and are
    dropped. Returns the frame and deviation statistics of the published counts."""
    recompute, magnitudes = dict(recompute or {}), dict(magnitudes or {})
    missing = [CELL_KEY_PREFIX + c for c in [*ds.counts, *magnitudes] if CELL_KEY_PREFIX + c not in frame.columns]
    if missing:
        raise ValueError(f"{ds.key}: cell_key disclosure needs the cell-key columns {missing} from the SQL")
    if set(ds.derived) - set(recompute):
        raise ValueError(f"{ds.key}: cell_key disclosure needs a recomputation from the published counts for "
                         f"derived columns {sorted(set(ds.derived) - set(recompute))}; else publish it with suppression")
    table = PTable(disclosure.max_deviation, disclosure.variance, disclosure.js)
    keyed = [c[len(CELL_KEY_PREFIX):] for c in frame.columns if c.startswith(CELL_KEY_PREFIX)]
    aux = [c for c in keyed if c not in ds.counts and c not in magnitudes]
    cols, devs = [], []
    for c in [*ds.counts, *aux]:
        true = frame[c].to_numpy().astype(np.int64)
        dev = table.perturbation(true, frame[CELL_KEY_PREFIX + c].to_numpy().astype(np.int64))
        if c in ds.counts:
            devs.append(dev)
        cols.append(pl.Series(c, true + dev, dtype=frame.schema[c]))
    for c, bound in magnitudes.items():
        interior = np.full(frame.height, table.last_row)  # the full +-D row, whatever the sum
        dev = table.perturbation(interior, frame[CELL_KEY_PREFIX + c].to_numpy().astype(np.int64))
        cols.append(pl.Series(c, frame[c].cast(pl.Float64).fill_null(0).to_numpy() + bound * dev))
    out = frame.with_columns(cols)
    out = _clamp_subsets(out, ds)
    if recompute:
        out = out.with_columns([expr.cast(frame.schema[name]).alias(name) for name, expr in recompute.items()])
    out = out.drop([CELL_KEY_PREFIX + c for c in keyed] + aux + [c for c in magnitudes if c not in ds.column_names])
    all_dev = np.abs(np.concatenate(devs)) if devs and frame.height else np.zeros(0, dtype=np.int64)
    stats = {"cells_perturbed": int((all_dev > 0).sum()), "max_abs_deviation": int(all_dev.max(initial=0)),
             "mean_abs_deviation": float(all_dev.mean()) if all_dev.size else 0.0}
    return _unprotected(out), stats


def correction_mask(frame: pl.DataFrame, previous: pl.DataFrame, ds: Dataset, k: int) -> list[str | None]:
    """Rows a new version of a suppressed partition must hide (suppression consistent across versions): rows
    the previous version hid stay hidden, and a row whose counts changed by fewer than k (or whose derived
    figures changed while its counts moved by fewer than k) is hidden, so differencing the versions never
    yields a small number of people. Returns the reason per row (the earlier reason, 'correction', or None), so
    re-running an unchanged partition reproduces it exactly."""
    keys = list(ds.keys)
    prev = previous.select(*keys, *[pl.col(c).alias(f"__prev_{c}") for c in (*ds.counts, *ds.derived)],
                           pl.col("suppressed").alias("__prev_suppressed"),
                           pl.col("suppression").alias("__prev_reason"))
    j = frame.select(*keys, *ds.counts, *ds.derived).with_row_index("__i").join(prev, on=keys, how="left",
                                                                                nulls_equal=True)
    small = pl.lit(False)
    for c in ds.counts:
        delta = (pl.col(c) - pl.col(f"__prev_{c}")).abs()
        small = small | ((delta > 0) & (delta < k))
    moved_little = pl.all_horizontal([(pl.col(c) - pl.col(f"__prev_{c}")).abs() < k for c in ds.counts])
    derived_changed = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"__prev_{c}")) for c in ds.derived]) \
        if ds.derived else pl.lit(False)
    changed = pl.col("__prev_suppressed").is_not_null() & (small | (moved_little & derived_changed)).fill_null(False)
    mask = j.sort("__i").select(
        pl.when(pl.col("__prev_suppressed").fill_null(False)).then(pl.coalesce("__prev_reason", pl.lit("correction")))
        .when(changed).then(pl.lit("correction")).alias("m"))["m"]
    return mask.to_list()


def protect_grid(frame: pl.DataFrame, ds: Dataset, disclosure: Disclosure, on_unprotectable: str = "raise",
                 recompute: Mapping[str, pl.Expr] | None = None,
                 magnitudes: Mapping[str, int] | None = None,
                 previous: pl.DataFrame | None = None) -> tuple[pl.DataFrame, dict[str, float]]:
    """``frame`` (a *complete* grid over ``ds.keys``, zeros included) protected as ``disclosure`` says.

    Suppression: ``ds.counts`` (non-negative, no nulls) are nulled together on suppressed rows, ``ds.derived``
    (rates, averages, medians computed from those people) with them. ``on_unprotectable="warn"``: a cell the
    declared ``margins`` themselves disclose stays suppressed with a warning instead of failing the step; the
    caller must then withhold that margin where it publishes it.
    """
    if not ds.counts or not ds.keys:
        raise ValueError(f"{ds.key} declares no keys/counts; it is not a people-count dataset")
    if disclosure.is_cell_key:
        return perturb_grid(frame, ds, disclosure, recompute, magnitudes)
    keyed = [c.removeprefix(CELL_KEY_PREFIX) for c in frame.columns if c.startswith(CELL_KEY_PREFIX)]
    frame = frame.drop([CELL_KEY_PREFIX + c for c in keyed]
                       + [c for c in keyed if c not in ds.column_names]
                       + [c for c in (magnitudes or {}) if c not in ds.column_names])
    if not frame.height:
        return _unprotected(frame), {}
    margins = [list(m) for m in ds.margins] or None
    forced = correction_mask(frame, previous, ds, disclosure.k) if previous is not None else None
    out = suppress(frame, list(ds.keys), list(ds.counts), disclosure.k, margins, on_unprotectable=on_unprotectable,
                   forced=forced)
    if ds.derived:
        out = out.with_columns([pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c)
                                for c in ds.derived])
    return out, {}


def suppress_grid(frame: pl.DataFrame, ds: Dataset, k: int, on_unprotectable: str = "raise") -> pl.DataFrame:
    """``protect_grid`` with suppression at ``k`` (tests and callers that need exact-or-nothing)."""
    return protect_grid(frame, ds, Disclosure("suppression", k=k), on_unprotectable)[0]


def write_protected_grid(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str, sql: str,
                         disclosure: Disclosure, on_unprotectable: str = "raise",
                         recompute: Mapping[str, pl.Expr] | None = None,
                         magnitudes: Mapping[str, int] | None = None) -> Protected:
    """Run ``sql``, protect it as ``ds`` and ``disclosure`` say, write the partition (``ds`` carries
    SUPPRESSION_COLUMNS)."""
    previous = None
    if not disclosure.is_cell_key and (files := lake.files(ds.layer, ds.name, day)):
        previous = pl.read_parquet(files)  # the version being replaced: suppression stays consistent with it
    exact = con.sql(sql).pl()
    out, stats = protect_grid(exact, ds, disclosure, on_unprotectable, recompute, magnitudes, previous)
    rows = write_frame(con, lake, ds, day, out, order_by=ds.order_by)
    write_internal(con, lake, ds, day, exact)
    if disclosure.is_cell_key:
        return Protected(rows=rows, disclosure=disclosure, **stats)
    return summarise(out, rows, disclosure.k)


def write_internal(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str, exact: pl.DataFrame) -> int:
    """The exact grid as ``internal/<name>`` (``Dataset.internal``), in an owner-only folder of the lake.

    The data team's sums must not undercount; what is published stays in gold. Derived columns are the ones the
    aggregation computed from exact figures (NULL where only the published values define them)."""
    twin = ds.internal()
    cols = [pl.col(c) if c in exact.columns else pl.lit(None).alias(c)
            for c in twin.column_names if c not in (*COMPLETENESS_NAMES, "suppressed", "suppression")]
    frame = exact.select(cols).with_columns(pl.lit(False).alias("suppressed"),
                                            pl.lit(None, pl.String).alias("suppression"))
    lake.private_layer(INTERNAL_LAYER)
    return write_frame(con, lake, twin, day, frame, order_by=twin.order_by)


def write_protected(step: Step, sql: str, ds: Dataset | None = None, on_unprotectable: str = "raise") -> Protected:
    """``write_protected_grid`` for a lake step's output, with the disclosure the root resolved from the contracts."""
    ds = ds or step.output
    return write_protected_grid(step.con, step.lake, ds, step.day, sql, step.disclosure(ds), on_unprotectable)


def write_suppressed_grid(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str, sql: str, k: int,
                          on_unprotectable: str = "raise") -> Protected:
    """``write_protected_grid`` with suppression at ``k`` (datasets with derived columns: see the module doc)."""
    return write_protected_grid(con, lake, ds, day, sql, Disclosure("suppression", k=k), on_unprotectable)
