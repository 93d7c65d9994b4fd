"""The one PII leak detector every dataset uses: resident IDs, phones, plates, face artefacts and planted
canaries in text, DuckDB relations, Parquet files and whole folders, plus ``redact`` for free text.

Hits never carry a raw identifier (they end up in Dagster metadata and logs); only ``find_identifiers``
returns raw values, for redaction and tests.
"""

from __future__ import annotations

import codecs
import functools
import glob
import gzip
import json
import os
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote as url_quote

import duckdb

from quality.pii_patterns import (
    CANARY_SEPARATOR_CLASS,
    EMBEDDING_LENGTHS,
    FACE_FAMILIES,
    FULLWIDTH,
    HALFWIDTH,
    IDENTIFIER_FAMILIES,
    SQL_ESCAPED_FULLWIDTH,
    SQL_FACE_PATTERNS,
    SQL_IDENTIFIER_FILTER,
    SQL_IDENTIFIER_TOKENS,
    SQL_NAME_HEAD,
    SQL_NUMBER_LIST,
    SQL_UNESCAPES,
    WHOLE_CELL_MAX,
    Family,
    canonical_canary,
    normalise,
)

__all__ = [
    "Canary",
    "Finding",
    "Hit",
    "find_identifiers",
    "load_canaries",
    "redact",
    "scan_duckdb_relation",
    "scan_parquet",
    "scan_text",
    "scan_text_file",
    "scan_tree",
]

# Text is scanned in windows of _CHUNK characters; each window also sees _OVERLAP characters of the next one
# (longer than any detectable artefact prefix, e.g. a 512-float list) and _CONTEXT characters of the previous
# one (for boundary look-behinds and escapes).
_CHUNK = 1 << 20
_OVERLAP = 1 << 16
_CONTEXT = 16
_CANARY_DIR = "_canaries"


@dataclass(frozen=True)
class Hit:
    """One detected leak. ``sample`` is redacted (a short prefix, ``***`` and the length)."""

    kind: str
    location: str
    sample: str


@dataclass(frozen=True)
class Canary:
    """A planted synthetic value (kind: name, phone, resident_id, plate, person_no, card_no, ...)."""

    kind: str
    value: str


@dataclass(frozen=True)
class Finding:
    """A detected identifier with its span in the original text. ``value`` is RAW: never log it."""

    kind: str
    start: int
    end: int
    value: str


