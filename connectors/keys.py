"""The identity of a vendor record on the wire, shared by the pull clients, reconciliation and the tests.

A record's key is the sha256 of its canonical JSON (keys sorted, UTF-8, no spaces) — of what the vendor sent,
not of what a transport wrapped around it: a ThingsBoard line's ``payload`` (the collector adds its own receive
time), one ISC event (not its ``OnEventNotify`` envelope), one GA/T 1400 ``MotorVehicleObject`` (not its
wrapper), a parking record without the transport's ``app_id``/``sign``. A line that is not JSON is keyed by its
bytes (stripped). Two deliveries of the same record have the same key whatever the channel (push, pull, file).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

TRANSPORT_FIELDS = ("app_id", "sign")
# the GA/T 1400 wrappers and key aliases (the "0bject" typo platforms send) the vehicles parser reads too: one list
ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vehicles"
_MISSING = object()


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


@lru_cache(maxsize=1)
def _wrappers() -> tuple[tuple[tuple[str, ...], str], ...]:
    with (ASSETS / "gat1400_wrappers.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in sorted(rows, key=lambda r: int(r["rank"])):
        steps = tuple(row["path"].removeprefix("$.").split("."))
        out.append((steps, row["accept"]))
    return tuple(out)


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    with (ASSETS / "gat1400_key_aliases.csv").open(encoding="utf-8") as fh:
        return {row["sent"]: row["canonical"] for row in csv.DictReader(fh)}


def canonical_name(name: str) -> str:
    return _aliases().get(name, name)


def _get(node: Any, name: str) -> Any:
    if not isinstance(node, dict):
        return _MISSING
    if name in node:
        return node[name]
    for key, value in node.items():
        if canonical_name(key) == name:
            return value
    return _MISSING


def _walk(node: Any, steps: tuple[str, ...]) -> Iterator[Any]:
    if not steps:
        yield node
        return
    step = steps[0]
    star = step.endswith("[*]")
    child = _get(node, step.removesuffix("[*]"))
    if child is _MISSING:
        return
    if star:
        if isinstance(child, list):
            for item in child:
                yield from _walk(item, steps[1:])
    else:
        yield from _walk(child, steps[1:])


def vehicle_objects(doc: Any) -> list[dict]:
    """Every ``MotorVehicleObject`` of a GA/T 1400 document, whatever its wrapper
    (assets/vehicles/gat1400_wrappers.csv, with the key aliases of gat1400_key_aliases.csv), dispositions
    included. A bare object (a dict with ``PassTime`` or ``MotorVehicleID``) is itself."""
    out: list[dict] = []
    for steps, accept in _wrappers():
        for value in _walk(doc, steps):
            if isinstance(value, list) and accept in ("list", "list_or_object"):
                out.extend(o for o in value if isinstance(o, dict))
            elif isinstance(value, dict) and accept in ("object", "list_or_object"):
                out.append(value)
    if not out and isinstance(doc, dict) and ("PassTime" in doc or "MotorVehicleID" in doc):
        out.append(doc)
    return out


def file_keys(source: str, data: bytes, name: str) -> list[str]:
    """The record keys in one landed file of ``source`` (gzip already undone), one per delivered record."""
    if source == "vehicle_passages" or name.endswith(".json"):
        try:
            return [record_key(source, o) for o in vehicle_objects(json.loads(data))]
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
