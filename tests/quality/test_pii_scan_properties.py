"""Property tests for the PII scanner: any valid ID, phone or plate, however it is mutated (case, full-width,
separators) and wherever it is embedded (Chinese/English text, JSON, CSV, Parquet), is found with its kind."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quality.pii_patterns import ID15_PROVINCES, PROVINCES, id18_check_char
from quality.pii_scan import find_identifiers, redact, scan_duckdb_relation, scan_text

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERIAL_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"
ZH_FILLER = ["住户", "登记", "车辆进入", "小区东门", "访客", "联系方式", "备注：", "报修", "物业"]
EN_FILLER = ["resident", "visitor at gate", "note:", "contact", "work order", "Block 7"]
BOUNDARIES = [" ", "，", "。", "\n", "：", "; ", "\t", "（", "）"]
# One connection for all examples (connecting costs ~0.1 s); scan_parquet is this call per file.
CON = duckdb.connect()


def scan_parquet_file(path: Path) -> list[tuple[str, str]]:
    hits = scan_duckdb_relation(CON, f"read_parquet('{path}')", location=str(path))
    return [(h.kind, h.location) for h in hits]


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


@st.composite
def resident_ids(draw: st.DrawFn) -> tuple[str, str, str]:
    """(kind, canonical value, mutated rendering)."""
    if draw(st.integers(0, 9)) == 0:  # legacy 15-digit
        birth = draw(st.dates(dt.date(1900, 1, 1), dt.date(1999, 12, 31)))
        value = (
            draw(st.sampled_from(ID15_PROVINCES))
            + f"{draw(st.integers(0, 9999)):04d}{birth:%y%m%d}{draw(st.integers(0, 999)):03d}"
        )
        return "resident_id_15", value, value
    region = draw(st.integers(110000, 659999))
    birth = draw(st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)))
    body = f"{region:06d}{birth:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    value = body + id18_check_char(body)
    text = value.lower() if draw(st.booleans()) else value
    sep = draw(st.sampled_from(["", "", " ", "-"]))
    text = f"{text[:6]}{sep}{text[6:14]}{sep}{text[14:]}"
    return "resident_id", value, text


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str, str]:
    value = draw(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
    sep = draw(st.sampled_from(["", " ", "-", "."]))
    text = f"{value[:3]}{sep}{value[3:7]}{sep}{value[7:]}" if sep else value
    prefix = draw(st.sampled_from(["", "", "+86", "+86 ", "0086", "0086-", "86"]))
    return "phone", value, prefix + text


@st.composite
def plates(draw: st.DrawFn) -> tuple[str, str, str]:
    prov = draw(st.sampled_from(PROVINCES))
    letter = draw(st.sampled_from(SERIAL_LETTERS))
    family = draw(st.sampled_from(["ordinary", "nev_small", "nev_large", "suffix", "wj", "embassy"]))
    digits = st.text(DIGITS, min_size=1, max_size=1)
    alnum = st.sampled_from(SERIAL_LETTERS + DIGITS)
    if family == "ordinary":  # 5 serial characters, at most 2 letters
        chars = [draw(digits) for _ in range(5)]
        for i in draw(st.lists(st.integers(0, 4), max_size=2, unique=True)):
            chars[i] = draw(st.sampled_from(SERIAL_LETTERS))
        serial = "".join(chars)
    elif family == "nev_small":
        serial = draw(st.sampled_from("DF")) + draw(alnum) + "".join(draw(digits) for _ in range(4))
    elif family == "nev_large":
        serial = "".join(draw(digits) for _ in range(5)) + draw(st.sampled_from("DF"))
    elif family == "suffix":
        serial = draw(alnum) + "".join(draw(digits) for _ in range(3)) + draw(st.sampled_from("警学挂港澳领"))
    if family == "wj":
        value = f"WJ{prov}" + "".join(draw(digits) for _ in range(5))
        return "plate", value, value
    if family == "embassy":
        value = "使" + "".join(draw(digits) for _ in range(6))
        return "plate", value, value
    value = prov + letter + serial
    sep = draw(st.sampled_from(["", "", "·", "•", "-", " "]))
    text = prov + letter + sep + serial
    return "plate", value, text.lower() if draw(st.booleans()) else text


identifiers = st.one_of(resident_ids(), phones(), plates())


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str, str]:
    kind, value, text = draw(identifiers)
    if draw(st.booleans()):
        text = fullwidth(text)
    return kind, value, text


@st.composite
def free_text(draw: st.DrawFn) -> tuple[str, str, str]:
    kind, value, text = draw(mutated())
    filler = st.lists(st.sampled_from(ZH_FILLER + EN_FILLER), max_size=4).map(" ".join)
    before, after = draw(filler), draw(filler)
    left, right = draw(st.sampled_from(BOUNDARIES)), draw(st.sampled_from(BOUNDARIES))
    return kind, value, f"{before}{left}{text}{right}{after}"


def found(text: str, kind: str, value: str) -> bool:
    return any(f.kind == kind and f.value == value for f in find_identifiers(text))


@SETTINGS
@given(free_text())
def test_every_planted_identifier_is_found_in_free_text(case: tuple[str, str, str]) -> None:
    kind, value, text = case
    assert found(text, kind, value), text
    assert kind in {h.kind for h in scan_text(text)}


@SETTINGS
@given(free_text())
def test_redacted_text_has_no_hits_left(case: tuple[str, str, str]) -> None:
    _, _, text = case
    redacted = redact(text)
    assert scan_text(redacted) == [], redacted
    assert "[REDACTED:" in redacted


@SETTINGS
@given(free_text(), st.booleans())
def test_every_planted_identifier_is_found_in_json(case: tuple[str, str, str], ascii_only: bool) -> None:
    kind, value, text = case
    document = json.dumps(
        {"event": "gate_pass", "note": text, "nested": [{"raw": text}]}, ensure_ascii=ascii_only
    )
    assert found(document, kind, value), document
    assert kind in {h.kind for h in scan_text(document)}


@SETTINGS
@given(mutated())
def test_every_planted_identifier_is_found_in_csv(case: tuple[str, str, str]) -> None:
    kind, value, text = case
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["2026-01-01T08:00:00+08:00", text, "东门", 3])
    assert found(buffer.getvalue(), kind, value), buffer.getvalue()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(free_text(), st.booleans())
def test_every_planted_identifier_is_found_in_parquet(case: tuple[str, str, str], as_json: bool) -> None:
    kind, value, text = case
    cell = json.dumps({"note": text}) if as_json else text
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part.parquet"
        pq.write_table(pa.table({"event_id": ["e1", "e2"], "note": [None, cell]}), path)
        hits = scan_parquet_file(path)
    assert (kind, f"{path}::note") in hits, cell


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(phones())
def test_phones_stored_as_integers_are_found_in_parquet(case: tuple[str, str, str]) -> None:
    _, value, _ = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part.parquet"
        pq.write_table(pa.table({"owner": pa.array([int(value)], pa.int64())}), path)
        assert scan_parquet_file(path) == [("phone", f"{path}::owner")]
