"""Keyed tokenizer: determinism, normalisation, key handling and the no-digit-run guarantee."""

from __future__ import annotations

import re

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.tokens import (
    DEMO_KEY,
    ID_TYPES,
    KEY_ENV,
    TOKEN_RE,
    Tokenizer,
    TokenKeyError,
    encode_digest,
    normalise,
    tokenize_duckdb_column,
)

KEY_A = "a-test-key-that-is-long-enough-1"
KEY_B = "another-test-key-long-enough-222"
DIGIT_RUN = re.compile(r"\d{7,}")


@pytest.fixture
def tok() -> Tokenizer:
    return Tokenizer(KEY_A, version=1)


def test_same_value_same_key_version_gives_same_token(tok: Tokenizer) -> None:
    again = Tokenizer(KEY_A, version=1)
    assert tok.token("沪A12345", "plate") == again.token("沪A12345", "plate")
    assert TOKEN_RE.match(tok.token("沪A12345", "plate") or "")


def test_token_format_names_type_and_version(tok: Tokenizer) -> None:
    token = Tokenizer(KEY_A, version=7).token("13800138000", "phone")
    assert token is not None and token.startswith("phone_v7_")
    assert re.fullmatch(r"phone_v7_[a-z2-7]{32}", token)


def test_rotated_key_and_version_give_unrelated_tokens(tok: Tokenizer) -> None:
    rotated = Tokenizer(KEY_B, version=2)
    old, new = tok.token("沪A12345", "plate"), rotated.token("沪A12345", "plate")
    assert old is not None and new is not None
    assert old.split("_")[-1] != new.split("_")[-1]
    assert new.startswith("plate_v2_")


def test_same_value_under_different_types_gives_different_tokens(tok: Tokenizer) -> None:
    bodies = {tok.token("310101199001011234", t).split("_")[-1] for t in ID_TYPES}  # type: ignore[union-attr]
    assert len(bodies) == len(ID_TYPES)


@pytest.mark.parametrize(
    ("id_type", "variants"),
    [
        ("plate", ["沪A12345", "沪a12345", "沪A·12345", "沪A-12345", " 沪A 12345 ", "沪Ａ１２３４５", "沪A・12345"]),
        ("phone", ["13800138000", "138-0013-8000", "+86 138 0013 8000", "008613800138000", "8613800138000",
                   "１３８００１３８０００", "＋８６１３８００１３８０００", "138.0013.8000"]),
        ("id_card", ["11010519491231002X", "11010519491231002x", "110105 19491231 002X", "１１０１０５１９４９１２３１００２ｘ"]),
        ("card", ["AB-CD-12-34", "abcd1234", "ＡＢＣＤ＿１２３４"]),
        ("name", ["张三", " 张 三 ", "张\u3000三"]),
        ("person", ["p-001", "P-001", " P-001 "]),
    ],
)  # fmt: skip
def test_normalisation_equivalents_share_a_token(tok: Tokenizer, id_type: str, variants: list[str]) -> None:
    tokens = {tok.token(v, id_type) for v in variants}
    assert len(tokens) == 1 and None not in tokens


def test_normalise_keeps_what_distinguishes_values() -> None:
    assert normalise("Li Wei", "name") != normalise("LI WEI", "name")  # names are not case-folded
    assert normalise("P-001", "person") != normalise("P001", "person")  # person ids keep separators
    assert normalise("8613800138000", "phone") == "13800138000"
    assert normalise("86123", "phone") == "86123"  # no mobile after the prefix: keep it
    assert normalise("   ", "plate") is None and normalise(None, "phone") is None


def test_unknown_identifier_type_is_rejected(tok: Tokenizer) -> None:
    with pytest.raises(ValueError, match="unknown identifier type"):
        tok.token("x", "email")


def test_missing_key_in_production_names_the_variable() -> None:
    with pytest.raises(TokenKeyError, match=KEY_ENV):
        Tokenizer.from_env({"NEURON_MODE": "production"})
    with pytest.raises(TokenKeyError, match=KEY_ENV):
        Tokenizer.from_env({})  # production is the default mode


def test_short_key_or_demo_key_in_production_is_rejected() -> None:
    with pytest.raises(TokenKeyError, match=KEY_ENV):
        Tokenizer.from_env({"NEURON_MODE": "production", KEY_ENV: "too-short"})
    with pytest.raises(TokenKeyError, match="demo key"):
        Tokenizer.from_env({"NEURON_MODE": "production", KEY_ENV: DEMO_KEY})


def test_bad_key_version_is_rejected() -> None:
    for bad in ("v1", "0", "1000", "1.5"):
        with pytest.raises(TokenKeyError, match="NEURON_TOKEN_KEY_VERSION"):
            Tokenizer.from_env({"NEURON_MODE": "test", "NEURON_TOKEN_KEY_VERSION": bad})


@pytest.mark.parametrize("mode", ["demo", "test"])
def test_demo_and_test_modes_work_without_a_key(mode: str) -> None:
    tok = Tokenizer.from_env({"NEURON_MODE": mode})
    assert tok.token("沪A12345", "plate") == Tokenizer(DEMO_KEY).token("沪A12345", "plate")


def test_production_key_from_env_with_version(tok: Tokenizer) -> None:
    env = {"NEURON_MODE": "production", KEY_ENV: KEY_A, "NEURON_TOKEN_KEY_VERSION": "3"}
    prod = Tokenizer.from_env(env)
    assert prod.version == 3
    assert prod.token("x", "card").split("_")[-1] == tok.token("x", "card").split("_")[-1]  # type: ignore[union-attr]