def _sample(kind: str, value: str, length: int | None = None) -> str:
    if kind == "face_embedding":
        return value
    n = len(value) if length is None else length
    keep = min(3, n // 4)
    return f"{value[:keep]}***({n})"


# ---------------------------------------------------------------------------------------------------------
# Canaries
class _CanaryIndex:
    """Compiled matchers for a canary list: Python regexes for text, one RE2 alternation for DuckDB."""

    def __init__(self, canaries: Iterable[Canary] = ()) -> None:
        self.kinds: dict[tuple[bool, str], list[str]] = {}
        for c in canaries:
            is_name = c.kind == "name"
            canon = canonical_canary(c.kind, c.value)
            if len(canon) >= 2:
                kinds = self.kinds.setdefault((is_name, canon), [])
                if c.kind not in kinds:
                    kinds.append(c.kind)
        names = sorted((v for is_name, v in self.kinds if is_name), key=len, reverse=True)
        stripped = sorted((v for is_name, v in self.kinds if not is_name), key=len, reverse=True)
        sep = CANARY_SEPARATOR_CLASS + "*"
        self.name_fold = {v.casefold(): v for v in names}
        self.name_rx = re.compile("|".join(map(re.escape, names)), re.IGNORECASE) if names else None
        self.strip_rx = (
            re.compile("|".join(sep.join(map(re.escape, v)) for v in stripped), re.IGNORECASE)
            if stripped
            else None
        )

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def find(self, text: str) -> Iterator[tuple[str, int, int, str]]:
        for rx, is_name in ((self.name_rx, True), (self.strip_rx, False)):
            if rx is None:
                continue
            for m in rx.finditer(text):
                canon = (
                    self.name_fold.get(m.group().casefold(), "")
                    if is_name
                    else canonical_canary("x", m.group())
                )
                for kind in self.kinds.get((is_name, canon), ()):
                    yield f"canary:{kind}", m.start(), m.end(), canon

    def sql_pattern(self) -> str:
        """One RE2 alternation matching every canary in a cell, raw or JSON-escaped, with separators."""
        alternatives = []
        for is_name, canon in self.kinds:
            units = [_re2_unit(ch) for ch in canon]
            alternatives.append("".join(units) if is_name else f"{CANARY_SEPARATOR_CLASS}*".join(units))
        return "(?i:" + "|".join(alternatives) + ")"

    def lookup(self, matched: str) -> Iterator[tuple[str, str]]:
        """(kind, canonical) for a string the SQL pattern extracted."""
        text = normalise(matched).text
        name = self.name_fold.get(unicodedata.normalize("NFKC", text).casefold(), "")
        for is_name, canon in ((True, name), (False, canonical_canary("x", text))):
            for kind in self.kinds.get((is_name, canon), ()):
                yield kind, canon


def _re2_unit(ch: str) -> str:
    if ch.isascii():
        return ch if ch.isalnum() else f"\\x{{{ord(ch):02x}}}"
    return f"(?:{ch}|\\\\u{ord(ch):04x})" if ord(ch) <= 0xFFFF else ch


_NO_CANARIES = _CanaryIndex()
_Add = Callable[[str, str, str, str], None]


def _index(canaries: Iterable[Canary] | _CanaryIndex) -> _CanaryIndex:
    return canaries if isinstance(canaries, _CanaryIndex) else _CanaryIndex(canaries)


def load_canaries(landing_dir: str | Path) -> list[Canary]:
    """Read every ``<landing_dir>/_canaries/*.json`` written by the simulator (deduplicated)."""
    seen: dict[Canary, None] = {}
    for path in sorted(Path(landing_dir).glob(f"{_CANARY_DIR}/*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")).get("canaries", []):
            seen.setdefault(Canary(str(item["kind"]), str(item["value"])), None)
    return list(seen)


# ---------------------------------------------------------------------------------------------------------
# Text
# Public documentation assets of tools we ship (the great-expectations logo in Data Docs pages). Exact
# prefixes only: any other image URL, on any host, is still a hit.
SAFE_IMAGE_URL_PREFIXES = ("https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/",)
# Packages whose static files (logos, icons, CSS) are copied verbatim into our outputs, e.g. Data Docs.
VENDORED_STATIC = (("great_expectations", "render/view/static"),)


def _safe(kind: str, value: str) -> bool:
    return kind == "image_url" and value.startswith(SAFE_IMAGE_URL_PREFIXES)


@functools.cache
def vendored_file_digests() -> frozenset[str]:
    """sha256 of every static file shipped inside the packages in ``VENDORED_STATIC`` (found, not imported).

    A file under ``data/`` that is byte-identical to one of these is a copy of a package's own asset (a
    logo PNG in Data Docs), not data about a person, so the tree scan skips it.
    """
    import hashlib
    import importlib.util

    digests = set()
    for package, sub in VENDORED_STATIC:
        spec = importlib.util.find_spec(package)
        for base in (spec.submodule_search_locations or []) if spec else []:
            for f in Path(base, sub).rglob("*"):
                if f.is_file():
                    digests.add(hashlib.sha256(f.read_bytes()).hexdigest())
    return frozenset(digests)


def _is_vendored(path: Path) -> bool:
    import hashlib

    if path.stat().st_size > 4 * 1024 * 1024:
        return False
    return hashlib.sha256(path.read_bytes()).hexdigest() in vendored_file_digests()


def _find(text: str, index: _CanaryIndex, families: Sequence[Family] | None = None) -> list[Finding]:
    norm = normalise(text)
    found: list[Finding] = []
    for family in IDENTIFIER_FAMILIES + FACE_FAMILIES if families is None else families:
        group = family.group or 0
        for m in family.finditer(norm.text):
            value = family.validate(m.group(group))
            if value is not None and not _safe(family.kind, value):
                found.append(Finding(family.kind, *norm.to_original(*m.span(group)), value))
    if index and families is None:
        for kind, start, end, canon in index.find(norm.text):
            found.append(Finding(kind, *norm.to_original(start, end), canon))
    return found


def find_identifiers(text: str, canaries: Iterable[Canary] = ()) -> list[Finding]:
    """Every identifier, face artefact and canary in ``text`` with its span. Values are raw: do not log."""
    return sorted(_find(text, _index(canaries)), key=lambda f: (f.start, -f.end))


def scan_text(text: str, canaries: Iterable[Canary] = (), *, location: str = "text") -> list[Hit]:
    """Hits in free text (NFKC-normalised and JSON-unescaped first); one hit per distinct value."""
    return _scan_stream([text], location, _index(canaries))


def redact(text: str, canaries: Iterable[Canary] = ()) -> str:
    """Replace every detected identifier (and canary) with ``[REDACTED:<kind>]``."""
    spans: list[list] = []
    for f in find_identifiers(text, canaries):
        if spans and f.start < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], f.end)
        else:
            spans.append([f.start, f.end, f.kind])
    out: list[str] = []
    last = 0
    for start, end, kind in spans:
        out.append(text[last:start])
        out.append(f"[REDACTED:{kind}]")
        last = end
    out.append(text[last:])
    return "".join(out)


