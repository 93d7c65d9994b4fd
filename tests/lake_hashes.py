"""Row hashes of a lake, to show that two ways of running the same days (local disk and object storage, the
multiprocess and the celery executor) wrote the same data: per partition, an order-insensitive hash of every row
over every column except those that record when or by which run a row was written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb

from kernel.lake import Lake

# columns that record the run, not the data: when a row was computed or published, by which commit
RUN_COLUMNS = frozenset({"computed_at", "published_at", "built_at", "run_id", "committed_at", "withdrawn_at",
                         "ingested_at", "landed_at", "pulled_at", "received_at"})


def partition_hashes(lake: Lake, datasets: Iterable[tuple[str, str]] | None = None,
                     run_columns: frozenset[str] = RUN_COLUMNS) -> dict[str, tuple[int, int]]:
    """``layer/dataset/date`` -> (rows, hash) for every partition of ``datasets`` (default: every one the lake
    holds). Works on either lake (``Lake`` on disk, ``ObjectLake``)."""
    con = lake.attach(duckdb.connect())
    out: dict[str, tuple[int, int]] = {}
    for layer, ds in sorted(datasets if datasets is not None else lake_datasets(lake)):
        for day in lake.partition_dates(layer, ds):
            files = lake.files(layer, ds, day)
            if not files:
                out[f"{layer}/{ds}/{day}"] = (0, 0)
                continue
            listed = ", ".join(f"'{f}'" for f in files)
            src = f"read_parquet([{listed}], hive_partitioning = false, union_by_name = true)"
            cols = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE SELECT * FROM {src})").fetchall()
                    if c not in run_columns]
            row = "(" + ", ".join(f'"{c}"' for c in cols) + ")"
            n, h = con.execute(f"SELECT count(*), coalesce(bit_xor(hash({row})), 0) + "
                               f"coalesce(sum(hash({row}) % 1000003), 0) FROM {src}").fetchall()[0]
            out[f"{layer}/{ds}/{day}"] = (int(n), int(h))
    con.close()
    return out


def folder_hashes(root: Path) -> dict[str, tuple[int, int]]:
    """``partition_hashes`` of the lake folder at ``root``."""
    return partition_hashes(Lake(root))


def lake_datasets(lake: Lake) -> list[tuple[str, str]]:
    if hasattr(lake, "datasets"):
        return lake.datasets()  # type: ignore[no-any-return]
    root = lake.root
    return sorted((p.parent.name, p.name) for p in root.glob("*/*") if p.is_dir() and not p.parent.name.startswith("_")
                  and not p.name.startswith("."))
