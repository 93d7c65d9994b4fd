"""Vendor quirks of the property-system exports, one test each, without Dagster."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from assets.services.encoding import (
    UndecodableFile,
    UnknownHeader,
    UnparseableFile,
    decode_bytes,
    read_csv_text,
)
from assets.services.parse import HEADERS, HERE, REQUIRED, classify, clean_names, read_source, redact_texts
from kernel.sqlfile import render
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
    assert df.columns == ["order_id", "description_raw", "status_raw", "source_line", "ragged"]
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


def test_canaries_are_redacted_by_generic_rules_without_being_told():
    """The redactor never sees the canary values: label, phone and ID rules must catch them."""
    c = canary_residents(3)[0]
    texts = pl.Series([f"3号楼漏水，业主{c.name}（身份证{c.id_card}）请回电{c.phone}", "联系人张玲桂，电话13152906706",
                       None])
    red, left = redact_texts(texts, clean_names(pl.Series(["张玲桂"])))
    assert not left.any()
    canaries = [Canary("name", c.name), Canary("phone", c.phone), Canary("resident_id", c.id_card)]
    for r in red.drop_nulls():
        assert scan_text(r, canaries) == [] and "张玲桂" not in r
    assert red[2] is None


def test_labelled_other_names_and_spaced_names_are_redacted():
    texts = pl.Series(["楼道漏水，联系人李四，住户王五也反映", "业主：赵 六请回电", "租户 钱七反映噪音", "报事人孙八"])
    red, left = redact_texts(texts, clean_names(pl.Series(["  孙八 "])))
    assert not left.any()
    for r, name in zip(red, ("李四", "王五", "赵 六", "钱七", "孙八"), strict=False):
        assert name not in r and "[REDACTED:name]" in r


def test_reporter_names_are_trimmed_and_removed_anywhere():
    names = clean_names(pl.Series([" 周 九 ", None, "吴"]))
    assert "周九" in names and "周 九" in names and "吴" not in names
    red, _ = redact_texts(pl.Series(["周九说电梯坏了"]), names)
    assert "周九" not in red[0]


def test_a_label_with_nothing_redactable_is_quarantined():
    red, left = redact_texts(pl.Series(["联系人：Zhang Wei", "联系人：", "通过业主APP报修"]), [])
    assert left.to_list() == [True, True, False]


def test_phone_with_separators_falls_back_to_the_scanner():
    red, left = redact_texts(pl.Series(["电话138-1234-5678，13812345678,13912345678"]), [])
    assert scan_text(red[0]) == [] and not left[0]


def test_parse_error_message_never_carries_row_values(tmp_path):
    """An unclosed quote in free text: Polars' own error quotes the row; ours must not, nor chain it."""
    c = canary_residents(3)[0]
    text = f'工单编号,问题描述,报事人,联系电话\nWO1,"漏水 {c.name},{c.name},{c.phone}\nWO2,x,y,z\n'
    with pytest.raises(UnparseableFile) as info:
        read_csv_text(text, HEADERS["work_orders"], REQUIRED["work_orders"])
    exc = info.value
    assert exc.__context__ is None and exc.__cause__ is None
    import traceback
    rendered = "".join(traceback.format_exception(exc))
    assert c.name not in rendered and c.phone not in rendered
    # and through read_source: one whole-file quarantine row, generic detail
    d = tmp_path / "property_services" / "2026-11-20" / "310107000001"
    d.mkdir(parents=True)
    (d / "work_orders_310107000001.csv").write_text(text, encoding="utf-8")
    from kernel.accounting import IngestStats
    st = IngestStats("work_orders")
    frame, whole = read_source(tmp_path, "2026-11-20", "work_orders", st)
    assert frame.height == 0 and whole["reason"].to_list() == ["unparseable_file"]
    assert st.landed == 1
    assert c.name not in str(whole.rows()) and c.phone not in str(whole.rows())


def test_big5_file_is_refused_not_misread_as_gb18030(tmp_path):
    data = "工單編號,問題描述\nWO1,聯繫人李四水管漏水\n".encode("big5")
    data.decode("gb18030")  # the trap: GB18030 accepts these bytes
    with pytest.raises(UndecodableFile):
        decode_bytes(data)


