"""Bad landing files for the per-file isolation tests of every source, and the Dagster run that meets them.

Each domain's ``test_bad_files.py`` simulates a day, keeps a pristine copy of its landing (the clean parse),
plants the files below next to the real ones and materialises the domain's bronze and silver steps through
Dagster: the step must succeed, every other file must land exactly as in the clean parse, each bad file must
be one quarantine row naming it, and the accounting must balance with a re-delivered file counted once.
"""

from __future__ import annotations

import codecs
import gzip
import random
import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

CANARY = "CANARY-NEVER-IN-A-DETAIL"


def half(data: bytes) -> bytes:
    """A real file cut in the middle (an interrupted transfer)."""
    return data[: len(data) // 2]


def junk(n: int = 8192, seed: int = 0) -> bytes:
    """Binary junk that is neither gzip nor text (its first bytes are a PNG signature)."""
    body = bytearray(random.Random(seed).randbytes(n))
    body[:8] = b"\x89PNG\r\n\x1a\n"
    return bytes(body)


def utf16(text: str, bom: bool = True) -> bytes:
    """Real content re-encoded as UTF-16 (little endian), with or without its byte-order mark."""
    return (codecs.BOM_UTF16_LE if bom else b"") + text.encode("utf-16-le")


def gunzip_text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode("utf-8")


def gzip_bytes(data: str | bytes) -> bytes:
    return gzip.compress(data.encode("utf-8") if isinstance(data, str) else data, 3)


def add_malformed_lines(text: str, every: int = 7) -> str:
    """``text`` with malformed lines woven in (a cut envelope and plain junk), each line unique."""
    out = []
    for i, line in enumerate(text.splitlines()):
        out.append(line)
        if i % every == 3 and i < every * 6:
            out.append(line[: len(line) // 2] if i % 2 else f"not json {i} {CANARY}")
    return "\n".join(out) + "\n"


def copy_landing(landing: Path, dest: Path) -> Path:
    shutil.copytree(landing, dest)
    return dest


def materialise(day: str, groups: tuple[str, ...], keys: tuple[tuple[str, ...], ...] = ()):
    """Run the asset groups (and extra asset keys) for ``day`` through Dagster, as the daily job would."""
    from pipelines.definitions import defs

    sel = dg.AssetSelection.groups(*groups)
    if keys:
        sel = sel | dg.AssetSelection.assets(*(dg.AssetKey(list(k)) for k in keys))
    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job("bad_files_day", sel)]))
    with dg.DagsterInstance.get() as instance:
        return job.resolve_job_def("bad_files_day").execute_in_process(partition_key=day, instance=instance,
                                                                        raise_on_error=False)


def failed_checks(res) -> list[tuple[str, str]]:
    return [(e.asset_key.to_user_string(), e.check_name) for e in res.get_asset_check_evaluations()
            if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]


def lake_frame(lake_root: Path, layer: str, name: str, day: str) -> pl.DataFrame:
    files = sorted((lake_root / layer / name / f"date={day}").glob("*.parquet"))
    assert files, f"{layer}/{name} of {day} was never written"
    return duckdb.sql(f"SELECT * FROM read_parquet({[str(f) for f in files]}, hive_partitioning=false)").pl()


def canonical(frame: pl.DataFrame, drop: tuple[str, ...] = ()) -> pl.DataFrame:
    """Rows in a stable order (for comparing two parses of the same files)."""
    frame = frame.drop([c for c in drop if c in frame.columns])
    return frame.sort(frame.columns, nulls_last=True)


def without_files(frame: pl.DataFrame, files: set[str]) -> pl.DataFrame:
    return frame.filter(~pl.col("source_file").is_in(sorted(files)))


def assert_whole_file_row(quarantine: pl.DataFrame, rel: str, kind: str, reason: str = "unreadable_file",
                          community: str | None = None) -> None:
    """The file is exactly one quarantine row: ``reason``, source_line 0, a detail naming it and ``kind``."""
    rows = quarantine.filter(pl.col("source_file") == rel)
    assert rows.height == 1, (rel, rows)
    row = rows.row(0, named=True)
    assert row["reason"] == reason and row["source_line"] == 0, row
    detail = row["detail"] or ""
    assert detail.startswith(f"{rel}: ") and re.search(kind, detail), (kind, detail)
    assert CANARY not in detail
    if community is not None:
        assert row["community_id"] == community
