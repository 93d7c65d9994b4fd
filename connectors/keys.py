"""The identity of a vendor record on the wire, shared by the pull clients, reconciliation and the tests.

A record's key is the sha256 of its canonical JSON (keys sorted, UTF-8, no spaces) — of what the vendor sent,
not of what a transport wrapped around it: a ThingsBoard line's ``payload`` (the collector adds its own receive
time), one ISC event (not its ``OnEventNotify`` envelope), one GA/T 1400 ``MotorVehicleObject`` (not its
wrapper), a parking record without the transport's ``app_id``/``sign``. A line that is not JSON is keyed by its
bytes (stripped). Two deliveries of the same record have the same key whatever the channel (push, pull, file).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

TRANSPORT_FIELDS = ("app_id", "sign")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def identity(source: str, obj: Any) -> Any:
    """The part of a landed object that is the vendor's record (see module doc)."""
    if source == "telemetry" and isinstance(obj, dict) and "payload" in obj and "received_ms" in obj \
            and "topic" in obj:
        return obj["payload"]
    if source == "parking" and isinstance(obj, dict):
        return {k: v for k, v in obj.items() if k not in TRANSPORT_FIELDS}
    return obj


def record_key(source: str, obj: Any) -> str:
    return digest(canonical(identity(source, obj)))


def raw_key(line: bytes) -> str:
    return digest(line.strip())
