"""Batch folders and receipts: manifest rules, sha256 verification, receipt JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exports.publishing.batch import (
    Batch,
    BatchError,
    BatchIntegrityError,
    Publisher,
    Receipt,
    idempotency_key,
    validate_manifest,
)
from exports.publishing.http_push import HttpPushPublisher

from . import CONSUMER, DATASET, device_health_frame, write_batch

PARTITION = "2026-11-21"


@pytest.fixture
def batch_dir(tmp_path: Path) -> Path:
    return write_batch(tmp_path / "outbox", device_health_frame(PARTITION), partition=PARTITION)


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def test_batch_loads_and_exposes_manifest_fields(batch_dir: Path) -> None:
    batch = Batch.from_dir(batch_dir)
    assert (batch.consumer, batch.dataset, batch.partition, batch.version) == (
        CONSUMER,
        DATASET,
        PARTITION,
        1,
    )
    assert [f.path for f in batch.files] == ["data.parquet", "data.csv"]
    assert batch.row_count == 20 and not batch.is_correction and batch.supersedes is None


def test_idempotency_key_is_sha256_of_consumer_dataset_partition_version(batch_dir: Path) -> None:
    import hashlib

    expected = hashlib.sha256(f"{CONSUMER}/{DATASET}/{PARTITION}/v1".encode()).hexdigest()
    assert (
        Batch.from_dir(batch_dir).idempotency_key
        == expected
        == idempotency_key(CONSUMER, DATASET, PARTITION, 1)
    )
    assert idempotency_key(CONSUMER, DATASET, PARTITION, 2) != expected


def test_changed_file_fails_verification(batch_dir: Path) -> None:
    with (batch_dir / "data.csv").open("ab") as fh:
        fh.write(b"PT9999,extra\n")
    with pytest.raises(BatchIntegrityError, match="data.csv"):
        Batch.from_dir(batch_dir)
    Batch.from_dir(batch_dir, verify=False)  # loading without verification still works


def test_missing_file_and_missing_manifest_are_reported(batch_dir: Path) -> None:
    (batch_dir / "data.parquet").unlink()
    with pytest.raises(BatchIntegrityError, match="data.parquet: missing"):
        Batch.from_dir(batch_dir)
    (batch_dir / "manifest.json").unlink()
    with pytest.raises(BatchError, match="no manifest.json"):
        Batch.from_dir(batch_dir)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"partition": "2026-02-30"}, "not a calendar date"),
        ({"partition": "20261121"}, "yyyy-mm-dd"),
        ({"consumer": "../etc"}, "consumer must match"),
        ({"version": 2}, "must have is_correction=true and supersedes=1"),
        ({"version": 1, "is_correction": True}, "version 1 cannot be a correction"),
        ({"version": 0}, "version must be an integer >= 1"),
        ({"row_count": -1}, "row_count"),
        ({"files": []}, "files must be a non-empty list"),
        ({"supersedes_receipt_id": "r1"}, "version 1 cannot be a correction or supersede anything"),
        ({"supersedes_receipt_id": "a/b"}, "supersedes_receipt_id must be null or match"),
        ({"supersedes_receipt_id": 7}, "supersedes_receipt_id must be null or match"),
        ({"outbox_version": 0}, "outbox_version must be null or an integer >= 1"),
    ],
)
def test_manifest_rules(batch_dir: Path, change: dict, message: str) -> None:
    problems = validate_manifest({**_manifest(batch_dir), **change})
    assert any(message in p for p in problems), problems


def test_manifest_file_names_must_be_plain(batch_dir: Path) -> None:
    manifest = _manifest(batch_dir)
    manifest["files"][0]["path"] = "../../secret.parquet"
    assert any("plain file name" in p for p in validate_manifest(manifest))
    manifest["files"][0]["path"] = "data.csv"
    assert any("more than once" in p for p in validate_manifest(manifest))


def test_receipt_json_round_trip() -> None:
    receipt = Receipt(
        receipt_id="r1",
        consumer=CONSUMER,
        dataset=DATASET,
        partition=PARTITION,
        version=2,
        idempotency_key="k" * 64,
        status="committed",
        publisher="http_push",
        received_at="2026-11-22T01:00:00.000Z",
        detail={"content_sha256": "abc", "supersedes": 1, "note": "智联普陀"},
    )
    assert Receipt.from_json(receipt.to_json()) == receipt
    assert "智联普陀" in receipt.to_json()
    with pytest.raises(ValueError, match="missing"):
        Receipt.from_dict({"receipt_id": "r1"})


def test_http_push_publisher_satisfies_the_publisher_protocol(tmp_path: Path) -> None:
    publisher = HttpPushPublisher("https://rx.example", "ak", "sk", tmp_path)
    assert isinstance(publisher, Publisher) and publisher.name == "http_push"
    assert "sk" not in repr(publisher)


def test_http_push_refuses_plain_http_to_remote_hosts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        HttpPushPublisher("http://putuo.example.gov.cn", "ak", "sk", tmp_path)
    HttpPushPublisher("http://127.0.0.1:9", "ak", "sk", tmp_path)
    HttpPushPublisher("http://putuo.example.gov.cn", "ak", "sk", tmp_path, allow_http=True)
