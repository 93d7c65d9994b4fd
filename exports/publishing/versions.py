"""Decide which version of a partition to publish from the receipts already earned:
same content -> nothing, new content -> correction n+1, no receipt -> version 1."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from exports.publishing.batch import Batch, Receipt

RECEIPTS_DIRNAME = "_receipts"
_VERSION_FILE_RE = re.compile(r"^v([1-9][0-9]*)\.json$")


@dataclass(frozen=True)
class VersionDecision:
    version: int
    is_correction: bool
    supersedes: int | None


def receipts_dir_for(outbox: Path, consumer: str) -> Path:
    """``<outbox>/<consumer>/_receipts``: one receipts folder per consumer."""
    return Path(outbox) / consumer / RECEIPTS_DIRNAME


def receipt_path(receipts_dir: Path, dataset: str, partition: str, version: int) -> Path:
    return Path(receipts_dir) / dataset / partition / f"v{version}.json"


def write_receipt(receipts_dir: Path, receipt: Receipt) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a receipt behind."""
    path = receipt_path(receipts_dir, receipt.dataset, receipt.partition, receipt.version)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".receipt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(receipt.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def published_versions(receipts_dir: Path, dataset: str, partition: str) -> dict[int, Receipt]:
    """Every receipt for one partition, by version."""
    folder = Path(receipts_dir) / dataset / partition
    if not folder.is_dir():
        return {}
    found: dict[int, Receipt] = {}
    for path in folder.iterdir():
        if match := _VERSION_FILE_RE.fullmatch(path.name):
            found[int(match.group(1))] = Receipt.from_json(path.read_text(encoding="utf-8"))
    return found


def latest_receipt(receipts_dir: Path, dataset: str, partition: str) -> Receipt | None:
    versions = published_versions(receipts_dir, dataset, partition)
    return versions[max(versions)] if versions else None


def decide_version(
    receipts_dir: Path, dataset: str, partition: str, content_sha256: str
) -> VersionDecision | None:
    """The version a batch with ``content_sha256`` should carry, or None if it is already published."""
    latest = latest_receipt(receipts_dir, dataset, partition)
    if latest is None:
        return VersionDecision(version=1, is_correction=False, supersedes=None)
    published_sha = latest.detail.get("content_sha256")
    if not published_sha:
        raise ValueError(
            f"receipt v{latest.version} of {dataset}/{partition} has no detail.content_sha256; "
            "cannot tell whether the content changed"
        )
    if published_sha == content_sha256:
        return None
    return VersionDecision(version=latest.version + 1, is_correction=True, supersedes=latest.version)


def decide_for_batch(receipts_dir: Path, batch: Batch) -> VersionDecision | None:
    return decide_version(receipts_dir, batch.dataset, batch.partition, batch.content_sha256)


def apply_decision(manifest: dict, decision: VersionDecision) -> dict:
    """A copy of ``manifest`` stamped with the decided version fields."""
    return {
        **manifest,
        "version": decision.version,
        "is_correction": decision.is_correction,
        "supersedes": decision.supersedes,
    }


__all__ = [
    "RECEIPTS_DIRNAME",
    "VersionDecision",
    "apply_decision",
    "decide_for_batch",
    "decide_version",
    "latest_receipt",
    "published_versions",
    "receipt_path",
    "receipts_dir_for",
    "write_receipt",
]
