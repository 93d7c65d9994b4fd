"""Reference receiver behaviour that the push client does not exercise: routing, limits, restarts, CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from exports.publishing.batch import Batch, idempotency_key
from exports.publishing.http_push import HttpPushPublisher, NeuronAuth, PublishFailed
from exports.receiver import RunningReceiver, load_contracts, main, make_server, run_in_thread
from tests.exports import (
    ACCESS_KEY,
    CONSUMER,
    CONTRACT,
    DATASET,
    KEYS,
    SECRET_KEY,
    device_health_frame,
    write_batch,
    write_contracts,
)

PARTITION = "2026-11-21"
AUTH = NeuronAuth(ACCESS_KEY, SECRET_KEY)


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    return write_contracts(tmp_path / "contracts")


@pytest.fixture
def receiver(tmp_path: Path, contracts: Path) -> Iterator[RunningReceiver]:
    with run_in_thread(tmp_path / "store", contracts, KEYS, max_chunk_bytes=64 * 1024) as running:
        yield running


def test_contracts_are_loaded_by_id_with_canonical_duckdb_types(contracts: Path, tmp_path: Path) -> None:
    loaded = load_contracts(contracts)
    contract = loaded[f"{CONSUMER}.{DATASET}"]
    assert [c.type for c in contract.columns][:4] == ["DATE", "VARCHAR", "VARCHAR", "BIGINT"]
    alias = tmp_path / "alias" / "c.yaml"
    alias.parent.mkdir()
    alias.write_text(json.dumps({**CONTRACT, "columns": [{"name": "n", "type": "INT8", "nullable": False}]}))
    assert load_contracts(alias.parent)[CONTRACT["id"]].columns[0].type == "BIGINT"
    alias.write_text(json.dumps({**CONTRACT, "columns": [{"name": "n", "type": "BIGINT; DROP TABLE x"}]}))
    with pytest.raises(ValueError, match="invalid contract"):
        load_contracts(alias.parent)


def test_public_endpoints_need_no_signature(receiver: RunningReceiver) -> None:
    assert requests.get(f"{receiver.base_url}/healthz").json() == {"status": "ok"}
    head = requests.head(f"{receiver.base_url}/healthz")
    assert head.status_code == 200 and head.content == b""


def test_unknown_paths_are_404_and_undeclared_methods_405_with_allow(receiver: RunningReceiver) -> None:
    assert requests.get(f"{receiver.base_url}/v2/anything").status_code == 404
    response = requests.delete(f"{receiver.base_url}/v1/batches", auth=AUTH)
    assert response.status_code == 405 and response.headers["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert requests.request("QUERY", f"{receiver.base_url}/healthz").status_code == 405
    options = requests.options(f"{receiver.base_url}/v1/batches/{'a' * 32}/commit")
    assert options.status_code == 204 and options.headers["Allow"] == "POST, OPTIONS"


def test_oversized_chunk_is_413_and_unknown_batch_is_404(receiver: RunningReceiver) -> None:
    url = f"{receiver.base_url}/v1/batches/{'a' * 32}/files/data.csv/chunks/0"
    assert requests.put(url, data=b"x" * 10, auth=AUTH).json()["error"] == "unknown_batch"
    too_big = requests.put(url, data=b"x" * (64 * 1024 + 1), auth=AUTH)
    assert too_big.status_code == 413 and too_big.json()["error"] == "too_large"


def test_listing_rejects_bad_filters(receiver: RunningReceiver) -> None:
    url = f"{receiver.base_url}/v1/batches"
    assert requests.get(url, params={"partition": "21/11/2026"}, auth=AUTH).status_code == 400
    assert requests.get(url, params={"consumer": "../x"}, auth=AUTH).status_code == 400
    assert requests.get(url, params={"owner": "x"}, auth=AUTH).status_code == 400
    assert requests.get(url, params={"consumer": CONSUMER}, auth=AUTH).json() == {"items": []}


def test_missing_idempotency_key_is_400(receiver: RunningReceiver, tmp_path: Path) -> None:
    batch = Batch.from_dir(
        write_batch(tmp_path / "outbox", device_health_frame(PARTITION), partition=PARTITION)
    )
    body = {"contract_id": batch.contract_id, "manifest": batch.manifest}
    response = requests.post(f"{receiver.base_url}/v1/batches", json=body, auth=AUTH)
    assert response.status_code == 400 and response.json()["error"] == "bad_idempotency_key"


def test_upload_sessions_survive_a_receiver_restart(tmp_path: Path, contracts: Path) -> None:
    batch = Batch.from_dir(
        write_batch(tmp_path / "outbox", device_health_frame(PARTITION), partition=PARTITION)
    )
    body = {"contract_id": batch.contract_id, "manifest": batch.manifest}
    headers = {"Idempotency-Key": batch.idempotency_key}
    with run_in_thread(tmp_path / "store", contracts, KEYS) as first:
        batch_id = requests.post(
            f"{first.base_url}/v1/batches", json=body, headers=headers, auth=AUTH
        ).json()["batch_id"]
        for f in batch.files:
            url = f"{first.base_url}/v1/batches/{batch_id}/files/{f.path}/chunks/0"
            requests.put(url, data=batch.file_path(f.path).read_bytes(), auth=AUTH).raise_for_status()
    with run_in_thread(tmp_path / "store", contracts, KEYS) as second:
        again = requests.post(f"{second.base_url}/v1/batches", json=body, headers=headers, auth=AUTH)
        assert again.status_code == 200 and again.json()["batch_id"] == batch_id
        commit = {"files": [{"path": f.path, "chunks": 1} for f in batch.files]}
        response = requests.post(f"{second.base_url}/v1/batches/{batch_id}/commit", json=commit, auth=AUTH)
        assert response.status_code == 201 and response.json()["version"] == 1


def test_lost_idempotency_index_is_rebuilt_from_the_stored_receipt(
    receiver: RunningReceiver, tmp_path: Path
) -> None:
    """A crash between moving the version folder and writing the key index must not allow a duplicate."""
    outbox = tmp_path / "outbox"
    publisher = HttpPushPublisher(receiver.base_url, ACCESS_KEY, SECRET_KEY, outbox / CONSUMER / "_receipts")
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    first = publisher.publish(Batch.from_dir(folder))
    for index in receiver.store.root.glob("_idempotency/*.json"):
        index.unlink()
    assert publisher.publish(Batch.from_dir(folder)) == first
    assert len(list(receiver.store.root.glob("_idempotency/*.json"))) == 1


def test_main_rejects_missing_keys(tmp_path: Path, contracts: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--store", str(tmp_path / "store"), "--contracts", str(contracts)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["--store", str(tmp_path / "store"), "--contracts", str(contracts), "--keys", "no-equals-sign"])


def test_main_serves_until_interrupted(tmp_path: Path, contracts: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# district keys\n{ACCESS_KEY}={SECRET_KEY}\n")
    command = [
        sys.executable,
        "-m",
        "exports.receiver",
        "--port",
        str(port),
        "--store",
        str(tmp_path / "store"),
    ]
    command += ["--contracts", str(contracts), "--keys-file", str(keys_file), "--request-timeout", "0.5"]
    # started with SIGINT ignored, as a parent that ignores it (an xdist worker after Dagster ran) passes it on:
    # the receiver must still stop on it (CI saw it ignore SIGINT for 30 s)
    process = subprocess.Popen(command, cwd=Path(__file__).parents[3], stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # noqa: PLW1509
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/v1/batches", auth=AUTH, timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "receiver did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
            stalled.sendall(b"POST /v1/batches HTTP/1.1\r\n")
            started = time.monotonic()
            assert stalled.recv(1024) == b""  # --request-timeout 0.5 hung up on it
            assert time.monotonic() - started < 5
    finally:
        os.kill(process.pid, signal.SIGINT)
        try:  # generous: CI once saw 10 s pass on a loaded machine (both test workers running Dagster steps)
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"receiver ignored SIGINT for 30 s; stderr: {process.communicate()[1][-2000:]}") from None
        assert code == 0, process.communicate()[1][-2000:]


@pytest.mark.parametrize(
    "body",
    [
        b'{"files": [{"path": ["data.parquet"], "chunks": 1}, {"path": "data.csv", "chunks": 1}]}',
        b'{"files": [{"path": "data.parquet", "chunks": true}, {"path": "data.csv", "chunks": 1}]}',
        b'{"files": [{"path": "data.parquet", "chunks": 1}, {"path": "data.parquet", "chunks": 1}]}',
        b'{"files": [{"path": "data.parquet", "chunks": 1}]}',
        b"[" * 100_000 + b"]" * 100_000,
        b"\xff\xfe not json",
    ],
    ids=["unhashable_path", "bool_chunks", "duplicate", "incomplete", "deeply_nested", "not_utf8"],
)
def test_malformed_commit_bodies_are_400_not_500(
    receiver: RunningReceiver, tmp_path: Path, body: bytes
) -> None:
    batch = Batch.from_dir(
        write_batch(tmp_path / "outbox", device_health_frame(PARTITION), partition=PARTITION)
    )
    init = {"contract_id": batch.contract_id, "manifest": batch.manifest}
    headers = {"Idempotency-Key": batch.idempotency_key}
    batch_id = requests.post(f"{receiver.base_url}/v1/batches", json=init, headers=headers, auth=AUTH).json()[
        "batch_id"
    ]
    response = requests.post(f"{receiver.base_url}/v1/batches/{batch_id}/commit", data=body, auth=AUTH)
    assert response.status_code == 400, response.text


def _self_signed_cert(folder: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from datetime import UTC, datetime, timedelta
    from ipaddress import IPv4Address

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_publishing_over_https_verifies_the_receiver_certificate(tmp_path: Path, contracts: Path) -> None:
    cert, key = _self_signed_cert(tmp_path)
    outbox = tmp_path / "outbox"
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    with run_in_thread(tmp_path / "store", contracts, KEYS, tls_cert=cert, tls_key=key) as rx:
        assert rx.base_url.startswith("https://")
        receipts = outbox / CONSUMER / "_receipts"
        untrusting = HttpPushPublisher(rx.base_url, ACCESS_KEY, SECRET_KEY, receipts, sleep=lambda _: None)
        with pytest.raises(PublishFailed, match="TLS error"):
            untrusting.publish(Batch.from_dir(folder))
        receipt = HttpPushPublisher(rx.base_url, ACCESS_KEY, SECRET_KEY, receipts, verify=str(cert)).publish(
            Batch.from_dir(folder)
        )
        assert receipt.version == 1


# ----------------------------------------------------------------------------------------- version chain


def _init(receiver: RunningReceiver, manifest: dict, version: int | None = None) -> requests.Response:
    key = idempotency_key(CONSUMER, DATASET, manifest["partition"], version or manifest["version"])
    body = {"contract_id": manifest["contract_id"], "manifest": manifest}
    return requests.post(
        f"{receiver.base_url}/v1/batches", json=body, headers={"Idempotency-Key": key}, auth=AUTH
    )


def _correction(manifest: dict, version: int, receipt_id: str | None) -> dict:
    return {
        **manifest,
        "version": version,
        "is_correction": True,
        "supersedes": version - 1,
        "supersedes_receipt_id": receipt_id,
    }


def _sessions(receiver: RunningReceiver) -> list[Path]:
    return list(receiver.store.root.glob("_staging/*/session.json"))


def test_forged_gaps_and_foreign_corrections_are_refused_before_any_upload(
    receiver: RunningReceiver, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    v1 = HttpPushPublisher(
        receiver.base_url, ACCESS_KEY, SECRET_KEY, outbox / CONSUMER / "_receipts"
    ).publish(Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)))
    changed = Batch.from_dir(write_batch(outbox, device_health_frame(PARTITION, seed=2), partition=PARTITION))
    sessions = _sessions(receiver)

    skips = _init(receiver, _correction(changed.manifest, 3, v1.receipt_id))  # v2 never sent
    assert skips.status_code == 409 and skips.json()["error"] == "version_gap"
    assert "skips version(s) [2]" in skips.json()["message"]
    assert skips.json()["reasons"] == ["held versions: [1]", "next version expected: 2"]

    elsewhere = {**changed.manifest, "partition": "2026-11-20"}  # nothing held for that day
    lacks = _init(receiver, _correction(elsewhere, 2, v1.receipt_id))
    assert lacks.status_code == 409 and lacks.json()["error"] == "version_gap"
    assert "supersedes v1, which this receiver does not hold" in lacks.json()["message"]

    foreign = _init(receiver, _correction(changed.manifest, 2, "f" * 32))  # built on another v1
    assert foreign.status_code == 409 and foreign.json()["error"] == "supersedes_mismatch"
    assert v1.receipt_id in foreign.json()["message"]

    unnamed = _init(receiver, _correction(changed.manifest, 2, None))
    assert unnamed.status_code == 422 and unnamed.json()["error"] == "invalid_manifest"

    v1_naming = _init(receiver, {**changed.manifest, "supersedes_receipt_id": v1.receipt_id}, version=1)
    assert v1_naming.status_code == 422  # version 1 supersedes nothing

    assert _sessions(receiver) == sessions  # no upload session was opened for any of them
    stored = receiver.store.root / CONSUMER / DATASET / PARTITION
    assert sorted(p.name for p in stored.iterdir()) == ["latest", "v1"]
    assert (stored / "latest").read_text() == "v1\n"

    proper = _init(receiver, _correction(changed.manifest, 2, v1.receipt_id))
    assert proper.status_code == 201 and proper.json()["status"] == "open"


def test_a_gap_is_refused_at_commit_too(receiver: RunningReceiver, tmp_path: Path) -> None:
    """An upload session opened before the chain rule existed cannot commit a version superseding nothing."""
    batch = Batch.from_dir(
        write_batch(tmp_path / "outbox", device_health_frame(PARTITION), partition=PARTITION)
    )
    opened = _init(receiver, batch.manifest)
    assert opened.status_code == 201
    batch_id = opened.json()["batch_id"]
    session_path = receiver.store.root / "_staging" / batch_id / "session.json"
    session = json.loads(session_path.read_text())
    session["manifest"] = _correction(batch.manifest, 2, "f" * 32)  # as a pre-fix client would have sent
    session_path.write_text(json.dumps(session))
    for f in batch.files:
        url = f"{receiver.base_url}/v1/batches/{batch_id}/files/{f.path}/chunks/0"
        requests.put(url, data=batch.file_path(f.path).read_bytes(), auth=AUTH).raise_for_status()
    commit = {"files": [{"path": f.path, "chunks": 1} for f in batch.files]}
    response = requests.post(f"{receiver.base_url}/v1/batches/{batch_id}/commit", json=commit, auth=AUTH)
    assert response.status_code == 409 and response.json()["error"] == "version_gap"
    assert not (receiver.store.root / CONSUMER / DATASET / PARTITION).exists()


# ----------------------------------------------------------------------------------------- socket timeouts


@pytest.mark.parametrize(
    "partial",
    [
        b"POST /v1/batches HTTP/1.1\r\nHost: x\r\n",  # stalls in the headers
        b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",  # stalls in the body
        b"",  # connects and says nothing
    ],
    ids=["headers", "body", "idle"],
)
def test_a_stalled_client_is_disconnected_after_the_request_timeout(
    tmp_path: Path, contracts: Path, partial: bytes
) -> None:
    with run_in_thread(tmp_path / "store", contracts, KEYS, request_timeout=0.3) as rx:
        assert rx.server.request_timeout == 0.3
        with socket.create_connection(rx.server.server_address[:2], timeout=10) as sock:
            sock.sendall(partial)
            started = time.monotonic()
            assert sock.recv(1024) == b""  # closed, without an answer
            assert time.monotonic() - started < 5
        assert requests.get(f"{rx.base_url}/healthz", timeout=5).status_code == 200  # still serving


def test_request_timeout_defaults_to_60_s_and_must_be_positive(tmp_path: Path, contracts: Path) -> None:
    with run_in_thread(tmp_path / "store", contracts, KEYS) as rx:
        assert rx.server.request_timeout == 60
    with pytest.raises(ValueError, match="request_timeout"):
        make_server(tmp_path / "store", contracts, KEYS, request_timeout=0)
    for bad in ("0", "-1", "nan", "soon"):
        with pytest.raises(SystemExit) as exc:
            main(
                [
                    "--store",
                    str(tmp_path / "s"),
                    "--contracts",
                    str(contracts),
                    "--keys",
                    "a=b",
                    "--request-timeout",
                    bad,
                ]
            )
        assert exc.value.code == 2


def test_the_receiver_requires_the_disclosure_its_contract_names() -> None:
    """A people-count batch must state the contract's disclosure method and parameters; the district only has
    the contract YAML, so the check runs on what the manifest says (store.init -> 422 contract_mismatch)."""
    from exports.contracts import load_contracts as neuron_contracts

    held = load_contracts(Path(__file__).parents[3] / "exports" / "contracts")
    flow = held["public_security.gate_flow_hourly"]
    stated = next(c for c in neuron_contracts() if c.id == flow.id).disclosure.describe()
    assert flow.disclosure_problems(stated) == []
    assert flow.disclosure_problems(None)  # missing
    assert flow.disclosure_problems({**stated, "max_deviation": 1})  # weaker than agreed
    assert flow.disclosure_problems({"method": "suppression", "k": 5})
    assert held["zhilian_putuo.device_health_daily"].disclosure_problems(None) == []  # counts no people
