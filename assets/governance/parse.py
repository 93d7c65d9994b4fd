"""Governance landing -> bronze + quarantine: decode, split lines, verdicts in SQL, tokenise, redact free text.

Raw identifiers (ID numbers, phones) live only in the step's in-memory DuckDB tables and are replaced by keyed
tokens before anything is written; owner and participant names are never read. Free text (notice title and
body, vote subject, activity name and location) is small and cleaned in Python: HTML removed, identifiers and
labelled names redacted, and a record whose text is still flagged afterwards is quarantined (pii_unredactable).
Every file of the day folder is accounted for: a name that is not one of the six exports is an unknown_file.
A vote's Civil Code art. 278 item comes from the platform's matter category through matter_categories.csv
(vocabulary.sql); a category that maps to no item quarantines the vote (unmapped_matter), never a guess.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import duckdb
import polars as pl

from assets.governance import datasets as g
from assets.services.encoding import UNDECODABLE, UndecodableFile, decode_bytes, read_landing_bytes
from kernel.accounting import IngestStats
from kernel.io import write_dataset
from kernel.lake import Lake
from kernel.ndjson import UnreadableFile
from kernel.sqlfile import render, run_script
from kernel.tokens import Tokenizer, tokenize_duckdb_column
from quality.pii_scan import find_identifiers, scan_text

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
UNKNOWN_FILE = "unknown_file"
# an unknown file counts under the source whose export name it starts like (evote_ballots_part2.ndjson ->
# ballots); a file like none of them counts under votes, the e-voting feed (documented in the quarantine)
_PREFIX_SOURCE = (("evote_votes", "votes"), ("evote_ballots", "ballots"), ("paper_ballots", "ballots"),
                  ("app_notices", "announcements"), ("app_activities", "activities"), ("app_signin", "participation"))
_UNREADABLE_SCHEMA = {"source": pl.String, "source_file": pl.String, "community_id": pl.String, "reason": pl.String,
                      "detail": pl.String}
BRONZE = {"votes": g.VOTES_BRONZE, "ballots": g.BALLOTS_BRONZE, "announcements": g.ANNOUNCEMENTS_BRONZE,
          "activities": g.ACTIVITIES_BRONZE, "participation": g.PARTICIPATION_BRONZE}
QUARANTINE = {"votes": g.VOTES_QUARANTINE, "ballots": g.BALLOTS_QUARANTINE,
              "announcements": g.ANNOUNCEMENTS_QUARANTINE, "activities": g.ACTIVITIES_QUARANTINE,
              "participation": g.PARTICIPATION_QUARANTINE}
RECORD_ID = {"votes": "vote_id", "ballots": "ballot_id", "announcements": "notice_id",
             "activities": "activity_id", "participation": "activity_id"}
_LINE_SCHEMA = {"source_file": pl.String, "source_line": pl.Int64, "community_id": pl.String, "kind": pl.String,
                "line": pl.String}


def unknown_file_source(name: str) -> str:
    """Accounting source of an unexpected file: the export it is named like, else votes."""
    return next((src for prefix, src in _PREFIX_SOURCE if name.startswith(prefix)), "votes")


def landing_files(landing: Path, day: str) -> list[Path]:
    """Every file under the day folder, at any depth (known exports and anything else)."""
    return sorted(p for p in (landing / "governance" / day).rglob("*") if p.is_file())


def split_lines(text: str) -> pl.Series:
    """Physical lines: split on LF only, a trailing CR stripped. str.splitlines() would also split on U+2028,
    U+2029, U+0085, VT and FF, which are legal inside a JSON string and must not cut a record in two."""
    return pl.Series("line", text.split("\n"), dtype=pl.String).str.strip_suffix("\r")


def read_lines(landing: Path, day: str) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, IngestStats]]:
    """Decoded non-blank data lines of the day's files (CSV headers dropped, physical 1-based line numbers),
    the files refused whole (unreadable, undecodable or unknown name: one record each, source_line 0) and
    per-source file counts."""
    stats = {s: IngestStats(s) for s in g.SOURCES}
    frames, bad = [], []
    day_dir = landing / "governance" / day
    for path in landing_files(landing, day):
        rel = str(path.relative_to(landing))
        community = path.parent.name if path.parent.parent == day_dir else None
        if path.name not in FILES or community is None:
            source = unknown_file_source(path.name)
            stats[source].files += 1
            bad.append({"source": source, "source_file": rel, "community_id": community, "reason": UNKNOWN_FILE,
                        "detail": f"{rel}: file name is not one of the governance exports; file refused whole"})
            continue
        kind, source, is_csv = FILES[path.name]
        stats[source].files += 1
        try:
            text, _ = decode_bytes(read_landing_bytes(path))
        except (UnreadableFile, UndecodableFile) as exc:
            # zero bytes or no read permission (unreadable_file); junk, UTF-16, another encoding (undecodable_file).
            # The messages are generic by construction: never file content
            bad.append({"source": source, "source_file": rel, "community_id": community,
                        "reason": exc.reason if isinstance(exc, UnreadableFile) else UNDECODABLE,
                        "detail": f"{rel}: {exc}; file refused whole"})
            continue
        df = pl.DataFrame(split_lines(text)).with_columns(source_line=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
        if is_csv:
            df = df.filter(pl.col("source_line") > 1)
        frames.append(df.filter(pl.col("line").str.strip_chars() != "").with_columns(
            source_file=pl.lit(rel), community_id=pl.lit(community), kind=pl.lit(kind)))
    lines = (pl.concat(frames).select(list(_LINE_SCHEMA)) if frames else pl.DataFrame(schema=_LINE_SCHEMA))
    lines = lines.with_columns(dup=~pl.col("line").is_first_distinct().over("source_file"))
    return lines, pl.DataFrame(bad, schema=_UNREADABLE_SCHEMA), stats


# ---- free text ----------------------------------------------------------------------------------------------
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
# No scanner finds an arbitrary Chinese name: the contact label is the signal. A name of 2-4 characters after a
# label is redacted; a label still followed by text afterwards (a longer name, a name with a Latin letter) flags
# the record for quarantine. A BARE name without a label cannot be detected and passes: the vendor exports put
# personal names in labelled positions or in name fields, which are never read.
_LABELS = "联系人|负责人|经办人|联络人|业主|联系"
_LABELLED_NAME = re.compile(rf"((?:{_LABELS})[：:]\s*)([\u4e00-\u9fff·]{{2,4}})(?![\u4e00-\u9fff·])")
_DANGLING_LABEL = re.compile(rf"(?:{_LABELS})[：:]\s*(?!\[REDACTED)[\u4e00-\u9fff·A-Za-z]")


def clean_text(raw: str | None) -> tuple[str | None, int, bool]:
    """Plain text of an HTML fragment with identifiers and labelled names redacted, how many were redacted,
    and whether something is still flagged (the record must then be quarantined, never written)."""
    if raw is None:
        return None, 0, False
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", raw))).strip()
    text, n_names = _LABELLED_NAME.subn(r"\1[REDACTED:name]", text)
    # judged before the scanner redacts: a labelled value the rule could not take whole (an over-long name)
    # would otherwise be cut by the scanner's name family and leave its tail in the text
    dangling = bool(_DANGLING_LABEL.search(text))
    spans: list[list] = []
    for f in find_identifiers(text):
        if spans and f.start < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], f.end)
        else:
            spans.append([f.start, f.end, f.kind.split(":")[-1]])
    out, last = [], 0
    for start, end, kind in spans:
        out += [text[last:start], f"[REDACTED:{kind}]"]
        last = end
    out.append(text[last:])
    text = "".join(out)
    return text, n_names + len(spans), bool(dangling or _DANGLING_LABEL.search(text) or scan_text(text))


def clean_series(s: pl.Series) -> pl.DataFrame:
    """clean_text over a column, once per distinct value: columns text, redactions, pii_left (row order kept)."""
    uniq = s.unique(maintain_order=True)
    res = [clean_text(t) for t in uniq.to_list()]
    m = pl.DataFrame({"t": uniq, "text": [r[0] for r in res], "redactions": [r[1] for r in res],
                      "pii_left": [r[2] for r in res]},
                     schema={"t": pl.String, "text": pl.String, "redactions": pl.Int32, "pii_left": pl.Boolean})
    return pl.DataFrame({"t": s}).join(m, on="t", how="left", nulls_equal=True, maintain_order="left").drop("t")


def _clean_table(con: duckdb.DuckDBPyConnection, table: str, fields: dict[str, str], count: str) -> None:
    """Replace the raw text columns ``fields`` (raw -> clean name) of ``table`` by their cleaned text."""
    df = con.sql(f"SELECT source_file, source_line, {', '.join(fields)} FROM {table} WHERE reason IS NULL").pl()
    cols, n, left = [df["source_file"], df["source_line"]], pl.Series([0] * df.height, dtype=pl.Int32), None
    for raw, clean in fields.items():
        c = clean_series(df[raw])
        cols.append(c["text"].alias(clean))
        n = n + c["redactions"]
        left = c["pii_left"] if left is None else left | c["pii_left"]
    cleaned = pl.DataFrame(cols).with_columns(redactions=n, pii_left=left)
    con.register("_cleaned", cleaned)
    try:
        con.execute(render(HERE / "clean_join.sql", table=table, raw=", ".join(fields), count=count,
                           clean=", ".join(f"c.{c}" for c in fields.values())))
    finally:
        con.unregister("_cleaned")


# ---- tokens -------------------------------------------------------------------------------------------------
def _token_map(con: duckdb.DuckDBPyConnection, table: str, column: str, id_type: str, tok: Tokenizer, name: str) -> None:
    con.register(f"_{name}_arrow", tokenize_duckdb_column(con, f"SELECT {column} FROM {table}", column, id_type,
                                                          tokenizer=tok))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}_arrow")
    con.unregister(f"_{name}_arrow")


def load_vocabulary(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table ``matter_categories``: the platform's matter category -> Civil Code art. 278 item."""
    run_script(con, HERE / "vocabulary.sql", dir=HERE)


