"""The incident feed at the reference receiver: ``POST /v1/incidents`` checks one incident version against the feed's
contract (``public_security.incidents``) and holds it in order, ``GET /v1/incidents`` lists what is held. Kept apart
from HTTP so the rules can be read and tested without a socket.

Validation is the contract's JSON Schema of one row (``exports.publishing.contract_doc.row_schema``, the document
served at ``/contracts/public_security/incidents/schema.json``) refined by the contract's optional column rules
(``values`` -> ``enum``, ``pattern`` -> ``pattern``), checked by the small validator below, which knows exactly the
keywords those schemas use. Versions of an incident arrive in order (1, then held+1); the idempotency key
``<incident_id>:<version>`` makes a re-sent version harmless (same body: the original receipt; other body: 409).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from exports.publishing.contract_doc import row_schema
from exports.publishing.signing import body_sha256
from exports.receiver.contract import Contract
from exports.receiver.store import ApiError, _now_iso, _read_json, _write_bytes_atomic, _write_json_atomic

INCIDENTS_CONTRACT_ID = "public_security.incidents"
STORE_DIR = "_incidents"  # under the receiver's store; never a consumer name (those match IDENT_RE, no "_" first)
# <incident_id>:<version>; the id part is also a directory name, so it is held to a safe alphabet here whatever the
# contract's own pattern says
IDEMPOTENCY_KEY_RE = re.compile(r"^(?P<incident_id>[A-Za-z0-9_-]{1,128}):(?P<version>[1-9][0-9]{0,9})$")
DEFAULT_PAGE = 100
MAX_PAGE = 1000
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DATE_TIME_RE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_RECEIPT_RE = re.compile(r"^v([1-9][0-9]*)\.receipt\.json$")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def record_schema(contract: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema a pushed record must satisfy: the contract's row schema with each column's ``values`` as
    ``enum`` and its ``pattern`` added (in ``allOf``, so the row schema's own pattern still applies)."""
    schema = row_schema(contract)
    for col in contract["columns"]:
        prop = schema["properties"][str(col["name"])]
        if col.get("values"):
            prop["enum"] = [*col["values"], *([None] if col.get("nullable", True) else [])]
        if col.get("pattern"):
            prop.setdefault("allOf", []).append({"pattern": col["pattern"]})
    return schema


def _type_ok(value: Any, types: str | list[str]) -> bool:
    for name in [types] if isinstance(types, str) else types:
        wanted = _JSON_TYPES[name]
        if isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted):
            return True
    return False


def _format_ok(value: str, fmt: str) -> bool:
    try:
        if fmt == "date":
            return bool(_DATE_RE.fullmatch(value)) and date.fromisoformat(value) is not None
        if fmt == "date-time":
            return bool(_DATE_TIME_RE.fullmatch(value)) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False
    return True  # a format this validator does not know is an annotation (JSON Schema 2020-12 default)


def _value_problems(name: str, value: Any, prop: Mapping[str, Any]) -> list[str]:
    """What is wrong with one value under one property schema (the keywords ``row_schema`` and
    ``record_schema`` use: type, enum, minimum, maximum, pattern, format, allOf; a TIMESTAMP must be a real time)."""
    if "type" in prop and not _type_ok(value, prop["type"]):
        return [f"{name}: {json.dumps(value, ensure_ascii=False)[:80]} is not of type {prop['type']}"]
    if "enum" in prop and value not in prop["enum"]:
        return [f"{name}: {value!r} is not one of {[v for v in prop['enum'] if v is not None]}"]
    if value is None:
        return []
    problems = []
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in prop and value < prop["minimum"]:
            problems.append(f"{name}: {value} is below the minimum {prop['minimum']}")
        if "maximum" in prop and value > prop["maximum"]:
            problems.append(f"{name}: {value} is above the maximum {prop['maximum']}")
    if isinstance(value, str):
        if "pattern" in prop and not re.search(prop["pattern"], value):
            problems.append(f"{name}: {value[:80]!r} does not match {prop['pattern']}")
        if "format" in prop and not _format_ok(value, prop["format"]):
            problems.append(f"{name}: {value[:80]!r} is not a valid {prop['format']}")
        if str(prop.get("x-duckdb-type", "")).upper() == "TIMESTAMP" and not problems:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                problems.append(f"{name}: {value[:80]!r} is not a valid local time")
    for sub in prop.get("allOf", ()):
        problems += _value_problems(name, value, sub)
    return problems


def record_problems(schema: Mapping[str, Any], record: Any) -> list[str]:
    """Every way ``record`` breaks ``schema`` (a JSON Schema of one row), as sentences; empty when it conforms."""
    if not isinstance(record, dict):
        return [f"the body must be a JSON object, not {type(record).__name__}"]
    properties = schema["properties"]
    problems = [f"missing column {name!r}" for name in schema.get("required", ()) if name not in record]
    if schema.get("additionalProperties") is False:
        problems += [f"unknown column {name!r}" for name in record if name not in properties]
    for name, prop in properties.items():
        if name in record:
            problems += _value_problems(name, record[name], prop)
    return problems


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_record(body: bytes) -> Any:
    """The JSON body (strict: UTF-8, no duplicate keys, no NaN or Infinity); 400 ``bad_json`` otherwise."""
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(400, "bad_json", f"body is not a UTF-8 JSON object: {exc}") from exc


