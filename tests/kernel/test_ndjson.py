"""kernel.ndjson as an adversary: no landing file, however broken, fails the read of the others.

Every kind of file that cannot be opened, decompressed or decoded becomes exactly one row (source_line 0,
line null, a ``file_error`` naming the file and the kind of failure, never its content); the good files of the
same batch read exactly as they read alone. ``RepeatedRejections`` counts a rejected line re-delivered in a
later file once.
"""

from __future__ import annotations

import codecs
import gzip
import os
import random
from pathlib import Path

import duckdb
import polars as pl
import pytest

from kernel.ndjson import (
    LINE_SCHEMA,
    RepeatedRejections,
    UnreadableFile,
    batches,
    file_bytes,
    file_text,
    prefetched,
    read_lines,
)

CANARY = "CANARY-沪A12345-13800138000"  # planted in every bad file: must never reach a detail


def _lines(n: int = 400, tag: str = "") -> str:
    """NDJSON text with non-ASCII content (a character cut in half is then possible) and a canary."""
    rows = [f'{{"n": {i}, "tag": "{tag}", "text": "楼道灯不亮 {CANARY}"}}' for i in range(n)]
    return "\n".join(rows) + "\n"


@pytest.fixture
def day(tmp_path: Path) -> Path:
    d = tmp_path / "landing" / "feed" / "2026-11-20" / "ctwing"
    d.mkdir(parents=True)
    return d


def _gz(text: str | bytes) -> bytes:
    return gzip.compress(text.encode("utf-8") if isinstance(text, str) else text, 6)


def _junk(n: int = 4096, seed: int = 1) -> bytes:
    data = bytearray(random.Random(seed).randbytes(n))
    data[0:2] = b"\x89P"  # never the gzip magic
    return bytes(data)