def ingest(con: duckdb.DuckDBPyConnection, lake: Lake, landing: Path, day: str, tz: str,
           tok: Tokenizer) -> dict[str, IngestStats]:
    """Parse the day's governance files and write the five bronze and quarantine partitions.

    No canary list is passed on purpose: redaction must work on real rules alone, so the zero-hit canary scan
    over the lake is a real test of them."""
    lines, unreadable, stats = read_lines(landing, day)
    con.register("lines", lines)
    con.register("unreadable", unreadable)
    load_vocabulary(con)
    run_script(con, HERE / "bronze_votes.sql", tz=tz)
    _clean_table(con, "p_votes", {"title_raw": "title"}, "text_redactions")
    run_script(con, HERE / "bronze_ballots.sql", tz=tz)
    run_script(con, HERE / "bronze_app.sql", tz=tz)
    _clean_table(con, "p_notices", {"title_raw": "title", "body_raw": "body_text"}, "body_redactions")
    _clean_table(con, "p_activities", {"title_raw": "title", "location_raw": "location"}, "text_redactions")
    run_script(con, HERE / "bronze_signin.sql", tz=tz)
    _token_map(con, "p_ballots", "id_no", "id_card", tok, "t_id")
    _token_map(con, "p_ballots", "phone", "phone", tok, "t_phone")
    _token_map(con, "p_ballots", "room_id", "location", tok, "t_room")
    _token_map(con, "p_signin", "phone", "phone", tok, "t_signin")
    run_script(con, HERE / "bronze_views.sql")
    for source in g.SOURCES:
        bronze, quarantine, st = BRONZE[source], QUARANTINE[source], stats[source]
        rel = f"r_{source}"
        st.bronze_rows = write_dataset(con, lake, bronze, day, f"SELECT {', '.join(bronze.column_names)} FROM {rel} "
                                       "WHERE reason IS NULL", order_by="source_file, source_line")
        st.quarantined = write_dataset(con, lake, quarantine, day,
                                       render(HERE / "quarantine.sql", source=source, record_id=RECORD_ID[source]),
                                       order_by="source_file, source_line")
        lines_n, dup_n = con.execute(f"SELECT count(*), count(*) FILTER (WHERE reason = 'duplicate_in_file') "
                                     f"FROM {rel}").fetchall()[0]
        st.lines, st.duplicates_in_file = int(lines_n), int(dup_n)
        st.landed = st.lines + unreadable.filter(pl.col("source") == source).height
        st.reasons.update(dict(con.execute(render(HERE / "reasons.sql", source=source)).fetchall()))
    stats["ballots"].counters["face_artefacts_dropped"] = int(
        con.execute("SELECT count(*) FILTER (WHERE had_face) FROM p_ballots").fetchall()[0][0])
    return stats
