"""``scan_text_file``: a CSV or JSON export scanned in DuckDB must find what the Python text scan finds.

The export gate and the export PII check used to scan every export as text in Python (53 s for one 600-community
CSV); they now go through DuckDB in windows. These tests hold the two paths to the same findings, on the
property suite's planted identifiers and on what only a file has: window boundaries, a BOM, bad bytes, a long
artefact across a window, canaries.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quality import pii_scan
from quality.pii_scan import Canary, scan_text, scan_text_file
from tests.quality.test_pii_scan_properties import free_text

CON = duckdb.connect()
KNOWN_ID = "11010519491231002X"  # a valid 18-digit resident ID (checksum X)
PHONE = "13912345678"


def kinds_in_file(path: Path, canaries: list[Canary] | None = None) -> set[str]:
    return {h.kind for h in scan_text_file(path, canaries or [], con=CON)}


def kinds_in_text(text: str, canaries: list[Canary] | None = None) -> set[str]:
    return {h.kind for h in scan_text(text, canaries or [])}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(free_text(), st.sampled_from(["csv", "json", "ndjson"]))
def test_every_planted_identifier_is_found_as_the_text_scan_finds_it(tmp_path: Path, case: tuple[str, str, str],
                                                                     container: str) -> None:
    kind, _, text = case
    if container == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows([["stat_hour", "community_id", "note", "n"],
                                      ["2026-01-01T08:00:00+08:00", "310107001", text, 3]])
        body = buffer.getvalue()
    elif container == "json":
        body = json.dumps({"rows": [{"note": text, "n": 3}]}, ensure_ascii=False, indent=2)
    else:
        body = "\n".join(json.dumps({"note": text, "i": i}, ensure_ascii=i % 2 == 0) for i in range(3))
    path = tmp_path / f"export.{container}"
    path.write_text(body, encoding="utf-8")
    assert kind in kinds_in_file(path), body
    assert kinds_in_file(path) == kinds_in_text(body), body


def test_identifiers_across_every_window_boundary_are_found(tmp_path: Path) -> None:
    """A multi-window file with an identifier straddling each boundary, and a 512-float embedding across one."""
    chunk = pii_scan._CHUNK
    row = "2026-01-01T08:00:00+08:00,310107001,B01,12\n"
    filler = row * (chunk // len(row) + 1)
    parts = [filler[: chunk - 5], f"住户{KNOWN_ID}，", filler[: chunk - 9], f"电话 {PHONE} ",
             filler[: chunk - 100], "[" + ",".join(f"{i / 1000:.3f}" for i in range(512)) + "]", "\n", filler]
    body = "".join(parts)
    assert body.index(KNOWN_ID) < chunk < body.index(KNOWN_ID) + len(KNOWN_ID)
    path = tmp_path / "big.csv"
    path.write_text(body, encoding="utf-8")
    expected = {"resident_id", "phone", "face_embedding"}
    assert kinds_in_text(body) == expected
    assert kinds_in_file(path) == expected


def test_a_long_digit_run_over_a_boundary_is_not_a_phone(tmp_path: Path) -> None:
    """The window's look-behind context: a 30-digit platform id cut by a window start is not an 11-digit phone."""
    chunk = pii_scan._CHUNK
    run = "139" + "1" * 27
    body = "x" * (chunk - 8) + "," + run + ",\n" + "y,1\n" * 10
    path = tmp_path / "ids.csv"
    path.write_text(body, encoding="utf-8")
    assert kinds_in_text(body) == set()
    assert kinds_in_file(path) == set()


def test_bom_bad_bytes_and_canaries(tmp_path: Path) -> None:
    canaries = [Canary("name", "欧阳测试"), Canary("person_no", "P-000777")]
    path = tmp_path / "odd.csv"
    path.write_bytes("\ufeffnote,n\n".encode() + b"\xff\xfe broken," + "欧阳测试\n".encode()
                     + f"{PHONE[:3]}\x00{PHONE[3:]},1\n".encode() + b"P-000777,2\n")
    found = kinds_in_file(path, canaries)
    assert {"canary:name", "canary:person_no"} <= found
    assert found == kinds_in_text(path.read_text(encoding="utf-8-sig", errors="replace"), canaries)


def test_empty_and_clean_files_have_no_hits(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    (tmp_path / "clean.csv").write_text("stat_hour,n\n2026-01-01T08:00:00+08:00,12\n" * 1000, encoding="utf-8")
    assert scan_text_file(tmp_path / "empty.csv") == []
    assert scan_text_file(tmp_path / "clean.csv") == []


def test_hits_carry_no_raw_value(tmp_path: Path) -> None:
    path = tmp_path / "leak.csv"
    path.write_text(f"note\n住户{KNOWN_ID}电话{PHONE}\n", encoding="utf-8")
    hits = scan_text_file(path)
    assert {h.kind for h in hits} == {"resident_id", "phone"}
    assert all(KNOWN_ID not in f"{h.location}{h.sample}" and PHONE not in f"{h.location}{h.sample}" for h in hits)
