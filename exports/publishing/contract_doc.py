"""The contract as it travels with a batch and as the receiver serves it: ``contract.yaml`` (the contract file,
byte for byte) and ``contract.schema.json`` (a JSON Schema of one row, derived here).

Shared by the publisher (``exports.filedrop``) and the reference receiver, which only has the YAML documents, so
both produce the same bytes: a batch's ``contract.schema.json`` equals what the receiver serves for that contract.
Works on the contract as a plain mapping (``yaml.safe_load`` of the file), never on Neuron's declarations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

CONTRACT_FILE = "contract.yaml"
SCHEMA_FILE = "contract.schema.json"
CONTRACT_FILES = (CONTRACT_FILE, SCHEMA_FILE)
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# A CSV header cell: no comma, quote or control character, so the header never needs CSV quoting
TITLE_FORBIDDEN = re.compile(r'[,"\x00-\x1f\x7f]')

_INT_RANGES = {
    "TINYINT": (-(2**7), 2**7 - 1),
    "SMALLINT": (-(2**15), 2**15 - 1),
    "INTEGER": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
    "HUGEINT": (-(2**127), 2**127 - 1),
    "UTINYINT": (0, 2**8 - 1),
    "USMALLINT": (0, 2**16 - 1),
    "UINTEGER": (0, 2**32 - 1),
    "UBIGINT": (0, 2**64 - 1),
}
_INT_ALIASES = {"INT": "INTEGER", "INT4": "INTEGER", "INT8": "BIGINT", "LONG": "BIGINT", "INT2": "SMALLINT",
                "SHORT": "SMALLINT", "INT1": "TINYINT", "SIGNED": "INTEGER"}
_NUMBER = {"DOUBLE", "FLOAT", "REAL", "FLOAT4", "FLOAT8"}
_STRING = {"VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR", "UUID"}
# how the CSV renders a TIMESTAMP (exports/filedrop.py: TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S'); Parquet keeps the type
_NAIVE_TS_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?$"


class ContractDocError(ValueError):
    """A contract column has a type the JSON Schema cannot describe."""


def json_type(duckdb_type: str) -> dict[str, Any]:
    """The JSON Schema of one value of a DuckDB type (without nullability)."""
    t = " ".join(duckdb_type.upper().split())
    t = _INT_ALIASES.get(t, t)
    if t in _INT_RANGES:
        low, high = _INT_RANGES[t]
        return {"type": "integer", "minimum": low, "maximum": high}
    if t in _NUMBER or t == "DECIMAL" or re.fullmatch(r"(DECIMAL|NUMERIC)\([0-9]+(,[0-9]+)?\)", t.replace(" ", "")):
        return {"type": "number"}
    if t in ("BOOLEAN", "BOOL", "LOGICAL"):
        return {"type": "boolean"}
    if t in _STRING:
        return {"type": "string"}
    if t == "DATE":
        return {"type": "string", "format": "date"}
    if t in ("TIMESTAMP", "DATETIME", "TIMESTAMP_US"):
        return {"type": "string", "pattern": _NAIVE_TS_PATTERN,
                "$comment": "local time without offset (the zone is stated in the column description)"}
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return {"type": "string", "format": "date-time"}
    if t == "TIME":
        return {"type": "string", "format": "time"}
    raise ContractDocError(f"no JSON Schema for DuckDB type {duckdb_type!r}")


def csv_header(contract: Mapping[str, Any]) -> list[str]:
    """The CSV header: each column's ``title_zh`` (its English ``name`` when a contract has no titles)."""
    return [str(c.get("title_zh") or c["name"]) for c in contract["columns"]]


def title_problems(contract: Mapping[str, Any]) -> list[str]:
    """Every column needs a ``title_zh``: a non-empty CSV header cell, unique within the contract."""
    problems, seen = [], {}
    for col in contract["columns"]:
        title = col.get("title_zh")
        if not isinstance(title, str) or not title.strip():
            problems.append(f"column {col.get('name')} has no title_zh")
            continue
        if title != title.strip() or TITLE_FORBIDDEN.search(title):
            problems.append(f"column {col.get('name')}: title_zh {title!r} has surrounding spaces, a comma, "
                            "a quote or a control character")
        if title in seen:
            problems.append(f"title_zh {title!r} is used by {seen[title]} and {col.get('name')}")
        seen.setdefault(title, col.get("name"))
    return problems


def row_schema(contract: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema (2020-12) of one row: per column its JSON type from the DuckDB type, ``null`` allowed where
    the contract says nullable, ``title`` = title_zh, ``description`` = description_zh, the English description,
    unit and DuckDB type as ``x-`` annotations. Property names are the English column names (Parquet's); the CSV
    header is the titles, in ``x-csv-header`` order."""
    properties: dict[str, Any] = {}
    for col in contract["columns"]:
        value = json_type(str(col["type"]))
        if col.get("nullable", True):
            value["type"] = [value["type"], "null"]
        prop: dict[str, Any] = {"title": col.get("title_zh") or col["name"]}
        if col.get("description_zh"):
            prop["description"] = col["description_zh"]
        prop.update(value)
        prop["x-duckdb-type"] = str(col["type"])
        if col.get("description_en"):
            prop["x-description-en"] = col["description_en"]
        if col.get("unit"):
            prop["x-unit"] = col["unit"]
        properties[str(col["name"])] = prop
    names = list(properties)
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:neuron:contract:{contract['id']}:{contract['version']}:row",
        "title": str(contract.get("title_zh") or contract["id"]),
        "description": f"One row of {contract['id']} (contract version {contract['version']})"
                       + (f": {contract['title_en']}" if contract.get("title_en") else "")
                       + (f"; grain: {contract['grain']}" if contract.get("grain") else "") + ".",
        "type": "object",
        "properties": properties,
        "required": names,
        "additionalProperties": False,
        "x-contract-id": contract["id"],
        "x-contract-version": str(contract["version"]),
        "x-key-columns": list(contract.get("key_columns") or []),
        "x-csv-header": csv_header(contract),
    }
    if contract.get("title_en"):
        schema["x-title-en"] = contract["title_en"]
    return schema


def schema_bytes(contract: Mapping[str, Any]) -> bytes:
    """``contract.schema.json`` exactly as written into a batch and served by the receiver."""
    return (json.dumps(row_schema(contract), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


__all__ = [
    "CONTRACT_FILE",
    "CONTRACT_FILES",
    "SCHEMA_FILE",
    "ContractDocError",
    "csv_header",
    "json_type",
    "row_schema",
    "schema_bytes",
    "title_problems",
]
