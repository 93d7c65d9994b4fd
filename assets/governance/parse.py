"""Governance landing -> bronze + quarantine: decode, split lines, verdicts in SQL, tokenise, redact notices.

Raw identifiers (ID numbers, phones) live only in the step's in-memory DuckDB tables and are replaced by keyed
tokens before anything is written; owner and participant names are never read. Notice bodies are small (a few
per community-day) and are cleaned in Python: HTML tags and entities removed, then identifiers redacted.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from assets.privacy.tokens import Tokenizer, tokenize_duckdb_column
from assets.services.encoding import UNDECODABLE, UndecodableFile, decode_bytes
from assets.sqlfile import run_script
from quality.pii_scan import Canary, find_identifiers
from warehouse.domains import governance as g
from warehouse.io import write_dataset
from warehouse.lake import Lake

HERE = Path(__file__).parent
# landing file name -> (line kind used in the SQL, source, is CSV with a header line)
FILES = {
    "evote_votes.ndjson": ("votes", "votes", False),
    "evote_ballots.ndjson": ("ebal", "ballots", False),
    "paper_ballots.csv": ("paper", "ballots", True),
    "app_notices.ndjson": ("notices", "announcements", False),
    "app_activities.ndjson": ("activities", "activities", False),
    "app_signin.csv": ("signin", "participation", True),
}
SOURCE_TABLES = {"votes": "p_votes", "ballots": "p_ballots", "announcements": "p_notices",
                 "activities": "p_activities", "participation": "p_signin"}
BRONZE = {"votes": g.VOTES_BRONZE, "ballots": g.BALLOTS_BRONZE, "announcements": g.ANNOUNCEMENTS_BRONZE,
          "activities": g.ACTIVITIES_BRONZE, "participation": g.PARTICIPATION_BRONZE}
QUARANTINE = {"votes": g.VOTES_QUARANTINE, "ballots": g.BALLOTS_QUARANTINE,
              "announcements": g.ANNOUNCEMENTS_QUARANTINE, "activities": g.ACTIVITIES_QUARANTINE,
              "participation": g.PARTICIPATION_QUARANTINE}
RECORD_ID = {"votes": "vote_id", "ballots": "ballot_id", "announcements": "notice_id",
             "activities": "activity_id", "participation": "activity_id"}
_LINE_SCHEMA = {"source_file": pl.String, "source_line": pl.Int64, "community_id": pl.String, "kind": pl.String,
                "line": pl.String}


@dataclass
class SourceStats:
    files: int = 0
    lines: int = 0
    landed: int = 0
    bronze_rows: int = 0
    quarantined: int = 0
    duplicates_in_file: int = 0
    face_artefacts_dropped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def landing_files(landing: Path, day: str) -> list[Path]:
    return sorted(p for p in (landing / "governance" / day).glob("*/*") if p.name in FILES)


def read_lines(landing: Path, day: str) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, SourceStats]]:
    """Decoded non-blank data lines of the day's files (CSV headers dropped, physical 1-based line numbers),
    the undecodable files (one record each, source_line 0) and per-source file counts."""
    stats = {s: SourceStats() for s in g.SOURCES}
    frames, bad = [], []
    for path in landing_files(landing, day):
        kind, source, is_csv = FILES[path.name]
        rel = str(path.relative_to(landing))
        stats[source].files += 1
        try:
            text, _ = decode_bytes(path.read_bytes())
        except UndecodableFile:
            bad.append({"source": source, "source_file": rel, "community_id": path.parent.name})
            continue
        lines = pl.Series("line", text.splitlines(), dtype=pl.String)
        df = pl.DataFrame(lines).with_columns(source_line=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
        if is_csv:
            df = df.filter(pl.col("source_line") > 1)
        frames.append(df.filter(pl.col("line").str.strip_chars() != "").with_columns(
            source_file=pl.lit(rel), community_id=pl.lit(path.parent.name), kind=pl.lit(kind)))
    lines = (pl.concat(frames).select(list(_LINE_SCHEMA)) if frames else pl.DataFrame(schema=_LINE_SCHEMA))
    lines = lines.with_columns(dup=~pl.col("line").is_first_distinct().over("source_file"))
    undecodable = pl.DataFrame(bad, schema={"source": pl.String, "source_file": pl.String, "community_id": pl.String})
    return lines, undecodable, stats


# ---- notice text ------------------------------------------------------------------------------------------
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
# a name after a contact label: no scanner finds arbitrary Chinese names, so the label is the signal
_LABELLED_NAME = re.compile(r"((?:联系人|负责人|经办人|业主|联系)[：:]\s*)([\u4e00-\u9fff·]{2,4})")


def clean_text(raw: str | None, canaries: list[Canary]) -> tuple[str | None, int]:
    """Plain text of an HTML fragment with identifiers redacted, and how many were redacted."""
    if raw is None:
        return None, 0
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", raw))).strip()
    text, n_names = _LABELLED_NAME.subn(r"\1[REDACTED:name]", text)
    found = find_identifiers(text, canaries)
    spans: list[list] = []
    for f in found:
        if spans and f.start < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], f.end)
        else:
            spans.append([f.start, f.end, f.kind.split(":")[-1]])
    out, last = [], 0
    for start, end, kind in spans:
        out += [text[last:start], f"[REDACTED:{kind}]"]
        last = end
    out.append(text[last:])
    return "".join(out), n_names + len(spans)


def _clean_notices(con: duckdb.DuckDBPyConnection, canaries: list[Canary]) -> None:
    notes = con.sql("SELECT source_file, source_line, title_raw, body_raw FROM p_notices WHERE reason IS NULL").pl()
    titles = [clean_text(t, canaries) for t in notes["title_raw"].to_list()]
    bodies = [clean_text(b, canaries) for b in notes["body_raw"].to_list()]
    cleaned = pl.DataFrame({
        "source_file": notes["source_file"], "source_line": notes["source_line"],
        "title": [t for t, _ in titles], "body_text": [b for b, _ in bodies],
        "body_redactions": [a + b for (_, a), (_, b) in zip(titles, bodies, strict=True)],
    }, schema_overrides={"title": pl.String, "body_text": pl.String, "body_redactions": pl.Int32})
    con.register("_cleaned", cleaned)
    con.execute("""CREATE OR REPLACE TEMP TABLE p_notices AS
        SELECT n.* EXCLUDE (title_raw, body_raw), c.title, c.body_text, c.body_redactions
        FROM p_notices n LEFT JOIN _cleaned c USING (source_file, source_line)""")
    con.unregister("_cleaned")


# ---- tokens -------------------------------------------------------------------------------------------------
def _token_map(con: duckdb.DuckDBPyConnection, table: str, column: str, id_type: str, tok: Tokenizer, name: str) -> None:
    con.register(f"_{name}_arrow", tokenize_duckdb_column(con, f"SELECT {column} FROM {table}", column, id_type,
                                                          tokenizer=tok))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}_arrow")
    con.unregister(f"_{name}_arrow")


def ingest(con: duckdb.DuckDBPyConnection, lake: Lake, landing: Path, day: str, tz: str, tok: Tokenizer,
           canaries: list[Canary]) -> dict[str, SourceStats]:
    """Parse the day's governance files and write the five bronze and quarantine partitions."""
    lines, undecodable, stats = read_lines(landing, day)
    con.register("lines", lines)
    con.register("undecodable", undecodable)
    for script in ("bronze_votes.sql", "bronze_ballots.sql", "bronze_app.sql"):
        run_script(con, HERE / script, tz=tz)
    _clean_notices(con, canaries)
    _token_map(con, "p_ballots", "id_no", "id_card", tok, "t_id")
    _token_map(con, "p_ballots", "phone", "phone", tok, "t_phone")
    _token_map(con, "p_signin", "phone", "phone", tok, "t_signin")
    extra = {
        "ballots": ("SELECT b.*, coalesce(i.token, p.token) AS owner_token FROM p_ballots b "
                    "LEFT JOIN t_id i ON i.raw = b.id_no LEFT JOIN t_phone p ON p.raw = b.phone"),
        "participation": "SELECT s.*, t.token AS person_token FROM p_signin s LEFT JOIN t_signin t ON t.raw = s.phone",
    }
    for source, table in SOURCE_TABLES.items():
        rel = extra.get(source, f"SELECT * FROM {table}")
        bronze, quarantine = BRONZE[source], QUARANTINE[source]
        st = stats[source]
        st.bronze_rows = write_dataset(con, lake, bronze, day, f"SELECT {', '.join(bronze.column_names)} FROM ({rel}) "
                                       "WHERE reason IS NULL", order_by="source_file, source_line")
        st.quarantined = write_dataset(con, lake, quarantine, day, f"""
            SELECT community_id, {RECORD_ID[source]} AS record_id, reason,
                'rejected at parse: ' || reason AS detail, source_file, source_line
            FROM ({rel}) WHERE reason IS NOT NULL AND reason <> 'duplicate_in_file'
            UNION ALL
            SELECT community_id, NULL, '{UNDECODABLE}', 'bytes are neither UTF-8 nor GB18030; file refused whole',
                source_file, 0 FROM undecodable WHERE source = '{source}'""", order_by="source_file, source_line")
        counts = con.execute(f"SELECT count(*), count(*) FILTER (WHERE reason = 'duplicate_in_file') FROM ({rel})"
                             ).fetchall()[0]
        st.lines = int(counts[0])
        st.duplicates_in_file = int(counts[1])
        n_bad = con.execute(f"SELECT count(*) FROM undecodable WHERE source = '{source}'").fetchall()[0][0]
        st.landed = st.lines + int(n_bad)
        st.reasons = dict(con.execute(
            f"SELECT reason, count(*) FROM ({rel}) WHERE reason IS NOT NULL AND reason <> 'duplicate_in_file' "
            f"GROUP BY 1 UNION ALL SELECT '{UNDECODABLE}', count(*) FROM undecodable WHERE source = '{source}' "
            "HAVING count(*) > 0").fetchall())
    stats["ballots"].face_artefacts_dropped = int(
        con.execute("SELECT count(*) FILTER (WHERE had_face) FROM p_ballots").fetchall()[0][0])
    return stats


def write_ingest_stats(con: duckdb.DuckDBPyConnection, lake: Lake, day: str, stats: dict[str, SourceStats]) -> int:
    rows = ", ".join(
        f"('{s}', {st.files}, {st.lines}, {st.landed}, {st.bronze_rows}, {st.quarantined}, {st.duplicates_in_file}, "
        f"{st.face_artefacts_dropped}, now())" for s, st in stats.items())
    return write_dataset(con, lake, g.INGEST_GOVERNANCE, day, f"SELECT * FROM (VALUES {rows}) AS t(source, files, "
                         "lines, landed, bronze_rows, quarantined, duplicates_in_file, face_artefacts_dropped, "
                         "computed_at)")
