"""Version decisions from stored receipts: first publish, unchanged rerun, correction."""

from __future__ import annotations

from pathlib import Path

from exports.publishing.batch import Receipt
from exports.publishing.versions import (
    VersionDecision,
    apply_decision,
    decide_version,
    latest_receipt,
    receipt_path,
    receipts_dir_for,
    write_receipt,
)

from . import CONSUMER, DATASET

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
