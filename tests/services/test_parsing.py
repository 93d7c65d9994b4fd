"""Vendor quirks of the property-system exports, one test each, without Dagster."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from assets.services.encoding import UndecodableFile, decode_bytes, read_csv_text
from assets.services.parse import HERE, redact_texts
from assets.sqlfile import render
from quality.pii_scan import Canary, scan_text
from simulator.canaries import canary_residents

TEXT = "工单编号,问题描述\nWO1,5号楼2单元301室厨房水管漏水\n"


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-8"])
def test_declared_encodings_decode_to_the_same_text(encoding):
    text, used = decode_bytes(TEXT.encode(encoding))
    assert text == TEXT and used == encoding


@pytest.mark.parametrize("data", [TEXT.encode("utf-16"), b"\x81\x20\xff" + TEXT.encode("gb18030"),
                                  bytes(range(256)) * 4])
def test_a_file_that_is_neither_utf8_nor_gb18030_is_refused_whole(data):
    with pytest.raises(UndecodableFile):
        decode_bytes(data)


def test_utf8_is_tried_first_so_it_is_never_misread_as_gb18030():
    text, used = decode_bytes(TEXT.encode("utf-8"))
    assert used == "utf-8" and "厨房水管漏水" in text


def test_csv_headers_are_renamed_and_missing_columns_are_null():
    df = read_csv_text(TEXT, {"工单编号": "order_id", "问题描述": "description_raw", "状态": "status_raw"})
    assert df.columns == ["order_id", "description_raw", "status_raw", "source_line"]
    assert df["source_line"].to_list() == [2] and df["status_raw"].to_list() == [None]


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute(render(HERE / "macros.sql", tz="Asia/Shanghai"))
    return c


def test_mixed_date_formats_parse_to_one_instant(con):
    rows = con.execute("SELECT DISTINCT svc_ts(s) FROM (VALUES ('2026-11-20 08:05:00'), ('2026/11/20 8:05'), "
                       "('20261120080500'), ('2026年11月20日 08:05')) v(s)").fetchall()
    assert len(rows) == 1
    utc = rows[0][0].astimezone(__import__("datetime").timezone.utc)
    assert (utc.year, utc.month, utc.day, utc.hour, utc.minute) == (2026, 11, 20, 0, 5)  # 08:05 Shanghai
    assert con.execute("SELECT svc_ts('2026-13-45 25:61') IS NULL").fetchall()[0][0]


def test_yuan_text_becomes_exact_fen(con):
    got = con.execute("SELECT svc_fen(s) FROM (VALUES ('128.50'), ('128.5'), ('¥128.50'), ('1,280.50'), ('0.07'), "
                      "('N/A'), ('壹佰贰拾元')) v(s)").fetchall()
    assert [r[0] for r in got] == [12850, 12850, 12850, 128050, 7, None, None]


def test_names_phones_ids_and_canaries_are_redacted_from_free_text():
    c = canary_residents(3)[0]
    texts = pl.Series([f"3号楼漏水，业主{c.name}（身份证{c.id_card}）请回电{c.phone}", "联系人张玲桂，电话13152906706",
                       None])
    names = pl.Series([c.name, "张玲桂", ""])
    canaries = [Canary("name", c.name), Canary("phone", c.phone), Canary("resident_id", c.id_card)]
    red, left = redact_texts(texts, names, canaries)
    assert not left.any()
    assert "张玲桂" not in red[1] and "13152906706" not in red[1]
    for r in red.drop_nulls():
        assert scan_text(r, canaries) == []
    assert red[2] is None