def test_hex_key_is_decoded_to_bytes() -> None:
    hex_key = "00112233445566778899aabbccddeeff"
    assert Tokenizer(hex_key).token("x", "card") == Tokenizer(bytes.fromhex(hex_key)).token("x", "card")


def test_repr_does_not_leak_the_key(tok: Tokenizer) -> None:
    assert KEY_A not in repr(tok)


def test_digest_that_encodes_to_all_digits_has_no_digit_run() -> None:
    body = encode_digest(b"\xff" * 20)  # base32 of all ones is '7' * 32
    assert len(body) == 32 and not DIGIT_RUN.search(body)


@given(st.binary(min_size=20, max_size=20))
def test_encoded_digest_is_32_base32_chars_without_digit_runs(digest: bytes) -> None:
    body = encode_digest(digest)
    assert re.fullmatch(r"[a-z2-7]{32}", body) and not DIGIT_RUN.search(body)


@settings(max_examples=50)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=200), st.sampled_from(ID_TYPES))
def test_no_token_ever_contains_a_long_digit_run(values: list[str], id_type: str) -> None:
    tokens = Tokenizer(KEY_A, version=999).tokenize_series(pl.Series(values), id_type)
    assert not tokens.drop_nulls().str.contains(r"\d{7,}").any()


def test_many_real_tokens_have_no_digit_run(tok: Tokenizer) -> None:
    phones = pl.Series([f"13{i:09d}" for i in range(100_000)])
    tokens = tok.tokenize_series(phones, "phone")
    assert tokens.n_unique() == 100_000
    assert not tokens.str.contains(r"\d{7,}").any()


def test_tokenize_series_keeps_order_nulls_and_name(tok: Tokenizer) -> None:
    s = pl.Series("plate", ["沪A12345", None, "沪B67890", "沪a·12345", ""])
    out = tok.tokenize_series(s, "plate")
    assert out.name == "plate" and out.dtype == pl.String
    assert out.to_list() == [
        tok.token("沪A12345", "plate"),
        None,
        tok.token("沪B67890", "plate"),
        tok.token("沪A12345", "plate"),
        None,
    ]


def test_tokenize_series_on_a_million_rows(tok: Tokenizer) -> None:
    s = pl.Series("card", [f"CARD{i % 1000:04d}" for i in range(1_000_000)])
    out = tok.tokenize_series(s, "card")
    assert out.len() == 1_000_000 and out.null_count() == 0 and out.n_unique() == 1000
    assert out[1234] == tok.token("CARD0234", "card")


def test_tokenize_series_accepts_integer_ids(tok: Tokenizer) -> None:
    out = tok.tokenize_series(pl.Series([101, 102, None]), "person")
    assert out.to_list() == [tok.token("101", "person"), tok.token("102", "person"), None]


def test_tokenize_columns_replaces_raw_columns_in_place(tok: Tokenizer) -> None:
    df = pl.DataFrame({"ts": [1, 2], "plate": ["沪A12345", "沪B1"], "phone": ["13800138000", None]})
    out = tok.tokenize_columns(df, {"plate": "plate", "phone": "phone"})
    assert out.columns == ["ts", "plate_token", "phone_token"]
    assert out["phone_token"].to_list() == [tok.token("13800138000", "phone"), None]
    kept = tok.tokenize_columns(df, {"plate": "plate"}, drop_raw=False, suffix="_tok")
    assert kept.columns == ["ts", "plate", "phone", "plate_tok"]


def test_tokenize_expr_matches_series(tok: Tokenizer) -> None:
    df = pl.DataFrame({"phone": ["13800138000", "+8613800138000", None]})
    out = df.select(tok.tokenize_expr("phone", "phone"))
    assert out["phone"].to_list() == tok.tokenize_series(df["phone"], "phone").to_list()


def test_duckdb_mapping_from_table_query_and_relation(tok: Tokenizer) -> None:
    con = duckdb.connect()
    con.sql(
        "CREATE TABLE passages AS SELECT * FROM (VALUES ('沪A12345'), ('沪A12345'), (NULL), ('沪B1')) v(plate)"
    )
    mapping = tokenize_duckdb_column(con, "passages", "plate", "plate", tokenizer=tok)
    assert mapping.column_names == ["raw", "token"]
    assert dict(zip(*mapping.to_pydict().values(), strict=True)) == {
        "沪A12345": tok.token("沪A12345", "plate"),
        "沪B1": tok.token("沪B1", "plate"),
    }
    query = tokenize_duckdb_column(
        con, "SELECT plate FROM passages WHERE plate LIKE '%B%'", "plate", "plate", tokenizer=tok
    )
    assert query.num_rows == 1
    rel = tokenize_duckdb_column(con, con.table("passages"), "plate", "plate", tokenizer=tok)
    assert rel.equals(mapping)
    con.register("mapping", mapping)
    joined = con.sql("SELECT m.token FROM passages p JOIN mapping m ON p.plate = m.raw").fetchall()
    assert len(joined) == 3


def test_each_domain_derives_its_own_keys_so_tokens_do_not_join_across_domains():
    from kernel.tokens import Tokenizer

    key = "domain-separation-key-0123456789"
    access, governance = Tokenizer(key, 1, "access"), Tokenizer(key, 1, "governance")
    assert access.token("13800138000", "phone") != governance.token("13800138000", "phone")
    assert access.token("13800138000", "phone") == Tokenizer(key, 1, "access").token("138-0013-8000", "phone")
    assert Tokenizer(key, 1).token("x1", "person") != access.token("x1", "person")
    assert "key" not in repr(access).replace("key=<redacted>", "")