# name -> bytes of a file that cannot be read as UTF-8 text, and the kind its detail must name
GOOD = _gz(_lines(tag="good"))
BAD_GZ: dict[str, tuple[bytes, str]] = {
    "truncated_half": (GOOD[: len(GOOD) // 2], "truncated gzip"),
    "truncated_tail": (GOOD[:-1], "truncated gzip"),
    "truncated_trailer": (GOOD[:-8], "truncated gzip"),
    "crc_flipped": (GOOD[:-8] + bytes([GOOD[-8] ^ 0xFF]) + GOOD[-7:], "corrupt gzip"),
    "trailing_garbage": (GOOD + b"garbage", "corrupt gzip"),
    "junk_binary": (_junk(), "not gzip despite the .gz name"),
    "plain_text_named_gz": (_lines().encode(), "not gzip despite the .gz name"),
    "gzip_of_junk": (_gz(_junk(seed=2)), "not UTF-8"),
    "utf16_bom": (_gz(_lines().encode("utf-16")), "UTF-16"),
    "utf16_be_bom": (_gz(codecs.BOM_UTF16_BE + _lines().encode("utf-16-be")), "UTF-16"),
    "utf16le_no_bom": (_gz(_lines().encode("utf-16-le")), "UTF-16"),
    "utf16le_ascii_no_bom": (_gz('{"n": 1, "text": "CANARY"}\n'.encode("utf-16-le")), "NUL bytes"),
    "gb18030": (_gz(_lines().encode("gb18030")), "not UTF-8"),
    "zero_bytes": (b"", "zero-byte file"),
}


def _plant(day: Path, name: str, data: bytes) -> Path:
    path = day / f"310107001001-{name}.ndjson.gz"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(BAD_GZ))
def test_a_bad_file_is_one_row_naming_the_file_and_the_failure_and_the_good_file_reads_as_alone(day: Path, name):
    landing = day.parents[2]
    good = _plant(day, "0001", GOOD)
    alone = read_lines([good], landing)
    data, kind = BAD_GZ[name]
    bad = _plant(day, f"0002-{name}", data)
    got = read_lines([good, bad], landing)
    assert got.schema == pl.Schema(LINE_SCHEMA)
    assert got.filter(pl.col("source_file") == alone["source_file"][0]).equals(alone)
    row = got.filter(pl.col("source_file") == str(bad.relative_to(landing)))
    assert row.height == 1
    rec = row.row(0, named=True)
    assert rec["source_line"] == 0 and rec["line"] is None and rec["community_id"] == "310107001001"
    assert rec["file_error"].startswith(f"{bad.relative_to(landing)}: ") and kind in rec["file_error"]
    assert "CANARY" not in rec["file_error"] and "楼道" not in rec["file_error"]


def test_a_directory_a_dangling_link_and_an_unopenable_file_are_rows_too(day: Path, monkeypatch):
    landing = day.parents[2]
    (day / "310107001001-0003.ndjson.gz").mkdir()
    (day / "310107001001-0004.ndjson.gz").symlink_to(day / "gone.ndjson.gz")
    locked = _plant(day, "0005", GOOD)
    real_open = Path.open

    def deny(self: Path, *args, **kwargs):
        if self == locked:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    files = sorted(day.iterdir())
    assert sum(len(b) for b in batches(files, 1)) == 3  # stat of a dangling link does not raise
    got = read_lines(files, landing)
    assert got["source_line"].to_list() == [0, 0, 0] and got["line"].null_count() == 3
    errors = got["file_error"].to_list()
    assert "a directory, not a file" in errors[0]
    assert "cannot be opened (FileNotFoundError)" in errors[1]
    assert "cannot be opened (PermissionError)" in errors[2]


def test_an_empty_gzip_and_blank_lines_are_no_records_and_no_quarantine(day: Path):
    landing = day.parents[2]
    empty = _plant(day, "0001", _gz(""))
    blank = _plant(day, "0002", _gz("\n  \n\n"))
    assert read_lines([empty, blank], landing).height == 0


def test_a_plain_file_cut_mid_character_keeps_its_complete_lines(day: Path):
    """An uncompressed text file cut by a transfer: the partial character is dropped, the complete lines are
    read and the cut line is read as it is (the parser then rejects it as malformed, line by line)."""
    landing = day.parents[2]
    data = _lines(50).encode("utf-8")
    cut = data.rindex("不".encode()) + 1  # inside a 3-byte character of the last line
    path = day / "310107001001-0001.ndjson"
    path.write_bytes(data[:cut])
    got = read_lines([path], landing)
    assert got.height == 50 and got["file_error"].null_count() == 50
    assert got["line"][:49].to_list() == _lines(50).splitlines()[:49]
    assert got["line"][49].endswith("楼道灯")  # the cut line, without the partial character


def test_a_unit_separator_in_the_first_line_does_not_fail_the_file(day: Path):
    """The line reader splits with the CSV reader on 0x1F; a first line holding that byte used to raise a
    SchemaError for the whole source. It is split again by Polars string functions."""
    landing = day.parents[2]
    path = _plant(day, "0001", _gz('a\x1fb\x1fc\n{"n": 1}\r\n{"n": 2}\n'))
    got = read_lines([path], landing)
    assert got["line"].to_list() == ["a\x1fb\x1fc", '{"n": 1}', '{"n": 2}']
    assert got["source_line"].to_list() == [1, 2, 3]


def test_a_utf8_bom_is_dropped_and_multi_member_gzip_is_read_whole(day: Path):
    landing = day.parents[2]
    path = _plant(day, "0001", _gz(codecs.BOM_UTF8 + b'{"n": 1}\n') + _gz('{"n": 2}\n'))
    assert read_lines([path], landing)["line"].to_list() == ['{"n": 1}', '{"n": 2}']
    assert file_text(path) == '{"n": 1}\n{"n": 2}\n'


def test_file_bytes_raises_only_unreadable_file_with_a_generic_message(day: Path):
    for name, (data, kind) in BAD_GZ.items():
        path = _plant(day, name, data)
        with pytest.raises(UnreadableFile) as info:
            file_bytes(path)
        assert kind in str(info.value), name
        exc = info.value  # never chained: a decoder's message could quote bytes
        assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def test_prefetched_batches_carry_the_bad_file_row_and_keep_reading(day: Path):
    landing = day.parents[2]
    files = [_plant(day, "0001", GOOD), _plant(day, "0002", BAD_GZ["truncated_half"][0]), _plant(day, "0003", GOOD)]
    frames = list(prefetched(batches(files, 1), landing))
    assert [f.height for f in frames] == [400, 1, 400]
    assert frames[1]["file_error"][0].endswith("truncated gzip (the compressed stream ends early); "
                                               "file quarantined whole")


# ---- repeated rejections -----------------------------------------------------------------------------------
def _batch(*files: tuple[str, str, list[str]]) -> pl.DataFrame:
    """Lines of (source_file, community, [line, ...]); a line starting with 'bad' is rejected."""
    rows = [(f, i + 1, c, text, None) for f, c, texts in files for i, text in enumerate(texts)]
    return pl.DataFrame(rows, schema=LINE_SCHEMA, orient="row")


def _records(con: duckdb.DuckDBPyConnection, lines: pl.DataFrame) -> None:
    """Two records per line (a line yields several readings), rejected when the line starts with 'bad'."""
    con.register("l", lines)
    con.execute("""CREATE OR REPLACE TEMP TABLE records AS
        SELECT source_file, source_line, community_id, k,
            CASE WHEN starts_with(line, 'bad') THEN 'malformed_json' END AS reason, false AS dup_cross_file
        FROM l, range(2) t(k)""")
    con.unregister("l")


def test_a_rejected_line_repeated_in_a_later_file_is_flagged_in_and_across_batches():
    con = duckdb.connect()
    seen = RepeatedRejections(con)
    first = _batch(("f/a-1", "A", ["ok1", "bad1", "bad1", "bad2"]),  # a repeat inside its own file stays
                   ("f/a-2", "A", ["ok1", "bad1", "bad3"]),           # bad1 repeats a-1: duplicate
                   ("f/b-1", "B", ["bad1"]))                          # another community: quarantined
    _records(con, first)
    assert seen.flag(first) == 2  # both records of a-2 line 2
    flagged = con.execute("SELECT source_file, source_line FROM records WHERE dup_cross_file GROUP BY ALL").fetchall()
    assert flagged == [("f/a-2", 2)]
    second = _batch(("f/a-3", "A", ["bad2", "bad3", "bad4", "bad2 "]),  # bad2 and bad3 seen in batch 1
                    ("f/b-2", "B", ["bad1", "bad2"]))                  # bad1 seen for B in batch 1
    _records(con, second)
    assert seen.flag(second) == 2 * 3
    flagged = con.execute("SELECT source_file, source_line FROM records WHERE dup_cross_file GROUP BY ALL "
                          "ORDER BY ALL").fetchall()
    assert flagged == [("f/a-3", 1), ("f/a-3", 2), ("f/b-2", 1)]  # "bad2 " differs by a byte: not a repeat


def test_an_unreadable_file_row_and_accepted_lines_are_never_flagged():
    con = duckdb.connect()
    seen = RepeatedRejections(con)
    lines = pl.concat([_batch(("f/a-1", "A", ["ok", "bad"]), ("f/a-2", "A", ["ok"])),
                       pl.DataFrame([("f/a-3", 0, "A", None, "f/a-3: zero-byte file"),
                                     ("f/a-4", 0, "A", None, "f/a-4: zero-byte file")],
                                    schema=LINE_SCHEMA, orient="row")])
    con.register("l", lines)
    con.execute("""CREATE OR REPLACE TEMP TABLE records AS
        SELECT source_file, source_line, community_id,
            CASE WHEN file_error IS NOT NULL THEN 'unreadable_file' WHEN line = 'bad' THEN 'malformed_json' END
                AS reason, false AS dup_cross_file FROM l""")
    assert seen.flag(lines) == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_a_file_without_read_permission_is_one_row(day: Path):
    landing = day.parents[2]
    path = _plant(day, "0001", GOOD)
    path.chmod(0)
    try:
        got = read_lines([path], landing)
    finally:
        path.chmod(0o644)
    assert got.height == 1 and "PermissionError" in got["file_error"][0]
