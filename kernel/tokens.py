"""Keyed, versioned tokens for personal identifiers, so analytics layers can join on people and plates without seeing them.

HMAC-SHA256 over a normalised value with one derived key per identifier type, computed once per distinct value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

import duckdb
import polars as pl
import pyarrow as pa

from kernel.settings import Settings, SettingsError, load_settings

# location: a place as written by a vendor (work-order 报事位置), tokenised because a room is a home address
ID_TYPES: Final = ("person", "plate", "phone", "id_card", "card", "name", "location")
KEY_ENV: Final = "NEURON_TOKEN_KEY"
VERSION_ENV: Final = "NEURON_TOKEN_KEY_VERSION"
# Public on purpose: demo/test data must tokenise reproducibly on every laptop. Rejected in production mode.
DEMO_KEY: Final = "neuron-demo-token-key-INSECURE-PUBLIC-never-use-in-production"
MIN_KEY_CHARS: Final = 16
MAX_VERSION: Final = 999  # three digits at most, so the version can never start a long digit run
TOKEN_RE: Final = re.compile(rf"^({'|'.join(ID_TYPES)})_v([1-9][0-9]{{0,2}})_([a-z2-7]{{32}})$")

_SEPARATED_TYPES: Final = frozenset({"plate", "id_card", "phone", "card", "location"})
# NFKC already folds full-width forms (－ ． ＿ ･ and the ideographic space) into these.
_SEPARATORS: Final = re.compile(r"[\s·•・‧∙⋅.。\-‐‑‒–—―−_]+")
_WHITESPACE: Final = re.compile(r"\s+")
_PHONE_COUNTRY: Final = re.compile(r"^(?:\+86|0086|86)(1[3-9][0-9]{9})$")
_HEX_KEY: Final = re.compile(r"^[0-9a-fA-F]{32,}$")
_DIGIT_RUN: Final = re.compile(r"[0-9]{7}")
_DERIVATION_PREFIX: Final = b"neuron-token/"


class TokenKeyError(SettingsError):
    """The token key or key version is missing or invalid; the message names the variable."""


def _check_type(id_type: str) -> None:
    if id_type not in ID_TYPES:
        raise ValueError(f"unknown identifier type {id_type!r}; expected one of {', '.join(ID_TYPES)}")


def normalise(value: object, id_type: str) -> str | None:
    """Canonical form that is HMAC'd: NFKC, whitespace removed, upper case (not for names), separators
    stripped for plate/id_card/phone/card/location, and a +86/0086/86 prefix dropped before an 11-digit mobile.

    Returns None for None or a value that is empty after normalisation.
    """
    _check_type(id_type)
    if value is None:
        return None
    text = _WHITESPACE.sub("", unicodedata.normalize("NFKC", str(value)))
    if id_type != "name":
        text = text.upper()
    if id_type in _SEPARATED_TYPES:
        text = _SEPARATORS.sub("", text)
        if id_type == "phone" and (match := _PHONE_COUNTRY.match(text)):
            text = match.group(1)
    return text or None


def key_material(raw: str) -> bytes:
    """The bytes a key string stands for: 32+ hex digits (an even number) are decoded, anything else is UTF-8;
    surrounding space is ignored. Shared by the token key and the perturbation key (kernel.record_keys)."""
    raw = raw.strip()
    return bytes.fromhex(raw) if _HEX_KEY.match(raw) and len(raw) % 2 == 0 else raw.encode("utf-8")


def is_demo_material(raw: str, demo: str) -> bool:
    """True when ``raw`` decodes to the public demo key's bytes, however it is written (plainly, hex, padded)."""
    return hmac.compare_digest(key_material(raw), demo.encode("utf-8"))


def _parse_key(raw: str | bytes, source: str) -> bytes:
    if isinstance(raw, bytes):
        key = raw
    else:
        raw = raw.strip()
        key = key_material(raw)
        if len(raw) < MIN_KEY_CHARS:
            raise TokenKeyError(
                f"{source} is too short ({len(raw)} characters); use at least {MIN_KEY_CHARS} characters "
                "or 32+ hex digits of a random secret"
            )
    if len(key) < MIN_KEY_CHARS:
        raise TokenKeyError(f"{source} must be at least {MIN_KEY_CHARS} bytes")
    return key


