"""Reference receiver for Neuron's HTTP push protocol (signed, idempotent, chunked, contract-validated):
the executable spec behind ``openapi.yaml`` that the district can run or re-implement."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import ssl
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import duckdb
import yaml

from exports.publishing.batch import (
    FILE_NAME_RE,
    HASH_BLOCK,
    IDENT_RE,
    MANIFEST_NAME,
    PARTITION_RE,
    Receipt,
    manifest_rule_errors,
    manifest_shape_errors,
)
from exports.publishing.signing import DEFAULT_MAX_SKEW, NonceCache, SignatureError, verify_request

log = logging.getLogger("neuron.receiver")

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
RECEIPT_NAME = "receipt.json"
PUBLISHER_NAME = "http_push"
MAX_JSON_BYTES = 1024 * 1024
DEFAULT_MAX_CHUNK_BYTES = 16 * 1024 * 1024
MAX_CHUNKS_PER_FILE = 100_000
BATCH_ID_RE = re.compile(r"^[0-9a-f]{32}$")
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_ (),]*$")
_VERSION_DIR_RE = re.compile(r"^v([1-9][0-9]*)$")


# --------------------------------------------------------------------------------------------- contracts


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


# --------------------------------------------------------------------------------------------- the store


class ApiError(Exception):
    """An error answer: HTTP status, machine-readable code, message and optional reasons."""

    def __init__(self, status: int, code: str, message: str, reasons: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.reasons = status, code, message, list(reasons)

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.reasons:
            data["reasons"] = self.reasons
        return data


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _identity(manifest: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(manifest.get(k) for k in ("consumer", "dataset", "partition", "version", "content_sha256"))


class ReceiverStore:
    """Protocol state on disk: ``_staging/<batch_id>/`` for uploads, ``<consumer>/<dataset>/<partition>/v<n>/``
    for committed batches and ``_idempotency/<key>.json`` for committed keys. One lock serialises changes:
    this is a reference implementation, not a throughput-tuned one."""

    def __init__(
        self, root: Path, contracts: Mapping[str, Contract], *, max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES
    ) -> None:
        self.root = Path(root)
        self.contracts = dict(contracts)
        self.max_chunk_bytes = max_chunk_bytes
        self._lock = threading.RLock()
        for sub in ("_staging", "_idempotency"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- paths
    def _session_dir(self, batch_id: str) -> Path:
        return self.root / "_staging" / batch_id

    def _open_key_path(self, key: str) -> Path:
        return self.root / "_staging" / f"key-{key}.json"

    def _key_path(self, key: str) -> Path:
        return self.root / "_idempotency" / f"{key}.json"

    def version_dir(self, consumer: str, dataset: str, partition: str, version: int) -> Path:
        return self.root / consumer / dataset / partition / f"v{version}"

    def _load_session(self, batch_id: str) -> dict[str, Any]:
        path = self._session_dir(batch_id) / "session.json"
        if not BATCH_ID_RE.fullmatch(batch_id) or not path.is_file():
            raise ApiError(404, "unknown_batch", f"no batch {batch_id!r}; start with POST /v1/batches")
        return _read_json(path)

    def _committed_receipt(self, key: str, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """The receipt already issued for ``key``; repairs the key index after a crash mid-commit."""
        index = self._key_path(key)
        if index.is_file():
            receipt = _read_json(index)
        else:
            stored = self.version_dir(
                manifest["consumer"], manifest["dataset"], manifest["partition"], manifest["version"]
            )
            if not (stored / RECEIPT_NAME).is_file():
                return None
            receipt = _read_json(stored / RECEIPT_NAME)
            if receipt.get("idempotency_key") != key:
                raise ApiError(
                    409,
                    "version_exists",
                    f"version {manifest['version']} of this partition is already stored under another key; "
                    "publish changed content as the next version",
                )
            _write_json_atomic(index, receipt)
        claimed = (receipt["consumer"], receipt["dataset"], receipt["partition"], receipt["version"])
        if claimed + (receipt["detail"].get("content_sha256"),) != _identity(manifest):
            raise ApiError(
                409, "idempotency_conflict", "this Idempotency-Key was committed for different content"
            )
        return receipt

    # -- operations
    def init_batch(self, access_key: str, key: str | None, payload: Any) -> tuple[int, dict[str, Any]]:
        if not key or not IDEMPOTENCY_KEY_RE.fullmatch(key):
            raise ApiError(
                400, "bad_idempotency_key", f"Idempotency-Key header must match {IDEMPOTENCY_KEY_RE.pattern}"
            )
        if not isinstance(payload, dict) or not isinstance(payload.get("manifest"), dict):
            raise ApiError(400, "bad_request", 'body must be {"contract_id": ..., "manifest": {...}}')
        manifest = payload["manifest"]
        if problems := manifest_shape_errors(manifest):
            raise ApiError(400, "invalid_manifest", "the manifest is malformed", problems)
        if not isinstance(payload.get("contract_id"), str):
            raise ApiError(400, "bad_request", "contract_id must be a string")
        problems = manifest_rule_errors(manifest)
        if payload["contract_id"] != manifest["contract_id"]:
            problems.append("contract_id differs from manifest.contract_id")
        if problems:
            raise ApiError(422, "invalid_manifest", "the manifest breaks the protocol rules", problems)
        contract = self.contracts.get(manifest["contract_id"])
        if contract is None:
            raise ApiError(
                422, "unknown_contract", f"this receiver has no contract {manifest['contract_id']!r}"
            )
        reasons = []
        if (contract.consumer, contract.dataset) != (manifest["consumer"], manifest["dataset"]):
            reasons.append(f"contract {contract.id} is for {contract.consumer}/{contract.dataset}")
        if str(manifest["contract_version"]).split(".", 1)[0] != contract.major:
            reasons.append(
                f"contract_version {manifest['contract_version']} is incompatible with {contract.version}"
            )
        if reasons:
            raise ApiError(
                422, "contract_mismatch", "the manifest does not match the receiver's contract", reasons
            )
        with self._lock:
            receipt = self._committed_receipt(key, manifest)
            if receipt is not None:
                return 200, {
                    "batch_id": receipt["detail"].get("batch_id", ""),
                    "status": "committed",
                    "receipt": receipt,
                }
            open_key = self._open_key_path(key)
            if open_key.is_file():
                batch_id = _read_json(open_key)["batch_id"]
                session_path = self._session_dir(batch_id) / "session.json"
                if session_path.is_file() and _read_json(session_path)["manifest"] == manifest:
                    return 200, self._open_answer(batch_id)
                # Same key, rebuilt content before any commit: the earlier upload is abandoned.
                shutil.rmtree(self._session_dir(batch_id), ignore_errors=True)
            batch_id = uuid.uuid4().hex
            session = {
                "batch_id": batch_id,
                "idempotency_key": key,
                "access_key": access_key,
                "manifest": manifest,
                "status": "open",
                "created_at": _now_iso(),
            }
            _write_json_atomic(self._session_dir(batch_id) / "session.json", session)
            _write_json_atomic(open_key, {"batch_id": batch_id})
        return 201, self._open_answer(batch_id)

    def _open_answer(self, batch_id: str) -> dict[str, Any]:
        return {"batch_id": batch_id, "status": "open", "max_chunk_bytes": self.max_chunk_bytes}

    def put_chunk(self, batch_id: str, name: str, index: int, body: bytes) -> dict[str, Any]:
        with self._lock:
            session = self._load_session(batch_id)
            if session["status"] != "open":
                raise ApiError(409, "batch_committed", "this batch is already committed")
            if name not in {f["path"] for f in session["manifest"]["files"]}:
                raise ApiError(404, "unknown_file", f"{name!r} is not listed in the batch manifest")
            part = self._session_dir(batch_id) / "chunks" / name / f"{index:06d}.part"
            part.parent.mkdir(parents=True, exist_ok=True)
            tmp = part.with_suffix(".tmp")
            tmp.write_bytes(body)
            os.replace(tmp, part)
        return {
            "batch_id": batch_id,
            "file": name,
            "chunk": index,
            "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }

    def _assemble(
        self, batch_id: str, manifest: Mapping[str, Any], chunk_counts: Mapping[str, int], out: Path
    ) -> list[str]:
        reasons: list[str] = []
        for entry in manifest["files"]:
            name = entry["path"]
            parts_dir = self._session_dir(batch_id) / "chunks" / name
            missing = [i for i in range(chunk_counts[name]) if not (parts_dir / f"{i:06d}.part").is_file()]
            if missing:
                reasons.append(f"{name}: missing chunk(s) {missing[:10]}")
                continue
            digest, size = hashlib.sha256(), 0
            with (out / name).open("wb") as target:
                for i in range(chunk_counts[name]):
                    with (parts_dir / f"{i:06d}.part").open("rb") as source:
                        while block := source.read(HASH_BLOCK):
                            digest.update(block)
                            size += len(block)
                            target.write(block)
            if size != entry["bytes"]:
                reasons.append(f"{name}: received {size} bytes, manifest says {entry['bytes']}")
            if digest.hexdigest() != entry["sha256"]:
                reasons.append(
                    f"{name}: sha256 {digest.hexdigest()} does not match manifest {entry['sha256']}"
                )
        return reasons

    def _validate_content(self, folder: Path, manifest: Mapping[str, Any], contract: Contract) -> list[str]:
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

    def commit(self, batch_id: str, payload: Any) -> tuple[int, dict[str, Any]]:
        with self._lock:
            session = self._load_session(batch_id)
            if session["status"] == "committed":
                return 200, session["receipt"]
            manifest = session["manifest"]
            names = [f["path"] for f in manifest["files"]]
            counts = _chunk_counts(payload, names)
            contract = self.contracts.get(manifest["contract_id"])
            if contract is None:
                raise ApiError(
                    422, "unknown_contract", f"this receiver has no contract {manifest['contract_id']!r}"
                )
            key = session["idempotency_key"]
            if (receipt := self._committed_receipt(key, manifest)) is not None:
                return 200, receipt
            final = self.version_dir(
                manifest["consumer"], manifest["dataset"], manifest["partition"], manifest["version"]
            )
            assembled = self._session_dir(batch_id) / "assembled"
            shutil.rmtree(assembled, ignore_errors=True)
            assembled.mkdir(parents=True)
            reasons = self._assemble(batch_id, manifest, counts, assembled)
            if not reasons:
                reasons = self._validate_content(assembled, manifest, contract)
            if reasons:
                shutil.rmtree(assembled, ignore_errors=True)
                raise ApiError(
                    422, "validation_failed", "the batch violates its manifest or contract", reasons
                )
            previous = manifest.get("supersedes")
            previous_receipt = (
                self.version_dir(manifest["consumer"], manifest["dataset"], manifest["partition"], previous)
                / RECEIPT_NAME
                if previous
                else None
            )
            receipt = Receipt(
                receipt_id=uuid.uuid4().hex,
                consumer=manifest["consumer"],
                dataset=manifest["dataset"],
                partition=manifest["partition"],
                version=manifest["version"],
                idempotency_key=key,
                status="committed",
                publisher=PUBLISHER_NAME,
                received_at=_now_iso(),
                detail={
                    "batch_id": batch_id,
                    "contract_id": manifest["contract_id"],
                    "contract_version": manifest["contract_version"],
                    "content_sha256": manifest["content_sha256"],
                    "row_count": manifest["row_count"],
                    "is_correction": manifest["is_correction"],
                    "supersedes": previous,
                    "supersedes_receipt_id": (
                        _read_json(previous_receipt)["receipt_id"]
                        if previous_receipt is not None and previous_receipt.is_file()
                        else None
                    ),
                    "files": [
                        {"path": f["path"], "sha256": f["sha256"], "bytes": f["bytes"]}
                        for f in manifest["files"]
                    ],
                    "access_key": session["access_key"],
                    "location": f"{manifest['consumer']}/{manifest['dataset']}/{manifest['partition']}/v{manifest['version']}",
                },
            ).to_dict()
            _write_json_atomic(assembled / MANIFEST_NAME, manifest)
            _write_json_atomic(assembled / RECEIPT_NAME, receipt)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(assembled, final)  # atomic publish of the whole version folder
            _write_json_atomic(self._key_path(key), receipt)
            session.update(status="committed", receipt=receipt, committed_at=receipt["received_at"])
            _write_json_atomic(self._session_dir(batch_id) / "session.json", session)
            shutil.rmtree(self._session_dir(batch_id) / "chunks", ignore_errors=True)
            self._open_key_path(key).unlink(missing_ok=True)
        log.info("committed %s as receipt %s", receipt["detail"]["location"], receipt["receipt_id"])
        return 201, receipt

    def list_batches(
        self, consumer: str | None, dataset: str | None, partition: str | None
    ) -> dict[str, Any]:
        for label, value in (("consumer", consumer), ("dataset", dataset)):
            if value is not None and not IDENT_RE.fullmatch(value):
                raise ApiError(400, "bad_request", f"{label} must match {IDENT_RE.pattern}")
        if partition is not None and not PARTITION_RE.fullmatch(partition):
            raise ApiError(400, "bad_request", "partition must be yyyy-mm-dd")
        pattern = f"{consumer or '*'}/{dataset or '*'}/{partition or '*'}/v*/{RECEIPT_NAME}"
        receipts = []
        for path in self.root.glob(pattern):
            c, d, p, v = path.parent.relative_to(self.root).parts
            if IDENT_RE.fullmatch(c) and IDENT_RE.fullmatch(d) and _VERSION_DIR_RE.fullmatch(v):
                receipts.append(_read_json(path))
        versions_by_partition: dict[tuple[str, str, str], list[int]] = {}
        for r in receipts:
            versions_by_partition.setdefault((r["consumer"], r["dataset"], r["partition"]), []).append(
                r["version"]
            )
        items = []
        for r in sorted(receipts, key=lambda r: (r["consumer"], r["dataset"], r["partition"], r["version"])):
            later = [
                v
                for v in versions_by_partition[(r["consumer"], r["dataset"], r["partition"])]
                if v > r["version"]
            ]
            items.append(
                {
                    "consumer": r["consumer"],
                    "dataset": r["dataset"],
                    "partition": r["partition"],
                    "version": r["version"],
                    "is_correction": r["detail"]["is_correction"],
                    "supersedes": r["detail"]["supersedes"],
                    "superseded_by": min(later) if later else None,
                    "content_sha256": r["detail"]["content_sha256"],
                    "row_count": r["detail"]["row_count"],
                    "receipt_id": r["receipt_id"],
                    "received_at": r["received_at"],
                }
            )
        return {"items": items}


# --------------------------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class _Route:
    name: str
    pattern: re.Pattern[str]
    methods: tuple[str, ...]
    public: bool = False


_ROUTES = (
    _Route("healthz", re.compile(r"^/healthz$"), ("GET",), public=True),
    _Route("openapi", re.compile(r"^/openapi\.yaml$"), ("GET",), public=True),
    _Route("batches", re.compile(r"^/v1/batches$"), ("GET", "POST")),
    _Route(
        "chunk",
        re.compile(r"^/v1/batches/(?P<batch_id>[^/]+)/files/(?P<file>[^/]+)/chunks/(?P<index>[^/]+)$"),
        ("PUT",),
    ),
    _Route("commit", re.compile(r"^/v1/batches/(?P<batch_id>[^/]+)/commit$"), ("POST",)),
)


@dataclass
class _FailureRule:
    remaining: int
    after_handling: bool
    path_contains: str | None


@dataclass
class RequestRecord:
    method: str
    path: str
    status: int


class ReceiverServer(ThreadingHTTPServer):
    """The HTTP front of a ``ReceiverStore``. ``fail_next`` / ``inject_failures`` are test hooks only."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        store: ReceiverStore,
        keys: Mapping[str, str],
        *,
        max_skew: float = DEFAULT_MAX_SKEW,
        fail_next: int = 0,
    ) -> None:
        if not keys:
            raise ValueError("the receiver needs at least one access key")
        self.store = store
        self.keys = dict(keys)
        self.max_skew = max_skew
        self.nonces = NonceCache(ttl=2 * max_skew)
        self.requests: list[RequestRecord] = []
        self._failures: list[_FailureRule] = []
        self._hook_lock = threading.Lock()
        self.openapi_bytes = OPENAPI_PATH.read_bytes()
        super().__init__(address, _Handler)
        if fail_next:
            self.inject_failures(fail_next)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://{host}:{port}"

    def inject_failures(
        self, count: int, *, after_handling: bool = False, path_contains: str | None = None
    ) -> None:
        """Answer 500 to the next ``count`` matching requests; ``after_handling`` does the work first, as
        when a commit succeeds but its answer is lost."""
        with self._hook_lock:
            self._failures.append(_FailureRule(count, after_handling, path_contains))

    def _take_failure(self, after_handling: bool, path: str) -> bool:
        with self._hook_lock:
            for rule in self._failures:
                if (
                    rule.remaining > 0
                    and rule.after_handling == after_handling
                    and (rule.path_contains is None or rule.path_contains in path)
                ):
                    rule.remaining -= 1
                    return True
        return False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed TLS handshakes and dropped connections are routine on a public endpoint.
        log.warning("connection from %s failed", client_address[0], exc_info=log.isEnabledFor(logging.DEBUG))

    def _record(self, method: str, path: str, status: int) -> None:
        with self._hook_lock:
            self.requests.append(RequestRecord(method, path, status))


