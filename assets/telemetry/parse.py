"""Landing telemetry (gzipped NDJSON: CTWing, IoTDA, ThingsBoard) to typed readings plus a quarantine.

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

from assets.telemetry.datasets import TELEMETRY_BRONZE, TELEMETRY_QUARANTINE, VOCABULARY_GAPS
from kernel.accounting import IngestStats
from kernel.io import append_part, write_dataset
from kernel.lake import Lake
from kernel.ndjson import RepeatedRejections, batches, line_count, prefetched
from kernel.partitions import day_bounds
from kernel.sqlfile import run_script
from kernel.times import install_time_macros

HERE = Path(__file__).parent

TokenFn = Callable[[pl.Series], pl.Series]


def landing_files(landing: Path, day: str) -> list[Path]:
    """``telemetry/<day>/<platform>/*.ndjson[.gz]``: the platforms' deliveries, pulled windows and pushed minutes."""
    root = landing / "telemetry" / day
    return sorted([*root.glob("*/*.ndjson.gz"), *root.glob("*/*.ndjson")])


VENDORS = HERE / "vendors"
_VENDOR_CSVS = {
    "vendor_keys": ("vendor_keys.csv", {"platform": "VARCHAR", "vendor_model": "VARCHAR", "vendor_key": "VARCHAR",
                                        "metric": "VARCHAR", "scale": "DOUBLE", "role": "VARCHAR", "note": "VARCHAR"}),
    "vendor_codes": ("vendor_codes.csv", {"platform": "VARCHAR", "vendor_model": "VARCHAR", "vendor_key": "VARCHAR",
                                          "code": "VARCHAR", "metric": "VARCHAR", "value": "DOUBLE",
                                          "meaning": "VARCHAR"}),
    "codecs": ("codecs.csv", {"platform": "VARCHAR", "vendor_model": "VARCHAR", "vendor_key": "VARCHAR",
                              "byte_offset": "INTEGER", "byte_length": "INTEGER", "type": "VARCHAR",
                              "scale": "DOUBLE", "note": "VARCHAR"}),
    "models": ("models.csv", {"platform": "VARCHAR", "vendor_model": "VARCHAR", "product_id": "VARCHAR",
                              "device_type": "VARCHAR", "shape": "VARCHAR", "description": "VARCHAR"}),
}


def load_vocabulary(con: duckdb.DuckDBPyConnection, vendors: Path = VENDORS) -> None:
    """The vendor adapter tables (``vendors/*.csv``) and the metric vocabulary as temp tables, plus the time macros.

    ``vendors`` is a folder with the four CSV files; tests point it at a copy with an extra product model.
    """
    install_time_macros(con)
    con.execute(f"CREATE OR REPLACE TEMP TABLE metrics AS SELECT * FROM read_csv('{HERE / 'metrics.csv'}', header=true)")
    for table, (name, columns) in _VENDOR_CSVS.items():
        cols = "{" + ", ".join(f"'{c}': '{t}'" for c, t in columns.items()) + "}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_csv('{vendors / name}', "
                    f"header=true, quote='\"', columns={cols})")
    # the bytes a model's codec needs: a shorter payload is undecodable
    con.execute("CREATE OR REPLACE TEMP TABLE codec_len AS SELECT platform, vendor_model, "
                "max(byte_offset + byte_length) AS needs FROM codecs GROUP BY ALL")
    con.execute("CREATE OR REPLACE TEMP TABLE vocabulary_gaps (platform VARCHAR, vendor_model VARCHAR, "
                "vendor_key VARCHAR, records BIGINT)")


def alarm_flags_sql() -> str:
    """The ``flagged`` and ``episodes`` CTEs of ``alarm_flags.sql`` (comments dropped), for a ``WITH`` clause."""
    text = (HERE / "alarm_flags.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def subject_expr(con: duckdb.DuckDBPyConnection) -> str:
    """SQL picking the person identifier out of a message's properties (keys come from vendor_keys.csv)."""
    keys = con.execute("SELECT DISTINCT platform, vendor_key FROM vendor_keys WHERE role = 'identifier:person' "
                       "ORDER BY ALL").fetchall()
    parts = [f"CASE WHEN m.platform = '{p}' THEN json_extract_string(m.props, '$.{k}') END" for p, k in keys]
    return f"coalesce({', '.join(parts)}, NULL)" if parts else "NULL::VARCHAR"


def parse_batch(con: duckdb.DuckDBPyConnection, lines: pl.DataFrame, day: str, tz: str,
                tokenize_person: TokenFn) -> None:
    """Create temp tables ``msgs`` and ``records`` (every landed record, reason NULL if accepted).

    Requires the ``registry`` view and ``load_vocabulary``.
    """
    start, end = day_bounds(day, tz)
    con.register("lines_df", lines.with_row_index("lid"))
    try:
        run_script(con, HERE / "bronze_messages.sql", day_start=start, day_end=end, tz=tz,
                   subject_expr=subject_expr(con))
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
               batch_bytes: int = 16 * 1024 * 1024, vendors: Path = VENDORS) -> IngestStats:
    """Parse every landing file of ``day`` into the bronze and quarantine partitions (swapped in together).

    Requires the ``registry`` view. Files are processed in batches of about ``batch_bytes`` compressed
    input, so memory does not grow with the number of communities. Also writes the day's
    ``audit/telemetry_vocabulary_gaps`` (unmapped vendor keys and codes of registered devices).
    """
    files = landing_files(landing, day)
    load_vocabulary(con, vendors)
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
                SELECT * EXCLUDE (dup_in_file, dup_cross_file, reason, detail, registered) FROM records
                WHERE reason IS NULL AND NOT dup_in_file""")
            # the vendor's value is kept only for a key mapped to a metric (out_of_range...): an unknown key or
            # code may carry an identifier (an IMEI under a new name), so its value never reaches the quarantine
            stats.quarantined += append_part(con, wq, TELEMETRY_QUARANTINE, """
                SELECT community_id, platform, device_id, event_ts, vendor_key, reason, detail, source_file,
                    source_line,
                    CASE WHEN metric IS NOT NULL THEN CAST(TRY_CAST(raw_value AS DOUBLE) AS VARCHAR) END AS raw_value
                FROM records WHERE reason IS NOT NULL AND NOT dup_cross_file
                ORDER BY source_file, source_line, vendor_key""")
            con.execute("""
                INSERT INTO vocabulary_gaps
                SELECT platform, vendor_model, coalesce(vendor_key, '<payload>'), count(*) FROM records
                WHERE reason IN ('unknown_metric', 'unknown_code', 'no_codec') AND registered AND NOT dup_cross_file
                GROUP BY ALL""")
            stats.reasons.update(dict(con.execute(
                "SELECT reason, count(*) FROM records WHERE reason IS NOT NULL AND NOT dup_cross_file "
                "GROUP BY 1").fetchall()))
            stats.counters["subjects_tokenised"] += con.execute("SELECT count(*) FROM subject_tokens").fetchall()[0][0]
    write_dataset(con, lake, VOCABULARY_GAPS, day, f"""
        SELECT DATE '{day}' AS day, platform, vendor_model, vendor_key, sum(records) AS records
        FROM vocabulary_gaps GROUP BY ALL""")
    return stats


def vocabulary_gap_summary(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[tuple]:
    """The day's largest vocabulary gaps (platform, vendor_model, vendor_key, records), for the asset metadata."""
    return con.execute("SELECT platform, vendor_model, vendor_key, sum(records) AS n FROM vocabulary_gaps "
                       f"GROUP BY ALL ORDER BY n DESC, platform, vendor_model, vendor_key LIMIT {limit}").fetchall()


__all__ = ["VENDORS", "alarm_flags_sql", "ingest_day", "landing_files", "load_vocabulary", "parse_batch", "vocabulary_gap_summary"]
