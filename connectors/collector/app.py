"""The collector's HTTP side: the push endpoints of docs/connectors.md ("Push" table), ``/health`` and ``/metrics``.

Every push is authenticated as its platform does it (``connectors.protocols``), turned into its landed line by
the line rule (``store.landed_line``; parking without ``app_id``/``sign``) and acknowledged only once the store
has it fsynced: fsync is the only wait, the event loop never blocks on the disk. GA/T 1400 bodies are landed whole,
one file each. A failure to make a push durable is answered 503 (the platform retries), never 200.

Logs carry the source, channel, community, sizes and status only: never a body, a token, a plate, a person's
number or any other identifier in a record.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connectors.collector.store import MinuteStore, StoreClosed, WriteFailed, compact, landed_line, parse_json
from connectors.config import VendorConfig
from connectors.protocols import parking, token
from connectors.protocols.digest import DigestAuthority, DigestError
from connectors.protocols.digest import parse as parse_digest

log = logging.getLogger("neuron.collector.http")

MAX_BODY = 8 * 1024 * 1024
MAX_SYSTEM_BODY = 64 * 1024  # register / keepalive / unregister bodies are a few hundred bytes
REGISTRATION_TTL_S = 180.0  # GA/T 1400: keepalive every 30-60 s; three missed and the device is offline
VIID_MEDIA = "application/VIID+JSON;charset=UTF-8"
VIID_REALM = "VIID"

_OK_TELEMETRY = b'{"code":0,"msg":"ok"}'
_OK_ISC = b'{"code":"0","msg":"SUCCESS"}'
_OK_PARKING = b'{"state":1}'


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _json(status: int, body: bytes, headers: dict[str, str] | None = None,
          media_type: str = "application/json") -> Response:
    return Response(body, status_code=status, media_type=media_type, headers=headers)


def _items(value: Any, inner: str) -> list[Any]:
    if isinstance(value, dict):
        value = value.get(inner, [])
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else []


def viid_ids(doc: Any, kind: str) -> list[str]:
    """The ids a GA/T 1400 reply acknowledges: each notification's NotificationID (SubscribeNotifications) or each
    vehicle's MotorVehicleID (MotorVehicles); one empty id when the body names none."""
    if not isinstance(doc, dict):
        return [""]
    if kind == "notifications":
        objs = _items(doc.get("SubscribeNotificationListObject"), "SubscribeNotificationObject")
        ids = [str(o.get("NotificationID") or o.get("SubscribeID") or "") for o in objs if isinstance(o, dict)]
    else:
        objs = _items(doc.get("MotorVehicleListObject"), "MotorVehicleObject")
        ids = [str(o.get("MotorVehicleID") or "") for o in objs if isinstance(o, dict)]
    return ids or [""]


