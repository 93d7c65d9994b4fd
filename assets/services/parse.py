"""Landing -> bronze + quarantine for the property-services exports: decode (encoding.py), tokenise the
phones, redact free text with the shared PII scanner, type in SQL; every CSV row (or undecodable file) ends in
bronze, quarantine (one reason) or the in-file duplicate count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from assets.services.encoding import UNDECODABLE, UndecodableFile, read_file
from assets.sqlfile import render
from quality.pii_scan import Canary, redact, scan_text
from warehouse.domains.services import BRONZE, INGEST, QUARANTINE, SOURCES
from warehouse.io import write_dataset
from warehouse.lake import Lake

HERE = Path(__file__).parent
LANDING = "property_services"

# vendor header -> our column (HC-style property system exports; documented in docs of the domain)
HEADERS: dict[str, dict[str, str]] = {
    "work_orders": {"工单编号": "order_id", "小区编码": "community_id", "报事类型": "category_raw",
                    "报事渠道": "channel_raw", "报事位置": "location", "问题描述": "description_raw",
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
# raw identifier columns: used in memory for tokens and redaction, never written
RAW_PII = {"work_orders": ("reporter_name", "reporter_phone", "description_raw"),
           "work_order_events": ("note_raw", "reporter_name"), "fee_bills": (),
           "payments": ("payer_name", "payer_phone")}


@dataclass
class SourceStats:
    files: int = 0
    lines: int = 0
    undecodable: int = 0
    bronze_rows: int = 0
    quarantined: int = 0
    duplicates_in_file: int = 0
    encodings: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def landed(self) -> int:
        return self.lines + self.undecodable


def landing_files(landing: Path, day: str, source: str) -> list[Path]:
    return sorted((landing / LANDING / day).glob(f"*/{source}_*.csv"))


def read_source(landing: Path, day: str, source: str, stats: SourceStats) -> tuple[pl.DataFrame, list[str]]:
    """All decodable files of a source as one all-string frame (+ source_file, source_line) and the
    relative paths of the undecodable ones."""
    frames, bad = [], []
    for path in landing_files(landing, day, source):
        rel = str(path.relative_to(landing))
        stats.files += 1
        try:
            df, enc = read_file(path, HEADERS[source])
        except UndecodableFile:
            bad.append(rel)
            stats.undecodable += 1
            continue
        stats.encodings[enc] = stats.encodings.get(enc, 0) + 1
        stats.lines += df.height
        frames.append(df.with_columns(source_file=pl.lit(rel)))
    schema = {**dict.fromkeys(HEADERS[source].values(), pl.String), "source_line": pl.Int64, "source_file": pl.String}
    out = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    return out, bad


def redact_texts(texts: pl.Series, names: pl.Series, canaries: list[Canary]) -> tuple[pl.Series, pl.Series]:
    """Free text with the row's known person name and every scanner finding replaced; plus a flag for
    texts in which the scanner still finds something (those records are quarantined, never written raw).

    Runs once per distinct (text, name) pair: remarks repeat a lot, so this is far fewer calls than rows.
    """
    pairs = pl.DataFrame({"t": texts, "n": names})
    uniq = pairs.unique()
    red, left = [], []
    for t, n in uniq.iter_rows():
        if t is None:
            red.append(None)
            left.append(False)
            continue
        r = t.replace(n, "[REDACTED:name]") if n and len(n) >= 2 else t
        r = redact(r, canaries)
        red.append(r)
        left.append(bool(scan_text(r, canaries)))
    m = uniq.with_columns(r=pl.Series(red, dtype=pl.String), left=pl.Series(left, dtype=pl.Boolean))
    joined = pairs.join(m, on=["t", "n"], how="left", nulls_equal=True, maintain_order="left")
    return joined["r"], joined["left"].fill_null(False)


def prepare(source: str, raw: pl.DataFrame, tokenize: Callable[[pl.Series], pl.Series], canaries: list[Canary],
            reporters: pl.DataFrame | None = None) -> pl.DataFrame:
    """Tokens and redacted text in, raw identifiers out (the frame DuckDB types)."""
    if source == "work_orders":
        desc, left = redact_texts(raw["description_raw"], raw["reporter_name"], canaries)
        raw = raw.with_columns(description=desc, pii_left=left,
                               reporter_token=tokenize(raw["reporter_phone"].str.strip_chars().replace("", None)))
    elif source == "work_order_events":
        assert reporters is not None
        raw = raw.join(reporters, on="order_id", how="left", maintain_order="left")
        note, left = redact_texts(raw["note_raw"], raw["reporter_name"].fill_null(""), canaries)
        raw = raw.with_columns(note=note, pii_left=left, order_known=pl.col("known").fill_null(False)).drop("known")
    elif source == "payments":
        raw = raw.with_columns(payer_token=tokenize(raw["payer_phone"].str.strip_chars().replace("", None)))
    raw = raw.drop([c for c in RAW_PII[source] if c in raw.columns])
    data = [c for c in raw.columns if c not in ("source_line",)]
    return raw.with_columns(in_file_dup=~pl.struct(data).is_first_distinct())


def ingest_day(con: duckdb.DuckDBPyConnection, lake: Lake, landing: Path, day: str, tz: str,
               tokenize: Callable[[pl.Series], pl.Series], canaries: list[Canary]) -> dict[str, SourceStats]:
    """Parse every source of the day and write bronze, quarantine and the ingest audit row per source."""
    stats = {s: SourceStats() for s in SOURCES}
    con.execute(render(HERE / "macros.sql", tz=tz))
    reporters = pl.DataFrame(schema={"order_id": pl.String, "reporter_name": pl.String, "known": pl.Boolean})
    for source in SOURCES:
        st = stats[source]
        raw, bad = read_source(landing, day, source, st)
        if source == "work_orders":
            names = raw.select("order_id", "reporter_name")
        frame = prepare(source, raw, tokenize, canaries, reporters)
        con.register("raw_frame", frame)
        con.execute("CREATE OR REPLACE TEMP TABLE raw AS SELECT * FROM raw_frame")
        con.unregister("raw_frame")
        con.execute(f"CREATE OR REPLACE TEMP TABLE typed AS {render(HERE / f'bronze_{source}.sql')}")
        undecodable = ", ".join(f"('{p}')" for p in bad) or "(NULL)"
        id_col = QUARANTINE[source].columns[0].name
        cols = ", ".join(BRONZE[source].column_names)
        st.bronze_rows = write_dataset(con, lake, BRONZE[source], day,
                                       f"SELECT {cols} FROM typed WHERE reason IS NULL AND NOT in_file_dup",
                                       order_by="source_file, source_line")
        st.quarantined = write_dataset(con, lake, QUARANTINE[source], day, f"""
            SELECT {id_col}, community_id, reason, detail, source_file, source_line FROM typed
            WHERE reason IS NOT NULL AND NOT in_file_dup
            UNION ALL
            SELECT NULL, NULL, '{UNDECODABLE}', 'file is neither UTF-8 nor GB18030; quarantined whole', f, 0
            FROM (VALUES {undecodable}) v(f) WHERE f IS NOT NULL""", order_by="source_file, source_line")
        st.duplicates_in_file = con.execute("SELECT count(*) FROM typed WHERE in_file_dup").fetchall()[0][0]
        st.reasons = dict(con.execute(
            "SELECT reason, count(*) FROM typed WHERE reason IS NOT NULL AND NOT in_file_dup GROUP BY 1").fetchall())
        if bad:
            st.reasons[UNDECODABLE] = len(bad)
        if source == "work_orders":
            accepted = con.sql("SELECT DISTINCT order_id FROM typed WHERE reason IS NULL").pl()
            reporters = names.join(accepted, on="order_id", how="semi").unique("order_id").with_columns(
                known=pl.lit(True))
    rows = ", ".join(
        f"('{s}', {st.files}, {st.lines}, {st.landed}, {st.bronze_rows}, {st.quarantined}, {st.duplicates_in_file}, "
        f"{st.undecodable}, now())" for s, st in stats.items())
    write_dataset(con, lake, INGEST, day, f"""SELECT * FROM (VALUES {rows}) v(source, files, lines, landed,
        bronze_rows, quarantined, duplicates_in_file, undecodable_files, computed_at)""")
    return stats
