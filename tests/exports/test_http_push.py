"""HTTP push against the reference receiver over real loopback HTTP: auth, retries, idempotency,
corrections, contract validation and chunked upload. No HTTP mocks."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import requests

from exports.publishing.batch import Batch, Receipt, idempotency_key
from exports.publishing.http_push import HttpPushPublisher, NeuronAuth, PublishFailed, PublishRejected
from exports.publishing.signing import HEADER_SIGNATURE, sign_request
from exports.publishing.versions import VersionDecision, decide_for_batch, receipts_dir_for
from exports.receiver import ApiError, ReceiverStore, RunningReceiver, run_in_thread

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
    """A client re-sending an acknowledged version number with other content gets 409. (The publisher itself
    never does that: new content becomes the next version of the consumer's chain, see below.)"""
    make_publisher(receiver.base_url).publish(
        Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION))
    )
    changed = Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION, seed=1), partition=PARTITION))
    response = _signed_post(
        f"{receiver.base_url}/v1/batches", _init_body(changed), {"Idempotency-Key": changed.idempotency_key}
    )
    assert response.status_code == 409 and response.json()["error"] == "idempotency_conflict"
    assert _stored_versions(receiver) == ["v1"]


def test_changed_content_is_the_next_consumer_version_whatever_the_outbox_says(
    receiver, make_publisher, outbox
) -> None:
    publisher = make_publisher(receiver.base_url)
    v1 = publisher.publish(
        Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION))
    )
    # The outbox folder still says v1 (e.g. rebuilt from scratch), but the consumer acknowledged v1 already.
    folder = write_batch(outbox, device_health_frame(PARTITION, seed=1), partition=PARTITION)
    v2 = publisher.publish(Batch.from_dir(folder))
    assert (v2.version, v2.detail["supersedes"], v2.detail["supersedes_receipt_id"]) == (2, 1, v1.receipt_id)
    assert v2.idempotency_key == idempotency_key(CONSUMER, DATASET, PARTITION, 2)
    assert _stored_versions(receiver) == ["v1", "v2"]
    assert json.loads((folder / "manifest.json").read_text())["version"] == 1  # the outbox is not touched


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


# ----------------------------------------------------------------------------------------- version chain
# Versions follow what the consumer acknowledged (receipts), not the outbox's own numbering.


def test_failed_v1_then_late_data_reaches_the_consumer_as_v1_not_as_a_correction(
    receiver, make_publisher, outbox
) -> None:
    publisher = make_publisher(receiver.base_url, max_retries=1)
    receiver.inject_failures(2, path_contains="/commit")  # the chunks arrive, the commit never succeeds
    with pytest.raises(PublishFailed):
        publisher.publish(
            Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION))
        )
    assert _stored_versions(receiver) == [] and _receipt_files(outbox) == []

    # Late data: the outbox moves on to its v2, a correction of an outbox v1 the district never received.
    outbox_v2 = Batch.from_dir(
        write_batch(outbox, device_health_frame(PARTITION, seed=3), partition=PARTITION, version=2)
    )
    assert (outbox_v2.version, outbox_v2.is_correction, outbox_v2.supersedes) == (2, True, 1)
    # Sent as it is (what the publisher used to do), it is refused: it supersedes a version the receiver lacks.
    as_is = _signed_post(
        f"{receiver.base_url}/v1/batches",
        _init_body(outbox_v2),
        {"Idempotency-Key": outbox_v2.idempotency_key},
    )
    assert as_is.status_code == 409 and as_is.json()["error"] == "version_gap"
    assert "held versions: []" in as_is.json()["reasons"]

    before = len(receiver.server.requests)
    v1 = publisher.publish(outbox_v2)

    assert (v1.version, v1.detail["is_correction"], v1.detail["supersedes"]) == (1, False, None)
    assert v1.detail["supersedes_receipt_id"] is None
    assert v1.detail["content_sha256"] == outbox_v2.content_sha256
    assert v1.idempotency_key == idempotency_key(CONSUMER, DATASET, PARTITION, 1)
    # Same key as the abandoned upload, other manifest: a fresh session, the stale one is dropped.
    assert receiver.server.requests[before].status == 201
    assert _stored_versions(receiver) == ["v1"]
    stored = receiver.store.root / v1.detail["location"]
    manifest = json.loads((stored / "manifest.json").read_text())
    assert (manifest["version"], manifest["is_correction"], manifest["supersedes"]) == (1, False, None)
    assert manifest["outbox_version"] == 2 and manifest["content_sha256"] == outbox_v2.content_sha256
    for name in ("data.parquet", "data.csv"):
        assert (stored / name).read_bytes() == outbox_v2.file_path(name).read_bytes()
    assert json.loads((stored / "receipt.json").read_text()) == v1.to_dict()
    assert [p.relative_to(outbox).as_posix() for p in _receipt_files(outbox)] == [
        f"{CONSUMER}/_receipts/{DATASET}/{PARTITION}/v1.json"
    ]

    # More late data: outbox v3 is the consumer's v2, superseding the v1 it acknowledged, by receipt.
    outbox_v3 = Batch.from_dir(
        write_batch(outbox, device_health_frame(PARTITION, seed=4), partition=PARTITION, version=3)
    )
    v2 = publisher.publish(outbox_v3)
    assert (v2.version, v2.detail["is_correction"], v2.detail["supersedes"]) == (2, True, 1)
    assert v2.detail["supersedes_receipt_id"] == v1.receipt_id
    listed = _list(receiver, consumer=CONSUMER, dataset=DATASET, partition=PARTITION)
    assert [(i["version"], i["supersedes"], i["superseded_by"], i["receipt_id"]) for i in listed] == [
        (1, None, 2, v1.receipt_id),
        (2, 1, None, v2.receipt_id),
    ]
    # Re-running with outbox v3 again: already acknowledged, nothing uploaded, the same receipt.
    before = len(receiver.server.requests)
    assert publisher.publish(Batch.from_dir(outbox_v3.root)) == v2
    assert [(r.method, r.status) for r in receiver.server.requests[before:]] == [("POST", 200)]


