"""HTTP push against the reference receiver over real loopback HTTP: auth, retries, idempotency,
corrections, contract validation and chunked upload. No HTTP mocks."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import requests

from exports.publishing.batch import Batch
from exports.publishing.http_push import HttpPushPublisher, NeuronAuth, PublishFailed, PublishRejected
from exports.publishing.signing import HEADER_SIGNATURE, sign_request
from exports.publishing.versions import VersionDecision, decide_for_batch, receipts_dir_for
from exports.receiver import RunningReceiver, run_in_thread

from . import (
    ACCESS_KEY,
    CONSUMER,
    DATASET,
    KEYS,
    SECRET_KEY,
    device_health_frame,
    write_batch,
    write_contracts,
)

PARTITION = "2026-11-21"


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    with run_in_thread(tmp_path / "store", write_contracts(tmp_path / "contracts"), KEYS) as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_publisher(outbox: Path, sleeps: list[float]) -> Callable[..., HttpPushPublisher]:
    def make(base_url: str, **kwargs) -> HttpPushPublisher:
        kwargs.setdefault("sleep", sleeps.append)
        kwargs.setdefault("timeout", 5)
        return HttpPushPublisher(
            base_url, ACCESS_KEY, SECRET_KEY, receipts_dir_for(outbox, CONSUMER), **kwargs
        )

    return make


def _receipt_files(outbox: Path) -> list[Path]:
    return sorted((outbox / CONSUMER / "_receipts").rglob("*.json"))


def _stored_versions(receiver: RunningReceiver) -> list[str]:
    return sorted(p.name for p in (receiver.store.root / CONSUMER / DATASET / PARTITION).glob("v*"))


def _list(receiver: RunningReceiver, **params: str) -> list[dict]:
    response = requests.get(
        f"{receiver.base_url}/v1/batches", params=params, auth=NeuronAuth(ACCESS_KEY, SECRET_KEY)
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _signed_post(
    url: str, body: bytes, headers: dict[str, str] | None = None, **sign_kw
) -> requests.Response:
    signed = sign_request("POST", url, body, access_key=ACCESS_KEY, secret_key=SECRET_KEY, **sign_kw)
    return requests.post(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {}), **signed}
    )


def _init_body(batch: Batch) -> bytes:
    return json.dumps({"contract_id": batch.contract_id, "manifest": batch.manifest}).encode()


# ----------------------------------------------------------------------------------------- happy path


def test_publish_stores_the_batch_and_writes_the_receipt(receiver, make_publisher, outbox) -> None:
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    receipt = make_publisher(receiver.base_url).publish(Batch.from_dir(folder))

    assert receipt.status == "committed" and receipt.version == 1 and receipt.publisher == "http_push"
    assert receipt.detail["content_sha256"] == Batch.from_dir(folder).content_sha256
    stored = receiver.store.root / CONSUMER / DATASET / PARTITION / "v1"
    for name in ("data.parquet", "data.csv"):
        assert (stored / name).read_bytes() == (folder / name).read_bytes()
    assert json.loads((stored / "receipt.json").read_text())["receipt_id"] == receipt.receipt_id
    assert _receipt_files(outbox) == [outbox / CONSUMER / "_receipts" / DATASET / PARTITION / "v1.json"]
    assert [item["version"] for item in _list(receiver, consumer=CONSUMER, partition=PARTITION)] == [1]


# ----------------------------------------------------------------------------------------- authentication


def test_tampered_signature_gets_401_and_no_receipt_is_stored(receiver, outbox) -> None:
    batch = Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION))
    auth = NeuronAuth(ACCESS_KEY, SECRET_KEY)
    init = _signed_post(
        f"{receiver.base_url}/v1/batches", _init_body(batch), {"Idempotency-Key": batch.idempotency_key}
    )
    batch_id = init.json()["batch_id"]
    for f in batch.files:
        url = f"{receiver.base_url}/v1/batches/{batch_id}/files/{f.path}/chunks/0"
        assert requests.put(url, data=batch.file_path(f.path).read_bytes(), auth=auth).status_code == 200

    commit_url = f"{receiver.base_url}/v1/batches/{batch_id}/commit"
    body = json.dumps({"files": [{"path": f.path, "chunks": 1} for f in batch.files]}).encode()
    headers = sign_request("POST", commit_url, body, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    headers[HEADER_SIGNATURE] = headers[HEADER_SIGNATURE][::-1]
    response = requests.post(commit_url, data=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "bad_signature"
    assert "receipt_id" not in response.json()
    assert _stored_versions(receiver) == []
    assert not list(receiver.store.root.glob("_idempotency/*.json"))
    # The same commit, honestly signed, still works: the 401 changed nothing.
    assert _signed_post(commit_url, body).status_code == 201


def test_wrong_secret_is_rejected_without_retry_and_without_receipt(receiver, outbox, sleeps) -> None:
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    publisher = HttpPushPublisher(
        receiver.base_url,
        ACCESS_KEY,
        "not-the-secret",
        receipts_dir_for(outbox, CONSUMER),
        sleep=sleeps.append,
    )
    with pytest.raises(PublishRejected) as exc:
        publisher.publish(Batch.from_dir(folder))
    assert exc.value.status == 401 and exc.value.error == "bad_signature"
    assert sleeps == [] and len(receiver.server.requests) == 1
    assert _receipt_files(outbox) == [] and _stored_versions(receiver) == []


def test_unknown_key_unsigned_and_stale_requests_get_401(receiver, outbox) -> None:
    url = f"{receiver.base_url}/v1/batches"
    assert requests.get(url).status_code == 401
    assert requests.get(url).json()["error"] == "missing_signature"
    assert requests.get(url, auth=NeuronAuth("who", "ever")).json()["error"] == "unknown_key"
    stale = sign_request(
        "GET",
        url,
        b"",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        now=datetime.now(UTC) - timedelta(minutes=6),
    )
    response = requests.get(url, headers=stale)
    assert response.status_code == 401 and response.json()["error"] == "stale_date"
    assert response.headers["WWW-Authenticate"].startswith("NeuronHMAC")


def test_replayed_request_with_the_same_nonce_is_rejected(receiver, outbox) -> None:
    batch = Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION))
    url = f"{receiver.base_url}/v1/batches"
    body = _init_body(batch)
    signed = sign_request("POST", url, body, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    headers = {"Content-Type": "application/json", "Idempotency-Key": batch.idempotency_key, **signed}

    first = requests.post(url, data=body, headers=headers)
    replay = requests.post(url, data=body, headers=headers)

    assert first.status_code == 201
    assert replay.status_code == 409 and replay.json()["error"] == "replayed_nonce"


# ----------------------------------------------------------------------------------------- retries


def test_receiver_down_retries_with_backoff_then_publish_failed(make_publisher, outbox, sleeps) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and now has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)

    with pytest.raises(PublishFailed) as exc:
        make_publisher(f"http://127.0.0.1:{port}").publish(Batch.from_dir(folder))

    assert exc.value.attempts == 5 and "ConnectionError" in exc.value.last_error
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert _receipt_files(outbox) == []


def test_two_500s_then_success_stores_exactly_one_batch(receiver, make_publisher, outbox, sleeps) -> None:
    receiver.inject_failures(2)
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)

    receipt = make_publisher(receiver.base_url).publish(Batch.from_dir(folder))

    assert [r.status for r in receiver.server.requests[:3]] == [500, 500, 201]
    assert sleeps == [0.5, 1.0]
    assert _stored_versions(receiver) == ["v1"]
    assert len(list(receiver.store.root.glob("_idempotency/*.json"))) == 1
    assert [item["receipt_id"] for item in _list(receiver)] == [receipt.receipt_id]


def test_commit_whose_answer_is_lost_is_retried_without_a_duplicate(receiver, make_publisher, outbox) -> None:
    receiver.inject_failures(2, after_handling=True, path_contains="/commit")
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)

    receipt = make_publisher(receiver.base_url).publish(Batch.from_dir(folder))

    commits = [r.status for r in receiver.server.requests if r.path.endswith("/commit")]
    assert commits == [500, 500, 200]  # committed on the first try; the retries get the original receipt
    assert _stored_versions(receiver) == ["v1"]
    assert (
        json.loads((receiver.store.root / receipt.detail["location"] / "receipt.json").read_text())
        == receipt.to_dict()
    )


def test_500s_on_every_attempt_end_in_publish_failed_without_receipt(
    receiver, make_publisher, outbox
) -> None:
    receiver.inject_failures(100, path_contains="/chunks/")
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    with pytest.raises(PublishFailed, match="HTTP 500"):
        make_publisher(receiver.base_url, max_retries=2).publish(Batch.from_dir(folder))
    assert _receipt_files(outbox) == [] and _stored_versions(receiver) == []


def test_every_attempt_is_signed_afresh(receiver, make_publisher, outbox) -> None:
    receiver.inject_failures(3)
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    make_publisher(receiver.base_url).publish(Batch.from_dir(folder))
    # A reused nonce would have been answered 409 and not retried.
    assert all(r.status in (200, 201, 500) for r in receiver.server.requests)


# ----------------------------------------------------------------------------------------- versions


def test_rerunning_a_published_partition_stores_nothing_new(receiver, make_publisher, outbox) -> None:
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    publisher = make_publisher(receiver.base_url)
    first = publisher.publish(Batch.from_dir(folder))
    stored_at = (receiver.store.root / first.detail["location"] / "data.parquet").stat().st_mtime_ns

    # The exporter reruns the day and writes identical content: nothing new to publish.
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    assert decide_for_batch(receipts_dir_for(outbox, CONSUMER), Batch.from_dir(folder)) is None

    # Even a forced re-push of the same idempotency key returns the original receipt and uploads nothing.
    before = len(receiver.server.requests)
    again = publisher.publish(Batch.from_dir(folder))
    assert again == first
    assert [(r.method, r.path, r.status) for r in receiver.server.requests[before:]] == [
        ("POST", "/v1/batches", 200)
    ]
    assert _stored_versions(receiver) == ["v1"]
    assert (receiver.store.root / first.detail["location"] / "data.parquet").stat().st_mtime_ns == stored_at


def test_changed_partition_arrives_as_version_2_marked_as_correction(
    receiver, make_publisher, outbox
) -> None:
    publisher = make_publisher(receiver.base_url)
    receipts = receipts_dir_for(outbox, CONSUMER)
    v1 = publisher.publish(
        Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION))
    )

    changed = device_health_frame(PARTITION, seed=3)  # late device reports changed the counts
    probe = Batch.from_dir(write_batch(outbox, changed, partition=PARTITION), verify=False)
    decision = decide_for_batch(receipts, probe)
    assert decision == VersionDecision(version=2, is_correction=True, supersedes=1)
    v2 = publisher.publish(
        Batch.from_dir(write_batch(outbox, changed, partition=PARTITION, version=decision.version))
    )

    assert (v2.version, v2.detail["is_correction"], v2.detail["supersedes"]) == (2, True, 1)
    assert v2.detail["supersedes_receipt_id"] == v1.receipt_id
    assert _stored_versions(receiver) == ["v1", "v2"]
    listed = _list(receiver, consumer=CONSUMER, dataset=DATASET, partition=PARTITION)
    assert [(i["version"], i["superseded_by"], i["supersedes"]) for i in listed] == [
        (1, 2, None),
        (2, None, 1),
    ]
    assert len(_receipt_files(outbox)) == 2
    assert decide_for_batch(receipts, Batch.from_dir(outbox / CONSUMER / DATASET / PARTITION)) is None


def test_same_version_with_different_content_is_an_idempotency_conflict(
    receiver, make_publisher, outbox
) -> None:
    publisher = make_publisher(receiver.base_url)
    publisher.publish(
        Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION))
    )
    folder = write_batch(outbox, device_health_frame(PARTITION, seed=1), partition=PARTITION)  # still says v1
    with pytest.raises(PublishRejected) as exc:
        publisher.publish(Batch.from_dir(folder))
    assert exc.value.status == 409 and exc.value.error == "idempotency_conflict"
    assert _stored_versions(receiver) == ["v1"]


# ----------------------------------------------------------------------------------------- contract


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f.drop("online_rate"), "missing column 'online_rate'"),
        (
            lambda f: f.with_columns(pl.col("devices_total").cast(pl.Float64)),
            "'devices_total' has type DOUBLE",
        ),
        (lambda f: f.with_columns(pl.col("stat_date").cast(pl.String)), "'stat_date' has type VARCHAR"),
        (
            lambda f: f.with_columns(resident_phone=pl.lit("13800000000")),
            "'resident_phone' is not in contract",
        ),
        (
            lambda f: f.with_columns(
                pl.when(pl.int_range(pl.len()) == 0)
                .then(None)
                .otherwise(pl.col("device_type"))
                .alias("device_type")
            ),
            "non-nullable column 'device_type' has 1 null",
        ),
    ],
    ids=["missing_column", "wrong_type_bigint", "wrong_type_date", "extra_column", "null_in_required"],
)
def test_batch_violating_the_contract_is_422_and_publish_rejected(
    receiver, make_publisher, outbox, sleeps, mutate, reason
) -> None:
    folder = write_batch(outbox, mutate(device_health_frame(PARTITION)), partition=PARTITION)

    with pytest.raises(PublishRejected) as exc:
        make_publisher(receiver.base_url).publish(Batch.from_dir(folder))

    assert exc.value.status == 422 and exc.value.error == "validation_failed"
    assert any(reason in r for r in exc.value.reasons), exc.value.reasons
    assert reason in str(exc.value)
    assert sleeps == []  # 4xx is never retried
    assert _receipt_files(outbox) == [] and _stored_versions(receiver) == []


def test_row_count_that_disagrees_with_the_manifest_is_422(receiver, make_publisher, outbox) -> None:
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["row_count"] = 21
    for f in manifest["files"]:
        f["rows"] = 21
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PublishRejected) as exc:
        make_publisher(receiver.base_url).publish(Batch.from_dir(folder))
    assert "data.parquet: 20 rows, manifest says 21" in exc.value.reasons
    assert "data.csv: 20 rows, manifest says 21" in exc.value.reasons


def test_unknown_contract_is_rejected_at_init_before_any_upload(receiver, make_publisher, outbox) -> None:
    folder = write_batch(
        outbox, device_health_frame(PARTITION), partition=PARTITION, dataset="gate_flow_hourly"
    )
    with pytest.raises(PublishRejected) as exc:
        make_publisher(receiver.base_url).publish(Batch.from_dir(folder))
    assert exc.value.status == 422 and exc.value.error == "unknown_contract"
    assert [r.path for r in receiver.server.requests] == ["/v1/batches"]


# ----------------------------------------------------------------------------------------- chunking


def test_chunked_upload_of_files_bigger_than_a_chunk_reassembles_byte_identically(
    receiver, make_publisher, outbox
) -> None:
    chunk = 4 * 1024
    frame = device_health_frame(PARTITION, communities=2000)  # 10k rows
    extra = {"exact.bin": bytes(range(256)) * (3 * chunk // 256), "empty.txt": b""}
    folder = write_batch(outbox, frame, partition=PARTITION, extra_files=extra)
    assert (folder / "data.parquet").stat().st_size > 2 * chunk and (
        folder / "data.csv"
    ).stat().st_size > 2 * chunk

    receipt = make_publisher(receiver.base_url, chunk_bytes=chunk).publish(Batch.from_dir(folder))

    stored = receiver.store.root / receipt.detail["location"]
    for name in ("data.parquet", "data.csv", "exact.bin", "empty.txt"):
        assert (stored / name).read_bytes() == (folder / name).read_bytes(), name
    puts = [r.path.rsplit("/files/", 1)[1] for r in receiver.server.requests if r.method == "PUT"]
    assert sum(p.startswith("exact.bin/") for p in puts) == 3  # an exact multiple sends no empty tail chunk
    assert [p for p in puts if p.startswith("empty.txt/")] == ["empty.txt/chunks/0"]
    parquet_chunks = -(-(folder / "data.parquet").stat().st_size // chunk)
    assert sum(p.startswith("data.parquet/") for p in puts) == parquet_chunks


def test_publisher_respects_the_receivers_advertised_chunk_limit(tmp_path, make_publisher, outbox) -> None:
    with run_in_thread(
        tmp_path / "store", write_contracts(tmp_path / "contracts"), KEYS, max_chunk_bytes=4096
    ) as rx:
        folder = write_batch(outbox, device_health_frame(PARTITION, communities=500), partition=PARTITION)
        make_publisher(rx.base_url).publish(Batch.from_dir(folder))  # asks for 4 MiB chunks
        puts = [r for r in rx.server.requests if r.method == "PUT"]
        assert len(puts) > 2 and all(r.status == 200 for r in puts)
