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

from assets.privacy.plates import PROVINCES, ColorScheme, plate_attributes, plate_colour_by_scheme
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
from kernel.times import install_time_macros
from kernel.tokens import Tokenizer, normalise

HERE = Path(__file__).parent
MAPPING_DIR = HERE
"""Folder of the vendor mapping CSVs (gat1400_*.csv, in_out_codes.csv, parking_*.csv); tests point it elsewhere."""
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


def plate_table(raw: pl.DataFrame, tokenizer: Tokenizer, scheme: ColorScheme = "4pyun") -> pl.DataFrame:
    """Per distinct (plate_raw, plate_color_raw, colour_scheme): token and attributes. ``scheme`` applies where
    ``raw`` has no colour_scheme column (or it is null). The raw plate column is the join key and lives only in
    memory; callers must drop it before writing."""
    if "colour_scheme" not in raw.columns:
        raw = raw.with_columns(colour_scheme=pl.lit(scheme, pl.String))
    distinct = (raw.select("plate_raw", "plate_color_raw", "colour_scheme").unique()
                .with_columns(__scheme=pl.col("colour_scheme").fill_null(pl.lit(scheme))))
    repaired = distinct.with_columns(plate_repaired=repair_plate_expr("plate_raw"))
    attrs = plate_attributes(repaired, "plate_repaired", "plate_color_raw", scheme, scheme_col="__scheme")
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
        .otherwise(plate_colour_by_scheme("plate_color_raw", "__scheme")),
    ).with_columns(
        plate_type=pl.when(pl.col("plate_kind") == "new_energy_green").then(pl.lit("new_energy"))
        .when(pl.col("plate_kind").is_in(["ordinary_blue", "large_yellow"])).then(pl.lit("fuel"))
        .otherwise(pl.lit("other")),
    )
    return out.select("plate_raw", "plate_color_raw", "colour_scheme", *PLATE_COLUMNS)


