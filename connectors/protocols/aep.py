"""CTWing AEP OpenAPI request signing (the AEP SDK's scheme, simplified to what the history query needs).

Headers ``application`` (the app key), ``timestamp`` (epoch ms) and ``signature`` =
Base64(HmacSHA1(secret, "application:<app>\\ntimestamp:<ms>\\n" + each query parameter sorted by name as
"name:value\\n" + body)). The platform rejects a timestamp more than 15 minutes from its clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl

MAX_SKEW_MS = 15 * 60 * 1000


class AepAuthError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


BAD_SIGNATURE, EXPIRED_TIMESTAMP, UNKNOWN_APPLICATION = 1010, 1011, 1012


def string_to_sign(application: str, timestamp: str, query: str, body: bytes = b"") -> str:
    params = "".join(f"{k}:{v}\n" for k, v in sorted(parse_qsl(query, keep_blank_values=True)))
    return f"application:{application}\ntimestamp:{timestamp}\n{params}{body.decode('utf-8', 'replace')}"


def _sig(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()


def sign(query: str, *, application: str, secret: str, body: bytes = b"", now_ms: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time() * 1000) if now_ms is None else now_ms)
    return {"application": application, "timestamp": stamp,
            "signature": _sig(secret, string_to_sign(application, stamp, query, body))}


def verify(query: str, headers: Mapping[str, str], secrets: Mapping[str, str], *, body: bytes = b"",
           now_ms: int | None = None, max_skew_ms: int = MAX_SKEW_MS) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    app = lower.get("application", "")
    if app not in secrets:
        raise AepAuthError(UNKNOWN_APPLICATION, "unknown application")
    stamp = lower.get("timestamp", "")
    if not hmac.compare_digest(_sig(secrets[app], string_to_sign(app, stamp, query, body)), lower.get("signature", "")):
        raise AepAuthError(BAD_SIGNATURE, "signature mismatch")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        off = int(stamp) - now
    except ValueError:
        raise AepAuthError(EXPIRED_TIMESTAMP, "timestamp is not epoch milliseconds") from None
    if abs(off) > max_skew_ms:
        raise AepAuthError(EXPIRED_TIMESTAMP, f"timestamp off by {off / 1000:.0f} s")
    return app