def test_a_chain_the_receiver_does_not_hold_is_rejected_without_retry(
    tmp_path, receiver, make_publisher, outbox, sleeps
) -> None:
    """Local receipts say v1 was acknowledged, but this receiver never stored it (e.g. the district rebuilt
    its store): the correction is refused as a gap instead of being stored superseding nothing."""
    with run_in_thread(tmp_path / "old_store", write_contracts(tmp_path / "contracts2"), KEYS) as old:
        make_publisher(old.base_url).publish(
            Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION))
        )
    changed = write_batch(outbox, device_health_frame(PARTITION, seed=5), partition=PARTITION, version=2)
    with pytest.raises(PublishRejected) as exc:
        make_publisher(receiver.base_url).publish(Batch.from_dir(changed))
    assert exc.value.status == 409 and exc.value.error == "version_gap"
    assert sleeps == [] and _stored_versions(receiver) == []
    assert [p.name for p in _receipt_files(outbox)] == ["v1.json"]


# ----------------------------------------------------------------------------------------- concurrent pushes


class _GatedSession(requests.Session):
    """A real session that holds the requests ``hold`` selects until ``gate`` is set, to force one
    interleaving of two publishers (nothing is mocked: every request goes over loopback)."""

    def __init__(self, hold: Callable[[str, str], bool]) -> None:
        super().__init__()
        self.hold = hold
        self.gate, self.held = threading.Event(), threading.Event()

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        if self.hold(method, url) and not self.gate.is_set():
            self.held.set()
            assert self.gate.wait(30), "gate never opened"
        return super().request(method, url, *args, **kwargs)


def _idempotency_files(receiver: RunningReceiver) -> list[Path]:
    return list(receiver.store.root.glob("_idempotency/*.json"))


