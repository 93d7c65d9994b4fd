"""The history query of each platform, as one interface: ``fetch(scope, start_ms, end_ms, page) -> Page``.

Each knows its request (path, parameters, body, signature), its reply envelope, and how the platform says
"your clock is off". ``scope`` is the community (per-estate platforms) or the IoT platform name (CTWing tenant).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import requests

from connectors.config import VendorConfig
from connectors.protocols import aep, artemis, parking
from connectors.pull.http import Clock, HttpClient, PullError

SHANGHAI = timezone(timedelta(hours=8))


@dataclass
class Page:
    records: list[Any]
    total: int
    status: int
    bytes: int


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise PullError(f"{what}: HTTP {response.status_code}, reply is not JSON") from None
    if not isinstance(body, dict):
        raise PullError(f"{what}: reply is not a JSON object")
    return body


class CtwingHistory:
    """CTWing/AEP message history of the district tenant, one IoT platform (``scope``) at a time."""

    path = "/ctwing/aep_device_status/getDeviceStatusHisInPage"

    def __init__(self, config: VendorConfig, client: HttpClient, page_size: int = 500) -> None:
        self.config, self.client, self.page_size, self.clock = config, client, page_size, Clock()

    def fetch(self, scope: str, start_ms: int, end_ms: int, page: int) -> Page:
        query = urlencode({"platform": scope, "begin_timestamp": start_ms, "end_timestamp": end_ms,
                           "page_now": page, "page_size": self.page_size})

        def prepare() -> dict[str, Any]:
            return {"headers": aep.sign(query, application=self.config.ctwing_application,
                                        secret=self.config.ctwing_secret, now_ms=self.clock.now_ms())}

        def clock_error(r: requests.Response) -> bool:
            return r.status_code in (400, 401, 403) and _code(r) == aep.EXPIRED_TIMESTAMP

        r = self.client.request("GET", f"{self.config.base_url}{self.path}?{query}", prepare=prepare,
                                clock_error=clock_error, clock=self.clock)
        body = _json(r, f"CTWing history {scope}")
        if r.status_code != 200 or body.get("code") not in (0, "0"):
            raise PullError(f"CTWing history {scope}: HTTP {r.status_code} code {body.get('code')} {body.get('msg')}")
        result = body.get("result") or {}
        return Page(list(result.get("list") or []), int(result.get("total", 0)), r.status_code, len(r.content))


class IscEvents:
    """Hikvision ISC door-event history of one estate (artemis OpenAPI, AK/SK signed)."""

    path = "/artemis/api/acs/v2/door/events"

    def __init__(self, config: VendorConfig, client: HttpClient, page_size: int = 500) -> None:
        self.config, self.client, self.page_size, self.clock = config, client, page_size, Clock()

    def fetch(self, scope: str, start_ms: int, end_ms: int, page: int) -> Page:
        c = self.config.community(scope)
        base = c.url(self.config.base_url)
        path = f"/{scope}{self.path}" if not c.base_url else self.path
        body = json.dumps({"pageNo": page, "pageSize": self.page_size, "startTime": _iso(start_ms),
                           "endTime": _iso(end_ms)}).encode()

        def prepare() -> dict[str, Any]:
            return {"headers": artemis.sign("POST", path, app_key=c.isc_app_key, app_secret=c.isc_app_secret,
                                            now_ms=self.clock.now_ms()), "data": body}

        def clock_error(r: requests.Response) -> bool:
            return r.status_code == 401 and str(_code(r)) == artemis.EXPIRED_TIMESTAMP

        r = self.client.request("POST", f"{base}{self.path}", prepare=prepare, clock_error=clock_error,
                                clock=self.clock)
        reply = _json(r, f"ISC events {scope}")
        if r.status_code != 200 or str(reply.get("code")) != "0":
            raise PullError(f"ISC events {scope}: HTTP {r.status_code} code {reply.get('code')} {reply.get('msg')}")
        data = reply.get("data") or {}
        return Page(list(data.get("list") or []), int(data.get("total", 0)), r.status_code, len(r.content))


class ViidMotorVehicles:
    """GA/T 1400 ``/VIID/MotorVehicles`` query of one estate's view library (HTTP Digest)."""

    def __init__(self, config: VendorConfig, client: HttpClient, page_size: int = 500) -> None:
        self.config, self.client, self.page_size = config, client, page_size

    def fetch(self, scope: str, start_ms: int, end_ms: int, page: int) -> Page:
        c = self.config.community(scope)
        query = urlencode({"PassTimeBegin": _viid_time(start_ms), "PassTimeEnd": _viid_time(end_ms),
                           "RecordStartNo": (page - 1) * self.page_size + 1, "PageRecordNum": self.page_size})
        auth = requests.auth.HTTPDigestAuth(c.viid_device_id, c.viid_password)
        r = self.client.request("GET", f"{c.url(self.config.base_url)}/VIID/MotorVehicles?{query}",
                                prepare=lambda: {"auth": auth})
        body = _json(r, f"VIID MotorVehicles {scope}")
        if r.status_code != 200:
            raise PullError(f"VIID MotorVehicles {scope}: HTTP {r.status_code}")
        wrapper = body.get("MotorVehicleListObject") or {}
        objects = wrapper.get("MotorVehicleObject") or []
        if isinstance(objects, dict):
            objects = [objects]
        return Page(list(objects), int(wrapper.get("TotalNum", 0)), r.status_code, len(r.content))


class ParkingQuery:
    """A parking cloud's record query of one estate (MD5-signed; a bad signature is HTTP 200 with a hint)."""

    def __init__(self, config: VendorConfig, client: HttpClient, page_size: int = 500) -> None:
        self.config, self.client, self.page_size = config, client, page_size

    def fetch(self, scope: str, start_ms: int, end_ms: int, page: int) -> Page:
        c = self.config.community(scope)

        def prepare() -> dict[str, Any]:
            fields = parking.signed({"start_time": start_ms, "end_time": end_ms, "page": page,
                                     "page_size": self.page_size}, c.parking_app_id, c.parking_app_secret)
            return {"json": fields}

        r = self.client.request("POST", f"{c.url(self.config.base_url)}/parking/query", prepare=prepare)
        body = _json(r, f"parking query {scope}")
        if r.status_code != 200 or body.get("state") not in (1, "1"):
            # the status says nothing: a refused signature is 200 with a hint
            raise PullError(f"parking query {scope}: HTTP {r.status_code} state {body.get('state')} "
                            f"hint {body.get('hint')!r}")
        data = body.get("data") or {}
        return Page(list(data.get("list") or []), int(data.get("total", 0)), r.status_code, len(r.content))


def _code(response: requests.Response) -> Any:
    try:
        return response.json().get("code")
    except (ValueError, AttributeError):
        return None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, SHANGHAI).isoformat(timespec="milliseconds")


def _viid_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, SHANGHAI).strftime("%Y%m%d%H%M%S")
