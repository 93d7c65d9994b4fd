"""The vendor platforms' pull side over HTTP (docs/connectors.md, "Pull"): CTWing history, ISC door events,
VIID MotorVehicles, parking query and the file exports, each with its own authentication
(``connectors.protocols``), strict parameters, 1-based pages over (received_ms, key) and the faults of
``faults.Faults`` switched at runtime.

``serve(platform)`` runs the Starlette app under uvicorn in a thread on 127.0.0.1 and yields a ``VendorServer``
(``.url``, ``.faults``, ``.stats``, ``.config``, ``.stop()``). ``down`` closes the listening socket (clients get
"connection refused") and opens it again on the same port when switched off.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import requests
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.config import VendorConfig
from connectors.protocols import aep, artemis, digest, parking
from simulator.vendor_sim.catalog import DISTRICT, FILE_SOURCES, PLATFORMS, SHANGHAI, History, VendorPlatform
from simulator.vendor_sim.faults import FaultCounter, Faults

MAX_PAGE_SIZE = 1000
NONCE_TTL_MS = artemis.MAX_SKEW_MS * 2


class BadRequest(Exception):
    pass


class UvicornThread:
    """One ASGI app served by uvicorn in a daemon thread on ``host:port`` (port 0: a free one, kept)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> UvicornThread:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning", access_log=False,
                                lifespan="off", date_header=False, server_header=False, timeout_graceful_shutdown=1,
                                backlog=512)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True,
                                       name=f"uvicorn-{self.port}")
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout_s)
        self.server = self.thread = None


@dataclass
class _Window:
    """What the server remembers of one queried window (page drift, late arrivals)."""

    page1_limit: int | None = None  # the page size of its first page 1
    page1_served: int = 0
    drifted: bool = False
    released: bool = False  # a second pass began: its late records are visible now


