"""Small-cell protection of parking_occupancy_15min, where the published stock links the hidden flows.

occupied(t) - occupied(t-1) = entries(t) - exits(t), and occupied(t-1) is recoverable from any earlier published
occupied plus the published flows in between. So whatever stock is published, a reader learns the net movement
(entries - exits) of every maximal run of consecutive suppressed slots (the day edges count as published: the
neighbouring days' stocks approximate them). Coarsening the stock does not help: with exact flows, the rounding
boundaries it crosses during the day pin it down. The sound rule used here: occupied and available are nulled on
suppressed rows, and every run of suppressed rows must hold at least two non-zero hidden cells, so its one revealed
net equation never determines a single cell (zeros count as known, as in quality.suppression's audit). A run with
one non-zero cell is widened to the nearest slot with movements (zero slots in between are hidden with it).
"""

from __future__ import annotations

import polars as pl

from assets.vehicles.datasets import PARKING_OCCUPANCY_15MIN
from quality.suppression import suppress

# the grid from the declaration; the movements suppressed below k and the stocks nulled with them
DIMS = list(PARKING_OCCUPANCY_15MIN.keys)
FLOWS = ["entries", "exits"]
STOCKS = ["occupied", "available"]


def _runs(df: pl.DataFrame) -> pl.DataFrame:
    """Runs of consecutive suppressed slots per park whose hidden non-zero cells number exactly one."""
    nz = pl.col("nonzero")
    marked = df.with_columns(
        run=(pl.col("suppressed") != pl.col("suppressed").shift(1).fill_null(False)).cum_sum().over("park_id"),
        before=pl.when(nz > 0).then(pl.col("i")).forward_fill().shift(1).over("park_id"),
        after=pl.when(nz > 0).then(pl.col("i")).backward_fill().shift(-1).over("park_id"),
    )
    return (marked.filter("suppressed")
            .group_by("park_id", "run")
            .agg(lo=pl.col("i").min(), hi=pl.col("i").max(), cells=nz.sum(),
                 before=pl.col("before").sort_by("i").first(), after=pl.col("after").sort_by("i").last(),
                 last=pl.col("n").first())
            .filter(pl.col("cells") == 1))


def protect_occupancy(frame: pl.DataFrame, k: int) -> pl.DataFrame:
    """Suppress entries/exits below ``k`` (quality.suppression), widen single-cell runs, null the stock with them.

    ``frame`` is the complete grid (every park x 96 slots) with DIMS, capacity, STOCKS and FLOWS.
    """
    if frame.height == 0:
        return frame.with_columns(pl.lit(False).alias("suppressed"), pl.lit(None, pl.String).alias("suppression"))
    frame = frame.drop([c for c in frame.columns if c.startswith("ck_")])
    cells = frame.with_columns(nonzero=(pl.col("entries") > 0).cast(pl.Int64) + (pl.col("exits") > 0).cast(pl.Int64))
    out = suppress(cells, DIMS, FLOWS, k).sort("park_id", "slot_start").with_columns(
        i=pl.int_range(pl.len()).over("park_id"), n=pl.len().over("park_id"))
    for _ in range(out.height):
        bad = _runs(out)
        if bad.height == 0:
            break
        # widen towards the nearer slot with movements; a park with one movement all day is hidden all day
        gap_b = pl.col("lo") - pl.col("before")
        gap_a = pl.col("after") - pl.col("hi")
        take_before = pl.col("after").is_null() | (pl.col("before").is_not_null() & (gap_b < gap_a))
        spans = bad.select(
            "park_id",
            lo=pl.when(pl.col("before").is_null() & pl.col("after").is_null()).then(0)
            .when(take_before).then(pl.col("before")).otherwise(pl.col("lo")),
            hi=pl.when(pl.col("before").is_null() & pl.col("after").is_null()).then(pl.col("last") - 1)
            .when(take_before).then(pl.col("hi")).otherwise(pl.col("after")),
        )
        widened = (out.select("park_id", "i").join(spans, on="park_id")
                   .filter(pl.col("i").is_between(pl.col("lo"), pl.col("hi")))
                   .select("park_id", "i").unique().with_columns(widen=pl.lit(True)))
        out = out.join(widened, on=["park_id", "i"], how="left").with_columns(
            suppression=pl.when(pl.col("widen") & ~pl.col("suppressed")).then(pl.lit("complementary"))
            .otherwise(pl.col("suppression")),
            suppressed=pl.col("suppressed") | pl.col("widen").fill_null(False),
        ).drop("widen")
        if bad.filter(pl.col("before").is_null() & pl.col("after").is_null()).height == bad.height:
            break
    hidden = pl.col("suppressed")
    return out.with_columns(
        [pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c) for c in (*FLOWS, *STOCKS)]
    ).drop("i", "n", "nonzero").select(*[c for c in frame.columns if not c.startswith("ck_")], "suppressed",
                                       "suppression")
