"""Gold tables that count people: aggregate in DuckDB, suppress small cells, write the partition.

The k threshold comes from the export contracts that publish the dataset (the strictest one wins), so the
gold table and what the district receives can never disagree about k.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from quality.suppression import suppress
from warehouse.dataset import Dataset
from warehouse.io import write_dataset
from warehouse.lake import Lake

DEFAULT_K = 5


def k_for(ds: Dataset) -> int:
    """Largest k_threshold among the contracts that publish ``ds`` (DEFAULT_K when none does)."""
    from exports.contracts import load_contracts  # exports depends on warehouse; import late

    ks = [c.k_threshold for c in load_contracts() if c.source == ds.key]
    return max(ks, default=DEFAULT_K)


@dataclass(frozen=True)
class Suppressed:
    rows: int
    primary: int
    complementary: int
    k: int

    def metadata(self) -> dict[str, int]:
        return {"dagster/row_count": self.rows, "suppressed_primary": self.primary,
                "suppressed_complementary": self.complementary, "k_threshold": self.k}


def write_suppressed(con: duckdb.DuckDBPyConnection, lake: Lake, ds: Dataset, day: str, sql: str, *,
                     dims: list[str], value_cols: list[str], margins: list[list[str]] | None = None,
                     derived_cols: list[str] | None = None, k: int | None = None,
                     order_by: str | None = None, on_unprotectable: str = "raise") -> Suppressed:
    """Run ``sql`` (a *complete* grid over ``dims``, zeros included), suppress and write ``ds``'s partition.

    ``ds`` must declare the SUPPRESSION_COLUMNS. ``value_cols`` are the people counts (non-negative, no
    nulls; nulled together when a row is suppressed). ``derived_cols`` (rates, averages, medians computed
    from those people) are nulled on suppressed rows too, since they would reveal the hidden cell.
    ``on_unprotectable="warn"``: a cell the declared ``margins`` themselves disclose stays suppressed with a
    warning instead of failing the step; the caller must then withhold that margin where it publishes it.
    """
    k = k or k_for(ds)
    frame = con.sql(sql).pl()
    if frame.height:
        out = suppress(frame, dims, value_cols, k, margins, on_unprotectable=on_unprotectable)
        if derived_cols:
            out = out.with_columns([pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c)
                                    for c in derived_cols])
    else:
        out = frame.with_columns(pl.lit(False).alias("suppressed"), pl.lit(None, pl.String).alias("suppression"))
    con.register("_suppressed_frame", out)
    try:
        n = write_dataset(con, lake, ds, day, "SELECT * FROM _suppressed_frame", order_by=order_by)
    finally:
        con.unregister("_suppressed_frame")
    reasons = out["suppression"].value_counts() if out.height else None
    counts = dict(reasons.iter_rows()) if reasons is not None else {}
    return Suppressed(rows=n, primary=int(counts.get("primary", 0)), complementary=int(counts.get("complementary", 0)),
                      k=k)