def _parse_version(raw: str | int, source: str) -> int:
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_VERSION:
        raise TokenKeyError(f"{source} must be a small integer between 1 and {MAX_VERSION}; got {raw!r}")
    return int(text)


def encode_digest(digest: bytes) -> str:
    """Lower-case base32 (RFC 4648, no padding) of the first 160 bits.

    The alphabet's digits are only 2-7, which rules out phone and ID-number shapes, but about 1 token in
    6,000 would still hold a run of 7+ digits. Such runs are broken by turning every 7th consecutive digit
    into a letter (2->a ... 7->f), so generic digit-run scanners never hit a token. Costs < 0.01 bit.
    """
    body = base64.b32encode(digest[:20]).decode("ascii").lower()
    if not _DIGIT_RUN.search(body):
        return body
    out, run = [], 0
    for char in body:
        if char.isdigit():
            run += 1
            if run == 7:
                char, run = "abcdef"[int(char) - 2], 0
        else:
            run = 0
        out.append(char)
    return "".join(out)


class Tokenizer:
    """Deterministic tokens for one key version: ``<type>_v<version>_<32 base32 chars>``.

    Build with ``Tokenizer.from_env()`` in pipelines; the constructor is for tests and key-rotation jobs.
    """

    __slots__ = ("_type_keys", "domain", "version")

    def __init__(self, key: str | bytes, version: int = 1, domain: str | None = None) -> None:
        """``domain``: the data domain whose tokens these are. Each domain derives its own keys, so a person's
        token in access control does not join to the same person's token in governance or telemetry; within a
        domain (vehicle passages and parking share ``vehicles``) tokens join. ``None`` is the shared derivation
        (tests, key-rotation jobs)."""
        master = _parse_key(key, "token key")
        self.version = _parse_version(version, "token key version")
        if domain is not None and not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", domain):
            raise ValueError(f"domain must be a short lower-case name, got {domain!r}")
        self.domain = domain
        label = (domain + "/").encode("ascii") if domain else b""
        self._type_keys = {
            t: hmac.new(master, _DERIVATION_PREFIX + label + t.encode("ascii"), hashlib.sha256).digest()
            for t in ID_TYPES
        }

    def __repr__(self) -> str:
        return f"Tokenizer(version={self.version}, domain={self.domain!r}, key=<redacted>)"

    @classmethod
    def from_settings(cls, settings: Settings, domain: str | None = None) -> Tokenizer:
        """Key from NEURON_TOKEN_KEY, version from NEURON_TOKEN_KEY_VERSION (default 1), as resolved in settings.

        In demo/test mode a missing key falls back to the public DEMO_KEY; in production it is an error.
        """
        raw_key = settings.token_key
        if not raw_key:
            if not settings.is_demo_or_test:
                raise TokenKeyError(
                    f"{KEY_ENV} is not set; NEURON_MODE={settings.mode} needs a secret token key of at least "
                    f"{MIN_KEY_CHARS} characters (or 32+ hex digits). Only demo/test mode may use the demo key."
                )
            raw_key = DEMO_KEY
        elif not settings.is_demo_or_test and is_demo_material(raw_key, DEMO_KEY):
            raise TokenKeyError(
                f"{KEY_ENV} is the public demo key; NEURON_MODE={settings.mode} needs a secret key"
            )
        key = _parse_key(raw_key, KEY_ENV)
        version = _parse_version(settings.token_key_version, VERSION_ENV)
        return cls(key, version, domain)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, domain: str | None = None) -> Tokenizer:
        """``from_settings`` over the given variables (``os.environ`` unless given)."""
        return cls.from_settings(load_settings(env), domain)

    def _tokens(self, values: Iterable[object], id_type: str) -> list[str | None]:
        _check_type(id_type)
        base = hmac.new(self._type_keys[id_type], digestmod=hashlib.sha256)
        prefix = f"{id_type}_v{self.version}_"
        by_normalised: dict[str, str] = {}
        out: list[str | None] = []
        for value in values:
            norm = normalise(value, id_type)
            if norm is None:
                out.append(None)
                continue
            token = by_normalised.get(norm)
            if token is None:
                mac = base.copy()
                mac.update(norm.encode("utf-8"))
                token = by_normalised[norm] = prefix + encode_digest(mac.digest())
            out.append(token)
        return out

    def token(self, value: object, id_type: str) -> str | None:
        """Token of a single value; use the vectorised methods for columns."""
        return self._tokens([value], id_type)[0]

    def tokenize_series(self, s: pl.Series, id_type: str) -> pl.Series:
        """Tokens for a column, HMAC'd once per distinct value and mapped back (order and nulls kept)."""
        _check_type(id_type)
        raw = s if s.dtype == pl.String else s.cast(pl.String)
        distinct = raw.drop_nulls().unique(maintain_order=True)
        tokens = pl.Series(self._tokens(distinct.to_list(), id_type), dtype=pl.String)
        return raw.replace_strict(distinct, tokens, default=None, return_dtype=pl.String).alias(s.name)

    def tokenize_expr(self, column: str | pl.Expr, id_type: str) -> pl.Expr:
        """Expression form for ``select``/``with_columns`` (distinct values are taken per batch)."""
        _check_type(id_type)
        expr = pl.col(column) if isinstance(column, str) else column
        return expr.map_batches(
            lambda s: self.tokenize_series(s, id_type), return_dtype=pl.String, is_elementwise=True
        )

    def tokenize_columns(
        self,
        df: pl.DataFrame,
        columns: Mapping[str, str],
        drop_raw: bool = True,
        suffix: str = "_token",
    ) -> pl.DataFrame:
        """Add ``<col><suffix>`` token columns; with ``drop_raw`` the token takes the raw column's place."""
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise KeyError(f"columns not in frame: {missing}")
        targets = {c: c + suffix for c in columns}
        clashes = [t for t in targets.values() if t in df.columns and t not in columns]
        if clashes:
            raise ValueError(f"token columns already exist: {clashes}")
        tokens = [self.tokenize_series(df[c], t).alias(targets[c]) for c, t in columns.items()]
        out = df.with_columns(tokens)
        if not drop_raw:
            return out
        return out.select([targets.get(c, c) for c in df.columns])


