"""File exports (property-management CSVs, e-voting exports, registries): list the day's files on the export
share, download each, check its size and sha256 against the listing, land it at its exported path.

``GET <base>/<scope>/exports/<source>/<day>/`` -> ``{"files": [{"path", "size", "sha256"}]}``;
``GET .../<path>`` -> the bytes. ``scope`` is a community or ``district``. A file whose landed copy already has
the listed sha256 is not written again (a backfill changes nothing); a changed file replaces the old one whole.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from connectors.config import VendorConfig
from connectors.landing import write_atomic, write_provenance
from connectors.pull.http import HttpClient, PullError, RateLimiter, Retry

# landing source -> where its exports live: one district-wide share, or one per community
FILE_SOURCES: dict[str, str] = {
    "device_registry": "district",
    "sites": "district",
    "property_services": "community",
    "governance": "community",
    "parking": "community",  # the resident-vehicle register (registered_vehicles.csv)
}


@dataclass
class FilePullReport:
    source: str
    day: str
    listed: int = 0
    written: int = 0
    unchanged: int = 0
    bytes: int = 0
    requests: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)


def _safe(relpath: str) -> PurePosixPath:
    path = PurePosixPath(relpath)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") or p.startswith(".") for p in path.parts):
        raise PullError(f"export listing names an unsafe path {relpath!r}")
    return path


def pull_files(source: str, day: date, landing: Path, config: VendorConfig, *, retry: Retry | None = None,
               scopes: list[str] | None = None) -> FilePullReport:
    if source not in FILE_SOURCES:
        raise ValueError(f"{source!r} is not delivered as file exports; known: {', '.join(sorted(FILE_SOURCES))}")
    report = FilePullReport(source, day.isoformat())
    started = time.monotonic()
    if scopes is None:
        scopes = ["district"] if FILE_SOURCES[source] == "district" else [c.community_id for c in config.communities]
    client = HttpClient(retry=retry or Retry(), limiter=RateLimiter(20.0, burst=4))
    auth = {"Authorization": f"Bearer {config.export_token}"}
    for scope in scopes:
        base = f"{config.base_url}/{scope}/exports/{source}/{day.isoformat()}/"
        try:
            listing = client.request("GET", base, prepare=lambda: {"headers": auth})
            if listing.status_code != 200:
                raise PullError(f"listing {source} {scope}: HTTP {listing.status_code}")
            entries = listing.json().get("files") or []
            for entry in entries:
                rel = _safe(str(entry["path"]))
                report.listed += 1
                target = landing / source / day.isoformat() / Path(*rel.parts)
                if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == entry.get("sha256"):
                    report.unchanged += 1
                    continue
                r = client.request("GET", base + quote(rel.as_posix()), prepare=lambda: {"headers": auth})
                if r.status_code != 200:
                    raise PullError(f"download {source} {scope} {rel}: HTTP {r.status_code}")
                data = r.content
                sha = hashlib.sha256(data).hexdigest()
                if len(data) != int(entry.get("size", -1)) or sha != entry.get("sha256"):
                    raise PullError(f"download {source} {scope} {rel}: size or sha256 differs from the listing "
                                    f"(got {len(data)} bytes); not landed")
                write_atomic(target, data)
                write_provenance(landing, source, day.isoformat(), scope, rel.as_posix().replace("/", "__"), {
                    "source": source, "scope": scope, "path": rel.as_posix(), "size": len(data), "sha256": sha,
                    "fetched_at_ms": int(time.time() * 1000), "status": r.status_code})
                report.written += 1
                report.bytes += len(data)
        except (PullError, ValueError, KeyError) as exc:
            report.errors.append(f"{scope}: {exc}")
    report.requests = len(client.attempts)
    report.elapsed_s = round(time.monotonic() - started, 3)
    return report