class _Handler(BaseHTTPRequestHandler):
    server: ReceiverServer
    protocol_version = "HTTP/1.1"
    server_version = "NeuronReceiver/1.0"
    timeout = 60  # seconds a client may stall mid-request before its thread gives up
    disable_nagle_algorithm = True  # headers and body go out as separate writes; avoid 40 ms ACK stalls

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def __getattr__(self, name: str) -> Any:
        # http.server answers 501 to any method without a do_<METHOD>; route them all so undeclared
        # methods get a proper 405 with Allow (or 404 for unknown paths).
        if name.startswith("do_") and name[3:].isalpha():
            return lambda: self._handle(name[3:].upper())
        raise AttributeError(name)

    # -- plumbing
    def _send(
        self, status: int, body: bytes, content_type: str, extra: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, data: Any, extra: Mapping[str, str] | None = None) -> None:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", extra)

    def _read_body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(
                400, "length_required", "send a Content-Length; chunked transfer encoding is not accepted"
            )
        raw = self.headers.get("Content-Length", "0") or "0"
        if not raw.isdigit():
            self.close_connection = True
            raise ApiError(400, "bad_request", "invalid Content-Length")
        length = int(raw)
        if length > limit:
            self.close_connection = True
            raise ApiError(413, "too_large", f"request body is limited to {limit} bytes here")
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        route: _Route | None = None
        status: int = 500
        payload: Any = None
        headers: dict[str, str] = {}
        try:
            route, params = self._route(path)
            limit = (
                self.server.store.max_chunk_bytes
                if route is not None and route.name == "chunk"
                else MAX_JSON_BYTES
            )
            body = self._read_body(limit)
            if self.server._take_failure(False, path):
                raise ApiError(500, "injected_failure", "test hook: failing on purpose")
            if route is None:
                raise ApiError(404, "not_found", f"no endpoint {path}")
            allowed = route.methods + (("HEAD",) if "GET" in route.methods else ())
            if method == "OPTIONS":
                status, payload, headers = 204, b"", {"Allow": ", ".join((*allowed, "OPTIONS"))}
            elif method not in allowed:
                headers = {"Allow": ", ".join((*allowed, "OPTIONS"))}
                raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
            else:
                access_key = None
                if not route.public:
                    access_key = verify_request(
                        method,
                        self.path,
                        self.headers.items(),
                        body,
                        self.server.keys,
                        max_skew=self.server.max_skew,
                        nonces=self.server.nonces,
                    )
                status, payload = self._dispatch(
                    route, params, "GET" if method == "HEAD" else method, split.query, body, access_key
                )
            if self.server._take_failure(True, path):
                raise ApiError(500, "injected_failure", "test hook: the work was done but the answer is lost")
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # the client stalled or went away mid-request; nobody to answer
            return
        except SignatureError as exc:
            status, payload = exc.status, {"error": exc.code, "message": exc.message}
            headers = {"WWW-Authenticate": 'NeuronHMAC realm="neuron"'} if exc.status == 401 else {}
        except ApiError as exc:
            status, payload = exc.status, exc.body()
        except Exception:
            log.exception("internal error on %s %s", method, path)
            status, payload = 500, {"error": "internal_error", "message": "internal error; see receiver log"}
        self.server._record(method, path, status)
        if isinstance(payload, bytes):
            content_type = (
                "application/yaml" if route is not None and route.name == "openapi" else "text/plain"
            )
            if status == 204:
                self.send_response(204)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
            else:
                self._send(status, payload, content_type, headers)
        else:
            self._send_json(status, payload, headers)

    @staticmethod
    def _route(path: str) -> tuple[_Route | None, dict[str, str]]:
        for route in _ROUTES:
            if match := route.pattern.fullmatch(path):
                return route, {k: unquote(v) for k, v in match.groupdict().items()}
        return None, {}

    def _dispatch(
        self,
        route: _Route,
        params: dict[str, str],
        method: str,
        query: str,
        body: bytes,
        access_key: str | None,
    ) -> tuple[int, Any]:
        store = self.server.store
        if route.name == "healthz":
            return 200, {"status": "ok"}
        if route.name == "openapi":
            return 200, self.server.openapi_bytes
        if route.name == "batches" and method == "GET":
            allowed = {"consumer", "dataset", "partition"}
            query_params = dict(parse_qsl(query, keep_blank_values=True))
            if unknown := set(query_params) - allowed:
                raise ApiError(400, "bad_request", f"unknown query parameter(s): {sorted(unknown)}")
            return 200, store.list_batches(
                *(query_params.get(name) for name in ("consumer", "dataset", "partition"))
            )
        assert access_key is not None
        if route.name == "batches":
            return store.init_batch(access_key, self.headers.get("Idempotency-Key"), _parse_json(body))
        if route.name == "chunk":
            index = params["index"]
            if not re.fullmatch(r"[0-9]{1,5}", index):
                raise ApiError(
                    400, "bad_request", f"chunk index must be an integer in [0, {MAX_CHUNKS_PER_FILE})"
                )
            if not FILE_NAME_RE.fullmatch(params["file"]):
                raise ApiError(404, "unknown_file", "no such file in this batch")
            return 200, store.put_chunk(params["batch_id"], params["file"], int(index), body)
        return store.commit(params["batch_id"], _parse_json(body) if body else {})