def _scan_stream(
    pieces: Iterable[str], location: str, index: _CanaryIndex, seen: dict | None = None
) -> list[Hit]:
    """Scan a stream of text pieces in overlapping windows; one hit per distinct (kind, value).

    Each window is scanned whole but only findings that START in its own part are kept, so nothing is
    reported twice and nothing shorter than ``_OVERLAP`` is cut in half.
    """
    seen = {} if seen is None else seen
    hits: list[Hit] = []
    buf, base, keep_from = "", 0, 0  # buf[:keep_from] is look-behind context from the previous window
    pending: list[str] = []  # joined lazily: repeated str += on a large buffer would be quadratic
    pending_len = 0

    def flush(final: bool) -> None:
        nonlocal buf, base, keep_from
        limit = len(buf) if final else len(buf) - _OVERLAP
        for f in _find(buf, index):
            if keep_from <= f.start < limit and (f.kind, f.value) not in seen:
                seen[(f.kind, f.value)] = None
                hits.append(Hit(f.kind, f"{location}@{base + f.start}", _sample(f.kind, f.value)))
        cut = max(limit - _CONTEXT, 0)
        buf, base, keep_from = buf[cut:], base + cut, limit - cut

    for piece in pieces:
        for i in range(0, len(piece), _CHUNK):
            part = piece[i : i + _CHUNK]
            pending.append(part)
            pending_len += len(part)
            if len(buf) + pending_len >= _CHUNK + _OVERLAP:
                buf += "".join(pending)
                pending.clear()
                pending_len = 0
                flush(final=False)
    buf += "".join(pending)
    flush(final=True)
    return hits


# ---------------------------------------------------------------------------------------------------------
# DuckDB
_SKIP_TYPES = {
    "boolean", "date", "time", "time_ns", "time with time zone", "timestamp", "timestamp_s", "timestamp_ms",
    "timestamp_ns", "timestamp with time zone", "interval", "uuid", "bit", "null", "sqlnull",
    # too small to hold an 11-digit phone; FLOAT (float32) cannot hold one exactly either
    "tinyint", "smallint", "integer", "utinyint", "usmallint", "uinteger", "float",
}  # fmt: skip
_VECTOR_CHILDREN = {"float", "double", "decimal"}
_FACE_KIND = {"jpeg": "face_image", "png": "face_image", "data_uri": "face_image", "image_url": "image_url"}
# Cheap substring tests that must hold before a face regex is worth running on a cell.
_FACE_HINT = {
    "jpeg": "contains(v, '/9j/')",
    "png": "contains(v, 'iVBORw0KGgo')",
    "data_uri": "contains(v, ':')",
    "image_url": "contains(v, '://')",
    "image_bytes": "starts_with(v, '\\x')",
}
_IMAGE_BYTES = r"^(?:\\xFF\\xD8\\xFF|\\x89PNG)"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _source(sql_or_table: str) -> str:
    s = sql_or_table.strip()
    first = s.split(None, 1)[0].lower() if s else ""
    if s.startswith("(") or first in {"select", "with", "from", "values", "pivot", "unpivot", "table"}:
        return f"({s})"
    return s


def _cell_text(q: str, type_id: str) -> str | None:
    """SQL turning one column into scannable VARCHAR, or None when the type cannot hold an identifier."""
    if type_id in _SKIP_TYPES:
        return None
    if type_id in ("double", "decimal"):
        # Only integral values can be a phone or ID stored as a number.
        return f"CASE WHEN {q} = trunc({q}) THEN CAST(TRY_CAST({q} AS HUGEINT) AS VARCHAR) END"
    if type_id == "blob":
        return f"coalesce(try(decode({q})), CAST({q} AS VARCHAR))"
    return f"CAST({q} AS VARCHAR)"


