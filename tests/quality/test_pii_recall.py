"""Recall 1.0 on the identifier variants adversaries and real vendor data produce (issue 14), one hypothesis
strategy per family: every valid value, however it is written (separators, groupings, brackets, full-width
digits and letters, Chinese numerals, labels, image types, room forms) and wherever it is embedded (Chinese
text, JSON with and without ASCII escapes, CSV cells, Parquet string columns), is found with its kind, both by
the Python check and through the SQL prefilter. A precision set of platform values must never hit."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from quality.pii_patterns import (
    COMPOUND_SURNAMES,
    ID15_PROVINCES,
    NAME_STOP_WORDS,
    PROVINCES,
    SURNAMES,
    id18_check_char,
)
from quality.pii_scan import find_identifiers, scan_parquet, scan_text

RECALL = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Parquet scans cost ~0.2 s a file, so each example writes many values (one column each) into one file.
PARQUET = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DIGITS = "0123456789"
LOWER = "abcdefghijklmnopqrstuvwxyz"
ALNUM = LOWER + DIGITS
SERIAL_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # GA 36: no I or O
# separators every family is written with: space, hyphen, dot, full-width hyphen, ideographic space
SEPARATORS = [" ", "-", ".", "\uff0d", "\u3000"]


@dataclass(frozen=True)
class Case:
    kind: str
    value: str  # canonical value the scanner reports
    text: str  # how it is written


def fullwidth_some(draw: st.DrawFn, text: str) -> str:
    """Full-width digits and letters (and ASCII punctuation) for none, some or all characters."""
    mode = draw(st.sampled_from(["none", "none", "all", "some"]))
    if mode == "none":
        return text
    out = []
    for ch in text:
        if "!" <= ch <= "~" and (mode == "all" or draw(st.booleans())):
            out.append(chr(ord(ch) + 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


def mixed_case(draw: st.DrawFn, text: str) -> str:
    mode = draw(st.sampled_from(["as is", "upper", "lower", "mixed"]))
    if mode == "upper":
        return text.upper()
    if mode == "lower":
        return text.lower()
    if mode == "mixed":
        return "".join(ch.upper() if draw(st.booleans()) else ch.lower() for ch in text)
    return text


def group(text: str, sizes: tuple[int, ...], sep: str) -> str:
    out, i = [], 0
    for n in sizes:
        out.append(text[i : i + n])
        i += n
    return sep.join(out)


# --- resident IDs -------------------------------------------------------------------------------------------
@st.composite
def resident_ids(draw: st.DrawFn) -> Case:
    form = draw(st.sampled_from(["18", "18", "18", "permanent_residence", "hk_macau_taiwan", "15"]))
    if form == "15":
        birth = draw(st.dates(dt.date(1900, 1, 1), dt.date(1999, 12, 31)))
        value = f"{draw(st.sampled_from(ID15_PROVINCES))}{draw(st.integers(0, 9999)):04d}{birth:%y%m%d}"
        value += f"{draw(st.integers(0, 999)):03d}"
        groupings = [(15,), (6, 6, 3)]
        kind = "resident_id_15"
    else:
        if form == "18":
            region = draw(st.integers(110000, 659999))
        elif form == "permanent_residence":  # 2023 foreigner permanent residence: 9 + province + ...
            region = 900000 + draw(st.integers(0, 99999))
        else:
            region = draw(st.sampled_from([810000, 820000, 830000]))
        birth = draw(st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)))
        body = f"{region:06d}{birth:%Y%m%d}{draw(st.integers(0, 999)):03d}"
        value = body + id18_check_char(body)
        groupings = [(18,), (6, 8, 4), (4, 4, 4, 4, 2), (6, 4, 4, 4)]
        kind = "resident_id"
    sizes = draw(st.sampled_from(groupings))
    sep = draw(st.sampled_from(SEPARATORS)) if len(sizes) > 1 else ""
    text = group(value.lower() if draw(st.booleans()) else value, sizes, sep)
    return Case(kind, value, fullwidth_some(draw, text))


# --- phones -------------------------------------------------------------------------------------------------
# 幺 for 1, 两 for 2, and the financial numerals (壹贰叁...) an adversary reaches for next
CN_NUMERALS = {"0": "〇零", "1": "一幺壹", "2": "二两贰", "3": "三叁", "4": "四肆", "5": "五伍", "6": "六陆",
               "7": "七柒", "8": "八捌", "9": "九玖"}  # fmt: skip
PHONE_PREFIXES = ["", "", "", "+86", "+86 ", "+86-", "0086", "0086 ", "0086-", "86", "86 ", "(+86)", "(+86) ",
                  "（+86）", "（0086）", "(86)"]  # fmt: skip


@st.composite
def phones(draw: st.DrawFn) -> Case:
    value = "1" + draw(st.sampled_from("3456789")) + "".join(draw(st.lists(st.sampled_from(DIGITS), min_size=9,
                                                                         max_size=9)))  # fmt: skip
    digits = list(value)
    if draw(st.integers(0, 2)) == 0:  # Chinese numerals for some or all digits
        spelled = (
            range(11) if draw(st.booleans()) else draw(st.lists(st.integers(0, 10), min_size=1, unique=True))
        )
        for i in spelled:
            digits[i] = draw(st.sampled_from(CN_NUMERALS[value[i]]))
    form = draw(st.sampled_from(["plain", "3-4-4", "4-3-4", "brackets"]))
    sep = draw(st.sampled_from(SEPARATORS))
    if form == "plain":
        text = "".join(digits)
    elif form == "3-4-4":
        text = group("".join(digits), (3, 4, 4), sep)
    elif form == "4-3-4":
        text = group("".join(digits), (4, 3, 4), sep)
    else:  # (138)1234-5678, （138）1234 5678
        opening, closing = draw(st.sampled_from([("(", ")"), ("（", "）")]))
        after = draw(st.sampled_from(["", "", " "]))
        inner = draw(st.sampled_from(["", sep]))
        text = f"{opening}{''.join(digits[:3])}{closing}{after}{''.join(digits[3:7])}{inner}{''.join(digits[7:])}"
    prefix = draw(st.sampled_from(PHONE_PREFIXES))
    return Case("phone", value, fullwidth_some(draw, prefix + text))


# --- plates -------------------------------------------------------------------------------------------------
PLATE_SEPARATORS = ["", "", *SEPARATORS, "·", "•", "・"]


@st.composite
def plates(draw: st.DrawFn) -> Case:
    prov = draw(st.sampled_from(PROVINCES))
    letter = draw(st.sampled_from(SERIAL_LETTERS))
    digit = st.sampled_from(DIGITS)
    alnum = st.sampled_from(SERIAL_LETTERS + DIGITS)
    family = draw(
        st.sampled_from(
            ["ordinary", "nev_small", "nev_large", "suffix", "police", "emergency", "wj", "embassy"]
        )
    )
    if family == "wj":
        serial = "".join(draw(digit) for _ in range(4)) + draw(alnum)
        sep1, sep2 = draw(st.sampled_from(PLATE_SEPARATORS)), draw(st.sampled_from(PLATE_SEPARATORS))
        text = f"WJ{sep1}{prov}{sep2}{serial}"
        return Case("plate", f"WJ{prov}{serial}", fullwidth_some(draw, mixed_case(draw, text)))
    if family == "embassy":
        value = "使" + "".join(draw(digit) for _ in range(6))
        return Case("plate", value, fullwidth_some(draw, value))
    if family == "ordinary":  # 5 serial characters, at most 2 letters
        chars = [draw(digit) for _ in range(5)]
        for i in draw(st.lists(st.integers(0, 4), max_size=2, unique=True)):
            chars[i] = draw(st.sampled_from(SERIAL_LETTERS))
        serial = "".join(chars)
    elif family == "nev_small":  # D/F + letter or digit + 4 digits
        serial = draw(st.sampled_from("DF")) + draw(alnum) + "".join(draw(digit) for _ in range(4))
    elif family == "nev_large":  # 5 digits + D/F
        serial = "".join(draw(digit) for _ in range(5)) + draw(st.sampled_from("DF"))
    elif family == "suffix":  # trailers, driving schools, HK/Macau, consulates, test plates
        serial = draw(alnum) + "".join(draw(digit) for _ in range(3)) + draw(st.sampled_from("挂学港澳领试"))
    elif family == "police":  # the authority letter may be O for provincial organs
        letter = draw(st.sampled_from(SERIAL_LETTERS + "O"))
        serial = draw(alnum) + "".join(draw(digit) for _ in range(3)) + "警"
    else:
        serial = "".join(draw(digit) for _ in range(4)) + "应急"
    sep1, sep2 = draw(st.sampled_from(PLATE_SEPARATORS)), draw(st.sampled_from(PLATE_SEPARATORS))
    text = f"{prov}{sep1}{letter}{sep2}{serial}"
    return Case("plate", prov + letter + serial, fullwidth_some(draw, mixed_case(draw, text)))


# --- names after a label ------------------------------------------------------------------------------------
TEST_LABELS = (
    "报修人", "联络人", "租客", "联系人", "业主", "住户", "访客", "家属", "紧急联系人", "亲属", "房主", "房客",
    "产权人", "居住人", "入住人", "同住人", "当事人", "对接人", "租户", "户主", "车主", "房东", "申请人", "投诉人",
    "收件人", "姓名", "监护人", "紧急联络人", "业主姓名", "联系人姓名",
)  # fmt: skip
# Common given-name characters (none of them a particle or title that ends a name: 先生, 女士, 也, 来电 ...).
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国斌玉萍红春鹏飞婷雪琳晨宇浩然子轩欣怡嘉俊博思涵梓睿翔志宏波辉"
NAME_SEPARATORS = ["", "", "：", ":", "=", "为", "： ", *SEPARATORS, "：\u3000"]


@st.composite
def names(draw: st.DrawFn) -> Case:
    surname = draw(st.sampled_from(SURNAMES) | st.sampled_from(COMPOUND_SURNAMES))
    given = "".join(draw(st.lists(st.sampled_from(GIVEN), min_size=1, max_size=2)))
    # a name that begins with one of the scanner's stop words (黎明 "dawn", 文明 "civilised") is read as the word:
    # a documented miss (docs/privacy.md), found here once by a 304-second search
    assume((surname + given)[:2] not in NAME_STOP_WORDS)
    label = draw(st.sampled_from(TEST_LABELS))
    sep = draw(st.sampled_from(NAME_SEPARATORS))
    inner = draw(st.sampled_from(["", "", "", " ", "\u3000"]))
    return Case("name", surname + given, f"{label}{sep}{surname}{inner}{given}")


# --- e-mail -------------------------------------------------------------------------------------------------
@st.composite
def emails(draw: st.DrawFn) -> Case:
    word = st.text(ALNUM, min_size=1, max_size=10)
    local = draw(word) + "".join(
        draw(st.sampled_from([".", "_", "-", "+"])) + draw(word) for _ in range(draw(st.integers(0, 2)))
    )
    labels = draw(st.lists(st.text(ALNUM, min_size=1, max_size=8), min_size=1, max_size=2))
    if draw(st.booleans()):
        labels[0] = labels[0] + "-" + draw(word)
    tld = draw(
        st.sampled_from(["com", "cn", "com.cn", "net", "org", "io", "edu.cn", "gov.cn", "top", "xyz", "hk"])
    )
    value = f"{local}@{'.'.join(labels)}.{tld}"
    return Case("email", value.lower(), fullwidth_some(draw, mixed_case(draw, value)))


# --- WeChat and QQ ------------------------------------------------------------------------------------------
WECHAT_ZH = ["微信", "微信号", "微信号码", "微信账号", "微信ID", "微信id", "加微信", "wx号", "WX号", "vx号"]
WECHAT_EN = ["wx", "WX", "Wx", "vx", "VX", "WeChat", "wechat", "WECHAT", "WeChat ID", "Wechat id", "weixin"]


@st.composite
def wechat_ids(draw: st.DrawFn) -> Case:
    if draw(st.integers(0, 3)) == 0:
        value = draw(st.sampled_from(["wxid_", "WXID_", "wxid_"])) + draw(
            st.text(ALNUM, min_size=6, max_size=24)
        )
        return Case("wechat", value, fullwidth_some(draw, value))
    first = draw(
        st.sampled_from((LOWER + LOWER.upper()).replace("i", "").replace("I", ""))
    )  # 微信ID id88: "id" joins the label
    value = first + draw(st.text(ALNUM + ALNUM.upper() + "_-", min_size=5, max_size=19))
    if draw(st.booleans()):
        label = draw(st.sampled_from(WECHAT_ZH))
        sep = draw(st.sampled_from(["", "", ":", "：", " ", "\u3000", "： ", "="]))
    else:
        label = draw(st.sampled_from(WECHAT_EN))
        sep = draw(st.sampled_from([":", "：", ": ", "=", " ", "\u3000"]))
        value = value[:20]
        if not sep.strip() and not any(c in value for c in DIGITS + "_-"):
            # "WeChat payment" is prose; an id after a space has a digit (kept within the 20-character limit)
            value = value[:19] + draw(st.sampled_from(DIGITS))
    return Case("wechat", value, fullwidth_some(draw, label + sep + value))


@st.composite
def qq_numbers(draw: st.DrawFn) -> Case:
    value = str(draw(st.integers(10_000, 99_999_999_999)))
    text = value
    if len(value) >= 7 and draw(st.booleans()):  # grouped: 1234 5678, 123-456-789
        cuts = sorted(draw(st.lists(st.integers(3, len(value) - 3), min_size=1, max_size=2, unique=True)))
        sizes = tuple(b - a for a, b in zip((0, *cuts), (*cuts, len(value)), strict=True))
        text = group(value, sizes, draw(st.sampled_from(SEPARATORS)))
    label = draw(st.sampled_from(["QQ", "qq", "Qq", "QQ号", "QQ号码", "qq号", "扣扣", "扣扣号"]))
    sep = draw(st.sampled_from(["", "", ":", "：", " ", "\u3000", "： ", "="]))
    return Case("qq", value, fullwidth_some(draw, label + sep + text))


# --- image URLs ---------------------------------------------------------------------------------------------
IMAGE_TYPES = ["jpg", "jpeg", "jpe", "jfif", "png", "apng", "webp", "bmp", "gif", "heic", "heif", "avif", "tif",
               "tiff", "jxl", "jp2"]  # fmt: skip


@st.composite
def image_urls(draw: st.DrawFn) -> Case:
    scheme = mixed_case(draw, draw(st.sampled_from(["http", "https", "https", "ftp"])))
    host = draw(
        st.sampled_from(["oss.example.com", "10.0.0.5:8080", "cdn.vendor.cn", "192.168.1.20", "a-b.c.io"])
    )
    path = "/".join(draw(st.lists(st.text(ALNUM + "_-", min_size=1, max_size=8), min_size=0, max_size=3)))
    name = draw(st.text(ALNUM + "_-", min_size=1, max_size=12))
    ext = mixed_case(draw, draw(st.sampled_from(IMAGE_TYPES)))
    tail = draw(st.sampled_from(["", "", "?x=1", "?sign=abc&t=1732000000", "#frag", "@100w_100h", "!thumb"]))
    value = f"{scheme}://{host}/{path + '/' if path else ''}{name}.{ext}{tail}"
    return Case("image_url", value, value)


# --- room addresses -----------------------------------------------------------------------------------------
CN_SMALL = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "二十", "二十三"]
ROOM_SEPARATORS = ["", "", "", *SEPARATORS, ",", "，", "、"]


def strip_room(text: str) -> str:
    return "".join(ch for ch in text if ch not in " ,，、.-\u3000\uff0d")


@st.composite
def room_addresses(draw: st.DrawFn) -> Case:
    """3号楼502室, 3栋2单元502, 12幢1201, 5号楼3单元301室, B座1203, B3栋1201, 3#楼502, 3#502室, 3号502房,
    2单元301室, 5-2-301室, 502-1 (a sub-room), with Chinese numerals for buildings and units."""
    number = st.integers(1, 99).map(str) | st.sampled_from(CN_SMALL)
    unit_number = st.integers(1, 12).map(str) | st.sampled_from(CN_SMALL[:12])
    room = f"{draw(st.integers(1, 33))}{draw(st.integers(1, 12)):02d}"
    sub_room = f"-{draw(st.integers(1, 9))}" if draw(st.integers(0, 5)) == 0 else ""  # 502-1室
    sep1, sep2 = draw(st.sampled_from(ROOM_SEPARATORS)), draw(st.sampled_from(ROOM_SEPARATORS))
    form = draw(st.sampled_from(["building", "building", "building", "unit", "number", "dashed"]))
    if form == "dashed":  # 5-2-301室, 3-502室
        unit = f"{draw(st.integers(1, 9))}-" if draw(st.booleans()) else ""
        text = f"{draw(st.integers(1, 99))}-{unit}{room}{draw(st.sampled_from('室房'))}"
        return Case("room_address", strip_room(text), fullwidth_some(draw, text))
    suffix = draw(st.sampled_from(["", "室", "室", "房", "号"]))
    if form == "unit":
        building = ""
    elif form == "number":  # 3号502室, 3#-502室: the room needs 室 or 房
        building = draw(number) + draw(st.sampled_from(["号", "#"]))
        suffix = draw(st.sampled_from(["室", "房"]))
    elif draw(st.integers(0, 4)) == 0:
        building = draw(st.sampled_from("ABCDEFGHT")) + draw(st.sampled_from(["", "", "1", "3", "12"]))
        building += draw(st.sampled_from(["座", "栋", "幢"]))
    else:
        building = draw(number) + draw(st.sampled_from(["号楼", "幢", "栋", "座", "#楼"]))
    unit = f"{draw(unit_number)}单元" if form == "unit" or draw(st.booleans()) else ""
    if sub_room and suffix in ("室", "房"):
        room += sub_room
    text = (building + sep1 if building else "") + (unit + sep2 if unit else "") + room + suffix
    return Case("room_address", strip_room(text), fullwidth_some(draw, text))


FAMILIES = {
    "resident_id": resident_ids(),
    "phone": phones(),
    "plate": plates(),
    "name": names(),
    "email": emails(),
    "wechat": wechat_ids(),
    "qq": qq_numbers(),
    "image_url": image_urls(),
    "room_address": room_addresses(),
}

# --- embedding ----------------------------------------------------------------------------------------------
B32 = "abcdefghijklmnopqrstuvwxyz234567"
person_tokens = st.text(B32, min_size=16, max_size=32).map(lambda s: f"person_v1_{s}x")
# Text around a value; what touches it is never a digit, letter or Chinese numeral (that would be a
# different, longer value) nor a character that continues a name.
BEFORE = ["", "", "电话", "联系方式：", "车牌", "身份证号", "住址：", "备注:", "见", "【", "（", "“", "\n", "，", " ",
          "工单内容：", "反馈："]  # fmt: skip
AFTER = [
    "",
    "",
    "。",
    ".",
    "，",
    "）",
    "】",
    "”",
    "\n",
    " ",
    "；",
    "请回电",
    "反映漏水",
    "已登记",
    "的车",
    "也来了",
]
ZH_TEXT = ["小区东门", "物业", "登记", "车辆进入", "工单", "请尽快处理", "resident", "note:", "work order"]


@st.composite
def in_chinese_text(draw: st.DrawFn, case: Case) -> str:
    before = draw(st.sampled_from(BEFORE))
    after = draw(st.sampled_from(AFTER))
    if case.kind == "room_address" and draw(st.booleans()):  # next to a person token
        # glued (...x3号楼502室) unless the building is a letter: xA座 is no A座
        first = unicodedata.normalize("NFKC", case.text[0])
        letter = first.isascii() and first.isalpha()
        glue = [" ", ",", "\t", "："] if letter else ["", " ", ",", "\t", "："]
        before = draw(person_tokens) + draw(st.sampled_from(glue))
    head = " ".join(draw(st.lists(st.sampled_from(ZH_TEXT), max_size=3)))
    tail = " ".join(draw(st.lists(st.sampled_from(ZH_TEXT), max_size=3)))
    return f"{head}{'，' if head else ''}{before}{case.text}{after}{'，' if tail else ''}{tail}"


def in_csv(text: str, token: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["2026-01-01T08:00:00+08:00", token, text, "东门", 3])
    return buffer.getvalue()


CONTAINERS = ["text", "json_ascii", "json_utf8", "csv"]


def contain(container: str, text: str, token: str) -> str:
    if container == "json_ascii":
        return json.dumps({"event": "work_order", "person": token, "note": text}, ensure_ascii=True)
    if container == "json_utf8":
        return json.dumps({"event": "work_order", "person": token, "note": [text]}, ensure_ascii=False)
    if container == "csv":
        return in_csv(text, token)
    return text


PREFIX_KINDS = {"image_url", "name"}  # a URL may run on into what follows; 张三 in 张三电话 is 张三电


def found(document: str, case: Case) -> bool:
    for f in find_identifiers(document):
        if f.kind == case.kind and (
            f.value == case.value or (case.kind in PREFIX_KINDS and f.value.startswith(case.value))
        ):
            return True
    return False


@pytest.mark.parametrize("family", list(FAMILIES))
@RECALL
@given(data=st.data())
def test_every_variant_is_found_in_text_json_and_csv(family: str, data: st.DataObject) -> None:
    case = data.draw(FAMILIES[family], label="case")
    text = data.draw(in_chinese_text(case), label="text")
    container = data.draw(st.sampled_from(CONTAINERS), label="container")
    document = contain(container, text, data.draw(person_tokens))
    assert found(document, case), (case, document, find_identifiers(document))
    assert case.kind in {h.kind for h in scan_text(document)}


def expected_sample(case: Case) -> str | None:
    if case.kind in PREFIX_KINDS:
        return None
    n = len(case.value)
    return f"{case.value[: min(3, n // 4)]}***({n})"


@pytest.mark.parametrize("family", list(FAMILIES))
@PARQUET
@given(data=st.data())
def test_every_variant_is_found_in_parquet_string_columns(family: str, data: st.DataObject) -> None:
    """Each value in its own column, raw in Chinese text or inside a JSON document (ASCII-escaped or not):
    the SQL prefilter must pass it to the Python check, which must confirm it."""
    cases = data.draw(st.lists(FAMILIES[family], min_size=10, max_size=30), label="cases")
    columns: dict[str, list[str | None]] = {}
    for i, case in enumerate(cases):
        text = data.draw(in_chinese_text(case))
        container = data.draw(st.sampled_from(["text", "json_ascii", "json_utf8"]))
        columns[f"c{i}"] = ["e1", contain(container, text, "person_v1_abcdefghijklmnop"), None]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part.parquet"
        pq.write_table(pa.table(columns), path)
        hits = scan_parquet([path])
    by_column: dict[str, set[tuple[str, str]]] = {}
    for h in hits:
        by_column.setdefault(h.location.rsplit("::", 1)[-1], set()).add((h.kind, h.sample))
    missing = []
    for i, case in enumerate(cases):
        got = by_column.get(f"c{i}", set())
        sample = expected_sample(case)
        ok = (case.kind, sample) in got if sample else any(kind == case.kind for kind, _ in got)
        if not ok:
            missing.append((case, columns[f"c{i}"][1], got))
    assert missing == []


# --- the variants these properties found missing (one or more per family) ---------------------------------
MISSED_BEFORE = [
    ("110000.20000101.0000", "resident_id", "110000200001010000"),  # dot separators
    ("1130 0020 0001 0100 03", "resident_id", "113000200001010003"),  # SQL token was 130 0020 0001
    ("旧证 310101-900101-123", "resident_id_15", "310101900101123"),  # 15 digits grouped 6-6-3
    ("（一三八）〇〇一三 八〇〇〇", "phone", "13800138000"),  # numerals in brackets
    ("（86）（一四四）〇八一两．三七一三", "phone", "14408123713"),
    ("电话壹叁捌零零壹叁捌零零零", "phone", "13800138000"),  # financial numerals
    ("(138).0013.8000", "phone", "13800138000"),
    ("京A.A000挂", "plate", "京AA000挂"),  # dot after the authority letter
    ("WJ 沪·12345", "plate", "WJ沪12345"),  # separator after WJ
    ("家属王伟", "name", "王伟"),  # labels not in the list
    ("紧急联络人：司马伟", "name", "司马伟"),
    ("产权人 李娜", "name", "李娜"),
    ("姓名-澹台娜然", "name", "澹台娜然"),  # hyphen after the label
    ("wx:a00000", "wechat", "a00000"),  # wx / vx labels
    ("wx aAAAAAAAAAAAAAAAAAA1", "wechat", "aAAAAAAAAAAAAAAAAAA1"),  # 20 characters after a space, with a digit
    ("VX：Oez2v8HAs", "wechat", "Oez2v8HAs"),
    ("wx号zhangsan88", "wechat", "zhangsan88"),
    ("加V信 lisi_2024", "wechat", "lisi_2024"),
    ("ｗｅｉｘｉｎ＝ｂａｘｐＤＲ６", "wechat", "baxpDR6"),  # escaped in SQL, ｘ must stay lower case
    ("A座1单元.101", "room_address", "A座1单元101"),  # dot separator
    ("person_v1_25347pha6uuus3yes63bi267x18座1408号", "room_address", "18座1408号"),  # glued to a token
    ("住3号楼502.", "room_address", "3号楼502"),  # a full stop after the room
    ("万科城B3栋1201室", "room_address", "B3栋1201室"),  # letter and number building
]


@pytest.mark.parametrize("text,kind,value", MISSED_BEFORE)
def test_variants_missed_before_are_found_everywhere(
    text: str, kind: str, value: str, tmp_path: Path
) -> None:
    for ascii_only in (True, False):
        document = json.dumps({"note": text}, ensure_ascii=ascii_only)
        assert found(document, Case(kind, value, text)), document
    assert found(text, Case(kind, value, text))
    columns = {
        "raw": [text],
        "json": [json.dumps({"note": text})],
        "utf8": [json.dumps([text], ensure_ascii=False)],
    }
    pq.write_table(pa.table(columns), tmp_path / "x.parquet")
    hits = {(h.location.rsplit("::", 1)[-1], h.kind) for h in scan_parquet([tmp_path / "x.parquet"])}
    assert {(col, kind) for col in columns} <= hits


# --- precision ----------------------------------------------------------------------------------------------
HEX = "0123456789abcdef"
_BODY = "31010119900101123"
_RID = _BODY + id18_check_char(_BODY)  # 310101199001011234: a valid ID whose check character is a digit
# one dot is a decimal point, never an ID's separator
DECIMALS_LIKE_IDS = [
    f"{_RID[:6]}.{_RID[6:]}",
    f"{_RID[:14]}.{_RID[14:]}",
    "310101.900101123",
    "3101019001.01123",
]
region = st.integers(110000, 659999).map(str)
compact_time = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31)).map(
    lambda d: f"{d:%Y%m%d%H%M%S}"
)
device_ids = st.tuples(region, st.text(DIGITS, min_size=14, max_size=14)).map("".join)  # 20-digit GA/T 1400
platform_values = st.one_of(
    st.text(B32, min_size=16, max_size=52).map(lambda s: "person_v1_" + s),
    st.text(B32, min_size=16, max_size=52).map(lambda s: "plate_v1_" + s),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: f"{d:%Y-%m-%d %H:%M:%S}.{d.microsecond // 1000:03d}+08:00"),
    compact_time,
    st.floats(-1e7, 1e7, allow_nan=False).map(lambda x: f"{x:.{3}f}"),  # decimal readings
    st.floats(0, 1, allow_nan=False).map(lambda x: f"{x:.11f}"),
    st.integers(0, 2**128 - 1).map(lambda n: str(uuid.UUID(int=n))),
    st.integers(0, 2**128 - 1).map(lambda n: uuid.UUID(int=n).hex),
    st.sampled_from([8, 24, 32, 40, 64]).flatmap(
        lambda n: st.text(HEX, min_size=n, max_size=n)
    ),  # digests, ids
    device_ids,
    st.text(DIGITS, min_size=20, max_size=20),
    st.tuples(
        device_ids, st.sampled_from(["01", "02"]), compact_time, st.text(DIGITS, min_size=12, max_size=12)
    ).map("".join),  # 48-digit GA/T 1400 MotorVehicleID
    st.text(DIGITS, min_size=48, max_size=48),
    st.integers(1_000_000_000_000, 2_100_000_000_000).map(str),  # epoch ms
    st.integers(1_000_000_000, 2_100_000_000).map(str),  # epoch s
    st.integers(1_000_000_000_000_000, 2_100_000_000_000_000).map(str),  # epoch us
    st.sampled_from(
        [
            "wx_pay",
            "wxPython 4.2",
            "vx.y",
            "WX-2000",
            "wechat_pay",
            "wx aAAAAAAAAAAAAAAAAAAA",  # after a bare space, letters only read as prose
            "WeChat payment",
            "QQ音乐",
            "使用次数",
            "100000使用",
            "3号楼",
            "3号楼2单元门口",
            "共3栋 200户",
            "logo@2x.png",
            "家属区",
            "亲属关系",
            "房主任务",
            "当事人员",
            "居住人数",
            "入住人员登记",
            "TV信号强",
            "WXPay",
            "wx.request",
            "vx 2000",
            "3号楼.2单元门口",
            "12栋.1200人",
            "3号楼 2026-12 水费",
            "3号楼 2026-12-04",
            "人民币壹万贰仟叁佰肆拾伍元",
            *DECIMALS_LIKE_IDS,
        ]
    ),  # fmt: skip
)


@RECALL
@given(platform_values, st.sampled_from(["text", "json_ascii", "json_utf8", "csv"]))
def test_platform_values_never_hit(value: str, container: str) -> None:
    document = contain(container, value, "person_v1_abcdefghijklmnop")
    assert find_identifiers(document) == [], document


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(platform_values, min_size=20, max_size=60))
def test_platform_values_never_hit_in_parquet(batch: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part.parquet"
        pq.write_table(pa.table({"v": batch, "j": [json.dumps({"v": v}) for v in batch]}), path)
        assert scan_parquet([path]) == []


def test_community_codes_with_a_file_suffix_are_not_15_digit_ids():
    """Landing file names (source_file in every bronze row) carry a 12-digit community code and a suffix:
    310107001001-007 reads as 310107 001001 007 (a valid 15-digit shape) only with one separator of two."""
    from quality.pii_scan import scan_text

    for name in ("access_events/2026-11-20/310107001001/310107001001-007.ndjson.gz",
                 "work_orders_310107002003_part2.csv", "310107005001-019"):
        assert scan_text(name, [], location="x") == [], name
