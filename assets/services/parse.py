"""Landing -> bronze + quarantine for the property-services exports: decode (encoding.py), tokenise the
phones, redact free text (vectorised rules, the shared PII scanner only as a fallback), type in SQL; every
CSV row (or whole refused file) ends in bronze, quarantine (one reason) or the in-file duplicate count.

Redaction limits (documented, tested): a person name is removed when it is a reporter/payer name of the
day's export (anywhere in any text) or follows a label (联系人, 业主, 报事人, 住户, 租户, ...); a bare name of
somebody else without a label cannot be recognised. Phone and ID numbers are found by pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from assets.services.datasets import BRONZE, INGEST, QUARANTINE, SOURCES
from assets.services.encoding import RAGGED, UndecodableFile, UnknownHeader, UnparseableFile, read_file
from kernel.accounting import IngestStats, write_ingest
from kernel.io import write_dataset
from kernel.lake import Lake
from kernel.ndjson import UnreadableFile
from kernel.sqlfile import render
from quality.pii_patterns import ROOM_GENERALISE_RX, SQL_FACE_PATTERNS, SQL_IDENTIFIER_FILTER
from quality.pii_scan import redact, scan_text

HERE = Path(__file__).parent
LANDING = "property_services"
UNKNOWN_FILE = "unknown_file"

# vendor header -> our column (HC-style property system exports; documented in docs of the domain)
HEADERS: dict[str, dict[str, str]] = {
    "work_orders": {"工单编号": "order_id", "小区编码": "community_id", "报事类型": "category_raw",
                    "报事渠道": "channel_raw", "报事位置": "location_raw", "问题描述": "description_raw",
                    "报事人": "reporter_name", "联系电话": "reporter_phone", "创建时间": "created_raw",
                    "预约时间": "appointment_raw", "派单时间": "dispatched_raw", "完成时间": "completed_raw",
                    "关闭时间": "closed_raw", "状态": "status_raw", "满意度": "satisfaction_raw",
                    "重开次数": "reopened_raw", "关联告警编号": "alarm_raw"},
    "work_order_events": {"工单编号": "order_id", "序号": "seq_raw", "状态": "status_raw", "处理角色": "actor_role",
                          "时间": "ts_raw", "备注": "note_raw"},
    "fee_bills": {"账单编号": "bill_id", "小区编码": "community_id", "房号": "room_id", "收费项目": "fee_item",
                  "账期开始": "period_start_raw", "账期结束": "period_end_raw", "应收金额": "due_raw",
                  "应缴日期": "due_date_raw"},
    "payments": {"缴费流水号": "payment_id", "账单编号": "bill_id", "小区编码": "community_id", "房号": "room_id",
                 "实收金额": "amount_raw", "支付渠道": "channel_raw", "缴费时间": "paid_raw", "缴费人": "payer_name",
                 "联系电话": "payer_phone"},
}
# a file whose header lacks the record id column is not this source's export (or was mis-decoded)
REQUIRED = {s: (next(iter(h)),) for s, h in HEADERS.items()}
# raw identifier columns: used in memory for tokens and redaction, never written
RAW_PII = {"work_orders": ("reporter_name", "reporter_phone", "description_raw", "location_raw"),
           "work_order_events": ("note_raw",), "fee_bills": ("room_id",),
           "payments": ("payer_name", "payer_phone", "room_id")}
# landing/property_services/<day>/<community>/<source>_<community>[_partN].csv; anything else is unknown_file
_NAME_RX = re.compile(r"^(work_orders|work_order_events|fee_bills|payments)_[0-9]{12}(_part[0-9]+)?\.csv$")

# --- free-text redaction rules (Rust regex syntax: no look-around) -----------------------------------------
LABELS = ("联系人", "业主", "报事人", "住户", "租户", "缴费人", "户主", "姓名", "已联系")
_CJK = r"[\u3400-\u4dbf\u4e00-\u9fff]"
_LABEL = "(" + "|".join(LABELS) + ")"
# a label, optional colon/space, then a 2-4 character name (which may hold single spaces: "李 四")
LABEL_NAME_RX = _LABEL + r"[：:\s]*(" + _CJK + r"(?:\s?" + _CJK + r"){1,3})"
# a label explicitly introducing something (colon or space) that is not a redaction: a pinyin name, nothing...
DANGLING_LABEL_RX = _LABEL + r"(?:\s*[：:]|\s)\s*(?:[^\[\s]|$)"
_B0, _B1 = r"(^|[^0-9A-Za-z])", r"([^0-9A-Za-z]|$)"
PHONE_RX = _B0 + r"(1[3-9][0-9]{9})" + _B1
ID_RX = _B0 + r"([1-9][0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx])" + _B1
# what can still hide an identifier after the rules: the scanner's own prefilter, face artefacts, and text
# the scanner normalises first (full-width/non-ASCII digits, \u and %-escapes)
SUSPECT_RX = "|".join([SQL_IDENTIFIER_FILTER, *SQL_FACE_PATTERNS.values(), r"[\d&&[^0-9]]", r"[Ａ-Ｚａ-ｚ]",
                       r"\\u[0-9a-fA-F]{4}", r"%[0-9A-Fa-f]{2}"])


def classify(rel_name: str) -> tuple[str, bool]:
    """``(source, known)`` for a landing file name. An unknown name is accounted to the source its name
    starts with, else to work_orders (the domain's primary source), and quarantined whole as unknown_file."""
    m = _NAME_RX.match(rel_name)
    if m:
        return m.group(1), True
    for s in sorted(SOURCES, key=len, reverse=True):
        if rel_name.startswith(s):
            return s, False
    return "work_orders", False


def day_files(landing: Path, day: str) -> list[Path]:
    """Every file of the day's folder (recursively), except ``*.part`` files still being written."""
    root = landing / LANDING / day
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".part")) if root.is_dir() else []


