"""Landing ISC door events (gzipped NDJSON, OnEventNotify envelopes) to typed bronze rows plus a quarantine.

What each vendor sends is declared in CSV files next to this module (vendors, event types, verify modes, user
types; docs/vendors/access.md); events of other abilities on the same subscription are routed, as counts, to
bronze/access_other_events, and unmapped door event types are counted in audit/access_vocabulary_gaps.
Lines are read by Polars in bounded batches (``kernel.ndjson``), parsed and validated in DuckDB;
the only Python-level work per value is the keyed token, computed once per distinct identifier. A file that
cannot be read (truncated gzip, junk, UTF-16, zero bytes...) is one landed record quarantined as
``unreadable_file``; the rest of the day goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from assets.access.datasets import (
    ACCESS_BRONZE,
    ACCESS_OTHER,
    ACCESS_QUARANTINE,
    ACCESS_VOCABULARY_GAPS,
    CONVENTIONS,
    STATUSES,
)
from assets.privacy.biometrics import face_counts_sql
from kernel.accounting import IngestStats
from kernel.io import append_part, write_dataset
from kernel.lake import Lake
from kernel.ndjson import RepeatedRejections, batches, line_count, prefetched
from kernel.partitions import day_bounds
from kernel.sqlfile import run_script
from kernel.times import install_time_macros

HERE = Path(__file__).parent
SOURCE = "access_events"
TokenFn = Callable[[pl.Series, str], pl.Series]


def landing_files(landing: Path, day: str) -> list[Path]:
    """``landing/access_events/<day>/<community_id>/<community_id>-<seq>.ndjson[.gz]``."""
    root = landing / SOURCE / day
    return sorted([*root.glob("*/*.ndjson.gz"), *root.glob("*/*.ndjson")])


def load_vocabulary(con: duckdb.DuckDBPyConnection, vocabulary_dir: Path = HERE) -> None:
    """The vendor mapping tables (vendors, event_types, verify_modes, user_types) and the vendor-time macros.

    ``vocabulary_dir`` holds the four CSV files (this module's folder; a test points it at an edited copy).
    """
    install_time_macros(con)
    run_script(con, HERE / "vocabulary.sql", dir=vocabulary_dir)


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
    """For one batch of lines: temp table ``records`` (every landed record, reason NULL if accepted or routed) and
    the batch outputs of ``bronze_outputs.sql`` (bronze, quarantine, other-ability counts, gaps, stats)."""
    start, end = day_bounds(day, tz)
    con.register("lines_df", lines)
    try:
        run_script(con, HERE / "bronze_events.sql", face_counts=face_counts_sql("line"), tz=tz)
    finally:
        con.unregister("lines_df")
    _token_table(con, "person_tokens", "person_raw", "person", tokenize)
    _token_table(con, "card_tokens", "card_raw", "card", tokenize)
    run_script(con, HERE / "bronze_records.sql", day_start=start, day_end=end, tz=tz, statuses=_sql_list(STATUSES),
               conventions=_sql_list(CONVENTIONS))
    run_script(con, HERE / "bronze_outputs.sql", tz=tz)


def ingest_day(con: duckdb.DuckDBPyConnection, lake: Lake, landing: Path, day: str, tz: str, tokenize: TokenFn,
               batch_bytes: int = 16 * 1024 * 1024, vocabulary_dir: Path = HERE) -> IngestStats:
    """Parse every landing file of ``day`` into the bronze and quarantine partitions (swapped in together), and
    write the day's other-ability counts (bronze/access_other_events) and vocabulary gaps.

    Requires the ``doors`` view (the door registry of the day).
    """
    files = landing_files(landing, day)
    load_vocabulary(con, vocabulary_dir)
    stats = IngestStats(SOURCE, files=len(files))
    repeated = RepeatedRejections(con)
    con.execute(f"CREATE OR REPLACE TEMP TABLE day_other AS {ACCESS_OTHER.empty_sql()}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE day_gaps AS {ACCESS_VOCABULARY_GAPS.empty_sql()}")
    con.execute("CREATE OR REPLACE TEMP TABLE seen_routed (community_id VARCHAR, event_id VARCHAR, status INTEGER)")
    with lake.write_partition("bronze", ACCESS_BRONZE.name, day) as wb, \
            lake.write_partition("quarantine", ACCESS_QUARANTINE.name, day) as wq:
        for lines in prefetched(batches(files, batch_bytes) if files else iter([[]]), landing):
            parse_batch(con, lines, day, tz, tokenize)
            n_lines, n_bad_files = line_count(lines)
            stats.lines += n_lines
            stats.counters["files_quarantined"] += n_bad_files
            # a rejected line re-delivered in a later file is a cross-file duplicate, not a second quarantine row
            stats.duplicates_cross_file += repeated.flag(lines)
            landed, dups, routed, routed_dups, *face, names = con.execute("SELECT * FROM batch_stats").fetchall()[0]
            stats.landed += landed
            stats.duplicates_in_file += dups
            stats.counters["routed_non_door"] += int(routed)
            stats.duplicates_cross_file += int(routed_dups)
            con.execute("INSERT INTO seen_routed SELECT DISTINCT community_id, event_id, status FROM batch_routed "
                        "WHERE event_id IS NOT NULL AND NOT dup_cross")
            con.execute("INSERT INTO day_other BY NAME SELECT * FROM batch_other")
            con.execute("INSERT INTO day_gaps BY NAME SELECT * FROM batch_gaps")
            for k, v in zip(("face_keys", "face_images", "face_urls", "face_embeddings"), face, strict=True):
                stats.counters[k] += int(v)
            stats.counters["names_dropped"] += int(names)
            order = " ORDER BY source_file, source_line, event_index"
            stats.bronze_rows += append_part(con, wb, ACCESS_BRONZE, "SELECT * FROM batch_bronze" + order)
            stats.quarantined += append_part(con, wq, ACCESS_QUARANTINE, "SELECT * FROM batch_quarantine" + order)
            stats.reasons.update(dict(con.execute(
                "SELECT reason, count(*) FROM records WHERE reason IS NOT NULL AND NOT dup_cross_file "
                "GROUP BY 1").fetchall()))
    write_dataset(con, lake, ACCESS_OTHER, day, "SELECT * EXCLUDE (events), sum(events) AS events FROM day_other "
                  "GROUP BY ALL", order_by=ACCESS_OTHER.order_by)
    write_dataset(con, lake, ACCESS_VOCABULARY_GAPS, day, "SELECT * EXCLUDE (events), sum(events) AS events "
                  "FROM day_gaps GROUP BY ALL", order_by=ACCESS_VOCABULARY_GAPS.order_by)
    gaps = con.execute("SELECT ability, event_type, sum(events) FROM day_gaps GROUP BY ALL ORDER BY 1, 2").fetchall()
    stats.counters["vocabulary_gaps"] += sum(int(n) for *_, n in gaps)
    # one metadata entry per unmapped (ability, eventType): what an operator adds to event_types.csv
    stats.counters.update({f"vocabulary_gap/{a or 'none'}/{t}": int(n) for a, t, n in gaps})
    for cls, n in con.execute("SELECT ability || '/' || event_class, sum(events) FROM day_other GROUP BY 1 "
                              "ORDER BY 1").fetchall():
        stats.counters[f"routed/{cls}"] += int(n)
    return stats


__all__ = ["SOURCE", "ingest_day", "landing_files", "load_vocabulary", "parse_batch"]
