"""Property tests for the PII scanner: any valid ID, phone (digits or Chinese numerals, any grouping), plate,
labelled name, e-mail, WeChat id, QQ number, image URL or room address, however it is mutated (case, full-width,
separators) and wherever it is embedded (Chinese/English text, JSON, CSV, Parquet), is found with its kind by
the Python check and through the SQL prefilter; generated platform values and ordinary words never hit."""

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

from quality.pii_patterns import (
    COMPOUND_SURNAMES,
    ID15_PROVINCES,
    NAME_LABELS,
    NAME_STOP_WORDS,
    PROVINCES,
    SURNAMES,
    id18_check_char,
)
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
    grouping = draw(st.sampled_from([(6, 14), (6, 10, 14), (4, 8, 12, 16)])) if sep else (6, 14)
    cuts = (0, *grouping, 18)
    text = sep.join(text[a:b] for a, b in zip(cuts, cuts[1:], strict=False))
    return "resident_id", value, text


CN_NUMERALS = {"0": "〇零", "1": "一幺", "2": "二两", "3": "三", "4": "四", "5": "五", "6": "六", "7": "七",
               "8": "八", "9": "九"}  # fmt: skip


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str, str]:
    value = draw(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
    digits = list(value)
    if draw(st.integers(0, 2)) == 0:  # Chinese numerals, for some or all digits
        spelled = draw(st.lists(st.integers(0, 10), min_size=1, unique=True))
        for i in spelled:
            digits[i] = draw(st.sampled_from(CN_NUMERALS[value[i]]))
    sep = draw(st.sampled_from(["", " ", "-", "."]))
    if sep:
        a, b = draw(st.sampled_from([(3, 7), (4, 7)]))  # 3-4-4 and 4-3-4
        text = "".join(digits[:a]) + sep + "".join(digits[a:b]) + sep + "".join(digits[b:])
    else:
        text = "".join(digits)
    if draw(st.integers(0, 5)) == 0 and value == text:
        text = draw(st.sampled_from(["(", "（"])) + value[:3] + draw(st.sampled_from([")", "）"])) + value[3:]
    prefix = draw(st.sampled_from(["", "", "+86", "+86 ", "0086", "0086-", "86", "(+86) ", "（+86）"]))
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
    after_province = draw(st.sampled_from(["", "", " ", "-"]))
    text = prov + after_province + letter + sep + serial
    return "plate", value, text.lower() if draw(st.booleans()) else text


NAME_CHARS = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文斌玉萍红春鹏飞婷雪琳晨宇浩然子轩欣怡"


@st.composite
def names(draw: st.DrawFn) -> tuple[str, str, str]:
    surname = draw(st.sampled_from(SURNAMES) | st.sampled_from(COMPOUND_SURNAMES))
    given = "".join(draw(st.lists(st.sampled_from(NAME_CHARS), min_size=1, max_size=2)))
    value = surname + given
    # stop words (周知, 文明 ...) are by definition ordinary words, not names
    value = value if value[:2] not in NAME_STOP_WORDS else surname + "伟"
    given = value[len(surname) :]
    label = draw(st.sampled_from(NAME_LABELS))
    sep = draw(st.sampled_from(["", "", "：", ":", " ", "： ", "为"]))
    inner = draw(st.sampled_from(["", "", " "]))
    return "name", value, f"{label}{sep}{surname}{inner}{given}"


LOCAL = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str, str]:
    local = draw(LOCAL) + draw(st.sampled_from(["", ".", "_", "+", "-"])) + draw(LOCAL)
    domain = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10))
    tld = draw(st.sampled_from(["com", "cn", "com.cn", "net", "org", "io", "edu.cn"]))
    value = f"{local}@{domain}.{tld}"
    text = value.upper() if draw(st.booleans()) else value
    return "email", value, text


@st.composite
def wechat_ids(draw: st.DrawFn) -> tuple[str, str, str]:
    if draw(st.booleans()):
        value = "wxid_" + draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=20))
        return "wechat", value, value
    # not "id...": 微信ID abc1 reads the ID as part of the label
    first = draw(st.sampled_from("abcdefghjklmnopqrstuvwxyzABCDEFGHJKLMNOPQRSTUVWXYZ"))
    rest = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=4, max_size=18))
    value = first + rest + draw(st.sampled_from("0123456789_-"))
    label = draw(
        st.sampled_from(
            [
                "微信",
                "微信号",
                "微信号：",
                "微信ID:",
                "微信 ",
                "WeChat: ",
                "wechat ",
                "WeChat ID ",
                "weixin：",
            ]
        )
    )
    return "wechat", value, label + value


