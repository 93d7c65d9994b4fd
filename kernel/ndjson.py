"""Landing NDJSON read in bounded batches with exact line numbers, shared by every line-delimited source.

Polars reads the (gzipped) lines and releases the GIL, so the next batch is read while DuckDB parses the
current one; memory stays flat as the day grows.

**One bad file never fails a source.** Each file is read on its own: a file that cannot be opened,
decompressed or decoded as UTF-8 text (truncated or corrupt gzip, not gzip despite ``.gz``, UTF-16 with or
without a byte-order mark, binary junk, zero bytes, a directory, no read permission) becomes ONE row with
``source_line`` 0, a null ``line`` and a ``file_error`` naming the file and the kind of failure (never its
content). Parsers turn that row into one landed record quarantined as ``unreadable_file``. The fast path is
Polars reading the file; only a file Polars refuses is diagnosed again in Python (bytes of that one file).

**Repeated rejections.** A platform re-delivering a whole file repeats its malformed lines too:
``RepeatedRejections`` flags a rejected record whose line repeats, byte for byte, a rejected line of an
earlier file of the same community and day, so that it is counted as a cross-file duplicate, not quarantined
a second time (its good lines are collapsed across files by silver already).
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import stat
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import polars as pl

UNREADABLE = "unreadable_file"
LINE_SCHEMA = {"source_file": pl.String, "source_line": pl.Int64, "community_id": pl.String, "line": pl.String,
               "file_error": pl.String}
_GZIP_MAGIC = b"\x1f\x8b"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # (UTF-32 LE starts like UTF-16 LE)
_CSV_AS_LINES = dict(has_header=False, separator="\x1f", quote_char=None, new_columns=["line"],
                     schema_overrides={"line": pl.String}, infer_schema=False, raise_if_empty=False,
                     ignore_errors=False, truncate_ragged_lines=True)


class UnreadableFile(ValueError):
    """A landing file that cannot be opened, decompressed or decoded; the message is the kind of failure only."""

    reason = UNREADABLE


def batches(files: list[Path], max_bytes: int) -> Iterator[list[Path]]:
    """Group files so each batch holds about ``max_bytes`` of compressed input (memory stays flat)."""
    batch: list[Path] = []
    size = 0
    for f in files:
        batch.append(f)
        with contextlib.suppress(OSError):  # a dangling link: read_lines quarantines it
            size += f.stat().st_size
        if size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def community_of(path: Path) -> str | None:
    """Feeds are delivered per community: ``<community_id>-<seq>[-tag].ndjson.gz``, or (pulled and pushed files,
    docs/connectors.md) ``<community_id>/pull-….ndjson`` and ``<community_id>/push-….ndjson``."""
    head = path.name.split("-", 1)[0]
    if head.isdigit():
        return head
    return path.parent.name if path.parent.name.isdigit() else None


def _is_gzip_name(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def probe(path: Path) -> None:
    """Cheap checks before a read (one stat, two bytes): raises UnreadableFile for what cannot be a text file."""
    try:
        st = path.stat()
    except OSError as exc:
        raise UnreadableFile(f"cannot be opened ({type(exc).__name__})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableFile("a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFile("not a regular file")
    if st.st_size == 0:
        raise UnreadableFile("zero-byte file")
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
    except OSError as exc:
        raise UnreadableFile(f"cannot be opened ({type(exc).__name__})") from None
    if _is_gzip_name(path) and head != _GZIP_MAGIC:
        raise UnreadableFile("not gzip despite the .gz name")


def _complete_utf8(data: bytes) -> bytes:
    """``data`` without an incomplete UTF-8 character at its very end (a text file cut mid-character): the
    cut line is then malformed like any truncated line, and the lines before it are kept."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b < 0x80:
            return data
        if b >= 0xC0:  # the lead byte of the last character: how long should it be?
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return data[:-back] if need > back else data
    return data


