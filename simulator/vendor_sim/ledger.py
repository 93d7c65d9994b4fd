"""Record identity and the extraction of records from what the platforms send (and what Neuron lands).

The identity is ``connectors.keys`` (shared with the pull clients and the collector, so nobody can drift): the
sha256 of the canonical JSON of the vendor's record — a telemetry message (a ThingsBoard line's ``payload``),
one ISC event (not its ``OnEventNotify`` envelope), one GA/T 1400 ``MotorVehicleObject`` (not its wrapper), a
parking record without ``app_id``/``sign`` — or, for a line that is not JSON, of its bytes stripped.

``landed_records`` reads a landing zone (Neuron's layout of docs/connectors.md, or the simulator's own original
layout) and returns the key of every record in it, so tests compare a landing zone against the ledger.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from connectors.keys import canonical, canonical_name, digest, identity, vehicle_objects

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "vehicles"
_MISSING = object()


def raw_key(line: bytes | str) -> str:
    """The key of a line that is not JSON: sha256 of its bytes, whitespace stripped."""
    data = line.encode() if isinstance(line, str) else bytes(line)
    return digest(data.strip())


def record_key(source: str, obj_or_raw: Any) -> str:
    """The key of one record: a parsed object (an event, a ``MotorVehicleObject``, a message, a parking record)
    or its raw text/bytes (parsed first; a line that does not parse is keyed by its bytes)."""
    if isinstance(obj_or_raw, bytes | bytearray | str):
        data = obj_or_raw.encode() if isinstance(obj_or_raw, str) else bytes(obj_or_raw)
        try:
            obj = json.loads(data)
        except ValueError:
            return raw_key(data)
        return digest(canonical(identity(source, obj)))
    return digest(canonical(identity(source, obj_or_raw)))


# --- ISC: events inside OnEventNotify envelopes ---------------------------------------------------------------


def envelope_events(obj: Any) -> list[dict] | None:
    """The events of an ``OnEventNotify`` envelope; None when ``obj`` is not an envelope."""
    if not isinstance(obj, dict):
        return None
    params = obj.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("events"), list):
        return None
    return [e for e in params["events"] if isinstance(e, dict)]


# --- GA/T 1400: MotorVehicleObjects inside any wrapper ---------------------------------------------------------


def document_wrapper(doc: Any) -> str | None:
    """The canonical name of a document's top-level wrapper (``MotorVehicleListObject``...)."""
    if isinstance(doc, dict) and len(doc) == 1:
        return canonical_name(next(iter(doc)))
    return None


# --- one parsed unit -> its records ---------------------------------------------------------------------------


def records_of(source: str, obj: Any) -> list[Any]:
    """The records of one parsed line or document of ``source`` (before identity)."""
    if source == "access_events":
        events = envelope_events(obj)
        if events is not None:
            return events
        return [obj] if isinstance(obj, dict) else []
    if source == "vehicle_passages":
        return vehicle_objects(obj)
    if isinstance(obj, list):  # a JSON array of records (a .json file of another source)
        return [o for o in obj if isinstance(o, dict)]
    return [obj]


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        for line in fh:
            if line.strip():
                yield line


def _hidden(rel: Path) -> bool:
    return any(p.startswith(".") for p in rel.parts) or rel.name.endswith((".part", ".tmp"))


def landed_files(landing: Path, day: str, source: str) -> list[Path]:
    root = Path(landing) / source / str(day)
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or _hidden(path.relative_to(root)):
            continue
        if path.name.endswith((".ndjson", ".ndjson.gz", ".json")):
            out.append(path)
    return out


def keys_of_file(path: Path, source: str) -> list[str]:
    """The key of every record in one landed file (.ndjson[.gz]: one unit a line; .json: one document)."""
    keys: list[str] = []
    if path.name.endswith(".json"):
        units: Iterator[bytes] = iter([path.read_bytes()])
    else:
        units = _lines(path)
    for unit in units:
        try:
            obj = json.loads(unit)
        except ValueError:
            keys.append(raw_key(unit))
            continue
        keys.extend(digest(canonical(identity(source, r))) for r in records_of(source, obj))
    return keys


def landed_records(landing: Path, day: str, source: str) -> pl.DataFrame:
    """``key, file`` for every record under ``landing/<source>/<day>/`` (file relative to that folder).

    Reads ``.ndjson``, ``.ndjson.gz`` and ``.json``; skips hidden files, ``.part`` and ``.tmp``. Access:
    the events inside envelopes; vehicles: the objects inside any wrapper; telemetry ThingsBoard lines: their
    payload; parking: without ``app_id``/``sign``; a line that is not JSON: its bytes.
    """
    root = Path(landing) / source / str(day)
    keys: list[str] = []
    files: list[str] = []
    for path in landed_files(landing, day, source):
        ks = keys_of_file(path, source)
        keys.extend(ks)
        files.extend([str(path.relative_to(root))] * len(ks))
    return pl.DataFrame({"key": keys, "file": files}, schema={"key": pl.String, "file": pl.String})
