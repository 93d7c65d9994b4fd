"""The push endpoints on a real uvicorn: authentication per protocol, landed lines, replies, /health, /metrics."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth

from connectors.collector.app import build_app
from connectors.collector.store import MinuteStore, day_of
from connectors.protocols import parking

from .support import COMMUNITIES, all_lines, device_id, landed, parts, serve_in_thread, vendor_config

C1, C2 = COMMUNITIES
CTWING = {"upPacketSN": -1, "timestamp": 1795107082607, "deviceId": "15001111100692026126014",
          "payload": {"serviceId": "notification", "serviceData": {"Gas_Alarm": 0, "Gas_Concentration": 1.4}}}
ISC = {"method": "OnEventNotify", "params": {"ability": "event_acs", "events": [
    {"eventId": "acs1", "eventType": 196893, "data": {"ExtEventPersonNo": "R31010700100100889",
                                                      "personName": "林娟杰"}}]}}
PARKING = {"event_type": "leave", "parking_serial": "20261119500139", "plate": "沪H56998", "plate_color": 1,
           "enter_time": 1795091776000, "payment_list": [{"pay_type": 1, "value": "5"}], "is_sync": 0}
NOTIFICATION = {"SubscribeNotificationListObject": {"SubscribeNotificationObject": [
    {"NotificationID": "N0001", "SubscribeID": "S1", "MotorVehicleObjectList": {"MotorVehicleObject": [
        {"MotorVehicleID": "M1", "PlateNo": "沪JE2648", "PassTime": "20261120071434"}]}},
    {"NotificationID": "N0002", "SubscribeID": "S1", "MotorVehicleObjectList": {"MotorVehicleObject": []}}]}}


@pytest.fixture
def collector(tmp_path: Path):
    config = vendor_config()
    store = MinuteStore(tmp_path, "t1")
    with serve_in_thread(build_app(config, store, max_body=64 * 1024)) as url:
        yield url, store, tmp_path
    store.close()


def test_token_auth(collector) -> None:
    url, store, landing = collector
    body = json.dumps(CTWING)
    assert requests.post(f"{url}/push/ctwing/wrong", data=body).status_code == 401
    assert requests.post(f"{url}/push/ctwing/tok-iotda", data=body).status_code == 401  # another protocol's
    assert requests.post(f"{url}/push/iotda/tok-ctwing", data=body).status_code == 401
    assert requests.post(f"{url}/push/isc/{C1}/wrong", data=json.dumps(ISC)).status_code == 401
    assert requests.post(f"{url}/push/isc/999999999999/tok-isc", data=json.dumps(ISC)).status_code == 404
    assert requests.get(f"{url}/push/ctwing/tok-ctwing").status_code == 405
    assert requests.post(f"{url}/push/ctwing/tok-ctwing", data=b"  ").status_code == 400
    store.close()
    assert list((landing).glob("telemetry/*/*/*")) == [] and list(landing.glob("access_events/*/*/*")) == []


def test_lines_land_as_the_rule_says(collector) -> None:
    url, store, landing = collector
    days = {day_of(store.minute_key())}
    pretty = json.dumps(CTWING, indent=2, ensure_ascii=False).encode()
    assert requests.post(f"{url}/push/ctwing/tok-ctwing", data=pretty).json() == {"code": 0, "msg": "ok"}
    assert requests.post(f"{url}/push/iotda/tok-iotda", data=b"<xml>\r\n not json</xml>").status_code == 200
    r = requests.post(f"{url}/push/isc/{C2}/tok-isc", data=json.dumps(ISC, ensure_ascii=False).encode())
    assert r.status_code == 200 and r.json()["code"] == "0"
    signed = parking.signed(PARKING, "park0", "park-secret-0")
    r = requests.post(f"{url}/push/parking/{C1}", json=signed)
    assert r.status_code == 200 and r.json() == {"state": 1}
    days.add(day_of(store.minute_key()))  # (a test run across midnight)
    store.close()
    files = {**landed(landing, "telemetry"), **landed(landing, "access_events"), **landed(landing, "parking")}
    assert sorted(Path(f).parts[0::2] for f in files) == [  # source, folder
        ("access_events", C2), ("parking", C1), ("telemetry", "ctwing"), ("telemetry", "iotda")]
    for name in files:
        assert Path(name).name.startswith("push-") and Path(name).name.endswith("-t1.ndjson")
        assert Path(name).parts[1] in days
    assert all_lines(landing, "telemetry") == [  # ctwing's file, then iotda's
        json.dumps(CTWING, ensure_ascii=False, separators=(",", ":")).encode(), b"<xml>   not json</xml>"]
    assert all_lines(landing, "access_events") == [json.dumps(ISC, ensure_ascii=False, separators=(",", ":")).encode()]
    assert all_lines(landing, "parking") == [json.dumps(PARKING, ensure_ascii=False, separators=(",", ":")).encode()]
    assert parts(landing) == []


def test_parking_sign(collector) -> None:
    url, store, landing = collector
    wrong = parking.signed(PARKING, "park0", "not-the-secret")
    r = requests.post(f"{url}/push/parking/{C1}", json=wrong)
    assert r.status_code == 200 and r.json() == {"state": 0, "hint": "sign error"}
    other = parking.signed(PARKING, "park1", "park-secret-1")  # community 2's key on community 1
    assert requests.post(f"{url}/push/parking/{C1}", json=other).json() == {"state": 0, "hint": "sign error"}
    assert requests.post(f"{url}/push/parking/{C1}", data=b"not json").json()["state"] == 0
    assert requests.post(f"{url}/push/parking/000", json=wrong).status_code == 404
    store.close()
    assert all_lines(landing, "parking") == []
    rejected = store.metrics.snapshot()["rejected"]
    assert {(r["reason"], r["n"]) for r in rejected} >= {("bad_sign", 2), ("malformed", 1), ("unknown_community", 1)}


def test_viid_register_and_push(collector) -> None:
    url, store, landing = collector
    dev0, dev1 = device_id(0), device_id(1)
    body = json.dumps(NOTIFICATION, ensure_ascii=False).encode()
    r = requests.post(f"{url}/VIID/SubscribeNotifications", data=body, headers={"User-Identify": dev0})
    assert r.status_code == 401  # not registered yet
    r = requests.post(f"{url}/VIID/System/Register", json={"RegisterObject": {"DeviceID": dev0}})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Digest ")
    r = requests.post(f"{url}/VIID/System/Register", json={"RegisterObject": {"DeviceID": dev0}},
                      auth=HTTPDigestAuth(dev0, "wrong"))
    assert r.status_code == 401
    r = requests.post(f"{url}/VIID/System/Register", json={"RegisterObject": {"DeviceID": dev1}},
                      auth=HTTPDigestAuth(dev0, "viid-pass-0"))  # registering another device's id
    assert r.status_code == 401
    r = requests.post(f"{url}/VIID/System/Register", json={"RegisterObject": {"DeviceID": dev0}},
                      auth=HTTPDigestAuth(dev0, "viid-pass-0"))
    assert r.status_code == 200
    status = r.json()["ResponseStatusObject"]
    assert status["StatusCode"] == "0" and status["Id"] == dev0 and status["RequestURL"] == "/VIID/System/Register"
    assert len(status["LocalTime"]) == 14
    assert requests.post(f"{url}/VIID/System/Keepalive", json={"KeepaliveObject": {"DeviceID": dev0}},
                         headers={"User-Identify": dev0}).json()["ResponseStatusObject"]["StatusCode"] == "0"
    r = requests.post(f"{url}/VIID/SubscribeNotifications", data=body, headers={"User-Identify": dev0})
    assert r.status_code == 200
    statuses = r.json()["ResponseStatusListObject"]["ResponseStatusObject"]
    assert [(s["Id"], s["StatusCode"], s["StatusString"], s["RequestURL"]) for s in statuses] == [
        ("N0001", "0", "OK", "/VIID/SubscribeNotifications"), ("N0002", "0", "OK", "/VIID/SubscribeNotifications")]
    vehicles = {"MotorVehicleListObject": {"MotorVehicleObject": [{"MotorVehicleID": "M9", "PlateNo": "沪A1"}]}}
    r = requests.post(f"{url}/VIID/MotorVehicles", json=vehicles, headers={"User-Identify": dev0})
    assert [s["Id"] for s in r.json()["ResponseStatusListObject"]["ResponseStatusObject"]] == ["M9"]
    # the other community's device is not registered: its id is no pass
    assert requests.post(f"{url}/VIID/SubscribeNotifications", data=body,
                         headers={"User-Identify": dev1}).status_code == 401
    files = sorted((landing / "vehicle_passages").glob(f"*/{C1}/push-*-t1-*.json"))
    assert [f.read_bytes() for f in files] == [body, json.dumps(vehicles).encode()]
    assert [f.name.rsplit("-", 1)[1] for f in files] == ["000001.json", "000002.json"]
    assert list((landing / "vehicle_passages").glob(f"*/{C2}/*")) == []
    r = requests.post(f"{url}/VIID/System/UnRegister", json={"UnRegisterObject": {"DeviceID": dev0}},
                      auth=HTTPDigestAuth(dev0, "viid-pass-0"))
    assert r.status_code == 200
    assert requests.post(f"{url}/VIID/MotorVehicles", json=vehicles,
                         headers={"User-Identify": dev0}).status_code == 401


def test_viid_registration_expires(tmp_path: Path) -> None:
    store = MinuteStore(tmp_path, "t2")
    with serve_in_thread(build_app(vendor_config(), store, registration_ttl_s=0.3)) as url:
        dev0 = device_id(0)
        assert requests.post(f"{url}/VIID/System/Register", json={"RegisterObject": {"DeviceID": dev0}},
                             auth=HTTPDigestAuth(dev0, "viid-pass-0")).status_code == 200
        assert requests.post(f"{url}/VIID/MotorVehicles", json={}, headers={"User-Identify": dev0}).status_code == 200
        time.sleep(0.4)
        assert requests.post(f"{url}/VIID/System/Keepalive", json={}, headers={"User-Identify": dev0}).status_code \
            == 401
        assert requests.post(f"{url}/VIID/MotorVehicles", json={}, headers={"User-Identify": dev0}).status_code == 401
    store.close()


def test_body_limit_health_metrics(collector) -> None:
    url, store, landing = collector
    assert requests.post(f"{url}/push/ctwing/tok-ctwing", data=b"x" * (64 * 1024 + 1)).status_code == 413
    assert requests.post(f"{url}/push/ctwing/tok-ctwing", data=json.dumps(CTWING)).status_code == 200
    health = requests.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["collector_id"] == "t1" and health["open_minute_files"] >= 1
    assert health["uptime_s"] >= 0
    text = requests.get(f"{url}/metrics").text
    assert 'neuron_collector_received_total{source="telemetry",channel="ctwing"} 2' in text
    assert 'neuron_collector_acknowledged_total{source="telemetry",channel="ctwing"} 1' in text
    assert 'neuron_collector_rejected_total{source="telemetry",channel="ctwing",reason="too_large"} 1' in text
    assert "neuron_collector_fsync_seconds_bucket" in text and "neuron_collector_open_minute_files" in text


def test_logs_never_carry_content_or_identifiers(collector, caplog: pytest.LogCaptureFixture) -> None:
    url, store, landing = collector
    caplog.set_level(logging.DEBUG)
    requests.post(f"{url}/push/parking/{C1}", json=parking.signed(PARKING, "park0", "bad"))
    requests.post(f"{url}/push/isc/{C1}/secret-guess", data=json.dumps(ISC, ensure_ascii=False).encode())
    requests.post(f"{url}/VIID/MotorVehicles", json=NOTIFICATION, headers={"User-Identify": device_id(0)})
    requests.post(f"{url}/push/ctwing/tok-ctwing", data=json.dumps(CTWING))
    store.close()
    server_side = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("urllib3"))
    assert "push rejected" in server_side
    for secret in ("沪H56998", "R31010700100100889", "林娟杰", "secret-guess", "tok-ctwing", "沪JE2648",
                   device_id(0), "15001111100692026126014"):
        assert secret not in server_side