def file_bytes(path: Path) -> bytes:
    """The decompressed bytes of one landing file, checked to be UTF-8 text (a partial last character is
    dropped); raises UnreadableFile. Python-speed: for the files Polars refused and for small documents."""
    probe(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"cannot be read ({type(exc).__name__})") from None
    data = raw
    if _is_gzip_name(path) or raw.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(raw)
        except EOFError:
            raise UnreadableFile("truncated gzip (the compressed stream ends early)") from None
        except (gzip.BadGzipFile, zlib.error, OSError):
            raise UnreadableFile("corrupt gzip (bad header, data or checksum)") from None
    if data.startswith(_UTF16_BOMS):
        raise UnreadableFile("UTF-16 text (byte-order mark), not UTF-8")
    if b"\x00" in data:
        raise UnreadableFile("NUL bytes: UTF-16 without a byte-order mark or binary, not UTF-8 text")
    data = _complete_utf8(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile("not UTF-8 text (binary or another encoding)") from None
    return data.removeprefix(codecs.BOM_UTF8)


def file_text(path: Path) -> str:
    """One landing document as text (``file_bytes`` decoded); raises UnreadableFile."""
    return file_bytes(path).decode("utf-8")


def _split(data: bytes) -> pl.DataFrame:
    """Lines of checked UTF-8 bytes that the CSV reader could not split (e.g. a 0x1F byte in the first line):
    split on LF by Polars string functions, a trailing CR dropped."""
    text = pl.Series("line", [data.decode("utf-8")], dtype=pl.String)
    return text.str.split("\n").explode().str.strip_suffix("\r").to_frame()


def file_lines(path: Path) -> pl.DataFrame:
    """Every physical line of one landing file (column ``line``, blank ones included); raises UnreadableFile.

    Polars reads (and decompresses) the file; when it refuses it, the file is diagnosed byte-wise: a
    decompression or encoding failure is raised, and text Polars could not split is split again."""
    probe(path)
    try:
        text = pl.read_csv(path, **_CSV_AS_LINES)
    except (pl.exceptions.PolarsError, OSError):
        # the reader's message is not kept: it may quote content
        data = file_bytes(path)
        try:
            text = pl.read_csv(io.BytesIO(data), **_CSV_AS_LINES)
        except (pl.exceptions.PolarsError, OSError):
            text = _split(data)
    if text.width == 0:
        return pl.DataFrame(schema={"line": pl.String})
    text = text.select("line")
    # UTF-16 of ASCII text is valid UTF-8 byte-wise, full of NULs; JSON text never holds a raw NUL
    if text["line"].str.contains("\x00", literal=True).any():
        raise UnreadableFile("NUL bytes: UTF-16 without a byte-order mark or binary, not UTF-8 text")
    return text


def unreadable_detail(rel: str, kind: str) -> str:
    return f"{rel}: {kind}; file quarantined whole"


def read_lines(files: list[Path], landing: Path,
               community: Callable[[Path], str | None] = community_of) -> pl.DataFrame:
    """All non-blank lines of the files with their 1-based line numbers, in one Polars frame (``LINE_SCHEMA``).

    A file that cannot be read is one row: source_line 0, line null, ``file_error`` the detail to quarantine.
    """
    frames = []
    for f in files:
        rel = str(f.relative_to(landing))
        try:
            text = file_lines(f)
        except UnreadableFile as exc:
            frames.append(pl.DataFrame({"source_file": [rel], "source_line": [0], "community_id": [community(f)],
                                        "line": [None], "file_error": [unreadable_detail(rel, str(exc))]},
                                       schema=LINE_SCHEMA))
            continue
        frames.append(
            text.select(
                pl.lit(rel).alias("source_file"),
                (pl.int_range(pl.len(), dtype=pl.Int64) + 1).alias("source_line"),
                pl.lit(community(f), dtype=pl.String).alias("community_id"),
                pl.col("line"),
                pl.lit(None, dtype=pl.String).alias("file_error"),
            ).filter(pl.col("line").str.strip_chars() != "")
        )
    if not frames:
        return pl.DataFrame(schema=LINE_SCHEMA)
    return pl.concat(frames)


def line_count(lines: pl.DataFrame) -> tuple[int, int]:
    """(non-blank lines read, files quarantined whole) of a ``read_lines`` frame."""
    bad = int(lines["file_error"].is_not_null().sum())
    return lines.height - bad, bad


def prefetched(file_batches: Iterator[list[Path]], landing: Path) -> Iterator[pl.DataFrame]:
    """Read the next batch's lines (gzip + Polars, GIL released) while DuckDB parses the current one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for batch in file_batches:
            nxt = pool.submit(read_lines, batch, landing)
            if pending is not None:
                yield pending.result()
            pending = nxt
        if pending is not None:
            yield pending.result()


class RepeatedRejections:
    """Rejected lines already quarantined today, per community, as 128-bit hashes (never the text).

    ``flag`` marks, in a records table, every rejected record whose line repeats byte for byte a rejected
    line of an earlier file of the same community (earlier: in an earlier batch, or ranked lower by ``order``
    in this one), setting its ``dup_cross_file``; it returns how many it marked. A line repeated within its
    own file stays quarantined, and the first copy always stays in quarantine. Batches must come in file
    order (``batches`` keeps the sorted order), which makes every file of an earlier batch an earlier file.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, name: str = "rejected_lines_seen") -> None:
        self.con, self.name = con, name
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (community_id VARCHAR, h UHUGEINT)")

    def flag(self, lines: pl.DataFrame | str, records: str = "records", order: str = "source_file") -> int:
        """``lines``: the batch's lines (a frame, or the name of a table) with source_file, source_line,
        community_id and line; ``records``: a table with those keys, ``reason`` and ``dup_cross_file``."""
        con, seen = self.con, self.name
        table = lines if isinstance(lines, str) else "_rr_lines"
        if not isinstance(lines, str):
            con.register(table, lines)
        try:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE _rr_batch AS
                SELECT l.community_id, l.source_file, l.source_line, {order} AS rank, md5_number(l.line) AS h
                FROM {table} l
                SEMI JOIN (SELECT source_file, source_line FROM {records} WHERE reason IS NOT NULL) r
                    USING (source_file, source_line)
                WHERE l.line IS NOT NULL AND l.community_id IS NOT NULL""")
        finally:
            if not isinstance(lines, str):
                con.unregister(table)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _rr_repeats AS
            SELECT b.source_file, b.source_line
            FROM (SELECT *, min(rank) OVER (PARTITION BY community_id, h) AS first_rank FROM _rr_batch) b
            LEFT JOIN {seen} s USING (community_id, h)
            WHERE s.h IS NOT NULL OR b.rank > b.first_rank""")
        n = con.execute(f"""UPDATE {records} SET dup_cross_file = true FROM _rr_repeats p
            WHERE {records}.source_file = p.source_file AND {records}.source_line = p.source_line
                AND {records}.reason IS NOT NULL""").fetchall()[0][0]
        con.execute(f"""INSERT INTO {seen} SELECT DISTINCT community_id, h FROM _rr_batch b
            WHERE NOT EXISTS (SELECT 1 FROM {seen} s WHERE s.community_id = b.community_id AND s.h = b.h)""")
        con.execute("DROP TABLE _rr_batch; DROP TABLE _rr_repeats")
        return int(n)
