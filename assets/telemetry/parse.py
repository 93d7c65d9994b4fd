"""Landing telemetry (gzipped NDJSON, CTWing and IoTDA envelopes) to typed readings plus a quarantine.

Lines are read by Polars (exact line numbers, bounded batches), parsed and validated in DuckDB; the only
Python-level work per value is the keyed token, computed once per distinct identifier. A file that cannot be
read (truncated gzip, junk, UTF-16, zero bytes...) is one landed record quarantined as ``unreadable_file``;
the rest of the day goes on (``kernel.ndjson``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from assets.telemetry.datasets import TELEMETRY_BRONZE, TELEMETRY_QUARANTINE
from kernel.accounting import IngestStats
from kernel.io import append_part
from kernel.lake import Lake
from kernel.ndjson import RepeatedRejections, batches, line_count, prefetched
from kernel.partitions import day_bounds
from kernel.sqlfile import run_script

HERE = Path(__file__).parent

TokenFn = Callable[[pl.Series], pl.Series]


def landing_files(landing: Path, day: str) -> list[Path]:
    return sorted((landing / "telemetry" / day).glob("*/*.ndjson.gz"))


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


def ingest_day(con: duckdb.DuckDBPyConnection, lake: Lake, landing: Path, day: str, tz: str, tokenize_person: TokenFn,
               batch_bytes: int = 16 * 1024 * 1024) -> IngestStats:
    """Parse every landing file of ``day`` into the bronze and quarantine partitions (swapped in together).

    Requires the ``registry`` view. Files are processed in batches of about ``batch_bytes`` compressed
    input, so memory does not grow with the number of communities.
    """
    files = landing_files(landing, day)
    load_vocabulary(con)
    stats = IngestStats("telemetry", files=len(files))
    repeated = RepeatedRejections(con)
    with lake.write_partition("bronze", "telemetry", day) as wb, \
            lake.write_partition("quarantine", "telemetry", day) as wq:
        for lines in prefetched(batches(files, batch_bytes) if files else iter([[]]), landing):
            parse_batch(con, lines, day, tz, tokenize_person)
            n_lines, n_bad_files = line_count(lines)
            stats.lines += n_lines
            stats.counters["files_quarantined"] += n_bad_files
            # a rejected line re-delivered in a later file is a cross-file duplicate, not a second quarantine row
            stats.duplicates_cross_file += repeated.flag(lines)
            landed, dups = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE dup_in_file) FROM records").fetchall()[0]
            stats.landed += landed
            stats.duplicates_in_file += dups
            stats.bronze_rows += append_part(con, wb, TELEMETRY_BRONZE, """
                SELECT * EXCLUDE (dup_in_file, dup_cross_file, reason, detail) FROM records
                WHERE reason IS NULL AND NOT dup_in_file""")
            # raw text is withheld unless numeric: an unexpected vendor field may carry an identifier
            stats.quarantined += append_part(con, wq, TELEMETRY_QUARANTINE, """
                SELECT community_id, platform, device_id, event_ts, vendor_key, reason, detail, source_file,
                    source_line, CAST(TRY_CAST(raw_value AS DOUBLE) AS VARCHAR) AS raw_value
                FROM records WHERE reason IS NOT NULL AND NOT dup_cross_file
                ORDER BY source_file, source_line, vendor_key""")
            stats.reasons.update(dict(con.execute(
                "SELECT reason, count(*) FROM records WHERE reason IS NOT NULL AND NOT dup_cross_file "
                "GROUP BY 1").fetchall()))
            stats.counters["subjects_tokenised"] += con.execute("SELECT count(*) FROM subject_tokens").fetchall()[0][0]
    return stats


__all__ = ["ingest_day", "landing_files", "load_vocabulary", "parse_batch"]
