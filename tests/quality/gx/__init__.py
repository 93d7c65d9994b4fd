"""Small gate-passage Parquet fixtures with planted defects for the GX validation engine tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

GATES = ("north", "south", "east")
DIRECTIONS = ("in", "out")
PLATE_REGEX = r"^[\x{4e00}-\x{9fa5}][A-Z][A-Z0-9]{5,6}$"


def passages(n: int = 1_000, *, day: str = "2026-01-02") -> pl.DataFrame:
    """A clean day of vehicle passages: unique ids, valid plates, dwell within a day."""
    i = pl.int_range(n, dtype=pl.Int64)
    return pl.select(
        passage_id=pl.format("{}-{}", pl.lit(day), i.cast(pl.String).str.zfill(6)),
        gate_id=pl.lit(pl.Series(GATES)).gather(i % len(GATES)),
        direction=pl.lit(pl.Series(DIRECTIONS)).gather(i % 2),
        plate=pl.format("沪A{}", (i * 7919 % 100_000).cast(pl.String).str.zfill(5)),
        dwell_seconds=(i * 37 % 3_600).cast(pl.Float64),
        passed_at=pl.lit(day).str.to_datetime("%Y-%m-%d") + pl.duration(seconds=i * 60 % 86_400),
    )


def plant(df: pl.DataFrame, column: str, rows: Sequence[int], value: Any) -> pl.DataFrame:
    """Overwrite ``column`` at the given row positions with ``value`` (a planted defect)."""
    mask = pl.int_range(pl.len()).is_in(list(rows))
    dtype = df.schema[column]
    return df.with_columns(
        pl.when(mask).then(pl.lit(value, dtype=dtype)).otherwise(pl.col(column)).alias(column)
    )


def write(df: pl.DataFrame, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path)
    return str(path)


def defective(n: int = 1_000, defects: Mapping[str, tuple[Sequence[int], Any]] | None = None) -> pl.DataFrame:
    df = passages(n)
    for column, (rows, value) in (defects or {}).items():
        df = plant(df, column, rows, value)
    return df