@st.composite
def qq_numbers(draw: st.DrawFn) -> tuple[str, str, str]:
    value = str(draw(st.integers(10_000, 99_999_999_999)))
    label = draw(st.sampled_from(["QQ", "QQ：", "qq号 ", "QQ号码:", "扣扣", "Qq "]))
    return "qq", value, label + value


@st.composite
def image_urls(draw: st.DrawFn) -> tuple[str, str, str]:
    host = draw(st.sampled_from(["oss.example.com", "10.0.0.5:8080", "cdn.vendor.cn"]))
    path = "/".join(
        draw(
            st.lists(
                st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8),
                min_size=1,
                max_size=3,
            )
        )
    )
    ext = draw(
        st.sampled_from(["jpg", "jpeg", "JPG", "png", "bmp", "webp", "gif", "tif", "tiff", "heic", "HEIF"])
    )
    query = draw(st.sampled_from(["", "?x=1", "?sign=abc&t=1732000000", "#frag"]))
    value = f"{draw(st.sampled_from(['http', 'https']))}://{host}/{path}.{ext}{query}"
    return "image_url", value, value


@st.composite
def room_addresses(draw: st.DrawFn) -> tuple[str, str, str]:
    building = draw(
        st.sampled_from(
            [f"{draw(st.integers(1, 99))}{k}" for k in ("号楼", "幢", "栋", "座")]
            + [f"{draw(st.sampled_from('ABCDEF'))}座"]
        )
    )
    unit = draw(st.sampled_from(["", f"{draw(st.integers(1, 9))}单元"]))
    room = f"{draw(st.integers(1, 33))}{draw(st.integers(1, 12)):02d}"
    suffix = draw(st.sampled_from(["", "室", "室", "房", "号"]))
    sep = draw(st.sampled_from(["", "", " ", "-", "，"]))
    value = building + unit + room + suffix
    return "room_address", value, building + sep + unit + room + suffix


identifiers = st.one_of(
    resident_ids(),
    phones(),
    plates(),
    names(),
    emails(),
    wechat_ids(),
    qq_numbers(),
    image_urls(),
    room_addresses(),
)


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
    # a URL may run on into the punctuation after it (":", ";", ")" are URL characters)
    same = (lambda v: v.startswith(value)) if kind == "image_url" else (lambda v: v == value)
    return any(f.kind == kind and same(f.value) for f in find_identifiers(text))


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


# --- precision: generated platform values and ordinary words after labels --------------------------------
B32 = "abcdefghijklmnopqrstuvwxyz234567"
HEX = "0123456789abcdef"
benign_values = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: f"{d:%Y-%m-%d %H:%M:%S}+08:00"),
    st.dates().map(str),
    st.text(DIGITS, min_size=20, max_size=20),  # GB/T 28181 device codes
    st.text(DIGITS, min_size=23, max_size=23),  # CTWing device ids
    st.text(DIGITS, min_size=48, max_size=48),  # GA/T 1400 ids
    st.text(DIGITS, min_size=8, max_size=8).map(lambda s: "3101" + s),  # community codes
    st.tuples(st.text(DIGITS, min_size=8, max_size=8), st.integers(1, 99)).map(
        lambda t: f"3101{t[0]}-B{t[1]:02d}"
    ),  # building ids
    st.text(B32, min_size=16, max_size=52).map(lambda s: "person_v1_" + s),
    st.text(B32, min_size=16, max_size=52).map(lambda s: "plate_v1_" + s),
    st.text(HEX, min_size=32, max_size=64),  # digests
    st.floats(0, 1e6, allow_nan=False).map(lambda x: f"{x:.3f}"),
    st.tuples(
        st.integers(1, 99), st.sampled_from(["", "电梯", "楼道", "单元门口", "架空层", "屋顶", "单元门"])
    ).map(lambda t: f"{t[0]}号楼{t[1]}"),  # a building alone
    st.tuples(st.integers(1, 99), st.integers(1, 9)).map(lambda t: f"{t[0]}号楼{t[1]}单元门口"),
    st.tuples(
        st.sampled_from(NAME_LABELS),
        st.sampled_from(sorted(NAME_STOP_WORDS)),
        st.sampled_from(["", "。", "，请配合"]),
    ).map("".join),  # a label then an ordinary word
)


@SETTINGS
@given(benign_values)
def test_generated_platform_values_never_hit(value: str) -> None:
    assert find_identifiers(value) == [], value
    assert find_identifiers(json.dumps({"v": value})) == [], value


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(benign_values, min_size=1, max_size=50))
def test_generated_platform_values_never_hit_in_parquet(batch: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part.parquet"
        pq.write_table(pa.table({"v": batch, "j": [json.dumps({"v": v}) for v in batch]}), path)
        assert scan_parquet_file(path) == []
