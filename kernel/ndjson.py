"""Landing NDJSON read in bounded batches with exact line numbers, shared by every line-delimited source.

Polars reads the (gzipped) lines and releases the GIL, so the next batch is read while DuckDB parses the
current one; memory stays flat as the day grows.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl


def batches(files: list[Path], max_bytes: int) -> Iterator[list[Path]]:
    """Group files so each batch holds about ``max_bytes`` of compressed input (memory stays flat)."""
    batch: list[Path] = []
    size = 0
    for f in files:
        batch.append(f)
        size += f.stat().st_size
        if size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def community_of(path: Path) -> str | None:
    """Feeds are delivered per community: ``<community_id>-<seq>[-tag].ndjson.gz``."""
    head = path.name.split("-", 1)[0]
    return head if head.isdigit() else None


def read_lines(files: list[Path], landing: Path) -> pl.DataFrame:
    """All non-blank lines of the files with their 1-based line numbers, in one Polars frame."""
    frames = []
    for f in files:
        text = pl.read_csv(
            f, has_header=False, separator="\x1f", quote_char=None, new_columns=["line"],
            schema_overrides={"line": pl.String}, infer_schema=False, raise_if_empty=False,
            ignore_errors=False, truncate_ragged_lines=True,
        )
        if text.width == 0:
            continue
        frames.append(
            text.select(
                pl.lit(str(f.relative_to(landing))).alias("source_file"),
                (pl.int_range(pl.len(), dtype=pl.Int64) + 1).alias("source_line"),
                pl.lit(community_of(f)).alias("community_id"),
                pl.col("line"),
            ).filter(pl.col("line").str.strip_chars() != "")
        )
    if not frames:
        return pl.DataFrame(schema={"source_file": pl.String, "source_line": pl.Int64, "community_id": pl.String,
                                    "line": pl.String})
    return pl.concat(frames)


def prefetched(file_batches: Iterator[list[Path]], landing: Path) -> Iterator[pl.DataFrame]:
    """Read the next batch's lines (gzip + Polars, GIL released) while DuckDB parses the current one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for batch in file_batches:
            nxt = pool.submit(read_lines, batch, landing)
            if pending is not None:
                yield pending.result()
            pending = nxt
        if pending is not None:
            yield pending.result()
