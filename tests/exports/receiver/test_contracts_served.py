"""The receiver serves the contracts it validates against (YAML and a JSON Schema of one row), and a real file-drop
batch pushed to it carries the very same documents; its Chinese CSV header is checked against the titles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests
import yaml

from exports.contracts import CONTRACTS_DIR, load_contracts
from exports.filedrop import publish_filedrop
from exports.publishing import Batch, PublishRejected
from exports.publishing.batch import Receipt, sha256_file
from exports.publishing.contract_doc import CONTRACT_FILE, SCHEMA_FILE
from exports.publishing.http_push import HttpPushPublisher
from exports.publishing.versions import stamp_for_consumer, write_receipt
from exports.receiver import RunningReceiver, run_in_thread
from tests.exports import ACCESS_KEY, KEYS, SECRET_KEY
from tests.exports.rows import relation

DAY = "2026-11-21"
CONTRACTS = {c.id: c for c in load_contracts(include_continuous=True)}  # the receiver also serves the feeds
PUSHED = CONTRACTS["public_security.gate_flow_hourly"]


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    with run_in_thread(tmp_path / "store", CONTRACTS_DIR, KEYS) as running:
        yield running


def _batch(outbox: Path, contract=PUSHED, changed=(), n: int = 5) -> Path:
    return publish_filedrop(duckdb.connect(), relation(contract, DAY, n=n, changed=changed), contract, DAY,
                            outbox).path


def _publisher(receiver: RunningReceiver, outbox: Path, consumer: str = PUSHED.consumer) -> HttpPushPublisher:
    return HttpPushPublisher(receiver.base_url, ACCESS_KEY, SECRET_KEY, outbox / consumer / "_receipts",
                             sleep=lambda s: None)


def test_the_receiver_lists_and_serves_every_contract_without_a_signature(receiver: RunningReceiver) -> None:
    items = requests.get(f"{receiver.base_url}/contracts").json()["items"]
    assert [i["id"] for i in items] == sorted(CONTRACTS)
    for item in items:
        c = CONTRACTS[item["id"]]
        assert (item["version"], item["title_zh"], item["title_en"]) == (c.version, c.raw["title_zh"],
                                                                         c.raw["title_en"])
        served = requests.get(receiver.base_url + item["yaml"])
        assert served.status_code == 200 and served.headers["Content-Type"].startswith("application/yaml")
        assert served.content == c.path.read_bytes()
        schema = requests.get(receiver.base_url + item["schema"])
        assert schema.status_code == 200 and schema.headers["Content-Type"].startswith("application/schema+json")
        assert list(schema.json()["properties"]) == [col["name"] for col in c.columns]
        assert yaml.safe_load(served.text)["columns"] == c.columns
    assert requests.head(receiver.base_url + items[0]["yaml"]).status_code == 200


@pytest.mark.parametrize("path", ["/contracts/zhilian_putuo/nothing", "/contracts/nobody/access_daily",
                                  "/contracts/zhilian_putuo/nothing/schema.json", "/contracts/a/b/c"])
def test_an_unknown_contract_is_404(receiver: RunningReceiver, path: str) -> None:
    response = requests.get(receiver.base_url + path)
    assert response.status_code == 404 and response.json()["error"] in ("unknown_contract", "not_found")


def test_the_contract_in_a_pushed_batch_equals_the_served_one(receiver: RunningReceiver, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    folder = _batch(outbox)
    receipt = _publisher(receiver, outbox).publish(Batch.from_dir(folder))
    stored = receiver.store.root / receipt.detail["location"]
    base = f"{receiver.base_url}/contracts/{PUSHED.consumer}/{PUSHED.dataset}"
    for name, url in ((CONTRACT_FILE, base), (SCHEMA_FILE, f"{base}/schema.json")):
        served = requests.get(url).content
        assert (folder / name).read_bytes() == served == (stored / name).read_bytes(), name
    listed = {f["path"]: f["sha256"] for f in receipt.detail["files"]}
    assert listed[CONTRACT_FILE] == sha256_file(folder / CONTRACT_FILE)
    assert (stored.parent / "latest").read_text() == "v1\n"
    pushed = json.loads((stored / "manifest.json").read_text(encoding="utf-8"))
    assert pushed["title_zh"] == PUSHED.raw["title_zh"] and pushed["correction"] is None


def test_a_csv_with_english_headers_or_another_contract_inside_is_refused(receiver, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    folder = _batch(outbox)
    csv = folder / "data.csv"
    raw = csv.read_bytes()
    header, rest = raw.split(b"\n", 1)
    csv.write_bytes(b"\xef\xbb\xbf" + ",".join(c["name"] for c in PUSHED.columns).encode() + b"\n" + rest)
    contract = folder / CONTRACT_FILE
    contract.write_text(contract.read_text(encoding="utf-8").replace(f"version: {PUSHED.version}",
                                                                     "version: 3.9.9"), encoding="utf-8")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for f in manifest["files"]:  # re-sign the files so only the contract rules can object
        f["sha256"], f["bytes"] = sha256_file(folder / f["path"]), (folder / f["path"]).stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(PublishRejected) as exc:
        _publisher(receiver, outbox).publish(Batch.from_dir(folder))
    assert exc.value.status == 422 and exc.value.error == "validation_failed"
    reasons = " | ".join(exc.value.reasons)
    assert "is not the contract's column titles" in reasons
    assert f"contract.yaml: contract {PUSHED.id} 3.9.9, manifest says {PUSHED.id} {PUSHED.version}" in reasons
    assert "contract.schema.json: differs from the schema derived from contract.yaml" in reasons


def test_a_pushed_correction_explains_itself_in_the_consumers_chain(receiver, tmp_path: Path) -> None:
    """Outbox v1 acknowledged, v2's push lost, v3 pushed: the consumer gets v2, correcting its v1, with the rows
    compared against outbox v1 (the content it holds), not against outbox v2."""
    outbox = tmp_path / "outbox"
    publisher = _publisher(receiver, outbox)
    v1 = _batch(outbox)
    publisher.publish(Batch.from_dir(v1))
    _batch(outbox, changed=[0])  # never pushed
    v3 = _batch(outbox, changed=[0, 1, 2], n=6)
    own = json.loads((v3 / "manifest.json").read_text(encoding="utf-8"))["correction"]
    assert own["against"]["version"] == 2 and own["rows"]["changed"] == 2 and own["rows"]["added"] == 1
    receipt = publisher.publish(Batch.from_dir(v3))
    assert receipt.version == 2 and receipt.detail["supersedes"] == 1
    pushed = json.loads((receiver.store.root / receipt.detail["location"] / "manifest.json").read_text())
    c = pushed["correction"]
    assert c["against"]["version"] == 1 and c["rows"]["changed"] == 3 and c["rows"]["added"] == 1
    assert c["reason_en"].startswith("Corrects version 1: 3 rows changed") and "更正第1版" in c["reason_zh"]
    assert pushed["outbox_version"] == 3


def test_a_correction_against_content_no_longer_in_the_outbox_says_so(tmp_path: Path) -> None:
    """The consumer acknowledged content the outbox no longer holds (e.g. an outbox rebuilt from scratch)."""
    outbox = tmp_path / "outbox"
    receipts = tmp_path / "receipts"
    held = Receipt(receipt_id="r1", consumer=PUSHED.consumer, dataset=PUSHED.dataset, partition=DAY, version=1,
                   idempotency_key="k" * 64, status="committed", publisher="http_push",
                   received_at="2026-11-22T01:00:00Z", detail={"content_sha256": "0" * 64})
    write_receipt(receipts, held)
    stamped = stamp_for_consumer(receipts, Batch.from_dir(_batch(outbox)))
    assert stamped.version == 2 and stamped.manifest["supersedes_receipt_id"] == "r1"
    correction = stamped.manifest["correction"]
    assert correction["rows"] is None and correction["against"] == {"content_sha256": "0" * 64, "version": 1}
    assert "no longer available" in correction["reason_en"] and "更正第1版" in correction["reason_zh"]