def test_chunk_answered_batch_committed_returns_the_winners_receipt(receiver, make_publisher, outbox) -> None:
    """Two runs of the same day push at once: the later one is still uploading when the other commits."""
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    late_session = _GatedSession(lambda method, url: method == "PUT")
    late = make_publisher(receiver.base_url, session=late_session)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(late.publish, Batch.from_dir(folder))
        assert late_session.held.wait(30)  # it opened the session and is about to upload its first chunk
        winner = make_publisher(receiver.base_url).publish(Batch.from_dir(folder))  # resumes it and commits
        late_session.gate.set()
        assert pending.result(timeout=30) == winner

    *_, late_put, refetch = receiver.server.requests
    assert (late_put.method, late_put.status) == ("PUT", 409)  # batch_committed: the other push won
    assert (refetch.method, refetch.path, refetch.status) == ("POST", "/v1/batches", 200)  # its receipt
    assert sum(r.path.endswith("/commit") for r in receiver.server.requests) == 1
    assert _stored_versions(receiver) == ["v1"] and len(_idempotency_files(receiver)) == 1
    assert len(_receipt_files(outbox)) == 1
    assert json.loads(_receipt_files(outbox)[0].read_text()) == winner.to_dict()


def test_commit_answered_batch_committed_returns_the_winners_receipt(
    receiver, make_publisher, outbox
) -> None:
    """A receiver may answer a second commit of a committed session with 409 batch_committed (the reference
    one answers 200 with the receipt): that is success too."""

    class CommittedIs409(ReceiverStore):
        def commit(self, batch_id, payload):
            with self._lock:
                if self._load_session(batch_id)["status"] == "committed":
                    raise ApiError(409, "batch_committed", "this batch is already committed")
            return super().commit(batch_id, payload)

    receiver.server.store = CommittedIs409(receiver.store.root, receiver.store.contracts)
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    late_session = _GatedSession(lambda method, url: url.endswith("/commit"))
    late = make_publisher(receiver.base_url, session=late_session)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(late.publish, Batch.from_dir(folder))
        assert late_session.held.wait(30)  # every chunk is uploaded, the commit is about to go out
        winner = make_publisher(receiver.base_url).publish(Batch.from_dir(folder))
        late_session.gate.set()
        assert pending.result(timeout=30) == winner

    commits = [r.status for r in receiver.server.requests if r.path.endswith("/commit")]
    assert commits == [201, 409]
    assert receiver.server.requests[-1].path == "/v1/batches" and receiver.server.requests[-1].status == 200
    assert _stored_versions(receiver) == ["v1"] and len(_idempotency_files(receiver)) == 1


@pytest.mark.parametrize("pushers", [2, 4])
def test_concurrent_pushes_of_one_batch_store_one_version_and_share_one_receipt(
    receiver, make_publisher, outbox, pushers
) -> None:
    folder = write_batch(outbox, device_health_frame(PARTITION, communities=200), partition=PARTITION)
    start = threading.Barrier(pushers)
    publishers = [make_publisher(receiver.base_url, chunk_bytes=1024) for _ in range(pushers)]

    def push(publisher: HttpPushPublisher) -> Receipt:
        batch = Batch.from_dir(folder)
        start.wait(timeout=30)
        return publisher.publish(batch)

    with ThreadPoolExecutor(pushers) as pool:
        receipts = list(pool.map(push, publishers, timeout=120))

    assert all(r == receipts[0] for r in receipts) and receipts[0].version == 1
    assert _stored_versions(receiver) == ["v1"] and len(_idempotency_files(receiver)) == 1
    assert [r.status for r in receiver.server.requests if r.path.endswith("/commit")].count(201) == 1
    assert {r.status for r in receiver.server.requests} <= {200, 201, 409}
    assert [p.name for p in _receipt_files(outbox)] == ["v1.json"]
    stored = receiver.store.root / receipts[0].detail["location"]
    assert (stored / "data.csv").read_bytes() == (folder / "data.csv").read_bytes()


def test_re_push_while_a_lost_commit_answer_is_retried_gets_the_same_receipt(
    receiver, make_publisher, outbox
) -> None:
    receiver.inject_failures(1, after_handling=True, path_contains="/commit")
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    in_backoff, resume = threading.Event(), threading.Event()

    def backoff(_seconds: float) -> None:
        in_backoff.set()
        assert resume.wait(30)

    first = make_publisher(receiver.base_url, sleep=backoff)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(first.publish, Batch.from_dir(folder))
        assert in_backoff.wait(30)  # committed, but the answer was lost; it waits to retry the commit
        assert _stored_versions(receiver) == ["v1"] and _receipt_files(outbox) == []
        second = make_publisher(receiver.base_url).publish(Batch.from_dir(folder))  # the next run
        resume.set()
        assert pending.result(timeout=30) == second

    assert [r.status for r in receiver.server.requests if r.path.endswith("/commit")] == [500, 200]
    assert _stored_versions(receiver) == ["v1"] and len(_idempotency_files(receiver)) == 1
    assert json.loads((receiver.store.root / second.detail["location"] / "receipt.json").read_text()) == (
        second.to_dict()
    )
    assert [p.name for p in _receipt_files(outbox)] == ["v1.json"]


