"""The unit every publisher ships (a verified file-drop batch folder) and the receipt it earns.
Shared by the push client and the reference receiver so both read a manifest the same way."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

MANIFEST_NAME = "manifest.json"
HASH_BLOCK = 1024 * 1024

# Identifiers end up as folder names on both sides, so they are restricted to a path-safe alphabet.
# Patterns carry anchors to read like the OpenAPI ones; always match them with fullmatch().
IDENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
PARTITION_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
RECEIPT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class BatchError(ValueError):
    """A batch folder or manifest is malformed."""


class BatchIntegrityError(BatchError):
    """A data file does not match the sha256 or size its manifest declares."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks so large files never sit in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def idempotency_key(consumer: str, dataset: str, partition: str, version: int) -> str:
    """The key that makes one (consumer, dataset, partition, version) publish at most once anywhere."""
    return hashlib.sha256(f"{consumer}/{dataset}/{partition}/v{version}".encode()).hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def manifest_shape_errors(manifest: Any) -> list[str]:
    """Type and pattern problems, i.e. what the OpenAPI ``Manifest`` schema can express (receiver: 400)."""
    if not isinstance(manifest, Mapping):
        return ["manifest must be a JSON object"]
    errors: list[str] = []
    for key in ("consumer", "dataset"):
        value = manifest.get(key)
        if not isinstance(value, str) or not IDENT_RE.fullmatch(value):
            errors.append(f"{key} must match {IDENT_RE.pattern}")
    for key in ("contract_id", "contract_version", "content_sha256"):
        if not isinstance(manifest.get(key), str) or not manifest.get(key):
            errors.append(f"{key} must be a non-empty string")
    if not isinstance(manifest.get("partition"), str) or not PARTITION_RE.fullmatch(manifest["partition"]):
        errors.append("partition must be a yyyy-mm-dd date")
    if not _is_int(manifest.get("version")) or manifest["version"] < 1:
        errors.append("version must be an integer >= 1")
    if not isinstance(manifest.get("is_correction"), bool):
        errors.append("is_correction must be a boolean")
    supersedes = manifest.get("supersedes")
    if supersedes is not None and (not _is_int(supersedes) or supersedes < 1):
        errors.append("supersedes must be null or an integer >= 1")
    receipt_id = manifest.get("supersedes_receipt_id")
    if receipt_id is not None and (
        not isinstance(receipt_id, str) or not RECEIPT_ID_RE.fullmatch(receipt_id)
    ):
        errors.append(f"supersedes_receipt_id must be null or match {RECEIPT_ID_RE.pattern}")
    outbox_version = manifest.get("outbox_version")
    if outbox_version is not None and (not _is_int(outbox_version) or outbox_version < 1):
        errors.append("outbox_version must be null or an integer >= 1")
    if not _is_int(manifest.get("row_count")) or manifest["row_count"] < 0:
        errors.append("row_count must be an integer >= 0")
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        errors.append("files must be a non-empty list")
        return errors
    for i, entry in enumerate(files):
        if not isinstance(entry, Mapping):
            errors.append(f"files[{i}] must be an object")
            continue
        if not isinstance(entry.get("path"), str) or not FILE_NAME_RE.fullmatch(entry["path"]):
            errors.append(f"files[{i}].path must be a plain file name matching {FILE_NAME_RE.pattern}")
        if not isinstance(entry.get("sha256"), str) or not SHA256_RE.fullmatch(entry["sha256"]):
            errors.append(f"files[{i}].sha256 must be 64 lowercase hex characters")
        if not _is_int(entry.get("bytes")) or entry["bytes"] < 0:
            errors.append(f"files[{i}].bytes must be an integer >= 0")
        if entry.get("rows") is not None and (not _is_int(entry["rows"]) or entry["rows"] < 0):
            errors.append(f"files[{i}].rows must be an integer >= 0 or null")
    return errors


def manifest_rule_errors(manifest: Mapping[str, Any]) -> list[str]:
    """Cross-field rules of a well-shaped manifest (receiver: 422)."""
    errors: list[str] = []
    try:
        date.fromisoformat(manifest["partition"])
    except ValueError:
        errors.append(f"partition {manifest['partition']} is not a calendar date")
    version, supersedes, is_correction = (
        manifest["version"],
        manifest.get("supersedes"),
        manifest["is_correction"],
    )
    if version == 1 and (is_correction or supersedes is not None or manifest.get("supersedes_receipt_id")):
        errors.append("version 1 cannot be a correction or supersede anything")
    if version > 1 and (not is_correction or supersedes != version - 1):
        errors.append(f"version {version} must have is_correction=true and supersedes={version - 1}")
    names = [entry["path"] for entry in manifest["files"]]
    if MANIFEST_NAME in names:
        errors.append(f"{MANIFEST_NAME} cannot be listed as a data file")
    if duplicates := sorted(name for name, n in Counter(names).items() if n > 1):
        errors.append(f"files listed more than once: {duplicates}")
    return errors


