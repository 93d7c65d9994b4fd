"""Push one incident version to the district's receiver (``POST /v1/incidents``) and read back what it holds.

The record is serialised canonically (sorted keys, compact UTF-8 JSON; values in the wire formats of the contract
``public_security.incidents``) and sent with the idempotency key ``<incident_id>:<version>``. Every attempt is
freshly signed (``signing.sign_request``); 5xx answers and network errors are retried with backoff, 4xx never:
they raise ``PublishRejected`` with the receiver's error code and reasons (``version_gap`` included, with the
version the receiver expects: ``expected_version``). A re-sent version is harmless: the receiver answers with the
receipt it issued the first time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import requests
import yaml

from exports.publishing.http_push import (
    _LOOPBACK_HOSTS,
    _RETRYABLE,
    IDEMPOTENCY_HEADER,
    PublishFailed,
    PublishRejected,
    Timeout,
)
from exports.publishing.signing import body_sha256, sign_request

INCIDENTS_PATH = "/v1/incidents"
CONTRACT_PATH = Path(__file__).resolve().parents[1] / "contracts" / "public_security" / "incidents.yaml"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # the contract's TIMESTAMP columns are Asia/Shanghai local minutes
PAGE = 1000


@cache
def column_types() -> dict[str, str]:
    """Column name -> DuckDB type, from the feed's contract (the document the district holds)."""
    raw = yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))
    return {str(c["name"]): " ".join(str(c["type"]).upper().split()) for c in raw["columns"]}


def _wire_value(name: str, value: Any, duckdb_type: str | None) -> Any:
    """A Python value in the contract's wire format; strings and other JSON values pass unchanged."""
    if duckdb_type == "DATE" and isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if duckdb_type == "TIMESTAMP" and isinstance(value, datetime):
        local = value.astimezone(LOCAL_TZ).replace(tzinfo=None) if value.tzinfo else value
        if local.second or local.microsecond:
            raise ValueError(f"{name}: {value} is not truncated to the minute")
        return local.strftime("%Y-%m-%dT%H:%M:00")
    if duckdb_type in ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE") and isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}: {value} has no time zone (TIMESTAMPTZ needs an offset)")
        return value.isoformat()
    if isinstance(value, date):
        raise ValueError(f"{name}: a {type(value).__name__} is not a {duckdb_type or 'known column'} value")
    return value


def incident_body(record: Mapping[str, Any]) -> bytes:
    """The canonical body of one incident version: sorted keys, compact, UTF-8, no NaN; dates as ``YYYY-MM-DD``,
    TIMESTAMP as the local minute ``YYYY-MM-DDTHH:MM:00``, TIMESTAMPTZ as ISO 8601 with its offset."""
    types = column_types()
    wire = {str(k): _wire_value(str(k), v, types.get(str(k))) for k, v in record.items()}
    return json.dumps(wire, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def incident_key(record: Mapping[str, Any]) -> str:
    """``<incident_id>:<version>``, the key of one incident version."""
    incident_id, version = record.get("incident_id"), record.get("version")
    if not isinstance(incident_id, str) or not incident_id or isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"a record needs an incident_id string and an integer version, got {incident_id!r}, "
                         f"{version!r}")
    return f"{incident_id}:{version}"


def expected_version(exc: PublishRejected) -> int | None:
    """The version the receiver expects next, from a ``version_gap`` or ``idempotency_conflict`` rejection."""
    try:
        parsed = json.loads(exc.body)
    except ValueError:
        return None
    value = parsed.get("expected_version") if isinstance(parsed, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _base(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError("plain http is only allowed to loopback hosts")
    return base_url.rstrip("/")


def _request(
    session: requests.Session,
    method: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    access_key: str,
    secret_key: str,
    timeout: Timeout,
    attempts: int,
    backoff_s: float,
    verify: bool | str,
) -> requests.Response:
    if attempts < 1 or not backoff_s >= 0:
        raise ValueError("attempts >= 1 and backoff_s >= 0 required")
    last_error = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        # a fresh date and nonce per attempt: a retried request must not look like a replay
        signed = sign_request(method, url, body, access_key=access_key, secret_key=secret_key)
        try:
            response = session.request(method, url, data=body, headers={**headers, **signed}, timeout=timeout,
                                       verify=verify, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise PublishFailed(method, url, attempt + 1, f"TLS error: {exc}") from exc
        except _RETRYABLE as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            continue
        if response.status_code >= 500:
            last_error = f"HTTP {response.status_code}: {response.text[:500]}"
            continue
        if response.status_code >= 300:
            raise PublishRejected(method, url, response.status_code, response.text)
        return response
    raise PublishFailed(method, url, attempts, last_error)


def push_incident_version(
    base_url: str,
    record: Mapping[str, Any],
    *,
    access_key: str,
    secret_key: str,
    timeout: Timeout = 10.0,
    attempts: int = 4,
    backoff_s: float = 0.5,
    session: requests.Session | None = None,
    verify: bool | str = True,
) -> dict[str, Any]:
    """Deliver one incident version and return the receiver's receipt (``receipt_id``, ``seq``, ``incident_id``,
    ``version``, ``received_at``, ``sha256``). Raises ``PublishRejected`` on a 4xx (e.g. 409 ``version_gap``:
    push the missing versions first; ``expected_version(exc)`` says which) and ``PublishFailed`` when the receiver
    stays unreachable or failing for all ``attempts``."""
    url = _base(base_url) + INCIDENTS_PATH
    key = incident_key(record)
    body = incident_body(record)
    response = _request(session or requests.Session(), "POST", url, body,
                        {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}, access_key=access_key,
                        secret_key=secret_key, timeout=timeout, attempts=attempts, backoff_s=backoff_s, verify=verify)
    try:
        receipt = response.json()
    except ValueError as exc:
        raise PublishFailed("POST", url, 1, f"non-JSON {response.status_code} answer") from exc
    ok = isinstance(receipt, dict) and f"{receipt.get('incident_id')}:{receipt.get('version')}" == key
    # a replay (200) returns the first receipt, whose sha256 is that of the body first sent
    if not ok or (response.status_code == 201 and receipt.get("sha256") != body_sha256(body)):
        raise PublishFailed("POST", url, 1, f"the receipt does not match incident version {key}: {receipt}")
    return receipt


def list_incidents(
    base_url: str,
    *,
    access_key: str,
    secret_key: str,
    since: int | None = None,
    timeout: Timeout = 10.0,
    attempts: int = 4,
    backoff_s: float = 0.5,
    session: requests.Session | None = None,
    verify: bool | str = True,
) -> list[dict[str, Any]]:
    """Every incident version the receiver holds after receipt ``seq`` ``since`` (all by default), in receive
    order, each as ``{"receipt": {...}, "record": {...}}``; follows the pages."""
    base = _base(base_url)
    http = session or requests.Session()
    items: list[dict[str, Any]] = []
    cursor = since or 0
    while True:
        url = f"{base}{INCIDENTS_PATH}?{urlencode({'since': cursor, 'limit': PAGE})}"
        page = _request(http, "GET", url, b"", {}, access_key=access_key, secret_key=secret_key, timeout=timeout,
                        attempts=attempts, backoff_s=backoff_s, verify=verify).json()
        items += page["items"]
        if not page["more"]:
            return items
        cursor = page["next_since"]
