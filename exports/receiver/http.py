"""HTTP front of the reference receiver: routing, request signing checks, test-only failure injection (5xx, slow
answers, dropped connections), and ``run_in_thread`` to serve it in-process for tests and local pushes."""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from exports.publishing.batch import FILE_NAME_RE
from exports.publishing.signing import DEFAULT_MAX_SKEW, NonceCache, SignatureError, verify_request
from exports.receiver.contract import Contract, load_contracts
from exports.receiver.incidents import STORE_DIR as INCIDENTS_DIR
from exports.receiver.incidents import IncidentStore, list_query
from exports.receiver.store import DEFAULT_MAX_CHUNK_BYTES, MAX_CHUNKS_PER_FILE, ApiError, ReceiverStore

log = logging.getLogger("neuron.receiver")

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
MAX_JSON_BYTES = 1024 * 1024
DEFAULT_REQUEST_TIMEOUT = 60.0  # seconds a client may stall (TLS handshake, headers, body) before we hang up


@dataclass(frozen=True)
class _Route:
    name: str
    pattern: re.Pattern[str]
    methods: tuple[str, ...]
    public: bool = False


_ROUTES = (
    _Route("healthz", re.compile(r"^/healthz$"), ("GET",), public=True),
    _Route("openapi", re.compile(r"^/openapi\.yaml$"), ("GET",), public=True),
    _Route("contracts", re.compile(r"^/contracts$"), ("GET",), public=True),
    _Route("contract", re.compile(r"^/contracts/(?P<consumer>[^/]+)/(?P<dataset>[^/]+)$"), ("GET",), public=True),
    _Route(
        "contract_schema",
        re.compile(r"^/contracts/(?P<consumer>[^/]+)/(?P<dataset>[^/]+)/schema\.json$"),
        ("GET",),
        public=True,
    ),
    _Route("batches", re.compile(r"^/v1/batches$"), ("GET", "POST")),
    _Route(
        "chunk",
        re.compile(r"^/v1/batches/(?P<batch_id>[^/]+)/files/(?P<file>[^/]+)/chunks/(?P<index>[^/]+)$"),
        ("PUT",),
    ),
    _Route("commit", re.compile(r"^/v1/batches/(?P<batch_id>[^/]+)/commit$"), ("POST",)),
    _Route("incidents", re.compile(r"^/v1/incidents$"), ("GET", "POST")),
)


@dataclass(frozen=True)
class _Document:
    """A non-JSON answer body with its media type (the OpenAPI document, a contract, a JSON Schema)."""

    body: bytes
    content_type: str


YAML_TYPE = "application/yaml; charset=utf-8"
SCHEMA_TYPE = "application/schema+json; charset=utf-8"


@dataclass
class _FailureRule:
    remaining: int
    after_handling: bool
    path_contains: str | None
    status: int | None = 500  # the error answered; None: answer normally (after ``delay``)
    delay: float = 0.0  # seconds to stall first (a slow receiver)
    drop: bool = False  # hang up without an answer (a receiver going down mid-request)


@dataclass
class RequestRecord:
    method: str
    path: str
    status: int