def _chunk_counts(payload: Any, names: Sequence[str]) -> dict[str, int]:
    """The commit body ``{"files": [{"path", "chunks"}]}`` as a dict, listing every manifest file once."""
    files = payload.get("files") if isinstance(payload, dict) else None
    entries = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    counts = {
        f["path"]: f["chunks"]
        for f in entries
        if isinstance(f.get("path"), str)
        and isinstance(f.get("chunks"), int)
        and not isinstance(f["chunks"], bool)
        and 1 <= f["chunks"] <= MAX_CHUNKS_PER_FILE
    }
    if (
        not isinstance(files, list)
        or not len(files) == len(counts) == len(names)
        or set(counts) != set(names)
    ):
        raise ApiError(
            400,
            "bad_request",
            f'body must be {{"files": [{{"path": ..., "chunks": n}}]}} listing each of {list(names)} once '
            f"with 1 <= chunks <= {MAX_CHUNKS_PER_FILE}",
        )
    return counts


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "bad_json", f"body is not UTF-8 JSON: {exc}") from exc


# --------------------------------------------------------------------------------------------- running


def make_server(
    store_dir: Path | str,
    contracts: Path | str | Mapping[str, Contract],
    keys: Mapping[str, str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_skew: float = DEFAULT_MAX_SKEW,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    fail_next: int = 0,
    tls_cert: Path | str | None = None,
    tls_key: Path | str | None = None,
) -> ReceiverServer:
    """A bound (not yet serving) receiver; ``port=0`` picks a free port."""
    loaded = contracts if isinstance(contracts, Mapping) else load_contracts(contracts)
    store = ReceiverStore(Path(store_dir), loaded, max_chunk_bytes=max_chunk_bytes)
    server = ReceiverServer((host, port), store, keys, max_skew=max_skew, fail_next=fail_next)
    if tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
        # Handshake lazily in the handler thread so one stalled client cannot block accept().
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


@dataclass
class RunningReceiver:
    """A receiver serving on a background thread; ``base_url`` is what a publisher needs."""

    server: ReceiverServer
    base_url: str
    thread: threading.Thread = field(repr=False)

    @property
    def store(self) -> ReceiverStore:
        return self.server.store

    def inject_failures(
        self, count: int, *, after_handling: bool = False, path_contains: str | None = None
    ) -> None:
        self.server.inject_failures(count, after_handling=after_handling, path_contains=path_contains)


@contextmanager
def run_in_thread(
    store_dir: Path | str,
    contracts: Path | str | Mapping[str, Contract],
    keys: Mapping[str, str],
    **kwargs: Any,
) -> Iterator[RunningReceiver]:
    """Serve on loopback (free port by default) for the duration of the ``with`` block."""
    server = make_server(store_dir, contracts, keys, **kwargs)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RunningReceiver(server=server, base_url=server.base_url, thread=thread)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _parse_keys(pairs: Sequence[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for pair in pairs:
        pair = pair.strip()
        if not pair or pair.startswith("#"):
            continue
        key, sep, secret = pair.partition("=")
        if not sep or not key or not secret:
            raise argparse.ArgumentTypeError(f"expected KEY=SECRET, got {pair.split('=')[0]!r}=...")
        keys[key] = secret
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    """``neuron receiver``: serve until interrupted."""
    parser = argparse.ArgumentParser(prog="neuron receiver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--store", required=True, type=Path, help="where committed batches are stored")
    parser.add_argument(
        "--contracts", required=True, type=Path, help="folder of <consumer>/<dataset>.yaml contracts"
    )
    parser.add_argument(
        "--keys", nargs="*", default=[], metavar="KEY=SECRET", help="access keys (visible in ps)"
    )
    parser.add_argument("--keys-file", type=Path, help="file with one KEY=SECRET per line (preferred)")
    parser.add_argument(
        "--max-skew", type=float, default=DEFAULT_MAX_SKEW, help="allowed clock skew, seconds"
    )
    parser.add_argument("--max-chunk-bytes", type=int, default=DEFAULT_MAX_CHUNK_BYTES)
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate chain; serve HTTPS")
    parser.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        keys = _parse_keys(args.keys)
        if args.keys_file:
            keys.update(_parse_keys(args.keys_file.read_text(encoding="utf-8").splitlines()))
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if not keys:
        parser.error("give at least one access key with --keys or --keys-file")
    server = make_server(
        args.store,
        args.contracts,
        keys,
        host=args.host,
        port=args.port,
        max_skew=args.max_skew,
        max_chunk_bytes=args.max_chunk_bytes,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    log.info(
        "receiver on %s, store %s, %d contract(s)", server.base_url, args.store, len(server.store.contracts)
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
