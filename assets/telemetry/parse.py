"""Landing telemetry (gzipped NDJSON, CTWing and IoTDA envelopes) to typed readings plus a quarantine.

Lines are read by Polars (exact line numbers, bounded batches), parsed and validated in DuckDB; the only
Python-level work per value is the keyed token, computed once per distinct identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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


def load_vocabulary(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE metrics AS SELECT * FROM read_csv('{HERE / 'metrics.csv'}', header=true)")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE vendor_keys AS SELECT * FROM read_csv('{HERE / 'vendor_keys.csv'}', "
        "header=true, columns={'platform':'VARCHAR','vendor_key':'VARCHAR','metric':'VARCHAR',"
        "'scale':'DOUBLE','role':'VARCHAR'})"
    )


def subject_expr(con: duckdb.DuckDBPyConnection) -> str:
    """SQL picking the person identifier out of a message's properties (keys come from vendor_keys.csv)."""
    keys = con.execute("SELECT platform, vendor_key FROM vendor_keys WHERE role = 'identifier:person' "
                       "ORDER BY ALL").fetchall()
    parts = [f"CASE WHEN m.platform = '{p}' THEN json_extract_string(m.props, '$.{k}') END" for p, k in keys]
    return f"coalesce({', '.join(parts)}, NULL)" if parts else "NULL::VARCHAR"


def ident_count_expr(con: duckdb.DuckDBPyConnection) -> str:
    """SQL counting the identifier properties present in a message (they are not readings)."""
    keys = con.execute("SELECT platform, vendor_key FROM vendor_keys WHERE role LIKE 'identifier:%' "
                       "ORDER BY ALL").fetchall()
    parts = [f"(m.platform = '{p}' AND json_exists(m.props, '$.{k}'))::INT" for p, k in keys]
    return "(" + " + ".join(parts) + ")" if parts else "0"


def parse_batch(con: duckdb.DuckDBPyConnection, lines: pl.DataFrame, day: str, tz: str,
                tokenize_person: TokenFn) -> None:
    """Create temp tables ``msgs`` and ``records`` (every landed record, reason NULL if accepted)."""
    start, end = day_bounds(day, tz)
    con.register("lines_df", lines)
    try:
        run_script(con, HERE / "bronze_messages.sql", day_start=start, day_end=end,
                   subject_expr=subject_expr(con), ident_count=ident_count_expr(con))
    finally:
        con.unregister("lines_df")
    distinct = con.sql("SELECT DISTINCT subject_raw FROM msgs WHERE subject_raw IS NOT NULL").pl()
    mapping = pl.DataFrame(
        {"subject_raw": distinct["subject_raw"], "subject_token": tokenize_person(distinct["subject_raw"])},
        schema={"subject_raw": pl.String, "subject_token": pl.String},
    )
    con.register("subject_map", mapping)
    con.execute("CREATE OR REPLACE TEMP TABLE subject_tokens AS SELECT * FROM subject_map")
    con.unregister("subject_map")
    run_script(con, HERE / "bronze_records.sql")


def ingest_day(con: duckdb.DuckDBPyConnection, lake, landing: Path, day: str, tz: str, tokenize_person: TokenFn,
               batch_bytes: int = 16 * 1024 * 1024) -> IngestStats:
    """Parse every landing file of ``day`` into the bronze and quarantine partitions (swapped in together).

    Requires the ``registry`` view. Files are processed in batches of about ``batch_bytes`` compressed
    input, so memory does not grow with the number of communities.
    """
    from warehouse.io import append_part
    from warehouse.schemas import TELEMETRY_BRONZE, TELEMETRY_QUARANTINE

    files = landing_files(landing, day)
    load_vocabulary(con)
    stats = IngestStats(files=len(files))
    with lake.write_partition("bronze", "telemetry", day) as wb, \
            lake.write_partition("quarantine", "telemetry", day) as wq:
        for lines in prefetched(batches(files, batch_bytes) if files else iter([[]]), landing):
            parse_batch(con, lines, day, tz, tokenize_person)
            stats.lines += lines.height
            landed, dups = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE dup_in_file) FROM records").fetchall()[0]
            stats.landed += landed
            stats.duplicates_in_file += dups
            stats.bronze_rows += append_part(con, wb, TELEMETRY_BRONZE, """
                SELECT * EXCLUDE (dup_in_file, reason, detail) FROM records
                WHERE reason IS NULL AND NOT dup_in_file""")
            # raw text is withheld unless numeric: an unexpected vendor field may carry an identifier
            stats.quarantined += append_part(con, wq, TELEMETRY_QUARANTINE, """
                SELECT community_id, platform, device_id, event_ts, vendor_key, reason, detail, source_file,
                    source_line, CAST(TRY_CAST(raw_value AS DOUBLE) AS VARCHAR) AS raw_value
                FROM records WHERE reason IS NOT NULL ORDER BY source_file, source_line, vendor_key""")
            for reason, n in con.execute(
                    "SELECT reason, count(*) FROM records WHERE reason IS NOT NULL GROUP BY 1").fetchall():
                stats.reasons[reason] = stats.reasons.get(reason, 0) + n
            stats.subjects_tokenised += con.execute("SELECT count(*) FROM subject_tokens").fetchall()[0][0]
    return stats


def write_ingest_stats(con: duckdb.DuckDBPyConnection, lake, day: str, stats: IngestStats) -> None:
    """Persist what the parser read, for the row-accounting check downstream."""
    from warehouse.io import write_dataset
    from warehouse.schemas import INGEST_STATS

    write_dataset(con, lake, INGEST_STATS, day, f"""
        SELECT 'telemetry' AS source, {stats.files} AS files, {stats.lines} AS lines, {stats.landed} AS landed,
            {stats.bronze_rows} AS bronze_rows, {stats.quarantined} AS quarantined,
            {stats.duplicates_in_file} AS duplicates_in_file, now() AS computed_at""")


__all__ = ["IngestStats", "batches", "day_bounds", "ingest_day", "landing_files", "load_vocabulary", "parse_batch",
           "read_lines", "write_ingest_stats"]
