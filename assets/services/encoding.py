"""Decode and parse a property-system CSV export whose encoding nobody declared: UTF-8 (BOM stripped) first,
then GB18030; anything else is refused whole, never guessed (GB18030 accepts most bytes, so order matters).

A refused file becomes ONE quarantine record (source_line 0): its rows cannot be counted without decoding
and parsing it, so the file itself is the landed record. Reasons: ``unreadable_file`` (cannot be opened, a
zero-byte file: ``kernel.ndjson.UnreadableFile``), ``undecodable_file`` (bytes: binary junk, UTF-16 with or
without a byte-order mark, another encoding), ``unparseable_file`` (CSV structure, e.g. an unclosed quote),
``unknown_header`` (no known id column, e.g. Big5 mojibake without private-use characters). A file cut in the
middle of a character (a truncated transfer) loses only that partial character: its complete rows are read
and the cut row is judged like any other. Exceptions raised here never carry file content: the CSV
parser's own message quotes the offending row (names, phones), so it is dropped, not chained.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import polars as pl

from kernel.ndjson import UnreadableFile, probe

ENCODINGS = ("utf-8", "gb18030")
UNDECODABLE = "undecodable_file"
UNPARSEABLE = "unparseable_file"
UNKNOWN_HEADER = "unknown_header"
RAGGED = "ragged_row"
# marks a row with more fields than the header (column added by read_csv_text)
RAGGED_COLUMN = "ragged"


class UndecodableFile(ValueError):
    """The bytes are neither UTF-8 nor GB18030 (or decode to private-use / control characters)."""

    reason = UNDECODABLE


class UnparseableFile(ValueError):
    """The text is not a CSV the parser can read. Never carries the parser's message (it quotes rows)."""

    reason = UNPARSEABLE


class UnknownHeader(ValueError):
    """The header names none of the source's key columns: a foreign or mis-decoded export."""

    reason = UNKNOWN_HEADER


_CONTROL = frozenset(chr(c) for c in range(32) if c not in (9, 10, 13))


def _refused(text: str) -> bool:
    """C0 controls (UTF-16 read as UTF-8) or private-use characters (Big5/EUC-KR/Shift-JIS read as GB18030,
    which maps their byte pairs into U+E000-U+F8FF) mean the guess was wrong."""
    if any(ch in text for ch in _CONTROL):
        return True
    return any("\ue000" <= ch <= "\uf8ff" for ch in text)


def _decode_complete(body: bytes, codec: str) -> str:
    """``body`` decoded, an incomplete character at its very end (a file cut mid-character) dropped; any other
    invalid sequence raises UnicodeDecodeError."""
    return codecs.getincrementaldecoder(codec)().decode(body, final=False)


def decode_bytes(data: bytes) -> tuple[str, str]:
    """``(text, encoding)`` with encoding ``utf-8-sig``, ``utf-8`` or ``gb18030``; raises UndecodableFile.

    Text containing NUL or other C0 controls (other than tab/CR/LF) is refused too: UTF-16 of ASCII is valid
    UTF-8 byte-wise but full of NULs, and a CSV export never holds control characters. So is text with
    private-use characters: a Big5, EUC-KR or Shift-JIS file "decodes" as GB18030 into them. A partial last
    character (a truncated file) is dropped rather than refusing the file or falling back to GB18030.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UndecodableFile("UTF-16 text (byte-order mark): neither UTF-8 nor GB18030")
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = (("utf-8-sig", data[3:]),)
    else:
        candidates = (("utf-8", data), ("gb18030", data))
    for name, body in candidates:
        try:
            text = _decode_complete(body, "utf-8" if name != "gb18030" else "gb18030")
        except UnicodeDecodeError:
            continue
        if _refused(text):
            break
        return text, name
    if b"\x00" in data:
        raise UndecodableFile("NUL bytes (UTF-16 without a byte-order mark, or binary): neither UTF-8 nor GB18030")
    raise UndecodableFile("neither UTF-8 nor GB18030")


def read_landing_bytes(path: Path) -> bytes:
    """The bytes of one landing file; raises UnreadableFile (reason ``unreadable_file``) for a file that cannot
    be opened or read, a directory and a zero-byte file (nothing was delivered, not even a header)."""
    probe(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"cannot be read ({type(exc).__name__})") from None


def _parse(text: str, width: int) -> pl.DataFrame | None:
    """All-string frame with ``width`` positional columns (row 0 = header), or None when the CSV parser
    fails. Returns instead of raising so that no exception (whose message quotes rows) is ever chained."""
    try:
        return pl.read_csv(io.BytesIO(text.encode("utf-8")), has_header=False, infer_schema=False,
                           schema={f"c{i}": pl.String for i in range(width)}, missing_columns="insert",
                           truncate_ragged_lines=True)
    except Exception:  # noqa: BLE001 - any parser failure refuses the file; its message is PII-bearing
        return None


def read_csv_text(text: str, columns: dict[str, str], required: tuple[str, ...] = ()) -> pl.DataFrame:
    """Parse decoded CSV text as all-string columns renamed by ``columns`` (vendor header -> ours); a
    missing column comes back null (schema drift), an unknown one is dropped. Adds ``source_line`` and
    ``ragged`` (the row has more fields than the header; its values are kept only to count it).

    Raises UnparseableFile (without the parser's message) and UnknownHeader (a vendor column named in
    ``required`` is absent).
    """
    names = list(columns.values())
    empty = pl.DataFrame(schema={**dict.fromkeys(names, pl.String), "source_line": pl.Int64,
                                 RAGGED_COLUMN: pl.Boolean})
    if not text.strip():
        return empty
    head = _parse(text.split("\n", 1)[0], 1024)
    if head is None or head.height == 0:
        raise UnparseableFile("the CSV header cannot be parsed")
    header = list(head.row(0))
    while header and header[-1] is None:  # the wide probe pads the header with nulls
        header.pop()
    width = len(header) + 1  # one spare column catches rows with extra fields
    df = _parse(text, width)
    if df is None:
        raise UnparseableFile("the CSV cannot be parsed (unclosed quote or broken structure)")
    named = [(h or "").strip() for h in header]
    missing = [c for c in required if c not in named]
    if missing:
        raise UnknownHeader("the header names none of the expected key columns")
    df = df.slice(1)
    pos = {h: f"c{i}" for i, h in reversed(list(enumerate(named))) if h}
    return df.select(
        *(pl.col(pos[v]).alias(ours) if v in pos else pl.lit(None, pl.String).alias(ours)
          for v, ours in columns.items()),
        source_line=pl.int_range(2, pl.len() + 2, dtype=pl.Int64),
        **{RAGGED_COLUMN: pl.col(f"c{width - 1}").is_not_null()},
    )


def read_file(path: Path, columns: dict[str, str], required: tuple[str, ...] = ()) -> tuple[pl.DataFrame, str]:
    """Decode and parse one export file; raises UnreadableFile, UndecodableFile, UnparseableFile or
    UnknownHeader."""
    text, encoding = decode_bytes(read_landing_bytes(path))
    return read_csv_text(text, columns, required), encoding
