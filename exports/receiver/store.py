"""Protocol state of the reference receiver on disk (upload sessions, committed versions, idempotency keys),
kept apart from HTTP so the protocol rules can be read and tested without a socket."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exports.publishing.batch import (
    HASH_BLOCK,
    IDENT_RE,
    MANIFEST_NAME,
    PARTITION_RE,
    Receipt,
    manifest_rule_errors,
    manifest_shape_errors,
)
from exports.receiver.contract import Contract, validate_files

log = logging.getLogger("neuron.receiver")

RECEIPT_NAME = "receipt.json"
LATEST_NAME = "latest"  # <consumer>/<dataset>/<partition>/latest: "v<n>", the newest committed version
PUBLISHER_NAME = "http_push"
DEFAULT_MAX_CHUNK_BYTES = 16 * 1024 * 1024
MAX_CHUNKS_PER_FILE = 100_000
BATCH_ID_RE = re.compile(r"^[0-9a-f]{32}$")
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_VERSION_DIR_RE = re.compile(r"^v([1-9][0-9]*)$")


class ApiError(Exception):
    """An error answer: HTTP status, machine-readable code, message, optional reasons and optional
    machine-readable fields (``extra``, e.g. ``expected_version`` of a ``version_gap``)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        reasons: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.reasons = status, code, message, list(reasons)
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.reasons:
            data["reasons"] = self.reasons
        data.update(self.extra)
        return data


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write, flush to disk, then rename over ``path``: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _identity(manifest: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(manifest.get(k) for k in ("consumer", "dataset", "partition", "version", "content_sha256"))


class ReceiverStore:
    """Protocol state on disk: ``_staging/<batch_id>/`` for uploads, ``<consumer>/<dataset>/<partition>/v<n>/``
    for committed batches (and ``latest`` beside them, naming the newest, written once it is complete) and
    ``_idempotency/<key>.json`` for committed keys. One lock serialises changes:
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

    def held_versions(self, consumer: str, dataset: str, partition: str) -> list[int]:
        """Committed versions of one partition, ascending."""
        folder = self.root / consumer / dataset / partition
        if not folder.is_dir():
            return []
        return sorted(
            int(match.group(1))
            for child in folder.iterdir()
            if (match := _VERSION_DIR_RE.fullmatch(child.name)) and (child / RECEIPT_NAME).is_file()
        )

    def _check_chain(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """A version ``n > 1`` must supersede the version ``n-1`` held here and name its receipt; returns that
        receipt (None for v1). Tells a gap on the consumer side (409 ``version_gap``: the publisher skipped a
        version or supersedes one that never arrived) from a correction, and a correction built on another
        history (409 ``supersedes_mismatch``) from one built on ours."""
        version = manifest["version"]
        if version == 1:
            return None
        consumer, dataset, partition = manifest["consumer"], manifest["dataset"], manifest["partition"]
        previous = self.version_dir(consumer, dataset, partition, version - 1) / RECEIPT_NAME
        if not previous.is_file():
            held = self.held_versions(consumer, dataset, partition)
            expected = max(held) + 1 if held else 1
            if held and max(held) < version - 1:
                what = f"skips version(s) {list(range(max(held) + 1, version))}"
            else:
                what = f"supersedes v{version - 1}, which this receiver does not hold"
            raise ApiError(
                409,
                "version_gap",
                f"version {version} of {consumer}/{dataset}/{partition} {what}; the next version here is "
                f"v{expected}",
                [f"held versions: {held}", f"next version expected: {expected}"],
            )
        held_receipt = _read_json(previous)
        named = manifest.get("supersedes_receipt_id")
        if not named:
            raise ApiError(
                422,
                "invalid_manifest",
                "a correction must name the receipt it supersedes",
                [
                    f"version {version} has no supersedes_receipt_id (v{version - 1} is receipt "
                    f"{held_receipt['receipt_id']} here)"
                ],
            )
        if named != held_receipt["receipt_id"]:
            raise ApiError(
                409,
                "supersedes_mismatch",
                f"version {version} supersedes receipt {named}, but v{version - 1} here is receipt "
                f"{held_receipt['receipt_id']}",
                [f"supersedes_receipt_id {named} != {held_receipt['receipt_id']}"],
            )
        return held_receipt

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
        if (contract.raw.get("cycle") or {}).get("period") == "continuous":
            reasons.append(f"contract {contract.id} is a continuous feed without batches; push its records one by "
                           "one (POST /v1/incidents)")
        if (contract.consumer, contract.dataset) != (manifest["consumer"], manifest["dataset"]):
            reasons.append(f"contract {contract.id} is for {contract.consumer}/{contract.dataset}")
        if str(manifest["contract_version"]).split(".", 1)[0] != contract.major:
            reasons.append(
                f"contract_version {manifest['contract_version']} is incompatible with {contract.version}"
            )
        reasons += contract.disclosure_problems(manifest.get("disclosure"))
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
            self._check_chain(manifest)
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
            superseded = self._check_chain(manifest)  # re-checked: the session may predate this rule
            final = self.version_dir(
                manifest["consumer"], manifest["dataset"], manifest["partition"], manifest["version"]
            )
            assembled = self._session_dir(batch_id) / "assembled"
            shutil.rmtree(assembled, ignore_errors=True)
            assembled.mkdir(parents=True)
            reasons = self._assemble(batch_id, manifest, counts, assembled)
            if not reasons:
                reasons = validate_files(assembled, manifest, contract)
            if reasons:
                shutil.rmtree(assembled, ignore_errors=True)
                raise ApiError(
                    422, "validation_failed", "the batch violates its manifest or contract", reasons
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
                    "supersedes": manifest.get("supersedes"),
                    "supersedes_receipt_id": superseded["receipt_id"] if superseded else None,
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
            _write_text_atomic(final.parent / LATEST_NAME, f"v{manifest['version']}\n")  # only after it is whole
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
