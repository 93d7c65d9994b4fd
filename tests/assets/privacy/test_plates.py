"""Plate attributes: GA 36 types, strict validity, province and colour schemes."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assets.privacy.plates import PLATE_RE, PLATE_TYPES, PROVINCES, is_valid_plate, plate_attributes

# plate, 4pyun colour, normalised, province, region group, type, valid
CASES = [
    ("沪A12345", 1, "沪A12345", "沪", "shanghai", "ordinary_blue", True),
    ("沪AD12345", 5, "沪AD12345", "沪", "shanghai", "new_energy_green", True),
    ("沪AF1234A", 5, None, "沪", "shanghai", "other", False),  # NEV serial must end in 4 digits
    ("沪A12345D", 2, "沪A12345D", "沪", "shanghai", "new_energy_green", True),  # large NEV, yellow-green
    ("京A12345", 2, "京A12345", "京", "other_province", "large_yellow", True),
    ("沪B1234学", 2, "沪B1234学", "沪", "shanghai", "coach_or_trailer", True),
    ("沪A1234挂", 2, "沪A1234挂", "沪", "shanghai", "coach_or_trailer", True),
    ("沪A1234警", 3, "沪A1234警", "沪", "shanghai", "police", True),
    ("浙O1234警", 3, "浙O1234警", "浙", "other_province", "police", True),  # O allowed for police organs
    ("粤Z1234港", 4, "粤Z1234港", "粤", "other_province", "hk_macau", True),
    ("粤Z1234澳", 4, "粤Z1234澳", "粤", "other_province", "hk_macau", True),
    ("使123456", 4, "使123456", None, "unknown", "embassy", True),
    ("123456使", 4, "123456使", None, "unknown", "embassy", True),
    ("沪A1234领", 4, "沪A1234领", "沪", "shanghai", "embassy", True),
    ("WJ沪12345", 3, "WJ沪12345", "沪", "shanghai", "military", True),
    ("VA12345", 3, "VA12345", None, "unknown", "military", True),
    ("沪A1234应急", 3, "沪A1234应急", "沪", "shanghai", "other", True),
    ("无牌", -1, "无牌", None, "unknown", "none", False),
    ("无牌车", -1, "无牌车", None, "unknown", "none", False),
    ("未识别", -1, "未识别", None, "unknown", "none", False),
    ("", -1, None, None, "unknown", "none", False),
    (None, None, None, None, "unknown", "none", False),
    ("沪A1O345", 1, "沪A1O345", "沪", "shanghai", "ordinary_blue", False),  # OCR O in the serial
    ("沪A1I345", 1, "沪A1I345", "沪", "shanghai", "ordinary_blue", False),  # OCR I in the serial
    ("沪I12345", 1, "沪I12345", "沪", "shanghai", "ordinary_blue", False),  # I is never an authority letter
    ("沪A123456", 1, "沪A123456", "沪", "shanghai", "other", False),  # 8 chars but not NEV
    ("沪A1234", 1, "沪A1234", "沪", "shanghai", "other", False),  # too short
    ("A12345", 1, "A12345", None, "unknown", "other", False),  # no province
    ("沪Ａ·１２３４５", 1, "沪A12345", "沪", "shanghai", "ordinary_blue", True),  # full-width + separator
    (" 沪a-12345 ", 1, "沪A12345", "沪", "shanghai", "ordinary_blue", True),
    ("沪A12345", 3, "沪A12345", "沪", "shanghai", "other", True),  # white 7-char without 警: not ordinary
]


@pytest.fixture(scope="module")
def attributes() -> pl.DataFrame:
    df = pl.DataFrame({"plate": [c[0] for c in CASES], "color": [c[1] for c in CASES]})
    return plate_attributes(df, "plate", "color")


@pytest.mark.parametrize("i", range(len(CASES)), ids=[repr(c[0]) for c in CASES])
def test_plate_case(attributes: pl.DataFrame, i: int) -> None:
    plate, _, normalised, province, region, plate_type, valid = CASES[i]
    row = attributes.row(i, named=True)
    if normalised is not None:
        assert row["plate_normalised"] == normalised
    assert row["plate_province"] == province
    assert row["plate_region_group"] == region
    assert row["plate_type"] == plate_type
    assert row["plate_valid"] is valid
    assert is_valid_plate(row["plate_normalised"]) is valid  # Python regex agrees with the Polars one


def test_types_are_from_the_documented_set(attributes: pl.DataFrame) -> None:
    assert set(attributes["plate_type"]) <= set(PLATE_TYPES)
    assert attributes.schema["plate_valid"] == pl.Boolean


def test_invalid_plates_are_flagged_not_dropped(attributes: pl.DataFrame) -> None:
    assert attributes.height == len(CASES)
    assert attributes["plate"].to_list() == [c[0] for c in CASES]


def test_without_colour_seven_char_plates_are_ordinary() -> None:
    out = plate_attributes(pl.DataFrame({"p": ["沪A12345", "沪AD12345"]}), "p")
    assert out["plate_type"].to_list() == ["ordinary_blue", "new_energy_green"]


@pytest.mark.parametrize(
    ("scheme", "colours"),
    [
        ("4pyun", [2, 1, -1, None]),
        ("4pyun", ["2", "1", "-1", None]),
        ("gat1400", ["6", "5", "99", None]),
        ("gat1400", ["黄", "蓝", "其他", None]),
        ("text", ["黄色", "blue", "未知", None]),
        ("text", ["YELLOW", "蓝牌", "", None]),
    ],
)
def test_colour_schemes(scheme: str, colours: list[object]) -> None:
    df = pl.DataFrame({"p": ["沪A12345"] * 4, "c": colours})
    out = plate_attributes(df, "p", "c", color_scheme=scheme)  # type: ignore[arg-type]
    assert out["plate_type"].to_list() == ["large_yellow", "ordinary_blue", "ordinary_blue", "ordinary_blue"]


def test_unknown_colour_scheme_is_rejected() -> None:
    with pytest.raises(ValueError, match="color_scheme"):
        plate_attributes(pl.DataFrame({"p": ["沪A12345"], "c": [1]}), "p", "c", color_scheme="rgb")  # type: ignore[arg-type]


def test_provinces_constant() -> None:
    assert len(PROVINCES) == 31 and "沪" in PROVINCES


SERIAL = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@given(
    st.sampled_from(PROVINCES),
    st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ"),
    st.text(alphabet=SERIAL, min_size=5, max_size=5),
    st.sampled_from(["", " ", "·", "-", "•"]),
    st.booleans(),
)
def test_any_ordinary_plate_survives_formatting_noise(
    province: str, authority: str, serial: str, sep: str, lower: bool
) -> None:
    plate = province + authority + serial
    assert PLATE_RE.fullmatch(plate)
    noisy = province + (authority.lower() if lower else authority) + sep + serial
    out = plate_attributes(pl.DataFrame({"p": [noisy]}), "p")
    assert out["plate_normalised"][0] == plate and out["plate_valid"][0]
    assert out["plate_type"][0] in {"ordinary_blue", "new_energy_green"}


@given(st.sampled_from(PROVINCES), st.text(alphabet="0123456789IO", min_size=5, max_size=5))
def test_serial_with_i_or_o_is_invalid(province: str, serial: str) -> None:
    if "I" not in serial and "O" not in serial:
        serial = "O" + serial[1:]
    assert not PLATE_RE.fullmatch(province + "A" + serial)


def test_resident_or_visitor_is_decided_by_token():
    from assets.privacy.plates import mark_residents
    from kernel.tokens import Tokenizer

    tok = Tokenizer("a-test-key-of-sufficient-length", 1)
    registry = tok.tokenize_series(pl.Series(["沪A12345", "沪AD12345"]), "plate")
    passages = pl.DataFrame({"plate": ["沪a·12345", "苏E99999", None, "沪AD12345"]})
    passages = passages.with_columns(plate_token=tok.tokenize_series(passages["plate"], "plate")).drop("plate")
    out = mark_residents(passages, "plate_token", registry)
    assert out["is_resident_vehicle"].to_list() == [True, False, False, True]


@pytest.mark.parametrize(
    ("scheme", "codes", "colours"),
    [
        # an unlisted code is "other" (a colour the table does not name), never an error; empty is unknown
        ("gat1400", ["5", "9", "20", "", None, " 6 "], ["blue", "green", "other", "unknown", "unknown", "yellow"]),
        ("4pyun", ["1", "5", "-1", "9", "7"], ["blue", "green", "unknown", "other", "other"]),
        ("luoyang", ["0", "1", "4", "9", "10", "11"], ["unknown", "blue", "black", "orange", "other", "other"]),
        ("jtt415", ["1", "2", "3", "4", "5"], ["blue", "yellow", "black", "white", "other"]),
        ("gat1400", ["蓝", "黄绿", "其他"], ["blue", "yellow_green", "unknown"]),  # words fall through to text
    ],
)
def test_colour_codes_come_from_the_table_and_unlisted_codes_are_other(scheme: str, codes: list, colours: list) -> None:
    from assets.privacy.plates import plate_colour_expr

    got = pl.DataFrame({"c": codes}, schema={"c": pl.String}).select(plate_colour_expr("c", scheme))["c"].to_list()
    assert got == colours


def test_the_colour_table_is_data_an_operator_extends() -> None:
    from assets.privacy.plates import COLOUR_TABLE, colour_codes

    table = pl.read_csv(COLOUR_TABLE, infer_schema=False)
    assert set(table.columns) >= {"scheme", "code", "colour", "source"}
    assert table.filter(pl.col("source").is_null()).height == 0  # every code says where it was seen
    assert table.select("scheme", "code").is_duplicated().sum() == 0
    assert set(colour_codes()) == set(table["scheme"])


def test_colour_scheme_per_row_for_feeds_with_several_vendors() -> None:
    from assets.privacy.plates import plate_colour_by_scheme

    df = pl.DataFrame({"c": ["5", "5", "5", "蓝"], "s": ["gat1400", "4pyun", "luoyang", "text"]})
    got = df.select(colour=plate_colour_by_scheme("c", "s"))["colour"].to_list()
    assert got == ["blue", "green", "green", "blue"]
