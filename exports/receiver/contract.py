"""Contract model and file validation for the reference receiver. It reads the published contract YAML itself
(not ``exports.contracts``) on purpose: it plays the district, which only has those documents, not Neuron's code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_ (),]*$")


@dataclass(frozen=True)
class ContractColumn:
    name: str
    type: str  # canonical DuckDB type name, e.g. "BIGINT", "TIMESTAMP WITH TIME ZONE"
    nullable: bool


@dataclass(frozen=True)
class Contract:
    id: str
    consumer: str
    dataset: str
    version: str
    columns: tuple[ContractColumn, ...]
    # the contract's disclosure block (method and parameters), None for a dataset that counts no people
    disclosure: Mapping[str, Any] | None = None

    def disclosure_problems(self, stated: Any) -> list[str]:
        """A batch must state the disclosure method and parameters its contract names (manifest.disclosure)."""
        if not self.disclosure:
            return []
        if not isinstance(stated, Mapping):
            return [f"manifest.disclosure is missing; contract {self.id} requires {dict(self.disclosure)}"]
        keys = ("method", "max_deviation", "variance", "js") if self.disclosure.get("method") == "cell_key" \
            else ("method",)
        return [f"manifest.disclosure.{k} is {stated.get(k)!r}; contract {self.id} requires {self.disclosure.get(k, 0)!r}"
                for k in keys if stated.get(k) != self.disclosure.get(k, 0)]

    @property
    def major(self) -> str:
        return self.version.split(".", 1)[0]


def canonical_type(con: duckdb.DuckDBPyConnection, type_name: str) -> str:
    """DuckDB's own name for a type, so aliases (INT8, TEXT, TIMESTAMPTZ) compare equal."""
    if not _TYPE_RE.fullmatch(type_name):
        raise ValueError(f"not a DuckDB type name: {type_name!r}")
    return con.execute(f"SELECT typeof(CAST(NULL AS {type_name}))").fetchall()[0][0]


def contract_from_dict(data: Mapping[str, Any], con: duckdb.DuckDBPyConnection | None = None) -> Contract:
    con = con or duckdb.connect()
    for key in ("id", "consumer", "dataset", "version", "columns"):
        if key not in data:
            raise ValueError(f"contract is missing {key!r}")
    columns = tuple(
        ContractColumn(
            name=str(c["name"]),
            type=canonical_type(con, str(c["type"])),
            nullable=bool(c.get("nullable", True)),
        )
        for c in data["columns"]
    )
    return Contract(
        id=str(data["id"]),
        consumer=str(data["consumer"]),
        dataset=str(data["dataset"]),
        version=str(data["version"]),
        columns=columns,
        disclosure=dict(data["disclosure"]) if data.get("counts_people") and data.get("disclosure") else None,
    )


def load_contracts(directory: Path | str) -> dict[str, Contract]:
    """Every ``*.yaml`` contract under ``directory`` (e.g. ``exports/contracts``), keyed by contract id."""
    con = duckdb.connect()
    contracts: dict[str, Contract] = {}
    for path in sorted(Path(directory).rglob("*.yaml")):
        try:
            contract = contract_from_dict(yaml.safe_load(path.read_text(encoding="utf-8")), con)
        except (ValueError, KeyError, TypeError, duckdb.Error) as exc:
            raise ValueError(f"{path}: invalid contract: {exc}") from exc
        if contract.id in contracts:
            raise ValueError(f"{path}: duplicate contract id {contract.id!r}")
        contracts[contract.id] = contract
    return contracts


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def validate_parquet(path: Path, contract: Contract, expected_rows: int) -> list[str]:
    """Columns, DuckDB types, nullability and row count of a Parquet file against the contract."""
    con = duckdb.connect()
    try:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        return [f"{path.name}: not a readable Parquet file ({exc})"]
    actual = {row[0]: row[1] for row in described}
    reasons = [f"{path.name}: missing column {c.name!r}" for c in contract.columns if c.name not in actual]
    declared = {c.name for c in contract.columns}
    reasons += [
        f"{path.name}: column {name!r} is not in contract {contract.id}"
        for name in actual
        if name not in declared
    ]
    reasons += [
        f"{path.name}: column {c.name!r} has type {actual[c.name]}, contract says {c.type}"
        for c in contract.columns
        if c.name in actual and actual[c.name] != c.type
    ]
    required = [c.name for c in contract.columns if not c.nullable and c.name in actual]
    nulls_sql = "".join(f", count(*) - count({_quote_ident(name)})" for name in required)
    counts = con.execute(f"SELECT count(*){nulls_sql} FROM read_parquet(?)", [str(path)]).fetchall()[0]
    if counts[0] != expected_rows:
        reasons.append(f"{path.name}: {counts[0]} rows, manifest says {expected_rows}")
    reasons += [
        f"{path.name}: non-nullable column {name!r} has {n} null(s)"
        for name, n in zip(required, counts[1:], strict=True)
        if n
    ]
    return reasons


def validate_csv(path: Path, contract: Contract, expected_rows: int) -> list[str]:
    """Header names and row count of the UTF-8 (BOM) CSV twin; types are checked on the Parquet file."""
    con = duckdb.connect()
    source = "read_csv(?, header=true, all_varchar=true, delim=',', quote='\"', escape='\"')"
    try:
        header = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}", [str(path)]).fetchall()]
        rows = con.execute(f"SELECT count(*) FROM {source}", [str(path)]).fetchall()[0][0]
    except duckdb.Error as exc:
        return [f"{path.name}: not a readable CSV file ({exc})"]
    reasons = []
    if sorted(header) != sorted(c.name for c in contract.columns):
        reasons.append(f"{path.name}: header {header} does not match contract columns")
    if rows != expected_rows:
        reasons.append(f"{path.name}: {rows} rows, manifest says {expected_rows}")
    return reasons


def validate_files(folder: Path, manifest: Mapping[str, Any], contract: Contract) -> list[str]:
    """Every file of an assembled batch against its manifest row count and the contract; Parquet is required."""
    reasons: list[str] = []
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if entry.get("rows") is not None and entry["rows"] != manifest["row_count"]:
            reasons.append(
                f"{entry['path']}: rows {entry['rows']} differs from row_count {manifest['row_count']}"
            )
        if path.suffix == ".parquet":
            reasons += validate_parquet(path, contract, manifest["row_count"])
        elif path.suffix == ".csv":
            reasons += validate_csv(path, contract, manifest["row_count"])
    if not any(entry["path"].endswith(".parquet") for entry in manifest["files"]):
        reasons.append("the batch has no Parquet file to validate against the contract")
    return reasons
