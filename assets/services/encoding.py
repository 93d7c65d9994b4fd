"""Decode a property-system CSV export whose encoding nobody declared: UTF-8 (BOM stripped) first, then
GB18030; anything else is refused whole, never guessed (GB18030 accepts most bytes, so order matters).

A refused file becomes ONE quarantine record (reason ``undecodable_file``, source_line 0): its rows cannot be
counted without decoding it, so the file itself is the landed record.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

ENCODINGS = ("utf-8", "gb18030")
UNDECODABLE = "undecodable_file"


class UndecodableFile(ValueError):
    """The bytes are neither UTF-8 nor GB18030."""


def decode_bytes(data: bytes) -> tuple[str, str]:
    """``(text, encoding)`` with encoding ``utf-8-sig``, ``utf-8`` or ``gb18030``; raises UndecodableFile.

    Text containing NUL or other C0 controls (other than tab/CR/LF) is refused too: UTF-16 of ASCII is valid
    UTF-8 byte-wise but full of NULs, and a CSV export never holds control characters.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = (("utf-8-sig", data[3:]),)
    else:
        candidates = (("utf-8", data), ("gb18030", data))
    for name, body in candidates:
        try:
            text = body.decode("utf-8" if name != "gb18030" else "gb18030")
        except UnicodeDecodeError:
            continue
        if any(ch in text for ch in _CONTROL):
            break
        return text, name
    raise UndecodableFile("neither UTF-8 nor GB18030")


_CONTROL = frozenset(chr(c) for c in range(32) if c not in (9, 10, 13))


def read_csv_text(text: str, columns: dict[str, str]) -> pl.DataFrame:
    """Parse decoded CSV text as all-string columns renamed by ``columns`` (vendor header -> ours); a
    missing column comes back null (schema drift), an unknown one is dropped. Adds ``source_line``."""
    if not text.strip():
        return pl.DataFrame({c: [] for c in (*columns.values(), "source_line")},
                            schema={**dict.fromkeys(columns.values(), pl.String), "source_line": pl.Int64})
    df = pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False,
                     truncate_ragged_lines=True)
    df = df.rename({c: columns[c.strip()] for c in df.columns if c.strip() in columns})
    return df.select(
        *(pl.col(c) if c in df.columns else pl.lit(None, pl.String).alias(c) for c in columns.values()),
        source_line=pl.int_range(2, pl.len() + 2, dtype=pl.Int64),
    )


def read_file(path: Path, columns: dict[str, str]) -> tuple[pl.DataFrame, str]:
    """Decode and parse one export file; raises UndecodableFile."""
    text, encoding = decode_bytes(path.read_bytes())
    return read_csv_text(text, columns), encoding
