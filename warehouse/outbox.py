"""What the outbox holds, for ``meta.exports`` and ``meta.receipts``: every version of every batch, in either
outbox layout, and which version is the latest.

Layouts read (a day folder may hold both while an outbox migrates):

* version folders: ``<consumer>/<dataset>/<day>/v<N>/manifest.json`` with a ``<day>/latest`` pointer;
* the earlier one: ``<consumer>/<dataset>/<day>/manifest.json`` (the current version) with superseded versions
  under ``<day>/history/v<N>/manifest.json``.

The ``latest`` pointer may be a symlink to ``v<N>``, a folder holding that version's manifest, or a small file
naming it (``v3``, ``3`` or JSON with ``version``/``latest``/``path``); without a readable pointer the latest
is the earlier layout's current manifest, else the highest version. Folders starting with ``.`` (staging) or
``_`` (receipts) are not batches.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")
RECEIPT_FILE = re.compile(r"^v([1-9][0-9]*)\.json$")
POINTERS = ("latest", "latest.json")

VERSION_FOLDER = "version_folder"  # <day>/v<N>/manifest.json
LEGACY = "legacy"  # <day>/manifest.json
LEGACY_HISTORY = "legacy_history"  # <day>/history/v<N>/manifest.json


@dataclass(frozen=True)
class ExportVersion:
    path: Path  # the folder holding the manifest and the batch's files
    manifest: dict
    layout: str
    is_latest: bool

    @property
    def version(self) -> int:
        return int(self.manifest["version"])


@dataclass(frozen=True)
class ReceiptFile:
    path: Path
    receipt: dict
    is_latest: bool


def _visible(p: Path) -> bool:
    return p.is_dir() and not p.name.startswith((".", "_"))


def _version_of(text: str) -> int | None:
    m = re.search(r"(?:^|[/\\])v?([1-9][0-9]*)/?\s*$", text.strip())
    return int(m.group(1)) if m else None


def latest_pointer(day_dir: Path) -> int | None:
    """The version the day folder's ``latest`` pointer names, or None when there is none (or it is unreadable)."""
    for name in POINTERS:
        p = day_dir / name
        if p.is_symlink():
            return _version_of(os.readlink(p))
        if p.is_dir() and (p / "manifest.json").is_file():
            try:
                return int(json.loads((p / "manifest.json").read_text(encoding="utf-8"))["version"])
            except (ValueError, KeyError, TypeError):
                return None
        if p.is_file():
            text = p.read_text(encoding="utf-8").strip()
            try:
                data = json.loads(text)
            except ValueError:
                return _version_of(text)
            if isinstance(data, int):
                return data
            if isinstance(data, dict):
                for key in ("version", "latest", "path", "target"):
                    value = data.get(key)
                    if isinstance(value, int):
                        return value
                    if isinstance(value, str) and (v := _version_of(value)) is not None:
                        return v
            return None
    return None


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def day_versions(day_dir: Path) -> list[ExportVersion]:
    """Every version of one batch (one consumer, dataset and day), oldest first."""
    found: dict[int, tuple[Path, dict, str]] = {}
    for child in sorted(day_dir.iterdir()) if day_dir.is_dir() else []:
        if VERSION_DIR.match(child.name) and not child.is_symlink() and (child / "manifest.json").is_file():
            m = _read(child / "manifest.json")
            found[int(m["version"])] = (child, m, VERSION_FOLDER)
    current = None
    if (day_dir / "manifest.json").is_file():
        m = _read(day_dir / "manifest.json")
        current = int(m["version"])
        found.setdefault(current, (day_dir, m, LEGACY))
    for mpath in sorted((day_dir / "history").glob("v*/manifest.json")):
        if VERSION_DIR.match(mpath.parent.name):
            m = _read(mpath)
            found.setdefault(int(m["version"]), (mpath.parent, m, LEGACY_HISTORY))
    if not found:
        return []
    latest = latest_pointer(day_dir)
    if latest not in found:
        latest = current if current is not None else max(found)
    return [ExportVersion(p, m, layout, v == latest) for v, (p, m, layout) in sorted(found.items())]


def export_versions(outbox: Path) -> list[ExportVersion]:
    """Every batch version in the outbox, by consumer, dataset, day and version."""
    if not outbox.is_dir():
        return []
    out: list[ExportVersion] = []
    for consumer in sorted(filter(_visible, outbox.iterdir())):
        for dataset in sorted(filter(_visible, consumer.iterdir())):
            for day in sorted(filter(_visible, dataset.iterdir())):
                out += day_versions(day)
    return out


def receipt_files(outbox: Path) -> list[ReceiptFile]:
    """Every receipt a consumer gave (``<consumer>/_receipts/<dataset>/<day>/v<N>.json``); the highest version
    of a partition is its latest."""
    paths = sorted(p for p in outbox.glob("*/_receipts/*/*/v*.json") if RECEIPT_FILE.match(p.name)) \
        if outbox.is_dir() else []
    receipts = [(p, _read(p)) for p in paths]
    top: dict[tuple, int] = {}
    for _, r in receipts:
        key = (r["consumer"], r["dataset"], r["partition"])
        top[key] = max(top.get(key, 0), int(r["version"]))
    return [ReceiptFile(p, r, int(r["version"]) == top[(r["consumer"], r["dataset"], r["partition"])])
            for p, r in receipts]