def _normalised_cells() -> str:
    """CTEs normalising cell text: full-width ASCII to half-width, then the JSON escapes that hide digits."""
    unescaped = "v"
    for pattern, repl in SQL_UNESCAPES:
        unescaped = f"regexp_replace({unescaped}, {_lit(pattern)}, {_lit(repl)}, 'g')"
    return (
        # translate() is slow per call, so only cells that hold a full-width character pay for it.
        f"u1 AS (SELECT col, CASE WHEN regexp_matches(v, '[\uff01-\uff5e\u3000]') "
        f"THEN translate(v, {_lit(FULLWIDTH)}, {_lit(HALFWIDTH)}) ELSE v END AS v FROM u0), "
        f"u AS (SELECT col, CASE WHEN contains(v, '\\') THEN {unescaped} ELSE v END AS v FROM u1) "
    )


def scan_duckdb_relation(
    con: duckdb.DuckDBPyConnection,
    sql_or_table: str,
    canaries: Iterable[Canary] = (),
    location: str = "",
) -> list[Hit]:
    """Scan every column of a table, view, table function or query inside DuckDB.

    Rows are prefiltered and candidates extracted with RE2 in SQL; only DISTINCT candidates come back to
    Python for checksum/boundary validation. Face artefacts and canaries are counted entirely in SQL.
    """
    index = _index(canaries)
    src = _source(sql_or_table)
    rel = con.sql(f"SELECT * FROM {src} LIMIT 0")
    text_cols: list[tuple[str, str]] = []
    vector_cols: list[str] = []
    for name, typ in zip(rel.columns, rel.types, strict=True):
        q = _ident(name)
        if typ.id in ("list", "array") and dict(typ.children)["child"].id in _VECTOR_CHILDREN:
            vector_cols.append(name)
            continue
        expr = _cell_text(q, typ.id)
        if expr is not None:
            text_cols.append((name, expr))

    def loc(col: str) -> str:
        return f"{location}::{col}" if location else col

    hits: dict[tuple[str, str, str], Hit] = {}

    def add(kind: str, col: str, sample: str, key: str) -> None:
        hits.setdefault((col, kind, key), Hit(kind, loc(col), sample))

    if vector_cols:
        lengths = ", ".join(map(str, EMBEDDING_LENGTHS))
        aggs = ", ".join(
            f"count(*) FILTER (WHERE len({_ident(c)}) IN ({lengths})), "
            f"max(len({_ident(c)})) FILTER (WHERE len({_ident(c)}) IN ({lengths}))"
            for c in vector_cols
        )
        row = con.execute(f"SELECT {aggs} FROM {src}").fetchall()[0]
        for i, col in enumerate(vector_cols):
            if row[2 * i]:
                add("face_embedding", col, f"float[{row[2 * i + 1]}]", "vector")

    if text_cols:
        names = {f"c{i}": name for i, (name, _) in enumerate(text_cols)}
        cells = f"WITH u0 AS ({_distinct_cells(con, src, text_cols)}), " + _normalised_cells()
        _scan_cells(con, cells, names, index, add)
    return list(hits.values())


# Up to this many rows a source is read once, its columns unpivoted: a branch per column costs ~4 ms of setup
# each (a 27-column file of 3 rows took 114 ms, then 25 ms); beyond, unpivoting every cell before DISTINCT costs
# more than the branches (192k rows × 12 columns: 74 ms by branches, 113 ms unpivoted). Measured 2026-12-07 on a
# 3-community lake: 91 files 5.3 s -> 2.4 s.
UNPIVOT_MAX_ROWS = 50_000


