"""ThingsBoard over MQTT on the real Mosquitto (127.0.0.1:1883): QoS 1 lands, PUBACK only after the disk has it,
and a persistent session delivers what was published while the collector was away."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from connectors.collector.mqtt import MqttSubscriber
from connectors.collector.store import MinuteStore, day_of
from tests.services import ensure_mosquitto

from .support import all_lines, free_port, landed, parts, start_collector, stop_collector, vendor_config

pytestmark = pytest.mark.skipif(not ensure_mosquitto(), reason="no MQTT broker on 127.0.0.1:1883")

GATEWAY = {"ENV-310107002001-01": [{"ts": 1795157460328, "values": {"pm2_5": 42.0, "noise": 55.1}}]}


def publish(prefix: str, payloads: list[bytes], community: str = "310107002001") -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    infos = [client.publish(f"{prefix}/{community}/v1/gateway/telemetry", p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(timeout=10)
    client.disconnect()
    client.loop_stop()


def forget_session(client_id: str) -> None:
    """Leave no persistent session behind on the shared broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                         protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", 1883)
    client.disconnect()


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def acked(store: MinuteStore) -> int:
    return sum(r["n"] for r in store.metrics.snapshot()["acknowledged"] if r["channel"] == "thingsboard")


@pytest.fixture
def setup(tmp_path: Path):
    config = vendor_config()
    cid = f"m{uuid.uuid4().hex[:10]}"
    yield config, cid, tmp_path
    forget_session(f"neuron-collector-{cid}")


def test_qos1_messages_land(setup) -> None:
    config, cid, landing = setup
    store = MinuteStore(landing, cid)
    sub = MqttSubscriber(config, store)
    sub.start()
    assert sub.subscribed.wait(10)
    payloads = [json.dumps({**GATEWAY, "n": i}, indent=1).encode() for i in range(30)] + [b"not json\nat all"]
    before = int(time.time() * 1000)
    publish(config.mqtt_topic_prefix, payloads)
    wait_for(lambda: acked(store) == len(payloads))
    sub.stop()
    store.close()
    lines = all_lines(landing, "telemetry")
    assert lines[-1] == b"not json at all"
    records = [json.loads(line) for line in lines[:-1]]
    assert [r["payload"] for r in records] == [{**GATEWAY, "n": i} for i in range(30)]  # in order
    assert {r["topic"] for r in records} == {"v1/gateway/telemetry"}
    assert all(before <= r["received_ms"] <= int(time.time() * 1000) for r in records)
    assert list(records[0]) == ["topic", "received_ms", "payload"]
    assert lines[0].startswith(b'{"topic":"v1/gateway/telemetry","received_ms":')
    files = list((landing / "telemetry").glob("*/thingsboard/push-*.ndjson"))
    assert files and all(f.parent.parent.name == day_of(f.name.split("-")[1]) for f in files)
    assert parts(landing) == []


def test_persistent_session_delivers_what_came_while_down(setup) -> None:
    config, cid, landing = setup
    store = MinuteStore(landing, cid)
    sub = MqttSubscriber(config, store)
    sub.start()
    assert sub.subscribed.wait(10)
    sub.stop()  # the session stays on the broker
    publish(config.mqtt_topic_prefix, [json.dumps({"while_down": i}).encode() for i in range(20)])
    sub = MqttSubscriber(config, store)  # same client id: the broker delivers the queued messages
    sub.start()
    wait_for(lambda: acked(store) == 20)
    sub.stop()
    store.close()
    assert sorted(json.loads(line)["payload"]["while_down"] for line in all_lines(landing, "telemetry")) == \
        list(range(20))


def test_no_puback_before_the_line_is_on_disk(setup) -> None:
    config, cid, landing = setup
    store = MinuteStore(landing, cid)
    day = landing / "telemetry" / day_of(store.minute_key())
    day.parent.mkdir(parents=True)
    day.write_bytes(b"")  # the day folder cannot be made: every write fails
    sub = MqttSubscriber(config, store, retry_s=0.2)
    sub.start()
    assert sub.subscribed.wait(10)
    publish(config.mqtt_topic_prefix, [b'{"kept": true}'])
    wait_for(lambda: store.metrics.fsync_errors >= 2)  # retried, never acknowledged
    assert acked(store) == 0
    sub.stop(timeout=0.2)
    store.close()
    day.unlink()
    store = MinuteStore(landing, cid)  # the collector comes back: the broker redelivers the unacked message
    sub = MqttSubscriber(config, store)
    sub.start()
    wait_for(lambda: acked(store) == 1)
    sub.stop()
    store.close()
    assert [json.loads(line)["payload"] for line in all_lines(landing, "telemetry")] == [{"kept": True}]


def test_collector_process_lands_mqtt_and_closes_on_sigterm(setup) -> None:
    config, cid, landing = setup
    config_path = config.save(landing / "vendors.yaml")
    port = free_port()
    proc = start_collector(config_path, landing / "landing", port, cid, log=landing / "collector.log")
    try:
        wait_for(lambda: (requests.get(f"http://127.0.0.1:{port}/health").json()["mqtt"] or {}).get("subscribed"))
        publish(config.mqtt_topic_prefix, [json.dumps({"p": i}).encode() for i in range(10)])
        requests.post(f"http://127.0.0.1:{port}/push/ctwing/tok-ctwing", data=b'{"http": 1}').raise_for_status()
        wait_for(lambda: 'neuron_collector_acknowledged_total{source="telemetry",channel="thingsboard"} 10'
                 in requests.get(f"http://127.0.0.1:{port}/metrics").text)
    finally:
        assert stop_collector(proc) == 0
    assert parts(landing) == []  # SIGTERM closed every minute file
    lines = landed(landing / "landing", "telemetry")
    assert sorted(Path(f).parts[2] for f in lines) == ["ctwing", "thingsboard"]
    assert sorted(json.loads(line)["payload"]["p"] for f, ls in lines.items() if "thingsboard" in f for line in ls) \
        == list(range(10))
