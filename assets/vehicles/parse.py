"""Landing vehicle feeds (GA/T 1400 passages, parking-cloud pushes, resident registers) to typed, tokenised rows.

Parsing and validation run in DuckDB (the .sql files next to this module); plates are repaired, tokenised and
reduced to attributes once per distinct value in Polars, and never written anywhere in raw form. Each landing
file is read on its own (``kernel.ndjson``): one that cannot be opened or decoded as UTF-8 text is one landed
record quarantined as ``unreadable_file`` and the rest of the day goes on.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from assets.privacy.plates import PROVINCES, ColorScheme, plate_attributes, plate_colour_expr
from kernel.accounting import IngestStats
from kernel.ndjson import (
    RepeatedRejections,
    UnreadableFile,
    file_text,
    line_count,
    read_lines,
    unreadable_detail,
)
from kernel.sqlfile import run_script
from kernel.tokens import Tokenizer, normalise

HERE = Path(__file__).parent
PLATE_COLUMNS = ("plate_token", "plate_group", "plate_type", "plate_colour", "plate_valid")


def repair_plate(value: str | None) -> str | None:
    """Normalised plate (NFKC, upper, separators dropped) with OCR O/0 and I/1 confusions undone.

    GA 36 serials never contain I or O, so after the province and authority letter an O is a 0 and an I
    is a 1. The authority letter itself is left alone (O is a police provincial-organ letter).
    """
    text = normalise(value, "plate")
    if text is None or len(text) < 7 or text[0] not in PROVINCES:
        return text
    return text[:2] + text[2:].replace("O", "0").replace("I", "1")


def repair_plate_expr(col: str) -> pl.Expr:
    """``repair_plate`` as a Polars expression (the same steps as tokens.normalise for id type plate)."""
    text = (pl.col(col).str.normalize("NFKC").str.replace_all(r"\s+", "").str.to_uppercase()
            .str.replace_all(r"[\s·•・‧∙⋅.。\-‐‑‒–—―−_]+", ""))
    text = pl.when(text.str.len_chars() > 0).then(text)
    serial = text.str.slice(2).str.replace_all("O", "0", literal=True).str.replace_all("I", "1", literal=True)
    plate_like = (text.str.len_chars() >= 7) & text.str.slice(0, 1).is_in(list(PROVINCES))
    return pl.when(plate_like).then(pl.concat_str(text.str.slice(0, 2), serial)).otherwise(text)


def plate_table(raw: pl.DataFrame, tokenizer: Tokenizer, scheme: ColorScheme) -> pl.DataFrame:
    """Per distinct (plate_raw, plate_color_raw): token and attributes. The raw plate column is the join key
    and lives only in memory; callers must drop it before writing."""
    distinct = raw.select("plate_raw", "plate_color_raw").unique()
    repaired = distinct.with_columns(plate_repaired=repair_plate_expr("plate_raw"))
    attrs = plate_attributes(repaired, "plate_repaired", "plate_color_raw", scheme)
    none = pl.col("plate_type") == "none"
    out = attrs.with_columns(
        plate_token=pl.when(none).then(None).otherwise(tokenizer.tokenize_series(attrs["plate_repaired"], "plate")),
        # a plate was read but names no province (army, embassy, OCR garbage): unknown, not out_of_town
        plate_group=pl.when(none).then(pl.lit("no_plate"))
        .when(pl.col("plate_region_group") == "shanghai").then(pl.lit("local"))
        .when(pl.col("plate_region_group") == "other_province").then(pl.lit("out_of_town"))
        .otherwise(pl.lit("unknown")),
        plate_kind=pl.col("plate_type"),
        # an 8-character NEV plate is green whatever colour the camera reported
        plate_colour=pl.when(pl.col("plate_type") == "new_energy_green").then(pl.lit("green"))
        .otherwise(plate_colour_expr("plate_color_raw", scheme)),
    ).with_columns(
        plate_type=pl.when(pl.col("plate_kind") == "new_energy_green").then(pl.lit("new_energy"))
        .when(pl.col("plate_kind").is_in(["ordinary_blue", "large_yellow"])).then(pl.lit("fuel"))
        .otherwise(pl.lit("other")),
    )
    return out.select("plate_raw", "plate_color_raw", *PLATE_COLUMNS)


def register_plates(con: duckdb.DuckDBPyConnection, table: str, tokenizer: Tokenizer, scheme: ColorScheme) -> int:
    """Create temp table ``plates`` (plate_raw, plate_color_raw -> token, attributes) from ``table``."""
    raw = con.sql(f"SELECT DISTINCT plate_raw, plate_color_raw FROM {table}").pl()
    if raw.height == 0:
        raw = pl.DataFrame(schema={"plate_raw": pl.String, "plate_color_raw": pl.String})
    frame = plate_table(raw, tokenizer, scheme)
    con.register("plates_frame", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE plates AS SELECT * FROM plates_frame")
    con.unregister("plates_frame")
    return frame.height


def passage_files(landing: Path, day: str) -> list[Path]:
    return sorted((landing / "vehicle_passages" / day).glob("*/*.json"))


def parking_files(landing: Path, day: str) -> list[Path]:
    return sorted((landing / "parking" / day).glob("*/*.ndjson"))


def community_batches(files: list[Path], max_bytes: int = 24 * 1024 * 1024) -> list[list[Path]]:
    """Whole communities per batch, about ``max_bytes`` of input each (memory stays flat as the district grows).

    A feed re-sends within its own community folder, so per-batch deduplication sees every re-send.
    """
    batches: list[list[Path]] = []
    batch: list[Path] = []
    size = 0
    by_community: dict[str, list[Path]] = {}
    for f in files:
        by_community.setdefault(f.parent.name, []).append(f)
    for group in by_community.values():
        batch += group
        size += sum(f.stat().st_size for f in group)
        if size >= max_bytes:
            batches.append(batch)
            batch, size = [], 0
    if batch or not batches:
        batches.append(batch)
    return batches


def parse_passages(con: duckdb.DuckDBPyConnection, landing: Path, files: list[Path], day_start: str, day_end: str,
                   tz: str, tokenizer: Tokenizer) -> IngestStats:
    """Temp tables ``passages`` (every landed object of ``files``, reason NULL when accepted) and ``plates``.

    Needs the ``tollgates`` view. A community's files are parsed together, so a MotorVehicleID re-sent in a
    later file is recognised here (bronze holds each passage once).
    """
    stats = IngestStats("vehicle_passages", files=len(files))
    docs = read_documents(files, landing)
    stats.counters["files_quarantined"] = int(docs["file_error"].is_not_null().sum())
    con.register("doc_frame", docs)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE docs AS SELECT * FROM doc_frame")
    finally:
        con.unregister("doc_frame")
    run_script(con, HERE / "bronze_passages.sql", tz=tz, day_start=day_start, day_end=day_end)
    con.execute("DROP TABLE docs; DROP TABLE pv_docs; DROP TABLE pv_objs")
    register_plates(con, "passages", tokenizer, "gat1400")
    lines, dup_in, dup_cross, images = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE dup_in_file), count(*) FILTER (WHERE dup_cross_file), "
        "coalesce(sum(images_dropped), 0) FROM passages").fetchall()[0]
    stats.lines = stats.landed = lines
    stats.duplicates_in_file, stats.duplicates_cross_file = dup_in, dup_cross
    stats.counters["images_dropped"] = int(images)
    return stats


def read_documents(files: list[Path], landing: Path) -> pl.DataFrame:
    """One row per GA/T 1400 file: source_file, community_id, content (its UTF-8 text) and, for a file that
    cannot be read (zero bytes, not UTF-8, UTF-16, binary...), content null and ``file_error`` the detail."""
    rows = []
    for f in files:
        rel = str(f.relative_to(landing))
        try:
            rows.append((rel, f.parent.name, file_text(f), None))
        except UnreadableFile as exc:
            rows.append((rel, f.parent.name, None, unreadable_detail(rel, str(exc))))
    return pl.DataFrame(rows, schema={"source_file": pl.String, "community_id": pl.String, "content": pl.String,
                                      "file_error": pl.String}, orient="row")


def read_parking_lines(files: list[Path], landing: Path) -> pl.DataFrame:
    """Non-blank NDJSON lines with 1-based line numbers; backfill files rank after live pushes. A file that
    cannot be read is one row (source_line 0, line null, ``file_error`` the detail)."""
    lines = read_lines(files, landing, community=lambda f: f.parent.name)
    name = pl.col("source_file").str.extract(r"([^/\\]+)$")
    return lines.select("source_file", "source_line", "community_id",
                        pl.when(name.str.contains("backfill", literal=True)).then(1).otherwise(0)
                        .cast(pl.Int32).alias("file_rank"), "line", "file_error")


def parse_parking(con: duckdb.DuckDBPyConnection, landing: Path, files: list[Path], tokenizer: Tokenizer) -> IngestStats:
    """Temp tables ``pk`` (every landed push of ``files``, reason NULL when accepted) and ``plates``.

    Needs ``car_parks``. Pass a community's files together: re-sends across its files are found here.
    """
    stats = IngestStats("parking", files=len(files))
    lines = read_parking_lines(files, landing)
    stats.counters["files_quarantined"] = line_count(lines)[1]
    con.register("lines_df", lines)
    con.execute("CREATE OR REPLACE TEMP TABLE lines AS SELECT * FROM lines_df")
    con.unregister("lines_df")
    run_script(con, HERE / "bronze_parking.sql")
    # a rejected push re-sent byte for byte in a later file (a re-delivered file) is a cross-file duplicate
    RepeatedRejections(con).flag("lines", "pk", order="(file_rank, source_file)")
    register_plates(con, "pk", tokenizer, "4pyun")
    n, dup_in, dup_cross = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE dup_in_file), count(*) FILTER (WHERE dup_cross_file) FROM pk"
    ).fetchall()[0]
    stats.lines = stats.landed = n
    stats.duplicates_in_file, stats.duplicates_cross_file = dup_in, dup_cross
    return stats


def registered_vehicles(con: duckdb.DuckDBPyConnection, landing: Path, day: str, tokenizer: Tokenizer) -> str:
    """SQL of the tokenised resident register: per community the latest list on or before ``day``."""
    latest: dict[str, Path] = {}
    for f in sorted((landing / "parking").glob("*/*/registered_vehicles.csv")):
        if f.parent.parent.name <= day:
            latest[f.parent.name] = f
    frames = [
        pl.read_csv(f, schema_overrides={"plate": pl.String, "plate_color": pl.String, "car_type": pl.Int32})
        .with_columns(community_id=pl.lit(cid), source_file=pl.lit(str(f.relative_to(landing))),
                      source_line=pl.int_range(pl.len(), dtype=pl.Int64) + 2)
        for cid, f in sorted(latest.items())
    ]
    reg = (pl.concat(frames) if frames else pl.DataFrame(schema={
        "plate": pl.String, "plate_color": pl.String, "car_type": pl.Int32, "community_id": pl.String,
        "source_file": pl.String, "source_line": pl.Int64}))
    reg = reg.rename({"plate": "plate_raw", "plate_color": "plate_color_raw"})
    con.register("reg_frame", reg)
    con.execute("CREATE OR REPLACE TEMP TABLE reg AS SELECT * FROM reg_frame")
    con.unregister("reg_frame")
    register_plates(con, "reg", tokenizer, "4pyun")
    return ("SELECT r.community_id, " + ", ".join(f"p.{c}" for c in PLATE_COLUMNS) +
            ", r.car_type, r.source_file, r.source_line FROM reg r LEFT JOIN plates p "
            "ON r.plate_raw IS NOT DISTINCT FROM p.plate_raw AND r.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw")