def register_plates(con: duckdb.DuckDBPyConnection, table: str, tokenizer: Tokenizer, scheme: ColorScheme) -> int:
    """Create temp table ``plates`` (plate_raw, plate_color_raw, colour_scheme -> token, attributes) from ``table``
    (its colour_scheme column when it has one, else ``scheme`` for every row)."""
    cols = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    scheme_sql = "colour_scheme" if "colour_scheme" in cols else f"'{scheme}'"
    raw = con.sql(f"SELECT DISTINCT plate_raw, plate_color_raw, {scheme_sql} AS colour_scheme FROM {table}").pl()
    if raw.height == 0:
        raw = pl.DataFrame(schema={"plate_raw": pl.String, "plate_color_raw": pl.String, "colour_scheme": pl.String})
    frame = plate_table(raw, tokenizer, scheme)
    con.register("plates_frame", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE plates AS SELECT * FROM plates_frame")
    con.unregister("plates_frame")
    return frame.height


# --- declarative vendor mappings (CSV next to this module) ------------------------------------------------------

def mapping(name: str) -> pl.DataFrame:
    """One mapping table of this folder, every column text (operators extend these files, not the code)."""
    return pl.read_csv(MAPPING_DIR / name, infer_schema=False)


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


GAT1400_FIELDS = frozenset({
    "motor_vehicle_id", "tollgate_id", "device_id", "lane_no", "info_kind", "has_plate", "plate", "plate_color",
    "plate_reliability", "vehicle_class", "vehicle_color", "is_decked", "travel_direction", "pass_time", "in_out"})
"""The canonical fields bronze_passages.sql reads; gat1400_fields.csv gives each one or more vendor keys."""


def gat1400_sql() -> dict[str, str]:
    """The generated parts of bronze_passages.sql, from gat1400_key_aliases/wrappers/fields.csv."""
    content = "content"
    for sent, canonical in mapping("gat1400_key_aliases.csv").select("sent", "canonical").iter_rows():
        content = f"replace({content}, {_lit(chr(34) + sent + chr(34))}, {_lit(chr(34) + canonical + chr(34))})"
    hits = []
    for rank, path in mapping("gat1400_wrappers.csv").select("rank", "path").iter_rows():
        if "[*]" in path:
            hits.append(f"SELECT source_file, {int(rank)} AS rank, unnest(l) AS hit, generate_subscripts(l, 1) AS outer_idx "
                        f"FROM (SELECT source_file, json_extract(j, {_lit(path)}) AS l FROM pv_docs WHERE ok) WHERE len(l) > 0")
        else:
            hits.append(f"SELECT source_file, {int(rank)} AS rank, json_extract(j, {_lit(path)}) AS hit, 1 AS outer_idx "
                        "FROM pv_docs WHERE ok")
    roots = sorted({path.split(".")[1] for path in mapping("gat1400_wrappers.csv")["path"]})
    fields = mapping("gat1400_fields.csv")
    missing = GAT1400_FIELDS - set(fields["field"])
    extra = set(fields["field"]) - GAT1400_FIELDS
    if missing or extra:
        raise ValueError(f"gat1400_fields.csv: canonical fields missing {sorted(missing)}, unknown {sorted(extra)}")
    # each canonical field becomes <field>_raw (plate_raw and plate_color_raw are what the plate table joins on)
    cols = []
    for (field,), grp in fields.group_by("field", maintain_order=True):
        keys = grp["key"].to_list()
        cols.append("coalesce(" + ", ".join(f"o->>{_lit(k)}" for k in keys) + f", NULL) AS {field}_raw")
        if field == "in_out":
            cols.append("CASE " + " ".join(f"WHEN o->>{_lit(k)} IS NOT NULL THEN {_lit(k)}" for k in keys)
                        + " END AS in_out_key")
    return {"fixed_content": content, "hits": " UNION ALL ".join(hits),
            "roots": " OR ".join(f"json_exists(j, {_lit('$.' + r)})" for r in roots), "fields": ", ".join(cols)}


def parking_sql() -> dict[str, str]:
    """The generated parts of bronze_parking.sql, from parking_vendors.csv and parking_fields.csv."""
    vendors = mapping("parking_vendors.csv")
    detect = " ".join(f"WHEN json_exists(o, {_lit(p)}) THEN {_lit(v)}"
                      for v, p in vendors.select("vendor", "detect_path").iter_rows())
    fields = mapping("parking_fields.csv").with_columns(pl.col("unit").fill_null(""))
    text = {"park": "park_raw", "serial": "serial_raw", "event": "event_raw", "plate": "plate_raw",
            "plate_color": "plate_color_raw", "car_type": "car_type_raw", "enter_time": "enter_time_raw",
            "leave_time": "leave_time_raw", "enter_gate": "enter_gate", "leave_gate": "leave_gate",
            "total_value": "total_raw", "free_value": "free_raw", "online_value": "online_raw",
            "cash_value": "cash_raw", "total_spaces": "total_spaces_raw", "remain_spaces": "remain_spaces_raw",
            "is_sync": "is_sync_raw"}
    unknown = set(fields["field"]) - set(text) - {"duration", "payment_list"}
    if unknown:
        raise ValueError(f"parking_fields.csv names unknown canonical fields {sorted(unknown)}")
    cols = []
    for field, alias in [*text.items(), ("duration", "duration_s"), ("payment_list", "payment_list")]:
        branches = []
        for vendor, path, unit in fields.filter(pl.col("field") == field).select("vendor", "path", "unit").iter_rows():
            value = f"(o->>{_lit(path)})"
            if field == "payment_list":
                value = f"(o->{_lit(path)})"
            elif unit == "yuan":  # a yuan decimal becomes fen text; anything else stays and fails the fen check
                raw = f"(o->>{_lit(path)})"
                value = (f"CASE WHEN regexp_full_match({raw}, '[0-9]{{1,15}}(\\.[0-9]{{1,2}})?') "
                         f"THEN CAST(CAST(TRY_CAST({raw} AS DECIMAL(18, 2)) * 100 AS BIGINT) AS VARCHAR) ELSE {raw} END")
            elif field == "duration":
                factor = {"h": 3600, "min": 60, "s": 1, "ms": 0.001}.get(unit)
                if factor is None:
                    raise ValueError(f"parking_fields.csv: unit {unit!r} of duration is not h, min, s or ms")
                value = f"TRY_CAST({value} AS DOUBLE) * {factor}"
            branches.append(f"WHEN {_lit(vendor)} THEN {value}")
        null = "NULL::JSON" if field == "payment_list" else ("NULL::DOUBLE" if field == "duration" else "NULL::VARCHAR")
        cols.append(f"CASE v.vendor {' '.join(branches)} ELSE {null} END AS {alias}" if branches else f"{null} AS {alias}")
    return {"vendor": f"CASE {detect} END", "fields": ", ".join(cols)}


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


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE {relation}").fetchall()}


def _opt(cols: set[str], name: str) -> str:
    """A registry column that older snapshots lack: NULL when absent, blank text as NULL."""
    return f"nullif(trim(CAST({name} AS VARCHAR)), '')" if name in cols else "NULL::VARCHAR"


def register_gat1400_mappings(con: duckdb.DuckDBPyConnection) -> None:
    """Temp tables of the GA/T 1400 mappings and of the tollgate registry (needs the ``tollgates`` view)."""
    for table, name in (("pv_wrappers", "gat1400_wrappers.csv"), ("pv_in_out", "in_out_codes.csv"),
                        ("pv_directions", "gat1400_directions.csv")):
        frame = mapping(name)
        if table == "pv_wrappers":
            frame = frame.with_columns(pl.col("rank").cast(pl.Int32))
        if table == "pv_in_out":
            frame = frame.with_columns(pl.col("value").str.to_lowercase())
        con.register(f"{table}_frame", frame)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {table}_frame")
        con.unregister(f"{table}_frame")
    cols = _columns(con, "tollgates")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE pv_gates AS
        SELECT community_id, tollgate_id, nullif(trim(device_id), '') AS device_id,
            {_opt(cols, 'tollgate_alias')} AS alias, lower({_opt(cols, 'in_out')}) AS gate_in_out,
            {_opt(cols, 'lane_in_out')} AS lane_in_out
        FROM tollgates""")
    con.execute("""CREATE OR REPLACE TEMP TABLE pv_lanes AS
        SELECT tollgate_id, TRY_CAST(trim(split_part(x, ':', 1)) AS INTEGER) AS lane_no,
            lower(trim(split_part(x, ':', 2))) AS in_out
        FROM (SELECT tollgate_id, unnest(string_split(lane_in_out, ';')) AS x FROM pv_gates
              WHERE lane_in_out IS NOT NULL)
        WHERE lower(trim(split_part(x, ':', 2))) IN ('in', 'out')""")


def parse_passages(con: duckdb.DuckDBPyConnection, landing: Path, files: list[Path], day_start: str, day_end: str,
                   tz: str, tokenizer: Tokenizer) -> IngestStats:
    """Temp tables ``passages`` (every landed object of ``files``, reason NULL when accepted) and ``plates``.

    Needs the ``tollgates`` view. A community's files are parsed together, so a passage re-sent in a later file
    is recognised here (bronze holds each passage once), by MotorVehicleID or by its composite key.
    """
    stats = IngestStats("vehicle_passages", files=len(files))
    install_time_macros(con)
    register_gat1400_mappings(con)
    docs = read_documents(files, landing)
    stats.counters["files_quarantined"] = int(docs["file_error"].is_not_null().sum())
    con.register("doc_frame", docs)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE docs AS SELECT * FROM doc_frame")
    finally:
        con.unregister("doc_frame")
    run_script(con, HERE / "bronze_passages.sql", tz=tz, day_start=day_start, day_end=day_end, **gat1400_sql())
    con.execute("DROP TABLE docs; DROP TABLE pv_docs; DROP TABLE pv_hits; DROP TABLE pv_objs")
    register_plates(con, "pv_raw", tokenizer, "gat1400")
    run_script(con, HERE / "bronze_passages_keys.sql")
    con.execute("DROP TABLE pv_raw")
    lines, dup_in, dup_cross, images = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE dup_in_file), count(*) FILTER (WHERE dup_cross_file), "
        "coalesce(sum(images_dropped), 0) FROM passages").fetchall()[0]
    stats.lines = stats.landed = lines
    stats.duplicates_in_file, stats.duplicates_cross_file = dup_in, dup_cross
    stats.counters["images_dropped"] = int(images)
    for shape, n in con.execute("SELECT gate_match, count(*) FROM passages WHERE reason IS NULL AND NOT dup_in_file "
                                "AND NOT dup_cross_file GROUP BY 1 ORDER BY 1").fetchall():
        stats.counters[f"gate_by_{shape}"] = int(n)
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


def register_parking_mappings(con: duckdb.DuckDBPyConnection) -> None:
    """Temp tables pk_vendors, pk_events (the mappings) and pk_parks (the car-park registry, needs ``car_parks``)."""
    vendors = mapping("parking_vendors.csv").with_columns(pl.col("leave_needs_total").str.to_lowercase() == "true")
    for table, frame in (("pk_vendors", vendors), ("pk_events", mapping("parking_events.csv"))):
        con.register(f"{table}_frame", frame)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {table}_frame")
        con.unregister(f"{table}_frame")
    cols = _columns(con, "car_parks")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE pk_parks AS
        SELECT park_id, community_id, coalesce({_opt(cols, 'vendor')}, '4pyun') AS vendor,
            {_opt(cols, 'vendor_park_id')} AS vendor_park_id
        FROM car_parks""")


