"""Identifier patterns, validators and text normalisation for the PII scanner.

Every family is written once here in two flavours: Python ``re`` (exact, on normalised text) and DuckDB RE2
(a looser superset used to prefilter rows in SQL), so the in-database prefilter can never be stricter.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
EMBEDDING_LENGTHS = (128, 256, 512)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
# Legacy 15-digit IDs have no checksum, so only province prefixes in use by GB/T 2260 are accepted.
ID15_PROVINCES = tuple(
    str(code)
    for code in (*range(11, 16), 21, 22, 23, *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66))
)
# Separators stripped before comparing canaries; the class is valid in both Python re and RE2.
CANARY_SEPARATOR_CLASS = r"[ \t\r\n\f\v·•・._\-]"

# ---------------------------------------------------------------------------------------------------------
# Shared cores (valid in both Python re and RE2)
_DATE8 = r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_DATE6 = r"[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
ID18_CORE = rf"[1-9][0-9]{{5}}[ \-]?{_DATE8}[ \-]?[0-9]{{3}}[0-9Xx]"
ID15_CORE = rf"(?:{'|'.join(ID15_PROVINCES)})[0-9]{{4}}{_DATE6}[0-9]{{3}}"
# Masked phones (138****5678) are deliberately not matched: masking is the approved display form.
PHONE_CORE = r"(?:(?:\+|00)?86[ \-]?)?1[3-9][0-9](?:[0-9]{8}|[ .\-][0-9]{4}[ .\-][0-9]{4})"
_PLATE_SEP = "[ ·•・\\-]"
_PLATE_SUFFIX = "(?:[警学挂港澳领试]|应急)"
_NUM = r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
NUMBER_LIST = rf"\[\s*{_NUM}(?:\s*,\s*{_NUM})*\s*\]"
JPEG_B64 = r"/9j/[A-Za-z0-9+/]{100,}"
PNG_B64 = r"iVBORw0KGgo[A-Za-z0-9+/]{20,}"
DATA_URI = r"(?i:data:image/[a-z0-9.+\-]+;base64,)"
_URL_CHAR = "[^\\s\"'<>\\\\]"
_IMAGE_HINT = r"(?:\.(?:jpe?g|png|bmp)|[/?&=](?:pics?|faces?|pictures?))"

# ---------------------------------------------------------------------------------------------------------
# Python flavour: applied to NFKC-normalised, JSON-unescaped text. Boundaries: no ASCII letter/digit on
# either side, and no decimal point joining a digit (so 0.13800138000 is a float, not a phone); a trailing
# ".0" is still a leak (pandas writes integer columns with nulls as 13800138000.0).
_PRE = r"(?<![0-9A-Za-z])(?<![0-9]\.)"
_POST = r"(?![0-9A-Za-z])(?!\.0*[1-9])"
_END = r"(?![0-9A-Za-z])"
_PY_PLATE = (
    rf"[Ww][Jj][{PROVINCES}]{_PLATE_SEP}?[0-9A-Za-z]{{4,5}}{_END}"
    rf"|[{PROVINCES}][A-Za-z]{_PLATE_SEP}?(?:[0-9A-Za-z]{{4,5}}{_PLATE_SUFFIX}|[0-9A-Za-z]{{5,6}}{_END})"
    rf"|使[0-9]{{6}}{_END}"
)

# ---------------------------------------------------------------------------------------------------------
# DuckDB (RE2) flavour, applied after full-width ASCII is translated and \uFF1x / \n escapes are undone in
# SQL. RE2 has no lookaround, so boundaries are consumed; that is fine because it is only used as a row
# filter (regexp_matches) and every candidate is re-checked in Python.


def _sql_chars(chars: str) -> str:
    """RE2 for one of ``chars``, raw or as a JSON ``\\uXXXX`` escape (any hex case)."""
    escaped = "|".join(f"{ord(c):04x}" for c in chars)
    return f"(?:[{chars}]|\\\\u(?i:{escaped}))"


_SQL_PROV = _sql_chars(PROVINCES)
_SQL_SUFFIX = f"(?:{_sql_chars('警学挂港澳领试')}|{_sql_chars('应')}{_sql_chars('急')})"
_SQL_LETTER = "(?:[A-Za-z]|\\\\u[fF][fF](?:2[1-9a-fA-F]|3[0-9aA]|4[1-9a-fA-F]|5[0-9aA]))"
_SQL_ALNUM = f"(?:[0-9]|{_SQL_LETTER})"
_SQL_B0 = r"(?:^|[^0-9A-Za-z]|\\u[0-9a-fA-F]{4})"
_SQL_B1 = r"(?:$|[^0-9A-Za-z])"
_SQL_PLATE_CORE = (
    f"(?:(?:[Ww]|\\\\u[fF][fF][35]7)(?:[Jj]|\\\\u[fF][fF][24][aA]){_SQL_PROV}{_PLATE_SEP}?{_SQL_ALNUM}{{4,5}}"
    f"|{_SQL_PROV}{_SQL_LETTER}{_PLATE_SEP}?{_SQL_ALNUM}{{4,6}}"
    f"|{_sql_chars('使')}[0-9]{{6}})"
)
# Context characters kept around a candidate so Python can re-check boundaries and undo escapes.
_SQL_CTX = r"[0-9A-Za-z.\\]*"
SQL_IDENTIFIER_FILTER = (
    f"{_SQL_B0}(?:{ID18_CORE}|{ID15_CORE}|{PHONE_CORE}){_SQL_B1}|{_SQL_PLATE_CORE}(?:{_SQL_SUFFIX}|{_SQL_B1})"
)
# Candidates are extracted per family group: one regexp_extract_all pass cannot return overlapping matches,
# and a plate's serial may overlap the first group of a spaced ID ("沪W 110000 20000101 0000").
SQL_IDENTIFIER_TOKENS = (
    f"{_SQL_CTX}(?:{ID18_CORE}|{ID15_CORE}|{PHONE_CORE}){_SQL_CTX}",
    f"{_SQL_CTX}{_SQL_PLATE_CORE}{_SQL_SUFFIX}?{_SQL_CTX}",
)
SQL_FACE_PATTERNS: dict[str, str] = {
    "jpeg": f"(?:^|[^A-Za-z0-9+/]){JPEG_B64}",
    "png": f"(?:^|[^A-Za-z0-9+/]){PNG_B64}",
    "data_uri": DATA_URI,
    "image_url": f"(?i:https?://{_URL_CHAR}*?{_IMAGE_HINT}(?:$|[^A-Za-z0-9_\\-]))",
}
SQL_NUMBER_LIST = NUMBER_LIST
# Undo the JSON escapes that hide digits and separators from the SQL patterns (full-width digits, Ｘ/ｘ,
# \n-style whitespace, slashes, plate/phone separators). Province characters and letters stay escaped
# and are matched as such.
SQL_UNESCAPES: tuple[tuple[str, str], ...] = (
    (r"\\u[fF][fF]1([0-9])", r"\1"),
    (r"\\u[fF][fF][35]8", "X"),
    (r"\\[nrtbf]", " "),
    (r"\\/", "/"),
    (r"\\u00[bB]7", "·"),
    (r"\\u2022", "•"),
    (r"\\u30[fF][bB]", "・"),
    (r"\\u3000", " "),
    (r"\\u[fF][fF]0[bB]", "+"),
    (r"\\u[fF][fF]0[dD]", "-"),
    (r"\\u[fF][fF]0[eE]", "."),
)
FULLWIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALFWIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "


# ---------------------------------------------------------------------------------------------------------
# Validators: take the normalised match text, return the canonical value or None.
def _strip(value: str) -> str:
    return re.sub(r"[ .\-·•・]", "", value).upper()


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def id18_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID."""
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def validate_id18(text: str) -> str | None:
    value = _strip(text)
    if len(value) != 18 or not value[:17].isdigit():
        return None
    year, month, day = int(value[6:10]), int(value[10:12]), int(value[12:14])
    if not (1900 <= year <= 2099 and _valid_date(year, month, day)):
        return None
    return value if id18_check_char(value[:17]) == value[17] else None