def canonical(record: Any) -> bytes:
    """One serialisation per content (sorted keys, compact, UTF-8): how a replay is compared with what is held."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class IncidentStore:
    """Held incident versions under ``<store>/_incidents/<incident_id>/``: ``v<n>.json`` (the body as received) and
    ``v<n>.receipt.json``, written last, which makes the version held. Receipts carry a receive sequence number
    (``seq``, from 1) that orders ``GET /v1/incidents``; the index of receipts is rebuilt from disk at start.
    One lock serialises the check-and-store, so concurrent pushes cannot both take a version."""

    def __init__(self, root: Path, contracts: Mapping[str, Contract]) -> None:
        self.root = Path(root)
        self.contract = contracts.get(INCIDENTS_CONTRACT_ID)
        self.schema = record_schema(self.contract.raw) if self.contract is not None else None
        self._lock = threading.Lock()
        self._receipts: list[dict[str, Any]] = []  # in seq order
        self._held: dict[str, int] = {}  # incident_id -> highest held version
        self._load()

    def _load(self) -> None:
        if not self.root.is_dir():
            return
        for path in self.root.glob("*/v*.receipt.json"):
            if _RECEIPT_RE.fullmatch(path.name):
                receipt = _read_json(path)
                self._receipts.append(receipt)
                iid, version = receipt["incident_id"], receipt["version"]
                self._held[iid] = max(self._held.get(iid, 0), version)
        self._receipts.sort(key=lambda r: r["seq"])

    def _paths(self, incident_id: str, version: int) -> tuple[Path, Path]:
        folder = self.root / incident_id
        return folder / f"v{version}.json", folder / f"v{version}.receipt.json"

    def held_version(self, incident_id: str) -> int:
        """The highest version of ``incident_id`` held here (0: none)."""
        with self._lock:
            return self._held.get(incident_id, 0)

    def push(self, key: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        """Hold one version: 201 and a new receipt, 200 and the original receipt for a replay of the same key and
        content; otherwise an ``ApiError`` (400 invalid, 409 ``idempotency_conflict`` / ``version_gap``, 422 when
        this receiver holds no incident contract)."""
        if self.contract is None or self.schema is None:
            raise ApiError(422, "unknown_contract", f"this receiver has no contract {INCIDENTS_CONTRACT_ID!r}")
        match = IDEMPOTENCY_KEY_RE.fullmatch(key or "")
        if match is None:
            raise ApiError(400, "bad_idempotency_key",
                           f"Idempotency-Key header must be <incident_id>:<version> ({IDEMPOTENCY_KEY_RE.pattern})")
        record = parse_record(body)
        if problems := record_problems(self.schema, record):
            raise ApiError(400, "invalid_incident", f"the record breaks contract {self.contract.id} "
                           f"{self.contract.version}", problems)
        incident_id, version = match["incident_id"], int(match["version"])
        if (record["incident_id"], record["version"]) != (incident_id, version):
            raise ApiError(400, "idempotency_key_mismatch", f"Idempotency-Key {key} does not name the record's "
                           f"incident_id:version {record['incident_id']}:{record['version']}")
        body_path, receipt_path = self._paths(incident_id, version)
        with self._lock:
            held = self._held.get(incident_id, 0)
            if version <= held:
                if canonical(parse_record(body_path.read_bytes())) != canonical(record):
                    raise ApiError(409, "idempotency_conflict",
                                   f"version {version} of incident {incident_id} is held with other content; "
                                   f"publish the change as version {held + 1}", extra={"expected_version": held + 1})
                return 200, _read_json(receipt_path)
            if version != held + 1:
                what = f"skips version(s) {list(range(held + 1, version))}" if held else "is not version 1"
                raise ApiError(409, "version_gap",
                               f"version {version} of incident {incident_id} {what}; the next version here is "
                               f"{held + 1}", [f"held version: {held or None}", f"next version expected: {held + 1}"],
                               extra={"expected_version": held + 1})
            receipt = {
                "receipt_id": uuid.uuid4().hex,
                "seq": (self._receipts[-1]["seq"] if self._receipts else 0) + 1,
                "incident_id": incident_id,
                "version": version,
                "received_at": _now_iso(),
                "sha256": body_sha256(body),
            }
            _write_bytes_atomic(body_path, body)
            _write_json_atomic(receipt_path, receipt)  # the version is held from here on
            self._receipts.append(receipt)
            self._held[incident_id] = version
        return 201, receipt

    def list_versions(self, since: int = 0, limit: int = DEFAULT_PAGE) -> dict[str, Any]:
        """Held versions with ``seq > since`` in receive order, at most ``limit``: each its receipt and the record.
        ``next_since`` is where the next page starts, ``more`` whether there is one."""
        with self._lock:
            after = [r for r in self._receipts if r["seq"] > since]
        page = after[:limit]
        items = [{"receipt": r, "record": json.loads(self._paths(r["incident_id"], r["version"])[0].read_bytes())}
                 for r in page]
        return {"items": items, "next_since": page[-1]["seq"] if page else since, "more": len(after) > len(page)}


def list_query(query: Mapping[str, str]) -> tuple[int, int]:
    """``since`` (default 0) and ``limit`` (default 100, at most 1000) of ``GET /v1/incidents``; 400 otherwise."""
    if unknown := set(query) - {"since", "limit"}:
        raise ApiError(400, "bad_request", f"unknown query parameter(s): {sorted(unknown)}")
    values = {}
    for name, default, low, high in (("since", 0, 0, 2**63 - 1), ("limit", DEFAULT_PAGE, 1, MAX_PAGE)):
        raw = query.get(name)
        if raw is None:
            values[name] = default
        elif re.fullmatch(r"[0-9]{1,19}", raw) and low <= int(raw) <= high:
            values[name] = int(raw)
        else:
            raise ApiError(400, "bad_request", f"{name} must be an integer in [{low}, {high}]")
    return values["since"], values["limit"]
