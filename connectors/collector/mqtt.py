"""ThingsBoard gateway telemetry over MQTT: a persistent-session QoS 1 subscriber that acknowledges only what is
on disk (docs/connectors.md, Push table, last row).

MQTT 3.1.1, a fixed client id (``neuron-collector-<collector id>``), ``clean_session=False``: the broker keeps the
subscription and queues QoS 1 messages while the collector is down, and delivers them when it reconnects.
``manual_ack=True``: paho does not answer a PUBLISH by itself; each message's line (``{"topic", "received_ms",
"payload"}``, the topic being the part after ``<topic_prefix>/<community>/``) is handed to the store and the
PUBACK is sent from the store's sync thread once the line is fsynced, in the order the messages arrived (as
MQTT requires). A message whose line could not be made durable is retried (it holds back the acks after it,
and the broker's in-flight window stops the flow) until the disk takes it. paho's network thread reconnects on
its own; acks owed on a dropped connection are not sent on the next one: the broker redelivers those messages,
which land again (the domains count the duplicates).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from connectors.collector.store import MinuteStore, StoreClosed, compact, parse_json, raw_line
from connectors.config import VendorConfig

log = logging.getLogger("neuron.collector.mqtt")

SOURCE, FOLDER, CHANNEL = "telemetry", "thingsboard", "thingsboard"


class _Pending:
    __slots__ = ("mid", "qos", "generation", "done", "line", "minute")

    def __init__(self, mid: int, qos: int, generation: int, line: bytes, minute: str) -> None:
        self.mid, self.qos, self.generation, self.line, self.minute = mid, qos, generation, line, minute
        self.done = False


class MqttSubscriber:
    def __init__(self, config: VendorConfig, store: MinuteStore, collector_id: str | None = None, *,
                 client_id: str | None = None, keepalive: int = 30, retry_s: float = 1.0) -> None:
        self.store = store
        self.metrics = store.metrics
        self.host, self.port = config.mqtt_host, config.mqtt_port
        self.prefix = config.mqtt_topic_prefix.strip("/")
        self.topic = f"{self.prefix}/+/#"
        self.client_id = client_id or f"neuron-collector-{collector_id or store.collector_id}"
        self.keepalive = keepalive
        self.retry_s = retry_s
        self.connected = False
        self.subscribed = threading.Event()
        self._generation = 0
        self._pending: deque[_Pending] = deque()
        self._lock = threading.Lock()
        self._stopping = False
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311, manual_ack=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- lifecycle

    def start(self) -> None:
        """Connect in the background (paho's thread keeps reconnecting until ``stop``)."""
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout``) for the lines in flight to be durable and acked, then disconnect."""
        self._stopping = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    break
            time.sleep(0.01)
        self.client.disconnect()
        self.client.loop_stop()
        self.connected = False

    # -- paho callbacks (paho's network thread)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("mqtt: connect to %s:%d refused: %s", self.host, self.port, reason_code)
            return
        with self._lock:
            self._generation += 1
        self.connected = True
        log.info("mqtt: connected to %s:%d (session present: %s)", self.host, self.port, flags.session_present)
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if all(not rc.is_failure for rc in reason_codes):
            self.subscribed.set()
        else:
            log.error("mqtt: subscription to %s refused", self.topic)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False
        self.subscribed.clear()
        if not self._stopping:
            log.warning("mqtt: disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        received_ms = int(self.store.clock() * 1000)
        minute = self.store.minute_key(received_ms / 1000)
        self.metrics.received_one(SOURCE, CHANNEL)
        parts = msg.topic.split("/", self.prefix.count("/") + 2)
        rest = parts[-1] if len(parts) == self.prefix.count("/") + 3 else ""
        ok, payload = parse_json(msg.payload)
        line = compact({"topic": rest, "received_ms": received_ms, "payload": payload}) if ok \
            else raw_line(msg.payload)
        with self._lock:
            entry = _Pending(msg.mid, msg.qos, self._generation, line, minute)
            self._pending.append(entry)
        self._land(entry)

    # -- landing and acknowledging

    def _land(self, entry: _Pending) -> None:
        try:
            self.store.append_cb(SOURCE, FOLDER, entry.minute, entry.line, lambda err: self._landed(entry, err))
        except StoreClosed:
            self._drop(entry)

    def _drop(self, entry: _Pending) -> None:
        """Forget a message that cannot be landed any more (shutting down): unacked, the broker redelivers it."""
        with self._lock:
            entry.done = True
            entry.qos = -1
            self._ack_ready()

    def _landed(self, entry: _Pending, err: BaseException | None) -> None:
        if err is not None:
            self.metrics.rejected_one(SOURCE, CHANNEL, "not_durable")
            timer = threading.Timer(self.retry_s, self._land, args=(entry,))
            timer.daemon = True
            timer.start()
            return
        with self._lock:
            entry.done = True
            self._ack_ready()

    def _ack_ready(self) -> None:
        """Ack (in arrival order) every leading message whose line is durable; called under ``_lock``."""
        while self._pending and self._pending[0].done:
            entry = self._pending.popleft()
            if entry.qos < 0:
                continue
            self.metrics.acknowledged_one(SOURCE, CHANNEL, len(entry.line) + 1)
            if entry.qos > 0 and entry.generation == self._generation and self.connected:
                self.client.ack(entry.mid, entry.qos)
