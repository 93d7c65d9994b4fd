"""Version decisions from stored receipts: first publish, unchanged rerun, correction; and the consumer's
version chain stamped onto an outbox batch before it is pushed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exports.publishing.batch import Batch, BatchError, Receipt, idempotency_key
from exports.publishing.versions import (
    VersionDecision,
    apply_decision,
    decide_version,
    latest_receipt,
    receipt_path,
    receipts_dir_for,
    stamp_for_consumer,
    write_receipt,
)

from . import CONSUMER, DATASET, device_health_frame, write_batch

PARTITION = "2026-11-21"


def _receipt(version: int, content_sha256: str) -> Receipt:
    return Receipt(
        receipt_id=f"r{version}",
        consumer=CONSUMER,
        dataset=DATASET,
        partition=PARTITION,
        version=version,
        idempotency_key=f"k{version}",
        status="committed",
        publisher="http_push",
        received_at="2026-11-22T01:00:00Z",
        detail={"content_sha256": content_sha256},
    )


def test_receipts_live_under_outbox_consumer_receipts(tmp_path: Path) -> None:
    receipts = receipts_dir_for(tmp_path, CONSUMER)
    assert receipt_path(receipts, DATASET, PARTITION, 3) == (
        tmp_path / CONSUMER / "_receipts" / DATASET / PARTITION / "v3.json"
    )


def test_first_publish_is_version_1(tmp_path: Path) -> None:
    assert decide_version(tmp_path, DATASET, PARTITION, "aaa") == VersionDecision(1, False, None)


def test_unchanged_content_needs_no_new_version(tmp_path: Path) -> None:
    write_receipt(tmp_path, _receipt(1, "aaa"))
    assert decide_version(tmp_path, DATASET, PARTITION, "aaa") is None


def test_changed_content_is_a_correction_of_the_latest_version(tmp_path: Path) -> None:
    write_receipt(tmp_path, _receipt(1, "aaa"))
    write_receipt(tmp_path, _receipt(2, "bbb"))
    assert latest_receipt(tmp_path, DATASET, PARTITION).version == 2
    assert decide_version(tmp_path, DATASET, PARTITION, "bbb") is None
    # Going back to v1's content is still a change relative to what the district holds now.
    assert decide_version(tmp_path, DATASET, PARTITION, "aaa") == VersionDecision(3, True, 2)


def test_latest_version_is_numeric_not_lexical(tmp_path: Path) -> None:
    for version in (1, 2, 10):
        write_receipt(tmp_path, _receipt(version, f"c{version}"))
    assert decide_version(tmp_path, DATASET, PARTITION, "new") == VersionDecision(11, True, 10)


def test_other_partitions_do_not_count(tmp_path: Path) -> None:
    write_receipt(tmp_path, _receipt(1, "aaa"))
    assert decide_version(tmp_path, DATASET, "2026-11-22", "aaa") == VersionDecision(1, False, None)


def test_apply_decision_stamps_the_manifest() -> None:
    stamped = apply_decision(
        {"version": 1, "is_correction": False, "supersedes": None, "x": 1}, VersionDecision(2, True, 1)
    )
    assert stamped == {"version": 2, "is_correction": True, "supersedes": 1, "x": 1}


# ----------------------------------------------------------------------------------------- consumer chain


_STAMPED = {"version", "is_correction", "supersedes", "supersedes_receipt_id", "outbox_version"}


def _outbox_batch(tmp_path: Path, version: int, seed: int = 0) -> Batch:
    return Batch.from_dir(
        write_batch(
            tmp_path / "outbox",
            device_health_frame(PARTITION, seed=seed),
            partition=PARTITION,
            version=version,
        )
    )


def _version_fields(batch: Batch) -> tuple:
    m = batch.manifest
    return m["version"], m["is_correction"], m["supersedes"], m["supersedes_receipt_id"], m["outbox_version"]


def test_nothing_acknowledged_is_pushed_as_v1_whatever_the_outbox_version(tmp_path: Path) -> None:
    outbox_v2 = _outbox_batch(tmp_path, version=2)  # the outbox's v1 never reached the consumer
    pushed = stamp_for_consumer(tmp_path / "receipts", outbox_v2)
    assert _version_fields(pushed) == (1, False, None, None, 2)
    assert pushed.idempotency_key == idempotency_key(CONSUMER, DATASET, PARTITION, 1)
    assert pushed.files == outbox_v2.files and pushed.root == outbox_v2.root
    assert {k: v for k, v in pushed.manifest.items() if k not in _STAMPED} == {
        k: v for k, v in outbox_v2.manifest.items() if k not in _STAMPED
    }
    assert json.loads((outbox_v2.root / "manifest.json").read_text())["version"] == 2  # outbox untouched


def test_new_content_supersedes_the_last_acknowledged_version_by_receipt(tmp_path: Path) -> None:
    receipts = tmp_path / "receipts"
    write_receipt(receipts, _receipt(1, "aaa"))
    write_receipt(receipts, _receipt(2, "bbb"))
    pushed = stamp_for_consumer(receipts, _outbox_batch(tmp_path, version=5))
    assert _version_fields(pushed) == (3, True, 2, "r2", 5)


def test_acknowledged_content_is_pushed_again_under_its_acknowledged_version(tmp_path: Path) -> None:
    receipts = tmp_path / "receipts"
    batch = _outbox_batch(tmp_path, version=4)
    write_receipt(receipts, _receipt(1, "aaa"))
    write_receipt(receipts, _receipt(2, batch.content_sha256))
    assert _version_fields(stamp_for_consumer(receipts, batch)) == (2, True, 1, "r1", 4)
    write_receipt(receipts, _receipt(3, "ccc"))  # the consumer moved on: the old content is a change again
    assert _version_fields(stamp_for_consumer(receipts, batch)) == (4, True, 3, "r3", 4)


def test_stamping_twice_changes_nothing(tmp_path: Path) -> None:
    receipts = tmp_path / "receipts"
    write_receipt(receipts, _receipt(1, "aaa"))
    once = stamp_for_consumer(receipts, _outbox_batch(tmp_path, version=3))
    assert stamp_for_consumer(receipts, once).manifest == once.manifest


def test_a_restamped_manifest_must_stay_valid_and_list_the_same_files(tmp_path: Path) -> None:
    batch = _outbox_batch(tmp_path, version=1)
    with pytest.raises(BatchError, match="same files"):
        batch.with_manifest({**batch.manifest, "files": batch.manifest["files"][:1]})
    with pytest.raises(BatchError, match="version 1 cannot"):
        batch.with_manifest({**batch.manifest, "supersedes_receipt_id": "r0"})
    with pytest.raises(BatchError, match="supersedes_receipt_id"):
        batch.with_manifest(
            {
                **batch.manifest,
                "version": 2,
                "is_correction": True,
                "supersedes": 1,
                "supersedes_receipt_id": "../etc",
            }
        )