def _distinct_cells(con: duckdb.DuckDBPyConnection, src: str, text_cols: list[tuple[str, str]]) -> str:
    """SQL of the distinct (col, v) pairs of the source's scannable columns (``col`` = ``c<i>``)."""
    rows = None if src.startswith("(") else con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
    if rows is not None and rows <= UNPIVOT_MAX_ROWS:
        projected = ", ".join(f"{expr} AS c{i}" for i, (_, expr) in enumerate(text_cols))
        on = ", ".join(f"c{i}" for i in range(len(text_cols)))
        return f"SELECT DISTINCT col, v FROM (UNPIVOT (SELECT {projected} FROM {src}) ON {on} INTO NAME col VALUE v)"
    # distinct values per column, not every cell: a leak is a value, and most columns repeat a few values
    # millions of times (device types, units, communities); each branch reads one column
    return " UNION ALL ".join(
        f"SELECT DISTINCT 'c{i}' AS col, {expr} AS v FROM {src}" for i, (_, expr) in enumerate(text_cols))


def _scan_cells(
    con: duckdb.DuckDBPyConnection, cells: str, names: dict[str, str], index: _CanaryIndex, add: _Add
) -> None:
    """One pass over every cell: identifier candidates, face artefacts and canary matches per column."""
    filt = _lit(SQL_IDENTIFIER_FILTER)
    extract = ", ".join(f"regexp_extract_all(v, {_lit(t)})" for t in SQL_IDENTIFIER_TOKENS)
    faces = {**SQL_FACE_PATTERNS, "image_bytes": _IMAGE_BYTES}
    n_items = "length(l) - length(replace(l, ',', '')) + 1"
    lengths = ", ".join(map(str, EMBEDDING_LENGTHS))
    per_cell = [
        f"CASE WHEN regexp_matches(v, {filt}) THEN "
        f"list_filter(list_concat({extract}), lambda t: regexp_matches(t, {filt})) END AS toks",
        "CASE WHEN contains(v, '[') THEN list_transform(list_filter("
        f"regexp_extract_all(v, {_lit(SQL_NUMBER_LIST)}), lambda l: {n_items} IN ({lengths})), "
        f"lambda l: {n_items}) END AS emb",
        *(
            f"CASE WHEN {_FACE_HINT[key]} THEN regexp_extract(v, {_lit(pattern)}) ELSE '' END AS m{i}"
            for i, (key, pattern) in enumerate(faces.items())
        ),
    ]
    per_cell.append(
        f"CASE WHEN (contains(v, '\\u') AND regexp_matches(v, {_lit(SQL_ESCAPED_FULLWIDTH)})) "
        f"OR (length(v) <= {WHOLE_CELL_MAX} AND regexp_matches(v, {filt}) "
        f"AND regexp_matches(v, {_lit(SQL_NAME_HEAD)})) THEN v END AS whole"
    )
    per_col = [
        "list_distinct(flatten(list(toks) FILTER (WHERE len(toks) > 0)))",
        "count(*) FILTER (WHERE len(emb) > 0)",
        "max(list_max(emb))",
        *(
            f"count(*) FILTER (WHERE m{i} <> ''), any_value(left(m{i}, 64)) FILTER (WHERE m{i} <> ''), "
            f"max(length(m{i}))"
            for i in range(len(faces))
        ),
    ]
    per_col.append("list_distinct(list(whole) FILTER (WHERE whole IS NOT NULL))")
    if index:
        pattern = _lit(index.sql_pattern())
        per_cell.append(
            f"CASE WHEN regexp_matches(v, {pattern}) THEN regexp_extract_all(v, {pattern}) END AS cms"
        )
        per_col.append("list_distinct(flatten(list(cms) FILTER (WHERE cms IS NOT NULL)))")
    rows = con.execute(
        cells
        + f"SELECT col, {', '.join(per_col)} FROM (SELECT col, {', '.join(per_cell)} FROM u) GROUP BY col"
    ).fetchall()
    n_faces = len(faces)
    for col, tokens, n_emb, emb_len, *rest in rows:
        name = names[col]
        for token in tokens or ():
            for f in _find(token, _NO_CANARIES, IDENTIFIER_FAMILIES):
                add(f.kind, name, _sample(f.kind, f.value), f.value)
        for cell in rest[3 * n_faces] or ():
            for f in _find(cell, _NO_CANARIES):
                add(f.kind, name, _sample(f.kind, f.value), f.value)
        if n_emb:
            add("face_embedding", name, f"float[{emb_len}]", "text")
        for i, key in enumerate(faces):
            count, sample, length = rest[3 * i : 3 * i + 3]
            if count:
                # Drop the boundary character the RE2 pattern had to consume.
                value = re.sub(r"^[^A-Za-z0-9/\\]", "", sample or "")
                kind = _FACE_KIND.get(key, "face_image")
                add(kind, name, _sample(kind, value, length), key)
        if index:
            for matched in rest[-1] or ():
                for kind, canon in index.lookup(matched):
                    add(f"canary:{kind}", name, _sample(kind, canon), canon)