def validate_manifest(manifest: Any) -> list[str]:
    """Every problem of a manifest (empty list = valid). Does not look at any file."""
    return manifest_shape_errors(manifest) or manifest_rule_errors(manifest)


@dataclass(frozen=True)
class BatchFile:
    path: str
    sha256: str
    bytes: int
    rows: int | None = None


@dataclass(frozen=True)
class Batch:
    """A verified batch folder ``<outbox>/<consumer>/<dataset>/<yyyy-mm-dd>/``."""

    root: Path
    manifest: dict[str, Any]
    files: tuple[BatchFile, ...]

    @classmethod
    def from_dir(cls, path: Path | str, *, verify: bool = True) -> Batch:
        """Load ``manifest.json`` from ``path``; with ``verify`` check every file's size and sha256."""
        root = Path(path)
        try:
            manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise BatchError(f"{root}: no {MANIFEST_NAME}") from exc
        except json.JSONDecodeError as exc:
            raise BatchError(f"{root / MANIFEST_NAME}: invalid JSON ({exc})") from exc
        if problems := validate_manifest(manifest):
            raise BatchError(f"{root / MANIFEST_NAME}: " + "; ".join(problems))
        files = tuple(
            BatchFile(path=f["path"], sha256=f["sha256"], bytes=f["bytes"], rows=f.get("rows"))
            for f in manifest["files"]
        )
        batch = cls(root=root, manifest=manifest, files=files)
        if verify:
            batch.verify()
        return batch

    def verify(self) -> None:
        """Raise ``BatchIntegrityError`` naming every file that is missing or differs from the manifest."""
        problems: list[str] = []
        for f in self.files:
            path = self.root / f.path
            if not path.is_file():
                problems.append(f"{f.path}: missing")
            elif path.stat().st_size != f.bytes:
                problems.append(f"{f.path}: {path.stat().st_size} bytes, manifest says {f.bytes}")
            elif (actual := sha256_file(path)) != f.sha256:
                problems.append(f"{f.path}: sha256 {actual}, manifest says {f.sha256}")
        if problems:
            raise BatchIntegrityError(f"{self.root}: " + "; ".join(problems))

    def file_path(self, name: str) -> Path:
        return self.root / name

    def with_manifest(self, manifest: dict[str, Any]) -> Batch:
        """The same folder and files under another manifest (e.g. restamped with a consumer's version).

        Only manifest fields may change: the listed files must stay exactly the verified ones.
        """
        if problems := validate_manifest(manifest):
            raise BatchError(f"{self.root}: restamped manifest: " + "; ".join(problems))
        if manifest["files"] != self.manifest["files"]:
            raise BatchError(f"{self.root}: a restamped manifest must list the same files")
        return replace(self, manifest=manifest)

    @property
    def consumer(self) -> str:
        return self.manifest["consumer"]

    @property
    def dataset(self) -> str:
        return self.manifest["dataset"]

    @property
    def partition(self) -> str:
        return self.manifest["partition"]

    @property
    def version(self) -> int:
        return self.manifest["version"]

    @property
    def contract_id(self) -> str:
        return self.manifest["contract_id"]

    @property
    def content_sha256(self) -> str:
        return self.manifest["content_sha256"]

    @property
    def is_correction(self) -> bool:
        return self.manifest["is_correction"]

    @property
    def supersedes(self) -> int | None:
        return self.manifest.get("supersedes")

    @property
    def supersedes_receipt_id(self) -> str | None:
        return self.manifest.get("supersedes_receipt_id")

    @property
    def row_count(self) -> int:
        return self.manifest["row_count"]

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.consumer, self.dataset, self.partition, self.version)


@dataclass(frozen=True)
class Receipt:
    """Proof that a receiver durably accepted one batch version.

    ``detail`` carries at least ``content_sha256``, ``row_count``, ``contract_id``, ``contract_version``,
    ``is_correction`` and ``supersedes`` (``versions.py`` relies on ``content_sha256``).
    """

    receipt_id: str
    consumer: str
    dataset: str
    partition: str
    version: int
    idempotency_key: str
    status: str
    publisher: str
    received_at: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        missing = [name for name in cls.__dataclass_fields__ if name != "detail" and name not in data]
        if missing:
            raise ValueError(f"receipt is missing {', '.join(missing)}")
        if not _is_int(data["version"]):
            raise ValueError("receipt version must be an integer")
        return cls(
            receipt_id=str(data["receipt_id"]),
            consumer=str(data["consumer"]),
            dataset=str(data["dataset"]),
            partition=str(data["partition"]),
            version=data["version"],
            idempotency_key=str(data["idempotency_key"]),
            status=str(data["status"]),
            publisher=str(data["publisher"]),
            received_at=str(data["received_at"]),
            detail=dict(data.get("detail") or {}),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Receipt:
        return cls.from_dict(json.loads(text))


@runtime_checkable
class Publisher(Protocol):
    """One way of delivering a batch to a consumer (file drop, HTTP push, ...)."""

    name: str

    def publish(self, batch: Batch) -> Receipt: ...