class Collector:
    """The endpoints' state: credentials by community, the GA/T 1400 registrations, the store."""

    def __init__(self, config: VendorConfig, store: MinuteStore, *, max_body: int = MAX_BODY,
                 registration_ttl_s: float = REGISTRATION_TTL_S, mqtt: Any = None) -> None:
        self.config = config
        self.store = store
        self.metrics = store.metrics
        self.max_body = max_body
        self.registration_ttl_s = registration_ttl_s
        self.mqtt = mqtt
        self.started = time.monotonic()
        self.communities = {c.community_id: c for c in config.communities}
        self.device_community = {c.viid_device_id: c.community_id for c in config.communities}
        self.digest = DigestAuthority(VIID_REALM, {c.viid_device_id: c.viid_password for c in config.communities})
        self.registered: dict[str, float] = {}  # DeviceID -> monotonic expiry

    # -- helpers

    def _reject(self, source: str, channel: str, reason: str, response: Response, community: str = "-",
                size: int = 0) -> Response:
        self.metrics.rejected_one(source, channel, reason)
        log.warning("push rejected: source=%s channel=%s community=%s bytes=%d status=%d reason=%s",
                    source, channel, community, size, response.status_code, reason)
        return response

    async def _body(self, request: Request, source: str, channel: str, community: str,
                    limit: int | None = None) -> bytes | Response:
        try:
            body = await _read_body(request, limit or self.max_body)
        except _TooLarge:
            return self._reject(source, channel, "too_large", _json(413, b'{"error":"body too large"}'), community)
        if not body.strip():
            return self._reject(source, channel, "empty", _json(400, b'{"error":"empty body"}'), community)
        return body

    async def _land(self, source: str, channel: str, folder: str, minute: str, line: bytes, ok: Response,
                    community: str = "-") -> Response:
        try:
            await self.store.append_async(source, folder, minute, line)
        except (WriteFailed, StoreClosed):
            return self._reject(source, channel, "not_durable", _json(503, b'{"error":"not stored, retry"}'),
                                community, len(line))
        self.metrics.acknowledged_one(source, channel, len(line) + 1)
        return ok

    def _local_time(self) -> str:
        return datetime.fromtimestamp(self.store.clock(), self.store.tz).strftime("%Y%m%d%H%M%S")

    # -- token pushes (CTWing, IoTDA, ISC)

    def _token_ok(self, protocol: str, given: str) -> bool:
        expected = self.config.push_tokens.get(protocol)
        return bool(expected) and token.verify(given, {protocol: expected}) is not None

    async def _telemetry(self, request: Request, platform: str) -> Response:
        minute = self.store.minute_key()
        self.metrics.received_one("telemetry", platform)
        if not self._token_ok(platform, request.path_params["token"]):
            return self._reject("telemetry", platform, "bad_token", _json(401, b'{"error":"unauthorized"}'))
        body = await self._body(request, "telemetry", platform, "-")
        if isinstance(body, Response):
            return body
        return await self._land("telemetry", platform, platform, minute, landed_line(body),
                                _json(200, _OK_TELEMETRY))

    async def ctwing(self, request: Request) -> Response:
        return await self._telemetry(request, "ctwing")

    async def iotda(self, request: Request) -> Response:
        return await self._telemetry(request, "iotda")

    async def isc(self, request: Request) -> Response:
        minute = self.store.minute_key()
        community = request.path_params["community"]
        self.metrics.received_one("access_events", "isc")
        if not self._token_ok("isc", request.path_params["token"]):
            return self._reject("access_events", "isc", "bad_token", _json(401, b'{"code":"401","msg":"unauthorized"}'))
        if community not in self.communities:
            return self._reject("access_events", "isc", "unknown_community",
                                _json(404, b'{"code":"404","msg":"unknown community"}'))
        body = await self._body(request, "access_events", "isc", community)
        if isinstance(body, Response):
            return body
        return await self._land("access_events", "isc", community, minute, landed_line(body), _json(200, _OK_ISC),
                                community)

    # -- parking (MD5 sign in the body)

    async def parking(self, request: Request) -> Response:
        minute = self.store.minute_key()
        community = request.path_params["community"]
        self.metrics.received_one("parking", "parking")
        platforms = self.communities.get(community)
        if platforms is None:
            return self._reject("parking", "parking", "unknown_community",
                                _json(404, b'{"state":0,"hint":"unknown community"}'))
        body = await self._body(request, "parking", "parking", community)
        if isinstance(body, Response):
            return body
        ok, fields = parse_json(body)
        if not ok or not isinstance(fields, dict):  # unsigned-able: cannot be authenticated, so not landed
            return self._reject("parking", "parking", "malformed",
                                _json(200, b'{"state":0,"hint":"malformed request"}'), community, len(body))
        try:
            parking.verify(fields, {platforms.parking_app_id: platforms.parking_app_secret})
        except parking.ParkingAuthError:
            return self._reject("parking", "parking", "bad_sign", _json(200, b'{"state":0,"hint":"sign error"}'),
                                community, len(body))
        return await self._land("parking", "parking", community, minute, compact(parking.unsigned(fields)),
                                _json(200, _OK_PARKING), community)

    # -- GA/T 1400 (VIID)

    def _viid(self, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        return _json(status, compact(obj), headers, VIID_MEDIA)

    def _status(self, request: Request, code: str, text: str, id_: str) -> dict[str, Any]:
        return {"RequestURL": request.url.path, "StatusCode": code, "StatusString": text, "Id": id_,
                "LocalTime": self._local_time()}

    def _challenge(self, request: Request, reason: str) -> Response:
        return self._reject("vehicle_passages", "viid", reason, self._viid(
            401, {"ResponseStatusObject": self._status(request, "4", "Unauthorized", "")},
            {"WWW-Authenticate": self.digest.challenge()}))

    def _digest_user(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header:
            return None
        try:
            user = self.digest.verify(request.method, header)
            uri = parse_digest(header).get("uri", "")
        except DigestError:
            return None
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return user if uri == target else None

    def _registered(self, device: str) -> str | None:
        """The community of a registered, unexpired DeviceID."""
        expiry = self.registered.get(device)
        if expiry is None:
            return None
        if expiry < time.monotonic():
            self.registered.pop(device, None)
            return None
        return self.device_community.get(device)

    def _unregistered(self, request: Request) -> Response:
        return self._reject("vehicle_passages", "viid", "not_registered", self._viid(
            401, {"ResponseStatusObject": self._status(request, "4", "Device not registered", "")}))

    @staticmethod
    def _body_device(body: bytes, wrapper: str) -> str | None:
        ok, doc = parse_json(body)
        if ok and isinstance(doc, dict) and isinstance(doc.get(wrapper), dict):
            device = doc[wrapper].get("DeviceID")
            return str(device) if device is not None else None
        return None

    async def _system_body(self, request: Request) -> bytes | Response:
        try:
            return await _read_body(request, MAX_SYSTEM_BODY)
        except _TooLarge:
            return self._reject("vehicle_passages", "viid", "too_large", _json(413, b'{"error":"body too large"}'))

    async def register(self, request: Request) -> Response:
        body = await self._system_body(request)
        if isinstance(body, Response):
            return body
        user = self._digest_user(request)
        if user is None:
            return self._challenge(request, "digest_required" if "authorization" not in request.headers
                                   else "bad_digest")
        claimed = self._body_device(body, "RegisterObject")
        if claimed is not None and claimed != user:
            return self._challenge(request, "device_mismatch")
        self.registered[user] = time.monotonic() + self.registration_ttl_s
        log.info("viid device registered: community=%s", self.device_community.get(user, "-"))
        return self._viid(200, {"ResponseStatusObject": self._status(request, "0", "OK", user)})

    async def keepalive(self, request: Request) -> Response:
        body = await self._system_body(request)
        if isinstance(body, Response):
            return body
        device = request.headers.get("user-identify") or self._body_device(body, "KeepaliveObject") or ""
        if self._registered(device) is None:
            return self._unregistered(request)
        self.registered[device] = time.monotonic() + self.registration_ttl_s
        return self._viid(200, {"ResponseStatusObject": self._status(request, "0", "OK", device)})

    async def unregister(self, request: Request) -> Response:
        body = await self._system_body(request)
        if isinstance(body, Response):
            return body
        device = self._digest_user(request)  # GA/T 1400 unregisters with Digest; a registered device may too
        if device is None:
            identified = request.headers.get("user-identify", "")
            if self._registered(identified) is None:
                return self._challenge(request, "digest_required")
            device = identified
        self.registered.pop(device, None)
        return self._viid(200, {"ResponseStatusObject": self._status(request, "0", "OK", device)})

    async def _viid_data(self, request: Request, kind: str) -> Response:
        minute = self.store.minute_key()
        self.metrics.received_one("vehicle_passages", "viid")
        community = self._registered(request.headers.get("user-identify", ""))
        if community is None:
            return self._unregistered(request)
        body = await self._body(request, "vehicle_passages", "viid", community)
        if isinstance(body, Response):
            return body
        try:
            await anyio.to_thread.run_sync(self.store.write_document, "vehicle_passages", community, minute, body)
        except (WriteFailed, StoreClosed):
            return self._reject("vehicle_passages", "viid", "not_durable", self._viid(
                503, {"ResponseStatusObject": self._status(request, "3", "Device Error", "")}), community, len(body))
        self.metrics.acknowledged_one("vehicle_passages", "viid", len(body))
        statuses = [self._status(request, "0", "OK", i) for i in viid_ids(parse_json(body)[1], kind)]
        return self._viid(200, {"ResponseStatusListObject": {"ResponseStatusObject": statuses}})

    async def notifications(self, request: Request) -> Response:
        return await self._viid_data(request, "notifications")

    async def motor_vehicles(self, request: Request) -> Response:
        return await self._viid_data(request, "vehicles")

    # -- operations

    def gauges(self) -> dict[str, float]:
        out = {"neuron_collector_uptime_seconds": round(time.monotonic() - self.started, 3),
               "neuron_collector_open_minute_files": self.store.open_files,
               "neuron_collector_viid_registered_devices": sum(1 for d in list(self.registered)
                                                               if self._registered(d) is not None)}
        if self.mqtt is not None:
            out["neuron_collector_mqtt_connected"] = int(bool(self.mqtt.connected))
        return out

    async def health(self, request: Request) -> Response:
        return JSONResponse({
            "status": "ok",
            "collector_id": self.store.collector_id,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "open_minute_files": self.store.open_files,
            "viid_registered_devices": self.gauges()["neuron_collector_viid_registered_devices"],
            "mqtt": None if self.mqtt is None else {"connected": bool(self.mqtt.connected),
                                                    "subscribed": self.mqtt.subscribed.is_set()},
        })

    async def metrics_text(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(self.gauges()), media_type="text/plain; version=0.0.4")


def build_app(config: VendorConfig, store: MinuteStore, *, max_body: int = MAX_BODY,
              registration_ttl_s: float = REGISTRATION_TTL_S, mqtt: Any = None) -> Starlette:
    """The collector's Starlette app. ``mqtt`` (optional, a ``MqttSubscriber``) is shown in /health and /metrics."""
    c = Collector(config, store, max_body=max_body, registration_ttl_s=registration_ttl_s, mqtt=mqtt)
    app = Starlette(routes=[
        Route("/push/ctwing/{token}", c.ctwing, methods=["POST"]),
        Route("/push/iotda/{token}", c.iotda, methods=["POST"]),
        Route("/push/isc/{community}/{token}", c.isc, methods=["POST"]),
        Route("/push/parking/{community}", c.parking, methods=["POST"]),
        Route("/VIID/System/Register", c.register, methods=["POST"]),
        Route("/VIID/System/Keepalive", c.keepalive, methods=["POST"]),
        Route("/VIID/System/UnRegister", c.unregister, methods=["POST"]),
        Route("/VIID/MotorVehicles", c.motor_vehicles, methods=["POST"]),
        Route("/VIID/SubscribeNotifications", c.notifications, methods=["POST"]),
        Route("/health", c.health, methods=["GET"]),
        Route("/metrics", c.metrics_text, methods=["GET"]),
    ])
    app.state.collector = c
    return app
