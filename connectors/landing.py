"""Writing into the landing zone: whole files only, durable before anyone is told, provenance beside.

``write_atomic`` writes aside (``.<name>.<random>.tmp`` in the target folder, hidden from every parser), fsyncs,
renames and fsyncs the folder, so a reader sees the old file or the new one, never part of one, and a file a
caller was told about survives a power cut. ``WIRE`` is the landing sub-folder for provenance and collector
state: it starts with ``_``, so no source is called that and retention treats it as a source of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

WIRE = "_wire"


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o640) -> str:
    """Write ``data`` to ``path`` whole and durably; returns its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return hashlib.sha256(data).hexdigest()


def provenance_path(landing: Path, source: str, day: str, folder: str, name: str) -> Path:
    return landing / WIRE / source / day / folder / f"{name}.json"


def write_provenance(landing: Path, source: str, day: str, folder: str, name: str, record: dict[str, Any]) -> Path:
    path = provenance_path(landing, source, day, folder, name)
    write_atomic(path, json.dumps(record, ensure_ascii=False, sort_keys=True, indent=1).encode())
    return path


def stale_temp(landing: Path) -> list[Path]:
    """Leftovers of killed writes (``.*.tmp``) anywhere under the landing zone, for ``neuron doctor``."""
    return sorted(landing.rglob(".*.tmp")) if landing.is_dir() else []