class ReceiverServer(ThreadingHTTPServer):
    """The HTTP front of a ``ReceiverStore``. ``fail_next`` / ``inject_failures`` are test hooks only."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        store: ReceiverStore,
        keys: Mapping[str, str],
        *,
        max_skew: float = DEFAULT_MAX_SKEW,
        fail_next: int = 0,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        incidents: IncidentStore | None = None,
    ) -> None:
        if not keys:
            raise ValueError("the receiver needs at least one access key")
        if not request_timeout > 0:
            raise ValueError("request_timeout must be > 0 seconds")
        self.request_timeout = float(request_timeout)
        self.store = store
        self.incidents = incidents or IncidentStore(store.root / INCIDENTS_DIR, store.contracts)
        self.keys = dict(keys)
        self.max_skew = max_skew
        self.nonces = NonceCache(ttl=2 * max_skew)
        self.requests: list[RequestRecord] = []
        self._failures: list[_FailureRule] = []
        self._hook_lock = threading.Lock()
        self.openapi_bytes = OPENAPI_PATH.read_bytes()
        super().__init__(address, _Handler)
        if fail_next:
            self.inject_failures(fail_next)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://{host}:{port}"

    def inject_failures(
        self,
        count: int,
        *,
        after_handling: bool = False,
        path_contains: str | None = None,
        status: int | None = 500,
        delay: float = 0.0,
        drop: bool = False,
    ) -> None:
        """Fail the next ``count`` matching requests: answer ``status`` (a 5xx), or with ``drop`` hang up without
        an answer, after stalling ``delay`` seconds; ``status=None`` with a ``delay`` only slows the answer down.
        ``after_handling`` does the work first, as when a commit succeeds but its answer is lost."""
        if status is not None and not 500 <= status <= 599:
            raise ValueError(f"inject 5xx failures only, not {status}")
        if not delay >= 0:
            raise ValueError("delay must be >= 0 seconds")
        with self._hook_lock:
            self._failures.append(_FailureRule(count, after_handling, path_contains, status, delay, drop))

    def _take_failure(self, after_handling: bool, path: str) -> _FailureRule | None:
        with self._hook_lock:
            for rule in self._failures:
                if (
                    rule.remaining > 0
                    and rule.after_handling == after_handling
                    and (rule.path_contains is None or rule.path_contains in path)
                ):
                    rule.remaining -= 1
                    return rule
        return None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed TLS handshakes and dropped connections are routine on a public endpoint.
        log.warning("connection from %s failed", client_address[0], exc_info=log.isEnabledFor(logging.DEBUG))

    def _record(self, method: str, path: str, status: int) -> None:
        with self._hook_lock:
            self.requests.append(RequestRecord(method, path, status))


class _Handler(BaseHTTPRequestHandler):
    server: ReceiverServer
    protocol_version = "HTTP/1.1"
    server_version = "NeuronReceiver/1.0"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; avoid 40 ms ACK stalls

    @property
    def timeout(self) -> float:  # type: ignore[override]
        """Socket timeout (``setup()`` applies it): seconds a client may stall mid-request (TLS handshake,
        headers, body, or idling on a kept-alive connection) before its thread gives up."""
        return self.server.request_timeout

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def __getattr__(self, name: str) -> Any:
        # http.server answers 501 to any method without a do_<METHOD>; route them all so undeclared
        # methods get a proper 405 with Allow (or 404 for unknown paths).
        if name.startswith("do_") and name[3:].isalpha():
            return lambda: self._handle(name[3:].upper())
        raise AttributeError(name)

    # -- plumbing
    def _send(
        self, status: int, body: bytes, content_type: str, extra: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, data: Any, extra: Mapping[str, str] | None = None) -> None:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", extra)

    def _read_body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(
                400, "length_required", "send a Content-Length; chunked transfer encoding is not accepted"
            )
        raw = self.headers.get("Content-Length", "0") or "0"
        if not raw.isdigit():
            self.close_connection = True
            raise ApiError(400, "bad_request", "invalid Content-Length")
        length = int(raw)
        if length > limit:
            self.close_connection = True
            raise ApiError(413, "too_large", f"request body is limited to {limit} bytes here")
        return self.rfile.read(length) if length else b""

    def _fail(self, rule: _FailureRule | None, method: str, path: str) -> bool:
        """Apply an injected failure: stall, then hang up (True: nothing more to send) or raise its 5xx."""
        if rule is None:
            return False
        if rule.delay:
            time.sleep(rule.delay)
        if rule.drop:
            self.close_connection = True
            self.server._record(method, path, 0)
            return True
        if rule.status is not None:
            what = "the work was done but the answer is lost" if rule.after_handling else "failing on purpose"
            raise ApiError(rule.status, "injected_failure", f"test hook: {what}")
        return False

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        route: _Route | None = None
        status: int = 500
        payload: Any = None
        headers: dict[str, str] = {}
        try:
            route, params = self._route(path)
            limit = (
                self.server.store.max_chunk_bytes
                if route is not None and route.name == "chunk"
                else MAX_JSON_BYTES
            )
            body = self._read_body(limit)
            if self._fail(self.server._take_failure(False, path), method, path):
                return
            if route is None:
                raise ApiError(404, "not_found", f"no endpoint {path}")
            allowed = route.methods + (("HEAD",) if "GET" in route.methods else ())
            if method == "OPTIONS":
                status, payload, headers = 204, None, {"Allow": ", ".join((*allowed, "OPTIONS"))}
            elif method not in allowed:
                headers = {"Allow": ", ".join((*allowed, "OPTIONS"))}
                raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
            else:
                access_key = None
                if not route.public:
                    access_key = verify_request(
                        method,
                        self.path,
                        self.headers.items(),
                        body,
                        self.server.keys,
                        max_skew=self.server.max_skew,
                        nonces=self.server.nonces,
                    )
                status, payload = self._dispatch(
                    route, params, "GET" if method == "HEAD" else method, split.query, body, access_key
                )
            if self._fail(self.server._take_failure(True, path), method, path):
                return
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # the client stalled or went away mid-request; nobody to answer
            return
        except SignatureError as exc:
            status, payload = exc.status, {"error": exc.code, "message": exc.message}
            headers = {"WWW-Authenticate": 'NeuronHMAC realm="neuron"'} if exc.status == 401 else {}
        except ApiError as exc:
            status, payload = exc.status, exc.body()
        except Exception:
            log.exception("internal error on %s %s", method, path)
            status, payload = 500, {"error": "internal_error", "message": "internal error; see receiver log"}
        self.server._record(method, path, status)
        if status == 204:
            self.send_response(204)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
        elif isinstance(payload, _Document):
            self._send(status, payload.body, payload.content_type, headers)
        else:
            self._send_json(status, payload, headers)

    @staticmethod
    def _route(path: str) -> tuple[_Route | None, dict[str, str]]:
        for route in _ROUTES:
            if match := route.pattern.fullmatch(path):
                return route, {k: unquote(v) for k, v in match.groupdict().items()}
        return None, {}

    def _dispatch(
        self,
        route: _Route,
        params: dict[str, str],
        method: str,
        query: str,
        body: bytes,
        access_key: str | None,
    ) -> tuple[int, Any]:
        store = self.server.store
        if route.name == "healthz":
            return 200, {"status": "ok"}
        if route.name == "openapi":
            return 200, _Document(self.server.openapi_bytes, "application/yaml")
        if route.name == "contracts":
            return 200, {"items": [
                {"id": c.id, "consumer": c.consumer, "dataset": c.dataset, "version": c.version,
                 "title_zh": c.title_zh, "title_en": c.title_en,
                 "yaml": f"/contracts/{c.consumer}/{c.dataset}", "schema": f"/contracts/{c.consumer}/{c.dataset}/schema.json"}
                for c in sorted(store.contracts.values(), key=lambda c: c.id)]}
        if route.name in ("contract", "contract_schema"):
            contract = store.contracts.get(f"{params['consumer']}.{params['dataset']}")
            if contract is None or (contract.consumer, contract.dataset) != (params["consumer"], params["dataset"]):
                raise ApiError(404, "unknown_contract", f"no contract for {params['consumer']}/{params['dataset']}")
            if route.name == "contract":
                return 200, _Document(contract.yaml_bytes, YAML_TYPE)
            return 200, _Document(contract.schema_bytes, SCHEMA_TYPE)
        if route.name == "incidents":
            if method == "GET":
                return 200, self.server.incidents.list_versions(
                    *list_query(dict(parse_qsl(query, keep_blank_values=True)))
                )
            return self.server.incidents.push(self.headers.get("Idempotency-Key"), body)
        if route.name == "batches" and method == "GET":
            allowed = {"consumer", "dataset", "partition"}
            query_params = dict(parse_qsl(query, keep_blank_values=True))
            if unknown := set(query_params) - allowed:
                raise ApiError(400, "bad_request", f"unknown query parameter(s): {sorted(unknown)}")
            return 200, store.list_batches(
                *(query_params.get(name) for name in ("consumer", "dataset", "partition"))
            )
        assert access_key is not None
        if route.name == "batches":
            return store.init_batch(access_key, self.headers.get("Idempotency-Key"), _parse_json(body))
        if route.name == "chunk":
            index = params["index"]
            if not re.fullmatch(r"[0-9]{1,5}", index):
                raise ApiError(
                    400, "bad_request", f"chunk index must be an integer in [0, {MAX_CHUNKS_PER_FILE})"
                )
            if not FILE_NAME_RE.fullmatch(params["file"]):
                raise ApiError(404, "unknown_file", "no such file in this batch")
            return 200, store.put_chunk(params["batch_id"], params["file"], int(index), body)
        return store.commit(params["batch_id"], _parse_json(body) if body else {})


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "bad_json", f"body is not UTF-8 JSON: {exc}") from exc


def make_server(
    store_dir: Path | str,
    contracts: Path | str | Mapping[str, Contract],
    keys: Mapping[str, str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_skew: float = DEFAULT_MAX_SKEW,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    fail_next: int = 0,
    tls_cert: Path | str | None = None,
    tls_key: Path | str | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> ReceiverServer:
    """A bound (not yet serving) receiver; ``port=0`` picks a free port. ``request_timeout`` is the socket
    timeout of each connection (a client stalled that long is disconnected)."""
    loaded = contracts if isinstance(contracts, Mapping) else load_contracts(contracts)
    store = ReceiverStore(Path(store_dir), loaded, max_chunk_bytes=max_chunk_bytes)
    server = ReceiverServer(
        (host, port), store, keys, max_skew=max_skew, fail_next=fail_next, request_timeout=request_timeout
    )
    if tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
        # Handshake lazily in the handler thread so one stalled client cannot block accept().
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


@dataclass
class RunningReceiver:
    """A receiver serving on a background thread; ``base_url`` is what a publisher needs."""

    server: ReceiverServer
    base_url: str
    thread: threading.Thread = field(repr=False)

    @property
    def store(self) -> ReceiverStore:
        return self.server.store

    @property
    def incidents(self) -> IncidentStore:
        return self.server.incidents

    def inject_failures(
        self,
        count: int,
        *,
        after_handling: bool = False,
        path_contains: str | None = None,
        status: int | None = 500,
        delay: float = 0.0,
        drop: bool = False,
    ) -> None:
        self.server.inject_failures(
            count, after_handling=after_handling, path_contains=path_contains, status=status, delay=delay, drop=drop
        )


@contextmanager
def run_in_thread(
    store_dir: Path | str,
    contracts: Path | str | Mapping[str, Contract],
    keys: Mapping[str, str],
    **kwargs: Any,
) -> Iterator[RunningReceiver]:
    """Serve on loopback (free port by default) for the duration of the ``with`` block."""
    server = make_server(store_dir, contracts, keys, **kwargs)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RunningReceiver(server=server, base_url=server.base_url, thread=thread)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
