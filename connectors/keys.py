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


def _motor_vehicles(doc: Any) -> list[Any]:
    """Every MotorVehicleObject inside a GA/T 1400 document, whichever wrapper carried it."""
    if not isinstance(doc, dict):
        return []
    out: list[Any] = []

    def listed(value: Any, inner: str) -> list[Any]:
        if isinstance(value, dict):
            value = value.get(inner, [])
        return value if isinstance(value, list) else [value] if isinstance(value, dict) else []

    if "MotorVehicleListObject" in doc:
        out += listed(doc["MotorVehicleListObject"], "MotorVehicleObject")
    if "MotorVehicleObjectList" in doc:
        out += listed(doc["MotorVehicleObjectList"], "MotorVehicleObject")
    for wrapper, item in (("SubscribeNotificationListObject", "SubscribeNotificationObject"),
                          ("DispositionNotificationListObject", "DispositionNotificationObject")):
        if wrapper in doc and isinstance(doc[wrapper], dict):
            notes = doc[wrapper].get(item, [])
            for note in notes if isinstance(notes, list) else [notes]:
                if not isinstance(note, dict):
                    continue
                if "MotorVehicleObjectList" in note:
                    out += listed(note["MotorVehicleObjectList"], "MotorVehicleObject")
                if isinstance(note.get("MotorVehicleObject"), dict):
                    out.append(note["MotorVehicleObject"])
    return [o for o in out if isinstance(o, dict)]


def file_keys(source: str, data: bytes, name: str) -> list[str]:
    """The record keys in one landed file of ``source`` (gzip already undone), one per delivered record."""
    if source == "vehicle_passages" or name.endswith(".json"):
        try:
            return [record_key(source, o) for o in _motor_vehicles(json.loads(data))]
        except ValueError:
            return [raw_key(data)]
    keys = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            keys.append(raw_key(line))
            continue
        if source == "access_events" and isinstance(obj, dict) and isinstance(obj.get("params"), dict):
            events = obj["params"].get("events") or []
            keys += [record_key(source, e) for e in (events if isinstance(events, list) else [events])]
        else:
            keys.append(record_key(source, obj))
    return keys
