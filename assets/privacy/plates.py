"""Plate attributes (normalised form, province, type, validity) as vectorised Polars expressions.

Validation is strict (GA 36-2018 grammar) but only flags: unreadable plates stay in the data so they can be counted.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal

import polars as pl

from kernel.tokens import normalise

PROVINCES: Final = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_TYPES: Final = (
    "ordinary_blue",
    "new_energy_green",
    "large_yellow",
    "police",
    "military",
    "embassy",
    "coach_or_trailer",
    "hk_macau",
    "other",
    "none",
)
ColorScheme = Literal["4pyun", "gat1400", "luoyang", "jtt415", "text"] | str

_P = PROVINCES
_L = "A-HJ-NP-Z"  # serial letters: A-Z without I and O
# Small NEV: D/F plus the reported A-K extension (privacy.md marks it [R]); large NEV ends in D/F.
_NEV_FIRST = "DABCEFGHJK"

# One pattern string for both Python `re` and Polars (Rust regex): no look-arounds, anchored both ends.
PLATE_PATTERN: Final = (
    "^(?:"
    f"[{_P}][{_L}][{_L}0-9]{{5}}"  # ordinary, 7 characters
    f"|[{_P}][{_L}](?:[{_NEV_FIRST}][{_L}0-9][0-9]{{4}}|[0-9]{{5}}[DF])"  # new energy, 8 characters
    f"|[{_P}][{_L}][{_L}0-9]{{4}}[挂学港澳领试]"  # trailer, coach, HK/Macau, consulate, test
    f"|[{_P}][{_L}O][{_L}0-9]{{3,4}}警"  # police; O is a provincial-organ authority letter
    f"|[{_P}][{_L}][0-9]{{4}}应急"  # emergency / fire rescue
    "|使[0-9]{6}|[0-9]{6}使"  # embassy
    f"|WJ[{_P}]?[0-9]{{4}}[0-9{_L}]"  # armed police
    f"|[{_L}]{{2}}[0-9]{{5}}"  # army: two letters + five digits
    ")$"
)
PLATE_RE: Final = re.compile(PLATE_PATTERN)

# Tolerant shapes for the type: an OCR misread (I/O in the serial) still says what kind of plate it was.
_ORDINARY_SHAPE = f"^[{_P}][A-Z][A-Z0-9]{{5}}$"
_NEV_SHAPE = f"^[{_P}][A-Z](?:[{_NEV_FIRST}][A-Z0-9][0-9]{{4}}|[0-9]{{5}}[DF])$"
_ARMY_SHAPE = f"^[{_L}]{{2}}[0-9]{{5}}$"
_PLACEHOLDER = "无牌|无车牌|未识别|未上牌|未知|^NONE$|^NULL$|^UNKNOWN$|^NOPLATE$"

# Vendor colour codes live in one table an operator extends without code: scheme, code, colour (and where it
# was seen). A code a scheme does not list counts as "other" (a colour the table does not name), never as an
# error; an empty value is "unknown".
COLOUR_TABLE: Final = Path(__file__).parents[1] / "vehicles" / "plate_colours.csv"


@lru_cache(maxsize=1)
def colour_codes() -> dict[str, dict[str, str]]:
    """{scheme: {code: colour}} from ``COLOUR_TABLE`` (read once)."""
    table = pl.read_csv(COLOUR_TABLE, schema_overrides={"scheme": pl.String, "code": pl.String, "colour": pl.String})
    out: dict[str, dict[str, str]] = {}
    for scheme, code, colour in table.select("scheme", "code", "colour").iter_rows():
        out.setdefault(scheme, {})[code.strip()] = colour
    return out


_TEXT_COLOURS: Final = (  # order matters: 黄绿 before 黄 and 绿
    ("黄绿|YELLOW_?GREEN|YELLOWGREEN", "yellow_green"),
    ("蓝|BLUE", "blue"),
    ("黄|YELLOW", "yellow"),
    ("绿|GREEN", "green"),
    ("白|WHITE", "white"),
    ("黑|BLACK", "black"),
)


def is_valid_plate(plate: str | None) -> bool:
    """Strict GA 36 check of one already-normalised plate (for scalar callers; frames use plate_attributes)."""
    return plate is not None and PLATE_RE.fullmatch(plate) is not None


def _normalised(s: pl.Series) -> pl.Series:
    raw = s if s.dtype == pl.String else s.cast(pl.String)
    distinct = raw.drop_nulls().unique(maintain_order=True)
    mapped = pl.Series([normalise(v, "plate") for v in distinct.to_list()], dtype=pl.String)
    return raw.replace_strict(distinct, mapped, default=None, return_dtype=pl.String)


def _text_colour(expr: pl.Expr) -> pl.Expr:
    text = expr.cast(pl.String).str.strip_chars().str.to_uppercase()
    out = pl.when(text.is_null()).then(pl.lit("unknown"))
    for pattern, colour in _TEXT_COLOURS:
        out = out.when(text.str.contains(pattern)).then(pl.lit(colour))
    return out.otherwise(pl.lit("unknown"))


def plate_colour_expr(color_col: str, color_scheme: ColorScheme = "4pyun") -> pl.Expr:
    """Canonical colour name (blue, yellow, green, white, black, yellow_green, ..., other, unknown) from vendor codes.

    Code schemes come from ``plate_colours.csv``. Vendors mix codes and words in one feed: a word falls through to
    the text parser; a number the scheme does not list is ``other`` (not an error, not unknown); empty is unknown.
    """
    if color_scheme == "text":
        return _text_colour(pl.col(color_col))
    codes = colour_codes().get(color_scheme)
    if codes is None:
        raise ValueError(f"unknown color_scheme {color_scheme!r}; expected 'text' or one of {sorted(colour_codes())}")
    code = pl.col(color_col).cast(pl.String).str.strip_chars()
    fallback = (pl.when(code.str.contains(r"^-?[0-9]+$")).then(pl.lit("other"))
                .otherwise(_text_colour(pl.col(color_col))))
    return code.replace_strict(codes, default=fallback, return_dtype=pl.String).fill_null("unknown")


def plate_colour_by_scheme(color_col: str, scheme_col: str) -> pl.Expr:
    """``plate_colour_expr`` chosen per row by the scheme named in ``scheme_col`` (feeds with several vendors)."""
    out = pl.when(pl.col(scheme_col) == "text").then(_text_colour(pl.col(color_col)))
    for scheme in colour_codes():
        out = out.when(pl.col(scheme_col) == scheme).then(plate_colour_expr(color_col, scheme))
    return out.otherwise(_text_colour(pl.col(color_col)))


def plate_attributes(
    df: pl.DataFrame,
    plate_col: str,
    color_col: str | None = None,
    color_scheme: ColorScheme = "4pyun",
    scheme_col: str | None = None,
) -> pl.DataFrame:
    """Add plate_normalised, plate_province, plate_region_group, plate_type and plate_valid.

    Province and type are read from the string even when it is invalid (a misread 沪 plate is still local);
    plate_valid is the strict verdict. Plate-shape rules outrank colour: an 8-character NEV plate is
    new_energy_green whatever colour the camera reported; colour only splits 7-character plates
    (yellow -> large_yellow, white/black -> other).
    """
    n = pl.col("plate_normalised")
    if color_col is None:
        colour = pl.lit("unknown")
    elif scheme_col is not None:
        colour = plate_colour_by_scheme(color_col, scheme_col)
    else:
        colour = plate_colour_expr(color_col, color_scheme)
    first = n.str.slice(0, 1)
    third = n.str.slice(2, 1)
    province = (
        pl.when(first.is_in(list(PROVINCES)))
        .then(first)
        .when(n.str.starts_with("WJ") & third.is_in(list(PROVINCES)))
        .then(third)
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    plate_type = (
        pl.when(n.is_null() | n.str.contains(_PLACEHOLDER))
        .then(pl.lit("none"))
        .when(n.str.contains("使") | n.str.ends_with("领"))
        .then(pl.lit("embassy"))
        .when(n.str.ends_with("警"))
        .then(pl.lit("police"))
        .when(n.str.starts_with("WJ") | n.str.contains(_ARMY_SHAPE))
        .then(pl.lit("military"))
        .when(n.str.ends_with("港") | n.str.ends_with("澳"))
        .then(pl.lit("hk_macau"))
        .when(n.str.ends_with("学") | n.str.ends_with("挂"))
        .then(pl.lit("coach_or_trailer"))
        .when(n.str.contains(_NEV_SHAPE))
        .then(pl.lit("new_energy_green"))
        .when(n.str.contains(_ORDINARY_SHAPE) & (pl.col("__plate_colour") == "yellow"))
        .then(pl.lit("large_yellow"))
        .when(n.str.contains(_ORDINARY_SHAPE) & pl.col("__plate_colour").is_in(["white", "black"]).not_())
        .then(pl.lit("ordinary_blue"))
        .otherwise(pl.lit("other"))
    )
    return (
        df.with_columns(plate_normalised=_normalised(df[plate_col]), __plate_colour=colour)
        .with_columns(plate_province=province)
        .with_columns(
            plate_region_group=pl.when(pl.col("plate_province") == "沪")
            .then(pl.lit("shanghai"))
            .when(pl.col("plate_province").is_not_null())
            .then(pl.lit("other_province"))
            .otherwise(pl.lit("unknown")),
            plate_type=plate_type,
            plate_valid=n.str.contains(PLATE_PATTERN).fill_null(False),
        )
        .drop("__plate_colour")
    )


def mark_residents(df: pl.DataFrame, token_col: str, resident_tokens: pl.Series,
                   out_col: str = "is_resident_vehicle") -> pl.DataFrame:
    """Resident or visitor vehicle, decided by token against the resident-vehicle registry (never by plate).

    ``resident_tokens`` are the registry's plate tokens made with the same key version; a null token
    (无牌, unreadable) is a visitor.
    """
    return df.with_columns(pl.col(token_col).is_in(resident_tokens.drop_nulls().unique()).fill_null(False)
                           .alias(out_col))
