"""Contract model and file validation for the reference receiver. It reads the published contract YAML itself
(not ``exports.contracts``) on purpose: it plays the district, which only has those documents, not Neuron's code.
It serves them too (``GET /contracts/...``): the YAML as loaded, byte for byte, and the JSON Schema of one row
derived by ``exports.publishing.contract_doc``, the same code that writes ``contract.schema.json`` into a batch."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from exports.publishing.contract_doc import (
    CONTRACT_FILE,
    SCHEMA_FILE,
    ContractDocError,
    schema_bytes,
    title_problems,
)

_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_ (),]*$")


@dataclass(frozen=True)
class ContractColumn:
    name: str
    type: str  # canonical DuckDB type name, e.g. "BIGINT", "TIMESTAMP WITH TIME ZONE"
    nullable: bool
    title_zh: str | None = None  # the CSV header cell (the English name when the contract has no titles)


@dataclass(frozen=True)
class Contract:
    id: str
    consumer: str
    dataset: str
    version: str
    columns: tuple[ContractColumn, ...]
    # the contract's disclosure block (method and parameters), None for a dataset that counts no people
    disclosure: Mapping[str, Any] | None = None
    # the document as the district holds it: the YAML bytes (served as is) and their parsed form
    source: bytes = field(default=b"", repr=False, compare=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def csv_header(self) -> list[str]:
        """The expected CSV header: ``title_zh`` of every column, in contract order."""
        return [c.title_zh or c.name for c in self.columns]

    @property
    def yaml_bytes(self) -> bytes:
        """``GET /contracts/{consumer}/{dataset}``: the contract file as loaded."""
        return self.source or yaml.safe_dump(dict(self.raw), allow_unicode=True, sort_keys=False).encode("utf-8")

    @property
    def schema_bytes(self) -> bytes:
        """``GET /contracts/{consumer}/{dataset}/schema.json``: the JSON Schema of one row."""
        return schema_bytes(self.raw)

    @property
    def title_zh(self) -> str:
        return str(self.raw.get("title_zh") or self.id)

    @property
    def title_en(self) -> str:
        return str(self.raw.get("title_en") or self.id)

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


def contract_from_dict(
    data: Mapping[str, Any], con: duckdb.DuckDBPyConnection | None = None, source: bytes = b""
) -> Contract:
    """A contract from its parsed YAML (``source``: the file's bytes, served as they are). Titles are optional
    (contracts before them have English CSV headers) but, when present, must be on every column and unique."""
    con = con or duckdb.connect()
    for key in ("id", "consumer", "dataset", "version", "columns"):
        if key not in data:
            raise ValueError(f"contract is missing {key!r}")
    if any("title_zh" in c for c in data["columns"]) and (problems := title_problems(data)):
        raise ValueError("; ".join(problems))
    try:
        schema_bytes(data)
    except ContractDocError as exc:
        raise ValueError(str(exc)) from exc
    columns = tuple(
        ContractColumn(
            name=str(c["name"]),
            type=canonical_type(con, str(c["type"])),
            nullable=bool(c.get("nullable", True)),
            title_zh=str(c["title_zh"]) if c.get("title_zh") else None,
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
        source=source,
        raw=dict(data),
    )


def load_contracts(directory: Path | str) -> dict[str, Contract]:
    """Every ``*.yaml`` contract under ``directory`` (e.g. ``exports/contracts``), keyed by contract id."""
    con = duckdb.connect()
    contracts: dict[str, Contract] = {}
    for path in sorted(Path(directory).rglob("*.yaml")):
        try:
            source = path.read_bytes()
            contract = contract_from_dict(yaml.safe_load(source.decode("utf-8")), con, source)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, yaml.YAMLError, duckdb.Error) as exc:
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
    """Header and row count of the UTF-8 (BOM) CSV twin; types are checked on the Parquet file. The header must
    be the contract's ``title_zh`` of every column in contract order (1:1 with the Parquet's English names)."""
    con = duckdb.connect()
    source = "read_csv(?, header=true, all_varchar=true, delim=',', quote='\"', escape='\"')"
    try:
        header = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}", [str(path)]).fetchall()]
        rows = con.execute(f"SELECT count(*) FROM {source}", [str(path)]).fetchall()[0][0]
    except duckdb.Error as exc:
        return [f"{path.name}: not a readable CSV file ({exc})"]
    reasons = []
    if header != contract.csv_header:
        reasons.append(f"{path.name}: header {header} is not the contract's column titles {contract.csv_header}")
    if rows != expected_rows:
        reasons.append(f"{path.name}: {rows} rows, manifest says {expected_rows}")
    return reasons


def validate_contract_files(folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    """The contract a batch carries (``contract.yaml``, ``contract.schema.json``) must be the one its manifest
    names, and the schema the one derived from that YAML."""
    reasons: list[str] = []
    names = {entry["path"] for entry in manifest["files"]}
    if CONTRACT_FILE in names:
        try:
            carried = yaml.safe_load((folder / CONTRACT_FILE).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            return [f"{CONTRACT_FILE}: not readable YAML ({exc})"]
        if not isinstance(carried, Mapping):
            return [f"{CONTRACT_FILE}: not a contract"]
        stated = (manifest["contract_id"], str(manifest["contract_version"]))
        if (carried.get("id"), str(carried.get("version"))) != stated:
            reasons.append(f"{CONTRACT_FILE}: contract {carried.get('id')} {carried.get('version')}, manifest says "
                           f"{stated[0]} {stated[1]}")
        if SCHEMA_FILE in names:
            try:
                schema = json.loads((folder / SCHEMA_FILE).read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                return [*reasons, f"{SCHEMA_FILE}: not readable JSON ({exc})"]
            try:
                if schema != json.loads(schema_bytes(carried)):
                    reasons.append(f"{SCHEMA_FILE}: differs from the schema derived from {CONTRACT_FILE}")
            except (ContractDocError, KeyError, TypeError) as exc:
                reasons.append(f"{CONTRACT_FILE}: no JSON Schema can be derived from it ({exc})")
    elif SCHEMA_FILE in names:
        reasons.append(f"{SCHEMA_FILE} without the {CONTRACT_FILE} it is derived from")
    return reasons


def validate_files(folder: Path, manifest: Mapping[str, Any], contract: Contract) -> list[str]:
    """Every file of an assembled batch against its manifest row count and the contract; Parquet is required.
    The contract documents the batch carries are checked against its manifest (``validate_contract_files``)."""
    reasons: list[str] = validate_contract_files(folder, manifest)
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