def _route_of(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "other"
    if parts[0] == "_sim":
        return "sim"
    if parts[0] == "ctwing":
        return "ctwing_history"
    if len(parts) >= 2 and parts[1] == "artemis":
        return "isc_events"
    if len(parts) >= 3 and parts[1] == "VIID":
        return "viid_motor_vehicles"
    if len(parts) >= 2 and parts[1] == "parking":
        return "parking_query"
    if len(parts) >= 2 and parts[1] == "exports":
        return "exports"
    return "other"


class VendorServer:
    """The platforms of one ``VendorPlatform`` over HTTP (see module doc)."""

    def __init__(self, platform: VendorPlatform, port: int = 0, faults: Faults | None = None,
                 host: str = "127.0.0.1") -> None:
        self.platform = platform
        self.faults = faults if faults is not None else Faults()
        self.stats = FaultCounter()
        self.host, self.port = host, port
        creds = platform.credentials
        self._aep = {creds.ctwing_application: creds.ctwing_secret}
        self._digest = {cid: digest.DigestAuthority(f"VIID-{cid}", {c.viid_device_id: c.viid_password})
                        for cid, c in creds.communities.items()}
        self._lock = threading.Lock()
        self._switch_lock = threading.Lock()
        self._nonces: dict[tuple[str, str], int] = {}
        self._windows: dict[tuple, _Window] = {}
        self._late: dict[tuple[str, str, int], tuple] = {}
        self._requests = 0
        self._runner: UvicornThread | None = None
        self._closed = False
        self.app = self._build_app()
        self.faults.observe(self._on_fault)

    # --- lifecycle ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config(self) -> VendorConfig:
        return self.platform.config(self.url)

    def start(self) -> VendorServer:
        with self._switch_lock:
            self._listen()  # fixes the port, even when the platform starts down
        if self.faults.down:
            self._switch(True)
        return self

    def _listen(self) -> None:
        runner = UvicornThread(self.app, self.host, self.port).start()
        self.port = runner.port
        self._runner = runner
        deadline = time.monotonic() + 10
        probe = requests.Session()
        probe.trust_env = False  # no proxy between us and 127.0.0.1
        while True:  # answers, not only listens
            try:
                if probe.get(f"{self.url}/_sim/health", timeout=2).status_code == 200:
                    probe.close()
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vendor simulator on {self.url} does not answer")
            time.sleep(0.02)

    def reset(self) -> None:
        """Forget what the platform remembers of past requests (windows served, late arrivals, nonces, the
        request counter of ``rate_limit``) and zero the stats."""
        with self._lock:
            self._windows.clear()
            self._late.clear()
            self._nonces.clear()
            self._requests = 0
        self.stats = FaultCounter()

    def stop(self) -> None:
        self.faults.unobserve(self._on_fault)
        with self._switch_lock:
            self._closed = True
            if self._runner is not None:
                self._runner.stop()
                self._runner = None

    def _on_fault(self, name: str, value: Any) -> None:
        if name != "down":
            return
        runner = self._runner
        if runner is not None and threading.current_thread() is runner.thread:
            threading.Thread(target=self._switch, args=(bool(value),), daemon=True).start()
        else:
            self._switch(bool(value))

    def _switch(self, down: bool) -> None:
        with self._switch_lock:
            if self._closed:
                return
            if down and self._runner is not None:
                self._runner.stop()
                self._runner = None
                self.stats.fault("down")
            elif not down and self._runner is None:
                if self.port == 0:
                    return  # never started: start() will listen
                self._listen()

    # --- clocks, nonces ----------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The platform's clock (``clock_skew_s`` off ours)."""
        return int((time.time() + self.faults.clock_skew_s) * 1000)

    def _time_fault(self) -> str:
        """What a request refused for its timestamp counts as: the skew fault, or a stale client."""
        return "clock_skew" if self.faults.clock_skew_s else "expired_timestamp"

    def _seen_nonce(self, community: str):
        def seen(key: str, nonce: str) -> bool:
            now = self.now_ms()
            with self._lock:
                if len(self._nonces) > 100_000:
                    for k in [k for k, t in self._nonces.items() if now - t > NONCE_TTL_MS]:
                        del self._nonces[k]
                k = (community, f"{key}:{nonce}")
                if k in self._nonces and now - self._nonces[k] <= NONCE_TTL_MS:
                    return True
                self._nonces[k] = now
                return False
        return seen

    # --- the fault layer (pure ASGI, around every route) -------------------------------------------------

    def _wrap(self, app: Any) -> Any:
        server = self

        async def layer(scope, receive, send):  # noqa: ANN001
            if scope["type"] != "http":
                return await app(scope, receive, send)
            route = _route_of(scope["path"])
            status = [0]

            async def send_dated(message):  # noqa: ANN001
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                    headers = MutableHeaders(scope=message)
                    headers["Date"] = email.utils.formatdate(server.now_ms() / 1000, usegmt=True)
                await send(message)

            try:
                if route != "sim":
                    reply = await server._fault_reply()
                    if reply is not None:
                        await reply(scope, receive, send_dated)
                        return
                await app(scope, receive, send_dated)
            finally:
                server.stats.request(route, status[0])

        return layer

    async def _fault_reply(self) -> Response | None:
        f = self.faults
        if f.slow_s > 0:
            self.stats.fault("slow")
            await asyncio.sleep(f.slow_s)
        with self._lock:
            self._requests += 1
            n = self._requests
            burst = f.error_burst > 0
            if burst:
                object.__setattr__(f, "error_burst", f.error_burst - 1)
        if burst:
            self.stats.fault("error_burst")
            return JSONResponse({"error": "service unavailable (error burst)"}, 503)
        if f.rate_limit and n % f.rate_limit == 0:
            self.stats.fault("rate_limit")
            return JSONResponse({"error": "too many requests"}, 429, headers={"Retry-After": str(f.retry_after_s)})
        return None

    # --- paging over a history, with the pull faults -----------------------------------------------------

    def _page(self, source: str, scope: str, hist: History, begin: int, end: int, offset: int,
              limit: int) -> tuple[list[str], int]:
        """The items of one page (JSON texts) and the window's total."""
        f = self.faults
        lo, hi = hist.window(begin, end)
        idx = np.arange(lo, hi)
        wkey = (source, scope, begin, end)
        with self._lock:
            w = self._windows.setdefault(wkey, _Window())
            if offset == 0:
                if w.page1_served:
                    w.released = True  # a new pass over the window: what arrived late is there now
                w.page1_served += 1
            if f.late_share > 0 and hi > lo:
                cand = idx[hist.late_slot[lo:hi] & (hist.late_u[lo:hi] < f.late_share)]
                hidden = []
                for i in cand.tolist():
                    first = self._late.get((source, scope, i))
                    if first is None:
                        self._late[(source, scope, i)] = wkey
                        first = wkey
                        self.stats.fault("late_share")
                    if first == wkey and not w.released:
                        hidden.append(i)
                if hidden:
                    idx = np.setdiff1d(idx, np.array(hidden), assume_unique=True)
            if f.page_drift:
                if offset == 0 and w.page1_limit is None:
                    w.page1_limit = limit
                elif offset > 0 and w.page1_limit is not None and not w.drifted:
                    w.drifted = True
                    self.stats.fault("page_drift")
            drift_at = w.page1_limit if (f.page_drift and w.drifted) else None
        if drift_at is not None and drift_at < idx.size:
            # the first record of page 2 moved in front of page 1 (its sort key changed between requests)
            idx = np.concatenate([idx[drift_at:drift_at + 1], idx[:drift_at], idx[drift_at + 1:]])
        start = offset
        if f.duplicate_pages and 0 < offset < idx.size:
            start = offset - 1  # the last record of the previous page again
            self.stats.fault("duplicate_pages")
        page = idx[start:offset + limit]
        items = hist.items_at(page) if page.size else []
        return items, int(idx.size)

    # --- the routes --------------------------------------------------------------------------------------

    def _build_app(self) -> Any:
        routes = [
            Route("/_sim/health", self._health, methods=["GET"]),
            Route("/_sim/stats", self._stats, methods=["GET"]),
            Route("/_sim/faults", self._faults, methods=["GET", "POST"]),
            Route("/ctwing/aep_device_status/getDeviceStatusHisInPage", self._ctwing, methods=["GET"]),
            Route("/{community}/artemis/api/acs/v2/door/events", self._isc, methods=["POST"]),
            Route("/{community}/VIID/MotorVehicles", self._viid, methods=["GET"]),
            Route("/{community}/parking/query", self._parking, methods=["POST"]),
            Route("/{scope}/exports/{source}/{day}/", self._export_list, methods=["GET"]),
            Route("/{scope}/exports/{source}/{day}/{path:path}", self._export_file, methods=["GET"]),
        ]
        return self._wrap(Starlette(routes=routes))

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "day": self.platform.day.isoformat(),
                             "communities": self.platform.communities, "faults": self.faults.to_dict()})

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(self.stats.snapshot())

    async def _faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise ValueError("a JSON object of faults")
                down_for = changes.pop("down_for_s", None)
                changes.pop("down", None)  # over HTTP only for a while: nothing could switch it back on
                self.faults.update(changes)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, 400)
            if down_for:
                def outage() -> None:
                    self.faults.down = True
                    time.sleep(float(down_for))
                    self.faults.down = False
                threading.Thread(target=outage, daemon=True).start()
        return JSONResponse(self.faults.to_dict())

    async def _ctwing(self, request: Request) -> Response:
        try:
            aep.verify(request.url.query, request.headers, self._aep, now_ms=self.now_ms())
        except aep.AepAuthError as exc:
            self.stats.fault(self._time_fault() if exc.code == aep.EXPIRED_TIMESTAMP else "auth_rejected")
            return JSONResponse({"code": exc.code, "msg": exc.message}, 401)
        q = request.query_params
        try:
            platform = _required(q, "platform")
            begin, end = _int(q, "begin_timestamp"), _int(q, "end_timestamp")
            _window_ok(begin, end)
            page, size = _page_params(_int(q, "page_now"), _int(q, "page_size"))
        except BadRequest as exc:
            return JSONResponse({"code": 400, "msg": str(exc)}, 400)
        hist = self.platform.history("telemetry", platform)
        if hist is None or platform not in PLATFORMS:
            return JSONResponse({"code": 404, "msg": f"unknown platform {platform!r}"}, 404)
        items, total = self._page("telemetry", platform, hist, begin, end, (page - 1) * size, size)
        head = json.dumps({"total": total, "page_now": page, "page_size": size}, separators=(",", ":"))[:-1]
        return _raw_json('{"code":0,"msg":"ok","result":' + head + ',"list":[' + ",".join(items) + "]}}")

    async def _isc(self, request: Request) -> Response:
        cid = request.path_params["community"]
        c = self.platform.credentials.communities.get(cid)
        if c is None:
            return JSONResponse({"code": "0x02404001", "msg": f"unknown community {cid}"}, 404)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            artemis.verify("POST", target, request.headers, {c.isc_app_key: c.isc_app_secret}, now_ms=self.now_ms(),
                           seen_nonce=self._seen_nonce(cid))
        except artemis.ArtemisAuthError as exc:
            self.stats.fault({artemis.EXPIRED_TIMESTAMP: self._time_fault(), artemis.REPLAYED_NONCE: "nonce_reused"}
                             .get(exc.code, "auth_rejected"))
            return JSONResponse({"code": exc.code, "msg": exc.message}, 401)
        try:
            body = await _json_body(request)
            begin, end = _iso_ms(body.get("startTime"), "startTime"), _iso_ms(body.get("endTime"), "endTime")
            _window_ok(begin, end)
            page, size = _page_params(_int(body, "pageNo"), _int(body, "pageSize"))
        except BadRequest as exc:
            return JSONResponse({"code": "0x02400001", "msg": str(exc)}, 400)
        hist = self.platform.history("access_events", cid)
        items, total = self._page("access_events", cid, hist, begin, end, (page - 1) * size, size)
        head = json.dumps({"total": total, "pageNo": page, "pageSize": size}, separators=(",", ":"))[:-1]
        return _raw_json('{"code":"0","msg":"SUCCESS","data":' + head + ',"list":[' + ",".join(items) + "]}}")

    async def _viid(self, request: Request) -> Response:
        cid = request.path_params["community"]
        authority = self._digest.get(cid)
        if authority is None:
            return _viid_status(request, "4", f"unknown community {cid}", 404)
        header = request.headers.get("authorization", "")
        if not header:
            return _challenge(authority)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            authority.verify(request.method, header)
            if digest.parse(header).get("uri") != target:
                raise digest.DigestError("the answer is for another URI")
        except digest.DigestError:
            self.stats.fault("auth_rejected")
            return _challenge(authority)
        q = request.query_params
        try:
            begin, end = _viid_ms(q, "PassTimeBegin"), _viid_ms(q, "PassTimeEnd")
            _window_ok(begin, end)
            start = _int(q, "RecordStartNo")
            if start < 1:
                raise BadRequest(f"RecordStartNo must be >= 1, not {start}")
            _, size = _page_params(1, _int(q, "PageRecordNum"))
        except BadRequest as exc:
            return _viid_status(request, "4", str(exc), 400)
        hist = self.platform.history("vehicle_passages", cid)
        items, total = self._page("vehicle_passages", cid, hist, begin, end, start - 1, size)
        return _raw_json('{"MotorVehicleListObject":{"MotorVehicleObject":[' + ",".join(items)
                         + f'],"TotalNum":{total}}}}}')

    async def _parking(self, request: Request) -> Response:
        cid = request.path_params["community"]
        c = self.platform.credentials.communities.get(cid)
        if c is None:
            return JSONResponse({"state": 0, "hint": f"unknown community {cid}"}, 404)
        try:
            fields = await _json_body(request)
        except BadRequest as exc:
            return JSONResponse({"state": 0, "hint": str(exc)}, 400)
        try:
            parking.verify(fields, {c.parking_app_id: c.parking_app_secret})
        except parking.ParkingAuthError as exc:
            self.stats.fault("auth_rejected")
            return JSONResponse({"state": 0, "hint": str(exc)})  # HTTP 200: the body says it
        try:
            begin, end = _int(fields, "start_time"), _int(fields, "end_time")
            _window_ok(begin, end)
            page, size = _page_params(_int(fields, "page"), _int(fields, "page_size"))
        except BadRequest as exc:
            return JSONResponse({"state": 0, "hint": str(exc)}, 400)
        hist = self.platform.history("parking", cid)
        items, total = self._page("parking", cid, hist, begin, end, (page - 1) * size, size)
        return _raw_json('{"state":1,"data":{' + f'"total":{total},"page":{page},"page_size":{size},'
                         + '"list":[' + ",".join(items) + "]}}")

    def _export_auth(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 self.platform.credentials.export_token.encode()):
            self.stats.fault("auth_rejected")
            return JSONResponse({"error": "a valid bearer token is required"}, 401,
                                headers={"WWW-Authenticate": 'Bearer realm="exports"'})
        return None

    def _export_scope(self, request: Request) -> tuple[str, str, date] | Response:
        denied = self._export_auth(request)
        if denied is not None:
            return denied
        scope, source, day = (request.path_params[k] for k in ("scope", "source", "day"))
        if scope != DISTRICT and scope not in self.platform.communities:
            return JSONResponse({"error": f"unknown community {scope}"}, 404)
        if source not in FILE_SOURCES:
            return JSONResponse({"error": f"no exports of {source}"}, 404)
        try:
            d = date.fromisoformat(day)
        except ValueError:
            return JSONResponse({"error": f"day {day!r} is not YYYY-MM-DD"}, 400)
        return scope, source, d

    async def _export_list(self, request: Request) -> Response:
        got = self._export_scope(request)
        if isinstance(got, Response):
            return got
        scope, source, d = got
        rows = self.platform.export_files(scope, source).rows(named=True) if d == self.platform.day else []
        return JSONResponse({"files": [{"path": r["relpath"], "size": r["size"], "sha256": r["sha256"]}
                                       for r in rows]})

    async def _export_file(self, request: Request) -> Response:
        got = self._export_scope(request)
        if isinstance(got, Response):
            return got
        scope, source, d = got
        rel = request.path_params["path"]
        known = set(self.platform.export_files(scope, source)["relpath"].to_list()) if d == self.platform.day else set()
        if rel not in known:
            return JSONResponse({"error": f"no file {rel!r}"}, 404)
        data = self.platform.export_path(source, rel).read_bytes()
        return Response(data, media_type="text/csv" if rel.endswith(".csv") else "application/octet-stream")