# ---------------------------------------------------------------------------------------------------------
# Files
def _expand(paths: Sequence[str | Path] | str | Path) -> list[Path]:
    if isinstance(paths, str | Path):
        text = str(paths)
        matches = sorted(glob.glob(text, recursive=True)) if glob.has_magic(text) else [text]
        return [Path(p) for p in matches]
    return [Path(p) for p in paths]


def scan_parquet(paths: Sequence[str | Path] | str | Path, canaries: Iterable[Canary] = ()) -> list[Hit]:
    """Scan Parquet files (a list of paths or a glob) column by column in DuckDB; location = file::column.

    Files that share one schema (a lake partition's parts always do) are first scanned together: each distinct
    cell of the partition once, not once per file (a value repeated across parts, a device id, a source line, is
    one cell). A cell that hits in a file hits in the union, so a clean union is the per-file result (no hit);
    only when the union hits are the files scanned one by one, for the hits' file locations. Files whose
    schemas differ are never unioned: a column typed BIGINT in one part and DOUBLE in another would be cast,
    and its digits could change (the union without that test missed an 18-digit ID: test_pii_scan.py). The bronze
    telemetry of 600 communities, 78 parts: 13.3 s -> 4.6 s; its access events, 35 parts: 4.4 s."""
    index = _index(canaries)
    files = _expand(paths)
    hits: list[Hit] = []
    with duckdb.connect() as con:
        listed = ", ".join(_lit(str(p)) for p in files)
        if (len(files) > 1 and _one_schema(con, listed, len(files))
                and not scan_duckdb_relation(con, f"read_parquet([{listed}])", index, location=str(files[0].parent))):
            return []
        for path in files:
            src = f"read_parquet({_lit(str(path))})"
            hits.extend(scan_duckdb_relation(con, src, index, location=str(path)))
    return hits


def _one_schema(con: duckdb.DuckDBPyConnection, listed: str, n_files: int) -> bool:
    """Whether the ``n_files`` Parquet files ``listed`` (SQL literals) have the same columns, in the same order, with
    the same types (from the footers)."""
    try:
        schemas = con.execute(
            "SELECT file_name, list([name, duckdb_type, type, converted_type, logical_type, repetition_type, "
            "CAST(num_children AS VARCHAR)]::VARCHAR ORDER BY column_id, name) "
            f"FROM parquet_schema([{listed}]) GROUP BY file_name").fetchall()
    except duckdb.Error:  # an unreadable footer: the per-file scan reports it as it always did
        return False
    return len(schemas) == n_files and len({tuple(s) for _, s in schemas}) == 1


def scan_text_file(path: str | Path, canaries: Iterable[Canary] = (), *,
                   con: duckdb.DuckDBPyConnection | None = None) -> list[Hit]:
    """A text file (a CSV or JSON export) scanned inside DuckDB: what ``scan_text`` finds, faster.

    The text, decoded as ``scan_text``'s callers decode it (UTF-8, a BOM dropped, bad bytes replaced), is cut into
    the windows ``_scan_stream`` uses (``_CHUNK`` characters plus the next ``_OVERLAP``, and ``_CONTEXT`` before
    for look-behinds) and the windows go through the relation scan: RE2 in SQL on every core, only candidates
    back to Python for validation (a 25 MB CSV export: seconds instead of a minute of Python regexes).
    Locations are ``<path>::text``: a window, not an offset."""
    import pyarrow as pa

    path = Path(path)
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    windows = [text[max(0, i - _CONTEXT): i + _CHUNK + _OVERLAP] for i in range(0, max(len(text), 1), _CHUNK)]
    own = con is None
    con = duckdb.connect() if con is None else con
    try:
        con.register("_text_windows", pa.table({"text": pa.array(windows, pa.large_string())}))
        return scan_duckdb_relation(con, "_text_windows", canaries, location=str(path))
    finally:
        con.unregister("_text_windows")
        if own:
            con.close()