def landing_files(landing: Path, day: str, source: str) -> list[Path]:
    """The day's files accounted to ``source`` (well-named or not)."""
    return [p for p in day_files(landing, day) if classify(p.name)[0] == source]


def read_source(landing: Path, day: str, source: str, stats: IngestStats) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All readable files of a source as one all-string frame (+ source_file, source_line, ragged) and
    the files quarantined whole (source_file, reason, detail). A file quarantined whole is one landed record."""
    frames, whole = [], []
    for path in landing_files(landing, day, source):
        rel = str(path.relative_to(landing))
        stats.files += 1
        if not classify(path.name)[1]:
            whole.append((rel, UNKNOWN_FILE, "file name is not <source>_<community>.csv; quarantined whole"))
            continue
        try:
            df, enc = read_file(path, HEADERS[source], REQUIRED[source])
        except (UnreadableFile, UndecodableFile, UnparseableFile, UnknownHeader) as exc:
            # the message of these exceptions is generic by construction (never file content)
            whole.append((rel, exc.reason, f"{rel}: {exc}; quarantined whole"))
            continue
        stats.counters[f"encoding/{enc}"] += 1
        stats.lines += df.height
        frames.append(df.with_columns(source_file=pl.lit(rel)))
    for _, reason, _ in whole:
        stats.reasons[reason] += 1
        stats.counters["files_quarantined"] += 1
        stats.counters["undecodable_files"] += reason == UndecodableFile.reason
    stats.landed = stats.lines + stats.counters["files_quarantined"]
    schema = {**dict.fromkeys(HEADERS[source].values(), pl.String), "source_line": pl.Int64, "ragged": pl.Boolean,
              "source_file": pl.String}
    # one chunk, not one per file: Polars runs some string kernels chunk by chunk, and the name redaction's
    # replace_many built its automaton of every name of the day once per chunk (files x names: 12.2 s for the
    # work orders of 600 communities, 1.35 s from one chunk)
    out = pl.concat(frames, rechunk=True) if frames else pl.DataFrame(schema=schema)
    return out, pl.DataFrame(whole, schema={"source_file": pl.String, "reason": pl.String, "detail": pl.String},
                             orient="row")


def clean_names(names: pl.Series) -> list[str]:
    """Distinct person names to remove from free text: trimmed, with and without inner spaces, >= 2 chars,
    longest first (so 王芳芳 wins over 王芳)."""
    s = names.drop_nulls().str.strip_chars()
    both = pl.concat([s, s.str.replace_all(r"\s+", "")]).unique()
    return sorted((n for n in both.to_list() if len(n) >= 2), key=lambda n: (-len(n), n))


def redact_texts(texts: pl.Series, names: list[str]) -> tuple[pl.Series, pl.Series]:
    """Free text with known names, labelled names, phones and ID numbers replaced (Polars, vectorised);
    plus a flag for texts that must be quarantined: the shared scanner still finds an identifier after its
    own redaction, or a label introduces something that could not be redacted.

    The scanner runs only on the distinct texts a cheap regex still marks as suspect.
    """
    t = texts.alias("t").rechunk().to_frame()  # one automaton of the names per chunk: see read_source
    r = pl.col("t")
    if names:
        r = r.str.replace_many(names, ["[REDACTED:name]"] * len(names), leftmost=True)
    r = (r.str.replace_all(LABEL_NAME_RX, "${1}[REDACTED:name]")
         .str.replace_all(PHONE_RX, "${1}[REDACTED:phone]${3}")
         .str.replace_all(ID_RX, "${1}[REDACTED:resident_id]${3}"))
    t = t.with_columns(r=r).with_columns(suspect=pl.col("r").str.contains(SUSPECT_RX),
                                         dangling=pl.col("r").str.contains(DANGLING_LABEL_RX))
    flagged = t.filter("suspect").select("r").unique()
    if flagged.height:
        fixed = [redact(v) for v in flagged["r"].to_list()]
        left = [bool(scan_text(v)) for v in fixed]
        m = flagged.with_columns(r2=pl.Series(fixed, dtype=pl.String), left=pl.Series(left, dtype=pl.Boolean))
        t = t.join(m, on="r", how="left", maintain_order="left")
    else:
        t = t.with_columns(r2=pl.lit(None, pl.String), left=pl.lit(None, pl.Boolean))
    t = t.with_columns(out=pl.coalesce("r2", "r"), left=pl.col("left").fill_null(False) | pl.col("dangling"))
    left = t["left"] & texts.is_not_null()
    return t["out"], left


def prepare(source: str, raw: pl.DataFrame, tokenize: Callable[[pl.Series, str], pl.Series], names: list[str],
            known_orders: pl.DataFrame | None = None) -> pl.DataFrame:
    """Tokens and redacted text in, raw identifiers out (the frame DuckDB types)."""
    if source == "work_orders":
        desc, left_d = redact_texts(raw["description_raw"], names)
        # a room is a home address: the location keeps building and entrance (3号楼2单元), and the dedup rule
        # compares the keyed token of the place as written
        loc, left_l = redact_texts(raw["location_raw"].str.replace_all(ROOM_GENERALISE_RX, "${b}${u}${t}"), names)
        raw = raw.with_columns(description=desc, location=loc, pii_left=left_d | left_l,
                               location_token=tokenize(raw["location_raw"].str.strip_chars().replace("", None),
                                                       "location"),
                               reporter_token=tokenize(raw["reporter_phone"].str.strip_chars().replace("", None), "phone"))
    elif source == "work_order_events":
        assert known_orders is not None
        note, left = redact_texts(raw["note_raw"], names)
        raw = raw.with_columns(note=note, pii_left=left, order_known=raw["order_id"].is_in(
            known_orders["order_id"].implode()))
    elif source == "payments":
        raw = raw.with_columns(payer_token=tokenize(raw["payer_phone"].str.strip_chars().replace("", None), "phone"))
    if source in ("fee_bills", "payments"):
        # a room is a home address and sits beside the payer: only its keyed token is kept (the billing unit)
        raw = raw.with_columns(room_token=tokenize(raw["room_id"].str.strip_chars().replace("", None), "location"))
    raw = raw.drop([c for c in RAW_PII[source] if c in raw.columns])
    data = [c for c in raw.columns if c not in ("source_line",)]
    content = [c for c in data if c != "source_file"]
    # row_hash: the row's content wherever it was delivered, to count a re-delivered rejected row once
    return raw.with_columns(in_file_dup=~pl.struct(data).is_first_distinct(), row_hash=pl.struct(content).hash())


def ingest_day(con: duckdb.DuckDBPyConnection, lake: Lake, landing: Path, day: str, tz: str,
               tokenize: Callable[[pl.Series, str], pl.Series]) -> dict[str, IngestStats]:
    """Parse every source of the day and write bronze, quarantine and the ingest audit row per source."""
    stats = {s: IngestStats(s) for s in SOURCES}
    con.execute(render(HERE / "macros.sql", tz=tz))
    raws = {s: read_source(landing, day, s, stats[s]) for s in SOURCES}
    # every person name of the day's exports is removed from every free text (not only the row's own)
    names = clean_names(pl.concat([raws["work_orders"][0]["reporter_name"], raws["payments"][0]["payer_name"]]))
    known = pl.DataFrame(schema={"order_id": pl.String})
    for source in SOURCES:
        st = stats[source]
        raw, whole = raws[source]
        frame = prepare(source, raw, tokenize, names, known)
        con.register("raw_frame", frame)
        con.execute("CREATE OR REPLACE TEMP TABLE raw AS SELECT * FROM raw_frame")
        con.unregister("raw_frame")
        con.register("whole_frame", whole)
        con.execute("CREATE OR REPLACE TEMP TABLE whole_files AS SELECT * FROM whole_frame")
        con.unregister("whole_frame")
        con.execute(f"CREATE OR REPLACE TEMP TABLE typed AS {render(HERE / f'bronze_{source}.sql')}")
        # a rejected row repeating, byte for byte, a row of an earlier file of its community (a re-delivered
        # export) is a cross-file duplicate, not a second quarantine row; accepted copies are deduplicated in
        # silver by their record key
        con.execute("""CREATE OR REPLACE TEMP TABLE typed AS
            SELECT t.*, coalesce(d.repeat, false) AND t.reason IS NOT NULL AS cross_dup FROM typed t
            LEFT JOIN (SELECT source_file, source_line, row_number() OVER (
                           PARTITION BY svc_community(source_file), row_hash ORDER BY source_file, source_line) > 1
                           AS repeat
                       FROM raw WHERE NOT in_file_dup) d USING (source_file, source_line)""")
        cols = ", ".join(BRONZE[source].column_names)
        st.bronze_rows = write_dataset(con, lake, BRONZE[source], day,
                                       f"SELECT {cols} FROM typed WHERE reason IS NULL AND NOT in_file_dup",
                                       order_by="source_file, source_line")
        st.quarantined = write_dataset(con, lake, QUARANTINE[source], day,
                                       render(HERE / "quarantine.sql", id_col=QUARANTINE[source].columns[0].name),
                                       order_by="source_file, source_line")
        st.duplicates_in_file = con.execute("SELECT count(*) FROM typed WHERE in_file_dup").fetchall()[0][0]
        st.duplicates_cross_file = con.execute(
            "SELECT count(*) FROM typed WHERE cross_dup AND NOT in_file_dup").fetchall()[0][0]
        st.reasons.update(dict(con.execute("SELECT reason, count(*) FROM typed WHERE reason IS NOT NULL "
                                           "AND NOT in_file_dup AND NOT cross_dup GROUP BY 1").fetchall()))
        if source == "work_orders":
            known = con.sql("SELECT DISTINCT order_id FROM typed WHERE reason IS NULL").pl()
    write_ingest(con, lake, INGEST, day, stats.values())
    return stats


__all__ = ["HEADERS", "LABELS", "RAGGED", "classify", "clean_names", "day_files", "ingest_day",
           "landing_files", "prepare", "read_source", "redact_texts"]
