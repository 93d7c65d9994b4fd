"""AK/SK HMAC-SHA256 request signing shared by the push client and the receiver, modelled on the
artemis / API-gateway ``X-Ca-*`` scheme (formats.md §1.2) with one fixed string-to-sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

HEADER_KEY = "X-Neuron-Key"
HEADER_DATE = "X-Neuron-Date"
HEADER_NONCE = "X-Neuron-Nonce"
HEADER_CONTENT_SHA256 = "X-Neuron-Content-SHA256"
HEADER_SIGNATURE = "X-Neuron-Signature"
SIGNED_HEADERS = (HEADER_KEY, HEADER_DATE, HEADER_NONCE, HEADER_CONTENT_SHA256, HEADER_SIGNATURE)
DEFAULT_MAX_SKEW = 300.0
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


class SignatureError(Exception):
    """A request failed authentication; ``code`` is the machine-readable reason, ``status`` the HTTP status."""

    status = 401

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ReplayError(SignatureError):
    """A correctly signed request reused a nonce already seen inside the freshness window."""

    status = 409


def canonical_target(path_and_query: str) -> str:
    """``/path?a=1&b=2``: path re-encoded uniformly, query pairs sorted; proxies may re-encode either."""
    parts = urlsplit(path_and_query)
    path = quote(unquote(parts.path or "/"), safe="/")
    pairs = sorted(parse_qsl(parts.query, keep_blank_values=True))
    query = urlencode(pairs, quote_via=quote, safe="")
    return f"{path}?{query}" if query else path


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def string_to_sign(
    method: str, target: str, content_sha256: str, date: str, nonce: str, access_key: str
) -> str:
    return "\n".join((method.upper(), canonical_target(target), content_sha256, date, nonce, access_key))


def compute_signature(secret_key: str, message: str) -> str:
    mac = hmac.new(secret_key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def http_date(moment: datetime | None = None) -> str:
    """RFC 7231 IMF-fixdate, e.g. ``Sat, 21 Nov 2026 08:00:00 GMT``."""
    return format_datetime((moment or datetime.now(UTC)).astimezone(UTC), usegmt=True)


def sign_request(
    method: str,
    url: str,
    body: bytes = b"",
    *,
    access_key: str,
    secret_key: str,
    now: datetime | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The five ``X-Neuron-*`` headers for one request; ``url`` may be absolute or just path+query."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    date = http_date(now)
    nonce = nonce or secrets.token_hex(16)
    digest = body_sha256(body)
    signature = compute_signature(secret_key, string_to_sign(method, target, digest, date, nonce, access_key))
    return {
        HEADER_KEY: access_key,
        HEADER_DATE: date,
        HEADER_NONCE: nonce,
        HEADER_CONTENT_SHA256: digest,
        HEADER_SIGNATURE: signature,
    }


class NonceCache:
    """Nonces seen per access key, kept as long as a request carrying them could still pass the date check."""

    def __init__(self, ttl: float = 2 * DEFAULT_MAX_SKEW) -> None:
        self.ttl = ttl
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def check_and_add(self, access_key: str, nonce: str) -> bool:
        """True if the nonce is fresh (and remember it); False if it was already used."""
        now = time.monotonic()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now:
                self._seen.popitem(last=False)
            if (access_key, nonce) in self._seen:
                return False
            self._seen[(access_key, nonce)] = now + self.ttl
            return True


def _header_map(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = {name.lower() for name in SIGNED_HEADERS}
    found: dict[str, str] = {}
    for name, value in items:
        lname = name.lower()
        if lname in wanted:
            if lname in found:
                raise SignatureError("missing_signature", f"header {name} sent more than once")
            found[lname] = value
    return found


def verify_request(
    method: str,
    target: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    secrets_by_key: Mapping[str, str],
    *,
    max_skew: float = DEFAULT_MAX_SKEW,
    now: datetime | None = None,
    nonces: NonceCache | None = None,
) -> str:
    """Return the authenticated access key or raise ``SignatureError`` / ``ReplayError``.

    The nonce is remembered only after the signature checks out, so forged requests cannot burn nonces.
    """
    found = _header_map(headers)
    missing = [name for name in SIGNED_HEADERS if name.lower() not in found]
    if missing:
        raise SignatureError("missing_signature", f"missing header(s): {', '.join(missing)}")
    access_key = found[HEADER_KEY.lower()]
    date = found[HEADER_DATE.lower()]
    nonce = found[HEADER_NONCE.lower()]
    claimed_digest = found[HEADER_CONTENT_SHA256.lower()]
    signature = found[HEADER_SIGNATURE.lower()]
    secret_key = secrets_by_key.get(access_key)
    if secret_key is None:
        raise SignatureError("unknown_key", "unknown access key")
    if not NONCE_RE.fullmatch(nonce):
        raise SignatureError("bad_nonce", f"{HEADER_NONCE} must match {NONCE_RE.pattern}")
    try:
        sent_at = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        sent_at = None
    if sent_at is None or sent_at.tzinfo is None:
        raise SignatureError("bad_date", f"{HEADER_DATE} must be an RFC 7231 date in GMT")
    skew = abs(((now or datetime.now(UTC)) - sent_at).total_seconds())
    if skew > max_skew:
        raise SignatureError(
            "stale_date", f"{HEADER_DATE} is {skew:.0f}s away from server time (max {max_skew:.0f}s)"
        )
    digest = body_sha256(body)
    if not hmac.compare_digest(digest.encode(), claimed_digest.lower().encode("utf-8", "replace")):
        raise SignatureError("content_sha256_mismatch", f"{HEADER_CONTENT_SHA256} does not match the body")
    expected = compute_signature(secret_key, string_to_sign(method, target, digest, date, nonce, access_key))
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise SignatureError("bad_signature", "signature does not match")
    if nonces is not None and not nonces.check_and_add(access_key, nonce):
        raise ReplayError("replayed_nonce", f"{HEADER_NONCE} was already used; sign every request afresh")
    return access_key
