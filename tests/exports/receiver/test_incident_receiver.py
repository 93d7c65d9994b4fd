"""The incident feed end to end over real loopback HTTP: the contract (a continuous feed: JSON Schema, no daily
export), the receiver's ``/v1/incidents`` (validation, order, idempotency, listing, durability, concurrency) and the
push client (canonical body, signatures, retries through a receiver that is down, failing, slow or hanging up)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests
import yaml

from exports.contracts import CONTRACTS_DIR, ContractError, load_contracts, validate
from exports.definitions import definitions as export_definitions
from exports.publishing.contract_doc import row_schema
from exports.publishing.http_push import NeuronAuth, PublishFailed, PublishRejected
from exports.publishing.incident_push import (
    expected_version,
    incident_body,
    list_incidents,
    push_incident_version,
)
from exports.publishing.signing import body_sha256, sign_request
from exports.receiver import OPENAPI_PATH, RunningReceiver, run_in_thread
from kernel.lake_asset import Area
from tests.exports import ACCESS_KEY, KEYS, SECRET_KEY, write_batch

FEED_ID = "public_security.incidents"
FEED = next(c for c in load_contracts(include_continuous=True) if c.id == FEED_ID)
AUTH = NeuronAuth(ACCESS_KEY, SECRET_KEY)
CREDENTIALS = {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
FAST = {**CREDENTIALS, "backoff_s": 0.01}


_LETTERS = str.maketrans("0123456789", "ghijklmnop")
_DIGITS = str.maketrans("ghijklmnop", "0123456789")


def incident(n: int = 1, version: int = 1, **changes: Any) -> dict[str, Any]:
    """Version ``version`` of a smoke alarm incident (``n`` tells incidents apart), as the engine hands it over."""
    start = datetime(2026, 11, 21, 9, 30) + timedelta(minutes=n)
    record = {
        "incident_id": f"{n:032x}".translate(_LETTERS),  # base32 alphabet, as the engine's ids
        "version": version,
        "status": "opened" if version == 1 else "updated",
        "event_type": "smoke",
        "source": "iot_alarm",
        "community_id": "310107001001",
        "building_id": f"{n % 7:04d}",
        "stat_date": start.date(),
        "started_minute": start,
        "last_seen_minute": start + timedelta(minutes=version - 1),
        "cleared_minute": None,
        "reports": 2 * version,
        "late": False,
        "continues": None,
        "detected_at": datetime(2026, 11, 21, 1, 31, 5, tzinfo=UTC) + timedelta(minutes=n + version),
    }
    return {**record, **changes}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    with run_in_thread(tmp_path / "store", CONTRACTS_DIR, KEYS) as running:
        yield running


def _post(receiver: RunningReceiver, body: bytes, key: str | None, **kwargs: Any) -> requests.Response:
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
    return requests.post(f"{receiver.base_url}/v1/incidents", data=body, headers=headers, **kwargs)


def _held(receiver: RunningReceiver) -> list[dict[str, Any]]:
    return list_incidents(receiver.base_url, **CREDENTIALS)


def _stored_files(receiver: RunningReceiver) -> list[str]:
    return sorted(str(p.relative_to(receiver.store.root)) for p in receiver.store.root.glob("_incidents/*/*"))


# ------------------------------------------------------------------------------------------------------ contract


def test_the_incident_contract_is_a_continuous_feed_with_a_json_schema() -> None:
    assert FEED.is_continuous and FEED.cycle == "continuous" and FEED.raw["cycle"] == {"period": "continuous",
                                                                                        "covers": "event"}
    assert FEED.key_columns == ["incident_id", "version"] and not FEED.counts_people
    assert FEED_ID not in {c.id for c in load_contracts()}  # the batch contracts, as before
    schema = row_schema(FEED.raw)
    assert list(schema["properties"]) == [c["name"] for c in FEED.columns] == schema["required"]
    assert schema["properties"]["detected_at"]["format"] == "date-time"
    assert schema["properties"]["building_id"]["type"] == ["string", "null"]
    assert not FEED.is_publication_day("2026-11-21")
    with pytest.raises(ContractError, match="continuous feed"):
        FEED.next_publication_day("2026-11-21")
    with pytest.raises(ContractError, match="continuous feed"):
        FEED.covered_period("2026-11-21")
    said = " ".join(c["description_en"] for c in FEED.columns) + FEED.raw["description_en"]
    for promise in ("generalised to the building", "truncated to the minute", "no person data", "no tokens"):
        assert promise in said


def test_the_daily_export_machinery_builds_no_asset_for_the_feed() -> None:
    everything = load_contracts(include_continuous=True)
    area = Area(dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="Asia/Shanghai"))
    from assets.registry import datasets

    defs = export_definitions(area, datasets(), everything)
    keys = {k.to_user_string() for a in defs.assets or [] for k in a.keys}
    assert keys == {f"{layer}/{c.consumer}/{c.dataset}" for c in everything if not c.is_continuous
                    for layer in ("export", "publish")}
    assert not [k for k in keys if k.endswith("/incidents")]


@pytest.mark.parametrize(("change", "message"), [
    (lambda raw: raw.update(counts_people=True), "counts_people must be false"),
    (lambda raw: raw["cycle"].update(publish_day=1), "continuous feed has no batch"),
    (lambda raw: raw["cycle"].update(covers="day"), "cycle.covers"),
    (lambda raw: raw.update(key_columns=["incident_id", "revision"]), "key columns"),
    (lambda raw: raw["columns"][2].update(values=[]), "values must be a non-empty list"),
    (lambda raw: raw["columns"][0].update(pattern="^[0-9a-f{32}$"), "not a regular expression"),
    (lambda raw: raw["columns"][0].update(nullable=True), "cannot be nullable"),
])
def test_a_broken_feed_contract_does_not_load(change, message) -> None:
    raw = json.loads(json.dumps(FEED.raw))
    change(raw)
    with pytest.raises(ContractError, match=message):
        validate(raw, FEED.path)


def test_the_contract_is_what_the_incident_engine_emits() -> None:
    engine = pytest.importorskip("assets.incidents.engine")
    values = {c["name"]: c.get("values") for c in FEED.columns}
    assert list(engine.RECORD_COLUMNS) == [c["name"] for c in FEED.columns]
    assert values["event_type"] == list(engine.INCIDENT_TYPES) and values["status"] == list(engine.STATUSES)


def test_the_openapi_incident_schema_is_the_contract() -> None:
    spec = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))["components"]["schemas"]
    documented = spec["IncidentVersion"]
    assert documented["required"] == [c["name"] for c in FEED.columns] and not documented["additionalProperties"]
    for col in FEED.columns:
        prop = documented["properties"][col["name"]]
        prop = spec[prop["$ref"].rsplit("/", 1)[1]] if "$ref" in prop else prop
        assert prop.get("nullable", False) == col["nullable"], col["name"]
        assert prop.get("enum") == col.get("values"), col["name"]
        assert prop.get("pattern") == col.get("pattern"), col["name"]


# ------------------------------------------------------------------------------------------------------ receiver


def test_a_new_version_is_held_with_a_receipt(receiver: RunningReceiver) -> None:
    record = incident()
    receipt = push_incident_version(receiver.base_url, record, **CREDENTIALS)
    assert set(receipt) == {"receipt_id", "seq", "incident_id", "version", "received_at", "sha256"}
    assert (receipt["incident_id"], receipt["version"], receipt["seq"]) == (record["incident_id"], 1, 1)
    assert receipt["sha256"] == body_sha256(incident_body(record))
    assert datetime.fromisoformat(receipt["received_at"]).utcoffset() == timedelta(0)
    assert receipt["received_at"].endswith("Z") and len(receipt["received_at"]) == len("2026-11-21T01:31:05.123Z")
    held = receiver.store.root / "_incidents" / record["incident_id"]
    assert (held / "v1.json").read_bytes() == incident_body(record)
    assert json.loads((held / "v1.receipt.json").read_text()) == receipt
    [item] = _held(receiver)
    assert item["receipt"] == receipt and item["record"]["started_minute"] == "2026-11-21T09:31:00"
    assert item["record"]["stat_date"] == "2026-11-21" and item["record"]["detected_at"] == "2026-11-21T01:33:05+00:00"


def test_the_body_is_canonical_whatever_form_the_values_come_in() -> None:
    as_python = incident(started_minute=datetime(2026, 11, 21, 1, 31, tzinfo=UTC),  # 09:31 in Shanghai
                         detected_at=datetime(2026, 11, 21, 9, 33, 5, tzinfo=timezone(timedelta(hours=8))))
    as_wire = {**incident(), "stat_date": "2026-11-21", "started_minute": "2026-11-21T09:31:00",
               "last_seen_minute": "2026-11-21T09:31:00", "detected_at": "2026-11-21T09:33:05+08:00"}
    assert incident_body(as_python) == incident_body(dict(reversed(as_wire.items())))
    body = incident_body(as_wire)
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    with pytest.raises(ValueError, match="truncated to the minute"):
        incident_body(incident(last_seen_minute=datetime(2026, 11, 21, 9, 31, 30)))
    with pytest.raises(ValueError, match="no time zone"):
        incident_body(incident(detected_at=datetime(2026, 11, 21, 9, 33)))


def test_a_replay_returns_the_original_receipt_and_is_stored_once(receiver: RunningReceiver) -> None:
    record = incident()
    first = push_incident_version(receiver.base_url, record, **CREDENTIALS)
    assert push_incident_version(receiver.base_url, record, **CREDENTIALS) == first
    reordered = json.dumps(json.loads(incident_body(record)), indent=1).encode()  # same content, other bytes
    again = requests.post(f"{receiver.base_url}/v1/incidents", data=reordered,
                          headers={"Idempotency-Key": f"{record['incident_id']}:1"}, auth=AUTH)
    assert again.status_code == 200 and again.json() == first
    assert [i["receipt"] for i in _held(receiver)] == [first]
    assert _stored_files(receiver) == [f"_incidents/{record['incident_id']}/v1.json",
                                       f"_incidents/{record['incident_id']}/v1.receipt.json"]


def test_a_replay_with_other_content_is_a_conflict(receiver: RunningReceiver) -> None:
    push_incident_version(receiver.base_url, incident(), **CREDENTIALS)
    with pytest.raises(PublishRejected) as exc:
        push_incident_version(receiver.base_url, incident(reports=99), **CREDENTIALS)
    assert exc.value.status == 409 and exc.value.error == "idempotency_conflict" and expected_version(exc.value) == 2
    assert [i["record"]["reports"] for i in _held(receiver)] == [2]


def test_a_version_gap_is_refused_naming_the_expected_version(receiver: RunningReceiver) -> None:
    with pytest.raises(PublishRejected) as exc:
        push_incident_version(receiver.base_url, incident(version=2), **CREDENTIALS)
    assert exc.value.status == 409 and exc.value.error == "version_gap" and expected_version(exc.value) == 1
    push_incident_version(receiver.base_url, incident(), **CREDENTIALS)
    with pytest.raises(PublishRejected) as exc:
        push_incident_version(receiver.base_url, incident(version=3), **CREDENTIALS)
    assert expected_version(exc.value) == 2 and exc.value.reasons == ["held version: 1", "next version expected: 2"]
    posts = [r for r in receiver.server.requests if r.method == "POST"]
    assert [r.status for r in posts] == [409, 201, 409]  # a 4xx is never retried
    assert push_incident_version(receiver.base_url, incident(version=2), **CREDENTIALS)["version"] == 2


def test_unsigned_badly_signed_and_replayed_requests_are_refused(receiver: RunningReceiver) -> None:
    body, key = incident_body(incident()), f"{incident()['incident_id']}:1"
    unsigned = _post(receiver, body, key)
    assert unsigned.status_code == 401 and unsigned.json()["error"] == "missing_signature"
    assert requests.get(f"{receiver.base_url}/v1/incidents").status_code == 401
    wrong_secret = _post(receiver, body, key, auth=NeuronAuth(ACCESS_KEY, "not-the-secret"))
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "bad_signature"
    assert _post(receiver, body, key, auth=NeuronAuth("ak_nobody", SECRET_KEY)).json()["error"] == "unknown_key"
    url = f"{receiver.base_url}/v1/incidents"
    signed = sign_request("POST", url, body, **CREDENTIALS)
    headers = {**signed, "Idempotency-Key": key}
    tampered = requests.post(url, data=incident_body(incident(reports=7)), headers=headers)
    assert tampered.status_code == 401 and tampered.json()["error"] == "content_sha256_mismatch"
    assert requests.post(url, data=body, headers=headers).status_code == 201
    replayed = requests.post(url, data=body, headers=headers)
    assert replayed.status_code == 409 and replayed.json()["error"] == "replayed_nonce"
    assert len(_held(receiver)) == 1


DROP = object()  # a change that removes the column
KEY = f"{incident()['incident_id']}:1"


@pytest.mark.parametrize(("change", "key", "code", "reason"), [
    ({"reports": DROP}, KEY, "invalid_incident", "missing column 'reports'"),
    ({"device_id": "SMK-0001"}, KEY, "invalid_incident", "unknown column 'device_id'"),
    ({"event_type": "burglary"}, KEY, "invalid_incident", "event_type: 'burglary' is not one of"),
    ({"status": None}, KEY, "invalid_incident", "status: null is not of type string"),
    ({"version": "1"}, KEY, "invalid_incident", 'version: "1" is not of type integer'),
    ({"late": 0}, KEY, "invalid_incident", "late: 0 is not of type boolean"),
    ({"started_minute": "2026-11-21 09:31:00"}, KEY, "invalid_incident", "started_minute: '2026-11-21 09:31:00'"),
    ({"started_minute": "2026-11-21T09:31:17"}, KEY, "invalid_incident", "does not match"),
    ({"cleared_minute": "2026-13-21T09:31:00"}, KEY, "invalid_incident", "not a valid local time"),
    ({"stat_date": "2026-02-30"}, KEY, "invalid_incident", "not a valid date"),
    ({"detected_at": "2026-11-21T09:33:05"}, KEY, "invalid_incident", "not a valid date-time"),
    ({"incident_id": "A" * 32}, "A" * 32 + ":1", "invalid_incident", "incident_id: 'AAAA"),
    ({}, "g" * 31 + "i:1", "idempotency_key_mismatch", "does not name"),
    ({}, KEY.split(":")[0], "bad_idempotency_key", "<incident_id>:<version>"),
    ({}, None, "bad_idempotency_key", "<incident_id>:<version>"),
    (b'{"incident_id": "1", "incident_id": "2"}', KEY, "bad_json", "duplicate key"),
    (b"[1, 2]", KEY, "invalid_incident", "must be a JSON object"),
    (b"\xff not json", KEY, "bad_json", "not a UTF-8 JSON object"),
], ids=["missing_column", "extra_column", "bad_enum", "null_not_nullable", "string_version", "int_boolean",
        "space_timestamp", "seconds_timestamp", "impossible_month", "impossible_date", "no_offset", "upper_hex_id",
        "key_mismatch", "key_without_version", "no_key", "duplicate_keys", "array", "not_utf8"])
def test_an_invalid_body_or_key_is_400_and_nothing_is_held(receiver, change, key, code, reason) -> None:
    if isinstance(change, bytes):
        body = change
    else:
        wire = {**json.loads(incident_body(incident())), **change}
        body = json.dumps({k: v for k, v in wire.items() if v is not DROP}).encode()
    response = _post(receiver, body, key, auth=AUTH)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["error"] == code
    assert reason in " | ".join([answer["message"], *answer.get("reasons", [])]), answer
    assert _held(receiver) == [] and _stored_files(receiver) == []


def test_a_receiver_without_the_feed_contract_takes_no_incidents(tmp_path: Path) -> None:
    from tests.exports import write_contracts

    with run_in_thread(tmp_path / "store", write_contracts(tmp_path / "contracts"), KEYS) as rx:
        with pytest.raises(PublishRejected) as exc:
            push_incident_version(rx.base_url, incident(), **CREDENTIALS)
        assert exc.value.status == 422 and exc.value.error == "unknown_contract"


def test_the_feed_contract_takes_no_batches(receiver: RunningReceiver, tmp_path: Path) -> None:
    from tests.exports import device_health_frame

    folder = write_batch(tmp_path / "outbox", device_health_frame("2026-11-21"), partition="2026-11-21",
                         consumer="public_security", dataset="incidents")
    manifest = json.loads((folder / "manifest.json").read_text())
    response = requests.post(f"{receiver.base_url}/v1/batches", json={"contract_id": FEED_ID, "manifest": manifest},
                             headers={"Idempotency-Key": "k" * 64}, auth=AUTH)
    assert response.status_code == 422 and response.json()["error"] == "contract_mismatch"
    assert "continuous feed" in response.json()["reasons"][0]


# ------------------------------------------------------------------------------------------------------ delivery


def test_a_receiver_down_then_up_gets_the_version_exactly_once(tmp_path: Path) -> None:
    with run_in_thread(tmp_path / "store", CONTRACTS_DIR, KEYS) as first:
        base, port = first.base_url, first.server.server_address[1]
        push_incident_version(base, incident(1), **CREDENTIALS)
    outcome: dict[str, Any] = {}
    pusher = threading.Thread(target=lambda: outcome.update(
        receipt=push_incident_version(base, incident(2), attempts=8, backoff_s=0.05, timeout=2, **CREDENTIALS)))
    pusher.start()
    time.sleep(0.3)
    assert pusher.is_alive()  # refused so far, still retrying
    with run_in_thread(tmp_path / "store", CONTRACTS_DIR, KEYS, port=port) as second:
        pusher.join(timeout=10)
        assert outcome["receipt"]["seq"] == 2  # the store and its order survived the restart
        assert [i["receipt"]["incident_id"] for i in _held(second)] == [incident(1)["incident_id"],
                                                                        incident(2)["incident_id"]]
        assert [r.status for r in second.server.requests if r.method == "POST"] == [201]


@pytest.mark.parametrize("fault", [
    {"count": 3},  # 500 before any work
    {"count": 2, "status": 503},
    {"count": 1, "after_handling": True},  # held, but the answer is lost
    {"count": 1, "drop": True},  # hangs up without an answer
    {"count": 1, "drop": True, "after_handling": True},
    {"count": 1, "status": None, "delay": 1.0, "after_handling": True},  # slower than the client waits
], ids=["500", "503", "answer_lost", "hang_up", "hang_up_after_work", "slow"])
def test_retries_deliver_through_faults_exactly_once(receiver: RunningReceiver, fault: dict) -> None:
    receiver.inject_failures(fault.pop("count"), path_contains="/v1/incidents", **fault)
    receipt = push_incident_version(receiver.base_url, incident(), timeout=0.5, **FAST)
    assert receipt["seq"] == 1
    assert [i["receipt"] for i in _held(receiver)] == [receipt]
    assert len(_stored_files(receiver)) == 2


def test_a_receiver_that_keeps_failing_raises_publish_failed(receiver: RunningReceiver) -> None:
    receiver.inject_failures(3, path_contains="/v1/incidents")
    with pytest.raises(PublishFailed) as exc:
        push_incident_version(receiver.base_url, incident(), attempts=3, **FAST)
    assert exc.value.attempts == 3 and "HTTP 500" in exc.value.last_error
    assert _held(receiver) == []


def test_concurrent_pushes_of_different_incidents_are_all_held(receiver: RunningReceiver) -> None:
    def push_both(n: int) -> list[dict]:
        return [push_incident_version(receiver.base_url, incident(n, v), **FAST) for v in (1, 2)]

    with ThreadPoolExecutor(max_workers=12) as pool:
        receipts = [r for pair in pool.map(push_both, range(1, 25)) for r in pair]
    held = _held(receiver)
    assert sorted(r["seq"] for r in receipts) == [i["receipt"]["seq"] for i in held] == list(range(1, 49))
    assert {(i["record"]["incident_id"], i["record"]["version"]) for i in held} == {
        (incident(n)["incident_id"], v) for n in range(1, 25) for v in (1, 2)}
    order = [(i["record"]["incident_id"], i["record"]["version"]) for i in held]
    assert all(order.index((iid, 1)) < order.index((iid, 2)) for iid, _ in order)


def test_the_listing_is_in_receive_order_and_paged(receiver: RunningReceiver) -> None:
    pushed = [(5, 1), (3, 1), (5, 2), (4, 1), (5, 3)]
    for n, v in pushed:
        push_incident_version(receiver.base_url, incident(n, v, status="cleared" if v == 3 else
                                                          ("opened" if v == 1 else "updated")), **CREDENTIALS)
    listed = [(int(i["record"]["incident_id"].translate(_DIGITS), 16), i["record"]["version"]) for i in _held(receiver)]
    assert listed == pushed
    assert [i["receipt"]["seq"] for i in list_incidents(receiver.base_url, since=3, **CREDENTIALS)] == [4, 5]
    url = f"{receiver.base_url}/v1/incidents"
    page = requests.get(url, params={"since": 1, "limit": 2}, auth=AUTH).json()
    assert [i["receipt"]["seq"] for i in page["items"]] == [2, 3] and page["more"] and page["next_since"] == 3
    last = requests.get(url, params={"since": 5}, auth=AUTH).json()
    assert last == {"items": [], "next_since": 5, "more": False}
    for bad in ({"since": -1}, {"limit": 0}, {"limit": 1001}, {"since": "x"}, {"incident_id": "1"}):
        response = requests.get(url, params=bad, auth=AUTH)
        assert response.status_code == 400 and response.json()["error"] == "bad_request", bad
