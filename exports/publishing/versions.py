"""Decide which version of a partition to push to a consumer from the receipts that consumer acknowledged:
same content -> nothing, new content -> correction n+1 of the last acknowledged version, no receipt -> v1.

The outbox (file drop) numbers its own versions; a push is restamped with the consumer's chain
(``stamp_for_consumer``), so a receiver never gets a version superseding one it was never sent."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from exports.publishing.batch import MANIFEST_NAME, Batch, Receipt
from exports.publishing.changes import describe_correction, read_manifest, render, titles_of

RECEIPTS_DIRNAME = "_receipts"
_VERSION_FILE_RE = re.compile(r"^v([1-9][0-9]*)\.json$")
_VERSION_DIR_RE = re.compile(r"^v([1-9][0-9]*)$")


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


def _decide(latest: Receipt | None, content_sha256: str) -> VersionDecision | None:
    if latest is None:
        return VersionDecision(version=1, is_correction=False, supersedes=None)
    published_sha = latest.detail.get("content_sha256")
    if not published_sha:
        raise ValueError(
            f"receipt v{latest.version} of {latest.dataset}/{latest.partition} has no detail.content_sha256; "
            "cannot tell whether the content changed"
        )
    if published_sha == content_sha256:
        return None
    return VersionDecision(version=latest.version + 1, is_correction=True, supersedes=latest.version)


def decide_version(
    receipts_dir: Path, dataset: str, partition: str, content_sha256: str
) -> VersionDecision | None:
    """The version a batch with ``content_sha256`` should carry for this consumer, or None if the consumer
    already acknowledged that content (its latest receipt has the same ``content_sha256``)."""
    return _decide(latest_receipt(receipts_dir, dataset, partition), content_sha256)


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


def stamp_for_consumer(receipts_dir: Path, batch: Batch) -> Batch:
    """``batch`` (an outbox batch) restamped with the consumer's version chain, ready to push.

    * no receipt for the partition -> v1 (whatever the outbox version is: earlier pushes may have failed);
    * new content -> ``n+1``, a correction of the last acknowledged version ``n`` that names its receipt
      (``supersedes_receipt_id``), so the receiver can check it holds exactly that version;
    * content the consumer already acknowledged -> that version again, unchanged: re-pushing it is
      idempotent and the receiver answers with its original receipt (nothing is uploaded).

    ``outbox_version`` keeps the outbox's own number for tracing; the files are untouched.
    """
    acknowledged = published_versions(receipts_dir, batch.dataset, batch.partition)
    latest = acknowledged[max(acknowledged)] if acknowledged else None
    decision = _decide(latest, batch.content_sha256)
    if decision is None:  # already acknowledged: the same version, as it was sent
        assert latest is not None
        n = latest.version
        decision = VersionDecision(version=n, is_correction=n > 1, supersedes=n - 1 if n > 1 else None)
    previous = acknowledged.get(decision.supersedes) if decision.supersedes else None
    if previous is not None:
        supersedes_receipt_id = previous.receipt_id
    elif decision.supersedes and latest is not None and latest.version == decision.version:
        supersedes_receipt_id = latest.detail.get("supersedes_receipt_id")
    else:
        supersedes_receipt_id = None
    manifest = apply_decision(batch.manifest, decision)
    manifest["supersedes_receipt_id"] = supersedes_receipt_id
    manifest["outbox_version"] = batch.manifest.get("outbox_version") or batch.version
    if "correction" in batch.manifest or decision.is_correction:
        manifest["correction"] = consumer_correction(batch, decision, acknowledged)
    return batch.with_manifest(manifest)


def _outbox_version_with(batch_root: Path, content_sha256: str | None) -> Path | None:
    """The sibling version folder (``<day>/v<n>/``) of an outbox batch whose content is ``content_sha256``."""
    if not content_sha256 or not _VERSION_DIR_RE.fullmatch(batch_root.name):
        return None
    for folder in sorted(batch_root.parent.iterdir()):
        if folder != batch_root and _VERSION_DIR_RE.fullmatch(folder.name) and (folder / MANIFEST_NAME).is_file():
            manifest = read_manifest(folder)
            if manifest and manifest.get("content_sha256") == content_sha256:
                return folder
    return None


def consumer_correction(batch: Batch, decision: VersionDecision, acknowledged: dict[int, Receipt]) -> dict | None:
    """The ``correction`` block for the consumer's chain: None for its v1; else what changed against the version
    the consumer acknowledged. The outbox's own block is reused when it was computed against that same content,
    else it is recomputed against the outbox version holding that content (the outbox keeps every version)."""
    if not decision.is_correction or decision.supersedes is None:
        return None
    held = acknowledged.get(decision.supersedes)
    held_sha = held.detail.get("content_sha256") if held else None
    own = batch.manifest.get("correction")
    if isinstance(own, dict) and held_sha and (own.get("against") or {}).get("content_sha256") == held_sha:
        return render(own, decision.supersedes, titles_of(batch.root))
    folder = _outbox_version_with(batch.root, held_sha)
    previous = read_manifest(folder) if folder is not None else None
    if folder is not None and previous is not None:
        return describe_correction(folder, previous, batch.root, batch.manifest, decision.supersedes)
    # the version the consumer holds is no longer in the outbox (or predates version folders)
    return render({"against": {"content_sha256": held_sha}, "rows": None, "triggers": []}, decision.supersedes)


__all__ = [
    "RECEIPTS_DIRNAME",
    "VersionDecision",
    "apply_decision",
    "consumer_correction",
    "decide_for_batch",
    "decide_version",
    "latest_receipt",
    "published_versions",
    "receipt_path",
    "receipts_dir_for",
    "stamp_for_consumer",
    "write_receipt",
]