def _scan_duckdb_file(path: Path, index: _CanaryIndex) -> list[Hit]:
    hits: list[Hit] = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.sql(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND NOT temporary ORDER BY ALL"
        ).fetchall()
        for schema, table in tables:
            src = f"{_ident(schema)}.{_ident(table)}"
            hits.extend(scan_duckdb_relation(con, src, index, location=f"{path}::{schema}.{table}"))
    return hits


def _decoded(stream: IO[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while block := stream.read(_CHUNK):
        yield decoder.decode(block)
    yield decoder.decode(b"", final=True)


def _sqlite_tables(path: Path) -> Iterator[tuple[str, Iterator[str]]]:
    """Text of every row of every table, so values split across SQLite overflow pages are still seen."""
    uri = f"file:{url_quote(str(path))}?mode=ro"
    con = sqlite3.connect(uri, uri=True)
    try:
        con.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error:  # e.g. a live WAL database whose -shm we may not write: read the file as-is
        con.close()
        con = sqlite3.connect(uri + "&immutable=1", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = con.execute(f"SELECT * FROM {_ident(table)}")

            def rows(cursor: sqlite3.Cursor = cursor) -> Iterator[str]:
                for row in cursor:
                    yield (
                        "\n".join(
                            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                            for v in row
                            if v is not None
                        )
                        + "\n"
                    )

            yield table, rows()
    finally:
        con.close()


def _scan_file(path: Path, index: _CanaryIndex, con: duckdb.DuckDBPyConnection) -> list[Hit]:
    if _is_vendored(path):
        return []
    with path.open("rb") as fh:
        head = fh.read(16)
    name = path.name.lower()
    if head.startswith(b"PAR1") or name.endswith(".parquet"):
        try:
            src = f"read_parquet({_lit(str(path))})"
            return scan_duckdb_relation(con, src, index, location=str(path))
        except duckdb.Error as exc:
            return [Hit("unscanned", str(path), type(exc).__name__), *_scan_raw(path, index)]
    if head[8:12] == b"DUCK":
        try:
            return _scan_duckdb_file(path, index)
        except duckdb.Error as exc:
            return [Hit("unscanned", str(path), type(exc).__name__), *_scan_raw(path, index)]
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or (
        head.startswith(b"BM") and name.endswith(".bmp")
    ):
        return [Hit("face_image", str(path), f"image***({path.stat().st_size})")]
    if head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as fh:
                return _scan_stream(_decoded(fh), str(path), index)
        except (OSError, EOFError) as exc:
            return [Hit("unscanned", str(path), type(exc).__name__), *_scan_raw(path, index)]
    if head.startswith(b"SQLite format 3\x00"):
        seen: dict = {}
        hits: list[Hit] = []
        try:
            for table, pieces in _sqlite_tables(path):
                hits.extend(_scan_stream(pieces, f"{path}::{table}", index, seen))
        except sqlite3.Error as exc:
            hits.append(Hit("unscanned", f"{path}::sqlite", type(exc).__name__))
        # Raw pages too: deleted rows linger in free pages.
        return hits + _scan_raw(path, index, seen)
    return _scan_raw(path, index)


def _scan_raw(path: Path, index: _CanaryIndex, seen: dict | None = None) -> list[Hit]:
    with path.open("rb") as fh:
        return _scan_stream(_decoded(fh), str(path), index, seen)


def scan_tree(
    root: str | Path, exclude: Sequence[str | Path] = (), canaries: Iterable[Canary] = ()
) -> list[Hit]:
    """Scan every file under ``root``: Parquet and DuckDB via DuckDB, everything else as (decompressed) text.

    ``_canaries`` folders (the canary registry itself) and anything under ``exclude`` are skipped. Files
    that cannot be opened as what they claim to be produce an ``unscanned`` hit, so the scan fails closed.
    """
    index = _index(canaries)
    excluded = [Path(p).resolve() for p in exclude]
    hits: list[Hit] = []
    with duckdb.connect() as con:  # one in-memory connection for every Parquet file (connecting is slow)
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d for d in dirnames if d != _CANARY_DIR and not _is_excluded(here / d, excluded)
            )
            for filename in sorted(filenames):
                path = here / filename
                if path.is_file() and not _is_excluded(path, excluded):
                    try:
                        hits.extend(_scan_file(path, index, con))
                    except OSError as exc:
                        hits.append(Hit("unscanned", str(path), type(exc).__name__))
    return hits


def _is_excluded(path: Path, excluded: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == e or e in resolved.parents for e in excluded)