def test_a_header_without_the_id_column_is_refused():
    with pytest.raises(UnknownHeader):
        read_csv_text("编号,描述\nWO1,x\n", HEADERS["work_orders"], REQUIRED["work_orders"])


def test_ragged_rows_are_marked():
    df = read_csv_text("工单编号,问题描述\nWO1,a\nWO2,b,extra\nWO3\n", HEADERS["work_orders"],
                       REQUIRED["work_orders"])
    assert df["ragged"].to_list() == [False, True, False]
    assert df["description_raw"].to_list() == ["a", "b", None]


def test_unknown_file_names_are_accounted_and_quarantined_whole(tmp_path):
    assert classify("work_orders_310107000001.csv") == ("work_orders", True)
    assert classify("payments_310107000001_part2.csv") == ("payments", True)
    assert classify("payments_310107000001 (1).csv") == ("payments", False)
    assert classify("工单导出.xlsx") == ("work_orders", False)
    d = tmp_path / "property_services" / "2026-11-20" / "310107000001"
    d.mkdir(parents=True)
    (d / "工单导出.xlsx").write_bytes(b"PK\x03\x04")
    (d / "work_orders_310107000001.csv.part").write_bytes(b"in flight")
    from kernel.accounting import IngestStats
    st = IngestStats("work_orders")
    _, whole = read_source(tmp_path, "2026-11-20", "work_orders", st)
    assert whole["reason"].to_list() == ["unknown_file"] and st.files == 1 and st.landed == 1


def test_simulated_texts_leave_nothing_for_the_scanner(tmp_path):
    """Over a simulated day: every description/location/note is redacted or flagged, none keeps a canary."""
    from datetime import date

    from simulator import services
    from simulator.district import district_registry
    from simulator.registry import communities

    canaries_ = canary_residents(7)
    services.simulate(tmp_path, date(2026, 11, 20), communities(2, 7), district_registry(2, 7), 7, canaries_)
    from kernel.accounting import IngestStats
    wo, _ = read_source(tmp_path, "2026-11-20", "work_orders", IngestStats("work_orders"))
    names = clean_names(wo["reporter_name"])
    cans = [Canary("name", c.name) for c in canaries_] + [Canary("phone", c.phone) for c in canaries_]
    for col in ("description_raw", "location_raw"):
        red, left = redact_texts(wo[col], names)
        kept = red.filter(~left).drop_nulls()
        assert kept.len() > 0
        assert all(scan_text(v, cans) == [] for v in kept.unique().to_list())
    assert wo["description_raw"].str.contains("住户").any() and wo["location_raw"].str.contains("业主").any()


def test_a_room_is_generalised_to_its_building_and_entrance_and_only_its_token_tells_rooms_apart():
    from assets.services.parse import prepare
    from kernel.tokens import Tokenizer

    locs = ["3号楼2单元502室", "3号楼2单元502室", "3号楼 2单元 601", "5幢1203室漏水", "B座 1203", "十二号楼二单元1203",
            "2号楼东侧停车场", "3号楼 300米外", "小区东门", None]
    raw = pl.DataFrame({"location_raw": locs, "description_raw": ["漏水"] * len(locs),
                        "reporter_name": ["王五"] * len(locs), "reporter_phone": ["13812345678"] * len(locs),
                        "source_line": list(range(len(locs))), "source_file": ["f.csv"] * len(locs)},
                       schema_overrides={"location_raw": pl.String})
    tok = Tokenizer(b"k" * 32, 1)
    out = prepare("work_orders", raw, tok.tokenize_series, [])
    assert out["location"].to_list()[:7] == ["3号楼2单元", "3号楼2单元", "3号楼2单元", "5幢漏水", "B座", "十二号楼二单元",
                                             "2号楼东侧停车场"]
    assert out["location"].to_list()[7:] == ["3号楼 300米外", "小区东门", None]
    tokens = out["location_token"].to_list()
    assert tokens[0] == tokens[1] and tokens[0] != tokens[2] and tokens[-1] is None
    assert all(t.startswith("location_v1_") for t in tokens[:-1])
    assert not any(scan_text(v) for v in out["location"].drop_nulls().to_list())
    assert not out["pii_left"].any()
