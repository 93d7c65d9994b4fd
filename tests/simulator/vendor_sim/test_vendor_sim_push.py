"""``push_day`` sends the push stream as the platforms do, to a receiver that enforces the collector's side of
every protocol (push URL tokens, HTTP Digest registration, parking signatures) through connectors.protocols,
and ThingsBoard lines over MQTT to the local Mosquitto."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
import threading
import time
import uuid
from collections import Counter

import polars as pl
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.config import VendorConfig
from connectors.protocols import digest, parking, token
from simulator.vendor_sim.catalog import VendorPlatform
from simulator.vendor_sim.faults import Faults
from simulator.vendor_sim.ledger import envelope_events, record_key, vehicle_objects
from simulator.vendor_sim.push import push_day, push_plan
from simulator.vendor_sim.server import UvicornThread
from tests.services import ensure_mosquitto

H = 3_600_000
HTTP_KINDS = ["ctwing", "iotda", "isc", "viid", "parking"]


class Receiver:
    """A collector's receiving side, as strict as the real one must be; records what it accepted."""

    def __init__(self, config: VendorConfig) -> None:
        self.config = config
        self.accepted: list[tuple[str, str]] = []  # (source, key) per record of every accepted push
        self.requests = 0
        self.fail_next = 0  # answer 503 to the next n requests
        self.reject_all = False
        self.delay_s = 0.0
        self.inflight = self.max_inflight = 0
        self.rejected_auth = 0
        self.registered: set[str] = set()
        self.devices = {c.viid_device_id: c for c in config.communities}
        self.digest = digest.DigestAuthority("collector", {c.viid_device_id: c.viid_password
                                                           for c in config.communities})
        gate = self._gate
        self.app = Starlette(routes=[
            Route("/push/parking/{community}", gate(self._parking), methods=["POST"]),
            Route("/push/isc/{community}/{token}", gate(self._isc), methods=["POST"]),
            Route("/push/{kind}/{token}", gate(self._platform_push), methods=["POST"]),
            Route("/VIID/System/Register", gate(self._register), methods=["POST"]),
            Route("/VIID/System/Keepalive", gate(self._keepalive), methods=["POST"]),
            Route("/VIID/MotorVehicles", gate(self._viid), methods=["POST"]),
            Route("/VIID/SubscribeNotifications", gate(self._viid), methods=["POST"]),
        ])
        self.runner = UvicornThread(self.app).start()
        self.url = self.runner.url

    def _gate(self, handler):
        async def endpoint(request: Request) -> Response:
            self.requests += 1
            if self.reject_all or self.fail_next > 0:
                self.fail_next = max(0, self.fail_next - 1)
                return JSONResponse({"error": "unavailable"}, 503)
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                return await handler(request)
            finally:
                self.inflight -= 1
        return endpoint

    def _denied(self) -> Response:
        self.rejected_auth += 1
        return JSONResponse({"error": "unauthorised"}, 401)

    async def _platform_push(self, request: Request) -> Response:
        kind, tok = request.path_params["kind"], request.path_params["token"]
        if kind not in ("ctwing", "iotda") or token.verify(tok, self.config.push_tokens) != kind:
            return self._denied()
        self.accepted.append(("telemetry", record_key("telemetry", await request.body())))
        return JSONResponse({"code": 0})

    async def _isc(self, request: Request) -> Response:
        if token.verify(request.path_params["token"], self.config.push_tokens) != "isc" \
                or request.path_params["community"] not in {c.community_id for c in self.config.communities}:
            return self._denied()
        body = await request.body()
        try:
            events = envelope_events(json.loads(body))
        except ValueError:  # a truncated envelope is landed as its bytes
            events = None
        keys = [record_key("access_events", e) for e in events] if events is not None \
            else [record_key("access_events", body)]
        self.accepted.extend(("access_events", k) for k in keys)
        return JSONResponse({"code": "0", "msg": "SUCCESS"})

    async def _parking(self, request: Request) -> Response:
        c = self.devices_by_community().get(request.path_params["community"])
        fields = json.loads(await request.body())
        try:
            parking.verify(fields, {c.parking_app_id: c.parking_app_secret} if c else {})
        except parking.ParkingAuthError as exc:
            self.rejected_auth += 1
            return JSONResponse({"state": 0, "hint": str(exc)})
        self.accepted.append(("parking", record_key("parking", fields)))
        return JSONResponse({"state": 1})

    def devices_by_community(self) -> dict:
        return {c.community_id: c for c in self.config.communities}

    @staticmethod
    def _ok(request: Request) -> Response:
        return JSONResponse({"ResponseStatusListObject": {"ResponseStatusObject": [
            {"RequestURL": request.url.path, "StatusCode": "0", "StatusString": "OK", "Id": "", "LocalTime": ""}]}})

    async def _register(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        try:
            user = self.digest.verify("POST", header)
        except digest.DigestError:
            return JSONResponse({}, 401, headers={"WWW-Authenticate": self.digest.challenge()})
        body = json.loads(await request.body())
        if body["RegisterObject"]["DeviceID"] != user:
            return self._denied()
        self.registered.add(user)
        return self._ok(request)

    async def _keepalive(self, request: Request) -> Response:
        if request.headers.get("user-identify") not in self.registered:
            return self._denied()
        return self._ok(request)

    async def _viid(self, request: Request) -> Response:
        if request.headers.get("user-identify") not in self.registered:
            return self._denied()
        doc = json.loads(await request.body())
        if request.url.path.endswith("MotorVehicles"):
            assert "MotorVehicleListObject" in doc
        else:
            assert "SubscribeNotificationListObject" in doc
        self.accepted.extend(("vehicle_passages", record_key("vehicle_passages", o)) for o in vehicle_objects(doc))
        return self._ok(request)


@pytest.fixture
def receiver(platform: VendorPlatform):
    r = Receiver(platform.config("http://vendor.invalid"))
    yield r
    r.runner.stop()


def _records(frame: pl.DataFrame) -> Counter:
    return Counter(zip(frame["source"].to_list(), frame["key"].to_list(), strict=True))


def test_push_day_delivers_every_acknowledged_push_and_skips_the_cooldown(platform: VendorPlatform,
                                                                          receiver: Receiver) -> None:
    config = receiver.config
    window = (platform.day_start_ms + 7 * H, platform.day_start_ms + 8 * H)
    plan = push_plan(platform, kinds=HTTP_KINDS, window=window)
    assert set(plan["kind"]) == set(HTTP_KINDS)
    # the cooldown minute: the one of the first VIID document in the window
    minute = (plan.filter(pl.col("kind") == "viid")["push_ms"][0] - platform.day_start_ms) // 60_000
    cooled = plan.filter((pl.col("push_ms") - platform.day_start_ms) // 60_000 == minute)
    assert cooled.height > 1
    report = push_day(platform, receiver.url, config, kinds=HTTP_KINDS, window=window,
                      faults=Faults(push_cooldown_minute=int(minute)))
    for source, s in report.sources.items():
        assert s.lost == 0 and s.retried == 0 and s.sent == s.acknowledged, source
        assert s.dropped == cooled.filter(pl.col("source") == source).height
    assert report.total("sent") + report.total("dropped") == plan.height
    # every record of every acknowledged push arrived, as often as it was pushed; nothing of the cooldown did
    assert Counter(receiver.accepted) == _records(report.acknowledged_keys(plan))
    assert set(report.outcomes.filter(pl.col("outcome") == "dropped")["push_id"]) == set(cooled["push_id"])
    only_cooled = set(cooled.explode("keys")["keys"]) - set(
        plan.filter(~pl.col("push_id").is_in(cooled["push_id"].implode())).explode("keys")["keys"])
    assert only_cooled and only_cooled.isdisjoint(k for _, k in receiver.accepted)
    # the ledger says which records lost a push to the cooldown
    dropped = platform.ledger.filter(pl.col("dropped") > 0)
    assert set(dropped["key"]) == set(cooled.explode("keys")["keys"])
    assert receiver.rejected_auth == 0
    assert receiver.registered == {config.community(c).viid_device_id
                                   for c in plan.filter(pl.col("kind") == "viid")["community_id"]}


def test_a_failed_push_is_retried_three_times_then_lost(platform: VendorPlatform, receiver: Receiver) -> None:
    window = (platform.day_start_ms + 9 * H, platform.day_start_ms + 9 * H + 120_000)
    plan = push_plan(platform, kinds=["ctwing"], window=window)
    assert plan.height >= 2
    receiver.fail_next = 2
    report = push_day(platform, receiver.url, receiver.config, kinds=["ctwing"], window=window, concurrency=1,
                      retry_backoff_s=0.001)
    s = report.sources["telemetry"]
    assert (s.sent, s.acknowledged, s.retried, s.lost) == (plan.height, plan.height, 2, 0)
    assert receiver.requests == plan.height + 2
    receiver.reject_all = True
    receiver.requests = 0
    report = push_day(platform, receiver.url, receiver.config, kinds=["ctwing"], window=window, concurrency=1,
                      retry_backoff_s=0.001)
    s = report.sources["telemetry"]
    assert (s.acknowledged, s.lost, s.retried) == (0, plan.height, 3 * plan.height)
    assert receiver.requests == 4 * plan.height  # the first attempt and 3 retries each


def test_parking_state_0_is_a_failed_push(platform: VendorPlatform, receiver: Receiver) -> None:
    window = (platform.day_start_ms + 8 * H, platform.day_start_ms + 9 * H)
    plan = push_plan(platform, kinds=["parking"], window=window)
    assert plan.height > 0
    wrong = dataclasses.replace(receiver.config, communities=tuple(
        dataclasses.replace(c, parking_app_secret="not-the-secret") for c in receiver.config.communities))
    report = push_day(platform, receiver.url, wrong, kinds=["parking"], window=window, retry_backoff_s=0.001)
    s = report.sources["parking"]
    assert (s.acknowledged, s.lost) == (0, plan.height)
    assert receiver.rejected_auth == 4 * plan.height and not receiver.accepted


def test_bad_push_token_and_unregistered_viid_are_refused(platform: VendorPlatform, receiver: Receiver) -> None:
    window = (platform.day_start_ms + 9 * H, platform.day_start_ms + 9 * H + 60_000)
    wrong = dataclasses.replace(receiver.config, push_tokens={k: "x" + v for k, v in receiver.config.push_tokens.items()})
    report = push_day(platform, receiver.url, wrong, kinds=["iotda"], window=window, retry_backoff_s=0.001)
    assert report.sources["telemetry"].acknowledged == 0 and receiver.rejected_auth > 0
    bad_viid = dataclasses.replace(receiver.config, communities=tuple(
        dataclasses.replace(c, viid_password="wrong") for c in receiver.config.communities))
    report = push_day(platform, receiver.url, bad_viid, kinds=["viid"], retry_backoff_s=0.001)
    assert report.sources["vehicle_passages"].acknowledged == 0 and not receiver.registered


def test_burst_sends_pushes_at_once(platform: VendorPlatform, receiver: Receiver) -> None:
    hour = (platform.day_start_ms + 10 * H, platform.day_start_ms + 11 * H)
    per_minute = (push_plan(platform, kinds=["ctwing", "iotda"], window=hour)
                  .group_by(m=pl.col("push_ms") // 60_000).len().sort("len", "m", descending=[True, False]))
    busiest, n = per_minute.row(0)
    assert n >= 16
    receiver.delay_s = 0.1
    report = push_day(platform, receiver.url, receiver.config, kinds=["ctwing", "iotda"],
                      window=(busiest * 60_000, (busiest + 1) * 60_000), faults=Faults(burst=16), concurrency=4)
    assert report.burst == 16
    assert receiver.max_inflight > 8  # more than the sender's pool could ever have in flight
    assert report.total("lost") == 0 and report.total("acknowledged") == n


# --- ThingsBoard over MQTT ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mosquitto() -> None:
    if not ensure_mosquitto():
        if not shutil.which("mosquitto"):
            pytest.skip("no MQTT broker on 127.0.0.1:1883 and no mosquitto to start")
        pytest.fail("mosquitto did not come up on 127.0.0.1:1883")


def test_thingsboard_lines_reach_the_broker(platform: VendorPlatform, mosquitto: None) -> None:
    import paho.mqtt.client as mqtt

    prefix = f"vendor-sim-test-{uuid.uuid4().hex[:8]}/thingsboard"
    config = dataclasses.replace(platform.config("http://vendor.invalid"), mqtt_topic_prefix=prefix)
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    subscribed = threading.Event()
    sub = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")

    def on_message(client, userdata, msg) -> None:  # noqa: ANN001
        with lock:
            got.append((msg.topic, msg.payload))

    sub.on_message = on_message
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, *a: c.subscribe(f"{prefix}/#", qos=1)
    sub.connect("127.0.0.1", 1883)
    sub.loop_start()
    try:
        assert subscribed.wait(5)
        plan = push_plan(platform, kinds=["thingsboard"])
        report = push_day(platform, "http://unused.invalid", config, kinds=["thingsboard"])
        s = report.sources["telemetry"]
        assert (s.sent, s.acknowledged, s.lost) == (plan.height, plan.height, 0)
        deadline = time.monotonic() + 10
        while len(got) < plan.height and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert len(got) == plan.height
    communities = "|".join(platform.communities)
    topic = re.compile(rf"^{re.escape(prefix)}/({communities})/v1/(gateway|devices/[^/]+)/telemetry$")
    assert all(topic.match(t) for t, _ in got)
    keys = Counter(record_key("telemetry", payload) for _, payload in got)
    expected = Counter(k for ks in plan["keys"].to_list() for k in ks)
    assert keys == expected
    ledger = platform.ledger.filter(pl.col("platform") == "thingsboard")
    assert set(keys) == set(ledger["key"]) and sum(keys.values()) == ledger["pushed"].sum()