def test_commit_answer_lost_on_every_attempt_then_the_next_run_gets_the_receipt(
    receiver, make_publisher, outbox
) -> None:
    receiver.inject_failures(3, after_handling=True, path_contains="/commit")
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    with pytest.raises(PublishFailed, match="HTTP 500"):
        make_publisher(receiver.base_url, max_retries=2).publish(Batch.from_dir(folder))
    assert _stored_versions(receiver) == ["v1"] and _receipt_files(outbox) == []  # stored, not acknowledged

    before = len(receiver.server.requests)
    receipt = make_publisher(receiver.base_url).publish(Batch.from_dir(folder))
    assert [(r.method, r.path, r.status) for r in receiver.server.requests[before:]] == [
        ("POST", "/v1/batches", 200)
    ]
    stored = json.loads((receiver.store.root / receipt.detail["location"] / "receipt.json").read_text())
    assert stored == receipt.to_dict() and _stored_versions(receiver) == ["v1"]
    assert [p.name for p in _receipt_files(outbox)] == ["v1.json"]


# ----------------------------------------------------------------------------------------- timeouts


class _RecordingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[tuple[str, object]] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        self.timeouts.append((method, kwargs.get("timeout")))
        return super().request(method, url, *args, **kwargs)


@pytest.mark.parametrize(("timeout", "expected"), [(2.5, (2.5, 2.5)), ((1, 7), (1.0, 7.0))])
def test_every_request_carries_the_connect_and_read_timeout(
    receiver, make_publisher, outbox, timeout, expected
) -> None:
    session = _RecordingSession()
    publisher = make_publisher(receiver.base_url, timeout=timeout, session=session, chunk_bytes=4096)
    receiver.inject_failures(1, path_contains="/chunks/")
    folder = write_batch(outbox, device_health_frame(PARTITION, communities=100), partition=PARTITION)
    publisher.publish(Batch.from_dir(folder))
    publisher.publish(Batch.from_dir(folder))  # the already-acknowledged path
    methods = [method for method, _ in session.timeouts]
    assert {"POST", "PUT"} <= set(methods) and len(methods) > 5
    assert {t for _, t in session.timeouts} == {expected}


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), (1, 0), (1, 2, 3)])
def test_timeouts_must_be_positive(outbox, timeout) -> None:
    with pytest.raises(ValueError, match="timeout"):
        HttpPushPublisher("http://127.0.0.1:1", ACCESS_KEY, SECRET_KEY, outbox, timeout=timeout)


@contextmanager
def _silent_server() -> Iterator[str]:
    """Accepts connections, takes the request and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_receiver_that_never_answers_times_out_on_each_attempt(make_publisher, outbox, sleeps) -> None:
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    with _silent_server() as url:
        started = time.monotonic()
        with pytest.raises(PublishFailed) as exc:
            make_publisher(url, timeout=0.3, max_retries=2).publish(Batch.from_dir(folder))
        elapsed = time.monotonic() - started
    assert exc.value.attempts == 3 and "ReadTimeout" in exc.value.last_error
    assert elapsed < 5 and sleeps == [0.5, 1.0]
    assert _receipt_files(outbox) == []


def test_a_receiver_that_never_accepts_hits_the_connect_timeout(make_publisher, outbox, sleeps) -> None:
    """A listener whose accept queue is full: SYNs go unanswered, so only the connect timeout ends it."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
            pytest.skip("this kernel completes connections beyond the listen backlog")
        except TimeoutError:
            pass
        folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
        started = time.monotonic()
        with pytest.raises(PublishFailed) as exc:
            make_publisher(f"http://127.0.0.1:{port}", timeout=(0.3, 30), max_retries=1).publish(
                Batch.from_dir(folder)
            )
        assert "ConnectTimeout" in exc.value.last_error and time.monotonic() - started < 5
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