# --- helpers ----------------------------------------------------------------------------------------------


def _raw_json(text: str) -> Response:
    return Response(text.encode(), media_type="application/json")


def _challenge(authority: digest.DigestAuthority) -> Response:
    return JSONResponse({"ResponseStatusObject": {"StatusCode": "4", "StatusString": "Unauthorized"}}, 401,
                        headers={"WWW-Authenticate": authority.challenge()})


def _viid_status(request: Request, code: str, text: str, status: int) -> Response:
    return JSONResponse({"ResponseStatusObject": {"RequestURL": request.url.path, "StatusCode": code,
                                                  "StatusString": text}}, status)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _required(params: Any, name: str) -> str:
    value = params.get(name)
    if value is None or str(value).strip() == "":
        raise BadRequest(f"{name} is required")
    return str(value)


def _int(params: Any, name: str) -> int:
    value = params.get(name) if hasattr(params, "get") else None
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be an integer, not {value!r}")
    if isinstance(value, int):
        return value
    text = _required(params, name)
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not {text!r}") from None


def _page_params(page: int, size: int) -> tuple[int, int]:
    if page < 1:
        raise BadRequest(f"the page must be >= 1, not {page}")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequest(f"the page size must be within 1..{MAX_PAGE_SIZE}, not {size}")
    return page, size


def _window_ok(begin: int, end: int) -> None:
    if end <= begin:
        raise BadRequest(f"the window [{begin}, {end}) is empty or reversed")


def _iso_ms(value: Any, name: str) -> int:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} is required (ISO 8601)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} {value!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return int(moment.timestamp() * 1000)


def _viid_ms(params: Any, name: str) -> int:
    text = _required(params, name)
    try:
        if len(text) != 14 or not text.isdigit():
            raise ValueError(text)
        return int(datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI).timestamp() * 1000)
    except ValueError:
        raise BadRequest(f"{name} {text!r} is not YYYYMMDDhhmmss") from None


@contextlib.contextmanager
def serve(platform: VendorPlatform, port: int = 0, faults: Faults | None = None,
          host: str = "127.0.0.1") -> Iterator[VendorServer]:
    """Serve ``platform`` on ``host:port`` until the block ends."""
    server = VendorServer(platform, port=port, faults=faults, host=host)
    server.start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["MAX_PAGE_SIZE", "UvicornThread", "VendorServer", "serve"]