def validate_id15(text: str) -> str | None:
    value = _strip(text)
    if len(value) != 15 or not value.isdigit():
        return None
    ok = _valid_date(1900 + int(value[6:8]), int(value[8:10]), int(value[10:12]))
    return value if ok else None


def validate_phone(text: str) -> str | None:
    digits = re.sub(r"[^0-9]", "", text)
    return digits[-11:] if len(digits) >= 11 else None


def validate_plate(text: str) -> str | None:
    value = _strip(text)
    # A real serial has at least 3 digits (at most 2 letters); 2 leaves room for OCR I/O confusion while
    # rejecting words such as "苏Android".
    serial = value[3:] if value.startswith("WJ") else value[1:] if value.startswith("使") else value[2:]
    return value if sum(ch.isdigit() for ch in serial) >= 2 else None


def validate_embedding(text: str) -> str | None:
    n = text.count(",") + 1
    return f"float[{n}]" if n in EMBEDDING_LENGTHS else None


def _identity(text: str) -> str | None:
    return text


@dataclass(frozen=True)
class Family:
    kind: str
    pattern: re.Pattern[str]
    validate: Callable[[str], str | None]
    # Cheap necessary condition (a literal or character class) that skips the full pattern on most text.
    hint: re.Pattern[str] | None = None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if self.hint is None or self.hint.search(text):
            yield from self.pattern.finditer(text)


