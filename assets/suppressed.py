"""Gold tables that count people: aggregate in DuckDB, suppress small cells, write the partition.

What to suppress is read from the dataset's declaration (``keys`` are the grid's dimensions, ``counts`` the
people counts, ``derived`` what is nulled with them, ``margins`` the totals published elsewhere); k comes from
the export contracts that publish the dataset (resolved by the root, the strictest wins), so the gold table
and what the district receives can never disagree about k.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from kernel.dataset import Dataset
from kernel.io import write_frame
from kernel.lake import Lake
from kernel.lake_asset import Step
from quality.suppression import suppress


@dataclass(frozen=True)
class Suppressed:
    rows: int
    primary: int
    complementary: int
    k: int

    def metadata(self) -> dict[str, int]:
        return {"suppressed_primary": self.primary, "suppressed_complementary": self.complementary,
                "k_threshold": self.k}


def summarise(out: pl.DataFrame, rows: int, k: int) -> Suppressed:
    counts = dict(out["suppression"].value_counts().iter_rows()) if out.height else {}
    return Suppressed(rows=rows, primary=int(counts.get("primary", 0)),
                      complementary=int(counts.get("complementary", 0)), k=k)


def suppress_grid(frame: pl.DataFrame, ds: Dataset, k: int, on_unprotectable: str = "raise") -> pl.DataFrame:
    """``frame`` (a *complete* grid over ``ds.keys``, zeros included) with small cells withheld.

    ``ds.counts`` are the people counts (non-negative, no nulls; nulled together when a row is suppressed);
    ``ds.derived`` (rates, averages, medians computed from those people) are nulled on suppressed rows too,
    since they would reveal the hidden cell. ``on_unprotectable="warn"``: a cell the declared ``margins``
    themselves disclose stays suppressed with a warning instead of failing the step; the caller must then
    withhold that margin where it publishes it.
    """
    if not ds.counts or not ds.keys:
        raise ValueError(f"{ds.key} declares no keys/counts; it is not a suppressed dataset")
    if not frame.height:
        return frame.with_columns(pl.lit(False).alias("suppressed"), pl.lit(None, pl.String).alias("suppression"))
    margins = [list(m) for m in ds.margins] or None
    out = suppress(frame, list(ds.keys), list(ds.counts), k, margins, on_unprotectable=on_unprotectable)
    if ds.derived:
        out = out.with_columns([pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c)
                                for c in ds.derived])
    return out


def write_suppressed_grid(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str, sql: str, k: int,
                          on_unprotectable: str = "raise") -> Suppressed:
    """Run ``sql``, suppress it as ``ds`` declares, write the partition (``ds`` carries SUPPRESSION_COLUMNS)."""
    out = suppress_grid(con.sql(sql).pl(), ds, k, on_unprotectable)
    return summarise(out, write_frame(con, lake, ds, day, out, order_by=ds.order_by), k)


def write_suppressed(step: Step, sql: str, ds: Dataset | None = None, on_unprotectable: str = "raise") -> Suppressed:
    """``write_suppressed_grid`` for a lake step's output, with the k the root resolved from the contracts."""
    ds = ds or step.output
    return write_suppressed_grid(step.con, step.lake, ds, step.day, sql, step.k(ds), on_unprotectable)
