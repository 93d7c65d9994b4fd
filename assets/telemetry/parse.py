"""Landing telemetry (gzipped NDJSON, CTWing and IoTDA envelopes) to typed readings plus a quarantine.

Lines are read by Polars (exact line numbers, bounded batches), parsed and validated in DuckDB; the only
Python-level work per value is the keyed token, computed once per distinct identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from assets.sqlfile import run_script

HERE = Path(__file__).parent

TokenFn = Callable[[pl.Series], pl.Series]


@dataclass
class IngestStats:
    files: int = 0
    lines: int = 0
    landed: int = 0
    bronze_rows: int = 0
    quarantined: int = 0
    duplicates_in_file: int = 0
    subjects_tokenised: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def day_bounds(day: str, tz: str) -> tuple[str, str]:
    """ISO strings of [start, end) of the local day, with offset."""
    d = date.fromisoformat(day)
    start = datetime.combine(d, time(0), ZoneInfo(tz))
    end = datetime.combine(d + timedelta(days=1), time(0), ZoneInfo(tz))
    return start.isoformat(), end.isoformat()


def landing_files(landing: Path, day: str) -> list[Path]:
    return sorted((landing / "telemetry" / day).glob("*/*.ndjson.gz"))


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
                pl.col("line"),
            ).filter(pl.col("line").str.strip_chars() != "")
        )
    if not frames:
        return pl.DataFrame(schema={"source_file": pl.String, "source_line": pl.Int64, "line": pl.String})
    return pl.concat(frames)


def load_vocabulary(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE metrics AS SELECT * FROM read_csv('{HERE / 'metrics.csv'}', header=true)")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE vendor_keys AS SELECT * FROM read_csv('{HERE / 'vendor_keys.csv'}', "
        "header=true, columns={'platform':'VARCHAR','vendor_key':'VARCHAR','metric':'VARCHAR',"
        "'scale':'DOUBLE','role':'VARCHAR'})"
    )


def parse_batch(con: duckdb.DuckDBPyConnection, lines: pl.DataFrame, day: str, tz: str,
                tokenize_person: TokenFn) -> None:
    """Create temp tables ``records`` (every landed record, reason NULL if accepted) and ``accepted``."""
    start, end = day_bounds(day, tz)
    con.register("lines_df", lines)
    con.execute("CREATE OR REPLACE TEMP TABLE lines AS SELECT * FROM lines_df")
    con.unregister("lines_df")
    run_script(con, HERE / "bronze_parse.sql", day_start=start, day_end=end)
    distinct = con.sql("SELECT DISTINCT subject_raw FROM subjects WHERE subject_raw IS NOT NULL").pl()
    mapping = pl.DataFrame(
        {"subject_raw": distinct["subject_raw"], "subject_token": tokenize_person(distinct["subject_raw"])},
        schema={"subject_raw": pl.String, "subject_token": pl.String},
    )
    con.register("subject_map", mapping)
    con.execute("CREATE OR REPLACE TEMP TABLE subject_tokens AS SELECT * FROM subject_map")
    con.unregister("subject_map")
    run_script(con, HERE / "bronze_records.sql")


__all__ = ["IngestStats", "batches", "day_bounds", "landing_files", "load_vocabulary", "parse_batch",
           "read_lines", "run_script"]