_TABLE_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def tokenize_duckdb_column(
    con: duckdb.DuckDBPyConnection,
    relation_sql_or_table: str | duckdb.DuckDBPyRelation,
    column: str,
    id_type: str,
    *,
    tokenizer: Tokenizer | None = None,
) -> pa.Table:
    """Distinct-value mapping ``(raw VARCHAR, token VARCHAR)`` for one column, for SQL pipelines to join.

    ``relation_sql_or_table`` is a relation, a (schema-qualified) table name, or a SELECT statement.
    HMAC stays in Python: DuckDB only has it in a community extension, and keys must not appear in SQL.
    """
    tokenizer = tokenizer or Tokenizer.from_env()
    _check_type(id_type)
    if isinstance(relation_sql_or_table, duckdb.DuckDBPyRelation):
        relation = relation_sql_or_table
    elif _TABLE_NAME.match(relation_sql_or_table.strip()):
        table = ".".join(_quote_ident(part) for part in relation_sql_or_table.strip().split("."))
        relation = con.sql(f"SELECT * FROM {table}")
    else:
        relation = con.sql(f"SELECT * FROM ({relation_sql_or_table}) AS src")
    raw = (
        relation.project(f"CAST({_quote_ident(column)} AS VARCHAR) AS raw")
        .filter("raw IS NOT NULL")
        .distinct()
        .order("raw")
        .pl()["raw"]
    )
    tokens = tokenizer.tokenize_series(raw, id_type)
    return pa.table({"raw": raw.to_arrow(), "token": tokens.to_arrow()})
