"""Parking-cloud request signing (formats.md §1.3, modelled on a public parking cloud, 4pyun).

The request is a flat JSON object (pushes) or form; ``sign`` = upper-case hex MD5 of the non-empty top-level
fields except ``sign`` sorted by name as ``k=v`` joined by ``&``, then ``&app_secret=<secret>``. Nested values
(``payment_list``) are signed as their compact JSON. ``app_id`` names the key. A failed signature is answered
with **HTTP 200** and ``{"state": 0, "hint": "..."}``: a client must read the body, never trust the status.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any


class ParkingAuthError(Exception):
    pass


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def string_to_sign(fields: Mapping[str, Any], app_secret: str) -> str:
    pairs = sorted((k, _text(v)) for k, v in fields.items() if k != "sign" and v is not None and _text(v) != "")
    return "&".join(f"{k}={v}" for k, v in pairs) + f"&app_secret={app_secret}"


def sign(fields: Mapping[str, Any], app_secret: str) -> str:
    return hashlib.md5(string_to_sign(fields, app_secret).encode()).hexdigest().upper()


def signed(fields: Mapping[str, Any], app_id: str, app_secret: str) -> dict[str, Any]:
    """``fields`` with ``app_id`` and ``sign`` added."""
    out = {**fields, "app_id": app_id}
    out["sign"] = sign(out, app_secret)
    return out


def verify(fields: Mapping[str, Any], secrets: Mapping[str, str]) -> str:
    """The ``app_id`` of a correctly signed request; raises ``ParkingAuthError`` otherwise."""
    app_id = str(fields.get("app_id", ""))
    if app_id not in secrets:
        raise ParkingAuthError("unknown app_id")
    if not hmac.compare_digest(sign(fields, secrets[app_id]), str(fields.get("sign", "")).upper()):
        raise ParkingAuthError("sign error")
    return app_id


def unsigned(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The record as the vendor sent it, without the transport's ``app_id`` and ``sign``."""
    return {k: v for k, v in fields.items() if k not in ("app_id", "sign")}