def parse_parking(con: duckdb.DuckDBPyConnection, landing: Path, files: list[Path], tokenizer: Tokenizer,
                  tz: str = "Asia/Shanghai") -> IngestStats:
    """Temp tables ``pk`` (every landed push of ``files``, reason NULL when accepted) and ``plates``.

    Needs ``car_parks``. Pass a community's files together: re-sends across its files are found here, and a
    vendor without a session serial has its exits paired with their entries here.
    """
    stats = IngestStats("parking", files=len(files))
    install_time_macros(con)
    register_parking_mappings(con)
    lines = read_parking_lines(files, landing)
    stats.counters["files_quarantined"] = line_count(lines)[1]
    con.register("lines_df", lines)
    con.execute("CREATE OR REPLACE TEMP TABLE lines AS SELECT * FROM lines_df")
    con.unregister("lines_df")
    run_script(con, HERE / "bronze_parking.sql", tz=tz, **parking_sql())
    register_plates(con, "pk_raw", tokenizer, "4pyun")
    run_script(con, HERE / "bronze_parking_keys.sql")
    con.execute("DROP TABLE pk_raw")
    # a rejected push re-sent byte for byte in a later file (a re-delivered file) is a cross-file duplicate
    RepeatedRejections(con).flag("lines", "pk", order="(file_rank, source_file)")
    n, dup_in, dup_cross = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE dup_in_file), count(*) FILTER (WHERE dup_cross_file) FROM pk"
    ).fetchall()[0]
    stats.lines = stats.landed = n
    stats.duplicates_in_file, stats.duplicates_cross_file = dup_in, dup_cross
    for vendor, k in con.execute("SELECT vendor, count(*) FROM pk WHERE reason IS NULL AND NOT dup_in_file "
                                 "AND NOT dup_cross_file GROUP BY 1 ORDER BY 1").fetchall():
        stats.counters[f"vendor_{vendor}"] = int(k)
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
            "ON r.plate_raw IS NOT DISTINCT FROM p.plate_raw AND r.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw"
            " AND p.colour_scheme = '4pyun'")
