"""Landing ISC door events (gzipped NDJSON, OnEventNotify envelopes) to typed bronze rows plus a quarantine.

Lines are read by Polars in bounded batches (reusing the telemetry reader), parsed and validated in DuckDB;
the only Python-level work per value is the keyed token, computed once per distinct identifier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from assets.privacy.biometrics import face_counts_sql
from assets.sqlfile import render, run_script
from assets.telemetry.parse import batches, day_bounds, prefetched
from warehouse.domains.access import CONVENTIONS, STATUSES

HERE = Path(__file__).parent
SOURCE = "access_events"
TokenFn = Callable[[pl.Series, str], pl.Series]


@dataclass
class IngestStats:
    files: int = 0
    lines: int = 0
    landed: int = 0
    bronze_rows: int = 0
    quarantined: int = 0
    duplicates_in_file: int = 0
    face: dict[str, int] = field(default_factory=lambda: {"face_keys": 0, "images": 0, "image_urls": 0,
                                                          "embeddings": 0})
    names_dropped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def landing_files(landing: Path, day: str) -> list[Path]:
    """``landing/access_events/<day>/<community_id>/<community_id>-<seq>.ndjson[.gz]``."""
    root = landing / SOURCE / day
    return sorted([*root.glob("*/*.ndjson.gz"), *root.glob("*/*.ndjson")])


def load_vocabulary(con: duckdb.DuckDBPyConnection) -> None:
    run_script(con, HERE / "vocabulary.sql", dir=HERE)


def _sql_list(values: tuple) -> str:
    return "[" + ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in values) + "]"


def _token_table(con: duckdb.DuckDBPyConnection, name: str, column: str, id_type: str, tokenize: TokenFn) -> None:
    raw = con.sql(f"SELECT DISTINCT {column} FROM acs_events WHERE {column} IS NOT NULL").pl()[column]
    frame = pl.DataFrame({column: raw, id_type + "_token": tokenize(raw, id_type)},
                         schema={column: pl.String, id_type + "_token": pl.String})
    con.register("_tokens", frame)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _tokens")
    finally:
        con.unregister("_tokens")


def parse_batch(con: duckdb.DuckDBPyConnection, lines: pl.DataFrame, day: str, tz: str, tokenize: TokenFn) -> None:
    """Create temp table ``records`` (every landed record, reason NULL if accepted) for one batch of lines."""
    start, end = day_bounds(day, tz)
    con.register("lines_df", lines)
    try:
        run_script(con, HERE / "bronze_events.sql", face_counts=face_counts_sql("line"))
    finally:
        con.unregister("lines_df")
    _token_table(con, "person_tokens", "person_raw", "person", tokenize)
    _token_table(con, "card_tokens", "card_raw", "card", tokenize)
    run_script(con, HERE / "bronze_records.sql", day_start=start, day_end=end, statuses=_sql_list(STATUSES),
               conventions=_sql_list(CONVENTIONS))


def ingest_day(con: duckdb.DuckDBPyConnection, lake, landing: Path, day: str, tz: str, tokenize: TokenFn,
               batch_bytes: int = 16 * 1024 * 1024) -> IngestStats:
    """Parse every landing file of ``day`` into the bronze and quarantine partitions (swapped in together).

    Requires the ``doors`` view (the door registry of the day).
    """
    from warehouse.domains.access import ACCESS_BRONZE, ACCESS_QUARANTINE
    from warehouse.io import append_part

    files = landing_files(landing, day)
    load_vocabulary(con)
    stats = IngestStats(files=len(files))
    with lake.write_partition("bronze", ACCESS_BRONZE.name, day) as wb, \
            lake.write_partition("quarantine", ACCESS_QUARANTINE.name, day) as wq:
        for lines in prefetched(batches(files, batch_bytes) if files else iter([[]]), landing):
            parse_batch(con, lines, day, tz, tokenize)
            run_script(con, HERE / "bronze_outputs.sql")
            stats.lines += lines.height
            landed, dups, *face, names = con.execute("SELECT * FROM batch_stats").fetchall()[0]
            stats.landed += landed
            stats.duplicates_in_file += dups
            for k, v in zip(("face_keys", "images", "image_urls", "embeddings"), face, strict=True):
                stats.face[k] += int(v)
            stats.names_dropped += int(names)
            order = " ORDER BY source_file, source_line, event_index"
            stats.bronze_rows += append_part(con, wb, ACCESS_BRONZE, "SELECT * FROM batch_bronze" + order)
            stats.quarantined += append_part(con, wq, ACCESS_QUARANTINE, "SELECT * FROM batch_quarantine" + order)
            for reason, n in con.execute(
                    "SELECT reason, count(*) FROM records WHERE reason IS NOT NULL GROUP BY 1").fetchall():
                stats.reasons[reason] = stats.reasons.get(reason, 0) + n
    return stats


def write_ingest_stats(con: duckdb.DuckDBPyConnection, lake, day: str, stats: IngestStats) -> None:
    """Persist what the parser read, for the row-accounting check downstream."""
    from warehouse.domains.access import ACCESS_INGEST
    from warehouse.io import write_dataset

    write_dataset(con, lake, ACCESS_INGEST, day, render(
        HERE / "ingest_stats.sql", source=SOURCE, files=stats.files, lines=stats.lines, landed=stats.landed,
        bronze_rows=stats.bronze_rows, quarantined=stats.quarantined, duplicates_in_file=stats.duplicates_in_file,
        names_dropped=stats.names_dropped, **{k: int(v) for k, v in stats.face.items()}))


__all__ = ["IngestStats", "ingest_day", "landing_files", "load_vocabulary", "parse_batch", "write_ingest_stats"]
