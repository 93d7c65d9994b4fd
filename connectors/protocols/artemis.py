"""Hikvision iSecure Center / artemis OpenAPI request signing (AK/SK, ``X-Ca-*`` headers).

String to sign (formats.md §1.2; the artemis SDK and public clients, e.g. onlitec/access-control-system)::

    METHOD \\n Accept \\n Content-MD5 \\n Content-Type \\n Date \\n
    <each header named in X-Ca-Signature-Headers, lower-cased and sorted, as "name:value\\n">
    <path>[?<query pairs sorted by name, "k=v" joined by "&">]

signed with HMAC-SHA256 under the app secret, Base64 in ``X-Ca-Signature``. ``X-Ca-Timestamp`` (epoch ms) must be
within ``max_skew_ms`` of the platform's clock, and ``X-Ca-Nonce`` unused within that window. Replies are
``{"code": "0", "msg": "SUCCESS", "data": ...}``; authentication failures are HTTP 401 with the platform's codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

ACCEPT = "*/*"
CONTENT_TYPE = "application/json;charset=UTF-8"
SIGNED = ("x-ca-key", "x-ca-nonce", "x-ca-timestamp")
MAX_SKEW_MS = 15 * 60 * 1000  # artemis accepts a timestamp within 15 minutes
# error codes the platform answers with (seen in public clients; formats.md §1.2)
BAD_SIGNATURE = "0x02401003"
EXPIRED_TIMESTAMP = "0x02401004"
UNKNOWN_KEY = "0x02401000"
REPLAYED_NONCE = "0x02401005"


class ArtemisAuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


def _target(path_and_query: str) -> str:
    parts = urlsplit(path_and_query)
    pairs = sorted(parse_qsl(parts.query, keep_blank_values=True))
    query = "&".join(f"{k}={v}" if v != "" else k for k, v in pairs)
    return parts.path + (f"?{query}" if query else "")


def string_to_sign(method: str, path_and_query: str, headers: Mapping[str, str]) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    names = sorted(n.strip().lower() for n in lower.get("x-ca-signature-headers", "").split(",") if n.strip())
    lines = [method.upper(), lower.get("accept", ""), lower.get("content-md5", ""), lower.get("content-type", ""),
             lower.get("date", "")]
    signed = "".join(f"{n}:{lower.get(n, '')}\n" for n in names)
    return "\n".join(lines) + "\n" + signed + _target(path_and_query)


def signature(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()


def sign(method: str, path_and_query: str, *, app_key: str, app_secret: str, now_ms: int | None = None,
         nonce: str | None = None) -> dict[str, str]:
    """Headers for one request (``path_and_query`` as sent, e.g. ``/artemis/api/acs/v2/door/events``)."""
    headers = {
        "Accept": ACCEPT,
        "Content-Type": CONTENT_TYPE,
        "X-Ca-Key": app_key,
        "X-Ca-Timestamp": str(int(time.time() * 1000) if now_ms is None else now_ms),
        "X-Ca-Nonce": nonce or str(uuid.uuid4()),
        "X-Ca-Signature-Headers": ",".join(SIGNED),
    }
    headers["X-Ca-Signature"] = signature(app_secret, string_to_sign(method, path_and_query, headers))
    return headers


def verify(method: str, path_and_query: str, headers: Mapping[str, str], secrets: Mapping[str, str], *,
           now_ms: int | None = None, max_skew_ms: int = MAX_SKEW_MS, seen_nonce=None) -> str:
    """The app key of a correctly signed, fresh request; raises ``ArtemisAuthError`` otherwise.

    ``seen_nonce(key, nonce) -> bool`` (optional) answers True when the nonce was already used.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    key = lower.get("x-ca-key", "")
    if key not in secrets:
        raise ArtemisAuthError(UNKNOWN_KEY, "unknown X-Ca-Key")
    names = {n.strip().lower() for n in lower.get("x-ca-signature-headers", "").split(",") if n.strip()}
    if not {"x-ca-key", "x-ca-timestamp"} <= names:
        raise ArtemisAuthError(BAD_SIGNATURE, "X-Ca-Signature-Headers must cover x-ca-key and x-ca-timestamp")
    expected = signature(secrets[key], string_to_sign(method, path_and_query, headers))
    if not hmac.compare_digest(expected, lower.get("x-ca-signature", "")):
        raise ArtemisAuthError(BAD_SIGNATURE, "signature mismatch")
    try:
        stamp = int(lower.get("x-ca-timestamp", ""))
    except ValueError:
        raise ArtemisAuthError(EXPIRED_TIMESTAMP, "X-Ca-Timestamp is not epoch milliseconds") from None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - stamp) > max_skew_ms:
        raise ArtemisAuthError(EXPIRED_TIMESTAMP, f"X-Ca-Timestamp off by {(stamp - now) / 1000:.0f} s")
    nonce = lower.get("x-ca-nonce", "")
    if seen_nonce is not None and nonce and seen_nonce(key, nonce):
        raise ArtemisAuthError(REPLAYED_NONCE, "X-Ca-Nonce already used")
    return key