IDENTIFIER_FAMILIES: tuple[Family, ...] = (
    Family("resident_id", re.compile(_PRE + ID18_CORE + _POST), validate_id18),
    Family("resident_id_15", re.compile(_PRE + ID15_CORE + _POST), validate_id15),
    Family("phone", re.compile(_PRE + PHONE_CORE + _POST), validate_phone),
    Family("plate", re.compile(_PY_PLATE), validate_plate, re.compile(f"[{PROVINCES}使]")),
)
FACE_FAMILIES: tuple[Family, ...] = (
    Family("face_image", re.compile(r"(?<![A-Za-z0-9+/])" + JPEG_B64), _identity, re.compile("/9j/")),
    Family("face_image", re.compile(r"(?<![A-Za-z0-9+/])" + PNG_B64), _identity, re.compile("iVBORw0KGgo")),
    Family("face_image", re.compile(DATA_URI + r"[A-Za-z0-9+/=]*"), _identity, re.compile("(?i);base64,")),
    Family(
        "image_url",
        re.compile(f"(?i:https?://{_URL_CHAR}*?{_IMAGE_HINT}(?![A-Za-z0-9_\\-]){_URL_CHAR}*)"),
        _identity,
        re.compile("://"),
    ),
    Family("face_embedding", re.compile(NUMBER_LIST), validate_embedding, re.compile(r"\[")),
)


# ---------------------------------------------------------------------------------------------------------
# Normalisation with an offset map back to the original text (needed by redact and chunked scans).
_SPECIAL = re.compile(
    r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    r"|\\u([0-9a-fA-F]{4})"
    r"|\\([nrtbf/])"
    r"|[^\x00-\x7f]+"
)
_ESCAPED_WS = {"n": " ", "r": " ", "t": " ", "b": " ", "f": " ", "/": "/"}


@dataclass(frozen=True)
class NormalisedText:
    """``text`` after JSON-unescaping and NFKC, plus the replaced pieces to map offsets back."""

    text: str
    pieces: tuple[tuple[int, int, int, int], ...] = ()  # (norm_start, norm_end, orig_start, orig_end)
    starts: tuple[int, ...] = ()  # norm_start of each piece, for bisect

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        if not self.pieces:
            return start, end
        return self._map(start, is_end=False), self._map(end, is_end=True)

    def _map(self, pos: int, *, is_end: bool) -> int:
        starts = self.starts
        i = (bisect.bisect_left(starts, pos) if is_end else bisect.bisect_right(starts, pos)) - 1
        if i < 0:
            return pos
        n_start, n_end, o_start, o_end = self.pieces[i]
        if pos < n_end or (is_end and pos == n_end):
            return o_end if is_end else o_start
        return o_end + (pos - n_end)


def _decode_escape(m: re.Match[str]) -> str | None:
    if m.group(1):
        high, low = int(m.group(1), 16), int(m.group(2), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    if m.group(3):
        code = int(m.group(3), 16)
        return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)
    if m.group(4):
        return _ESCAPED_WS[m.group(4)]
    return None


def normalise(text: str) -> NormalisedText:
    """JSON-unescape ``\\uXXXX``/``\\n``-style sequences and NFKC-normalise, keeping an offset map."""
    if "\\" not in text and (text.isascii() or unicodedata.is_normalized("NFKC", text)):
        return NormalisedText(text)
    out: list[str] = []
    pieces: list[tuple[int, int, int, int]] = []
    last = 0
    n_pos = 0
    for m in _SPECIAL.finditer(text):
        if m.start() > last:
            out.append(text[last : m.start()])
            n_pos += m.start() - last
        decoded = _decode_escape(m)
        if decoded is not None:
            replacement = unicodedata.normalize("NFKC", decoded)
            out.append(replacement)
            pieces.append((n_pos, n_pos + len(replacement), m.start(), m.end()))
            n_pos += len(replacement)
        else:
            run = m.group(0)
            if unicodedata.is_normalized("NFKC", run):
                out.append(run)
                n_pos += len(run)
            else:
                for offset, ch in enumerate(run):
                    norm = unicodedata.normalize("NFKC", ch)
                    out.append(norm)
                    if norm != ch:
                        o = m.start() + offset
                        pieces.append((n_pos, n_pos + len(norm), o, o + 1))
                    n_pos += len(norm)
        last = m.end()
    out.append(text[last:])
    return NormalisedText("".join(out), tuple(pieces), tuple(p[0] for p in pieces))


def canonical_canary(kind: str, value: str) -> str:
    """Names compare as NFKC substrings; every other kind with separators stripped and upper-cased."""
    norm = unicodedata.normalize("NFKC", value).strip()
    if kind == "name":
        return norm
    return re.sub(CANARY_SEPARATOR_CLASS, "", norm).upper()
