"""Pull a source for a day: every scope, window by window, page by page; land each window as one file.

For each window the pager reads pages until the platform's ``total`` is reached; records are keyed
(``connectors.keys``) and kept once. If fewer distinct records arrived than the platform's ``total`` (a record
moved between pages while we paged), the window is read again and the reads are united, up to
``max_rereads`` times; a shortfall that remains is reported, never hidden. A record already landed by an
earlier window of the same day (the overlap) is not landed again but counted as ``overlap_duplicates``.

The window's file is written whole (``connectors.landing.write_atomic``) with a provenance record in
``landing/_wire/``; its name depends only on the window, so pulling a day again replaces its files with the
same names: backfills are idempotent. The cursor advances after each window is on disk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from connectors.config import VendorConfig
from connectors.keys import record_key
from connectors.landing import write_atomic, write_provenance
from connectors.pull.http import HttpClient, PullError, RateLimiter, Retry
from connectors.pull.protocols import CtwingHistory, IscEvents, Page, ParkingQuery, ViidMotorVehicles
from connectors.pull.windows import Cursor, Window, day_bounds, day_windows
from connectors.reconcile import PUSH_PREFIX, landed_keys, save_history_keys

PULL_PREFIX = "pull-"


class Pager(Protocol):
    page_size: int

    def fetch(self, scope: str, start_ms: int, end_ms: int, page: int) -> Page: ...


def _ndjson(records: list[Any]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for r in records)


def _isc_envelopes(records: list[Any]) -> bytes:
    """ISC history items are events with their ``ability``; land them as the OnEventNotify the push sends."""
    lines = []
    for item in records:
        event = dict(item)
        ability = event.pop("ability", "event_acs")
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        send = data.get("ExtReceiveTime") or event.get("happenTime")
        lines.append({"method": "OnEventNotify", "params": {"sendTime": send, "ability": ability, "events": [event]}})
    return _ndjson(lines)


def _viid_list(records: list[Any]) -> bytes:
    return json.dumps({"MotorVehicleListObject": {"MotorVehicleObject": records}}, ensure_ascii=False).encode()


def _isc_key(source: str, item: Any) -> str:
    return record_key(source, {k: v for k, v in item.items() if k != "ability"} if isinstance(item, dict) else item)


@dataclass(frozen=True)
class PullSource:
    """How one landing source is pulled: its pager, its scopes, and how a window's records become a file."""

    name: str
    pager: Callable[[VendorConfig, HttpClient], Pager]
    scopes: Callable[[VendorConfig], list[str]]
    suffix: str
    render: Callable[[list[Any]], bytes]
    key: Callable[[str, Any], str] = record_key
    rate_per_s: float = 20.0
    per_scope_limit: bool = True  # one estate = one host: the rate limit is per scope

    def file_name(self, scope: str, window: Window, tz: ZoneInfo) -> str:
        who = f"{scope}-" if self.name == "telemetry" else ""
        return f"{PULL_PREFIX}{who}{window.name(tz)}{self.suffix}"


def _communities(config: VendorConfig) -> list[str]:
    return [c.community_id for c in config.communities]


TELEMETRY_PLATFORMS = ("ctwing", "iotda", "thingsboard")

SOURCES: dict[str, PullSource] = {
    "telemetry": PullSource("telemetry", CtwingHistory, lambda c: list(TELEMETRY_PLATFORMS), ".ndjson", _ndjson,
                            rate_per_s=10.0, per_scope_limit=False),
    "access_events": PullSource("access_events", IscEvents, _communities, ".ndjson", _isc_envelopes, key=_isc_key),
    "vehicle_passages": PullSource("vehicle_passages", ViidMotorVehicles, _communities, ".json", _viid_list),
    "parking": PullSource("parking", ParkingQuery, _communities, ".ndjson", _ndjson),
}


@dataclass
class WindowResult:
    scope: str
    window: Window
    file: str
    pages: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0  # distinct records landed in this window's file
    page_duplicates: int = 0  # the same record twice within the window's reads (paging artefacts)
    overlap_duplicates: int = 0  # already landed: by an earlier window of the day, or pushed
    rereads: int = 0
    shortfall: int = 0  # platform total minus distinct records read, after every re-read


@dataclass
class PullReport:
    source: str
    day: str
    windows: list[WindowResult] = field(default_factory=list)
    requests: int = 0
    failed_attempts: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        w = self.windows
        return {"files": len(w), "records": sum(x.records for x in w),
                "page_duplicates": sum(x.page_duplicates for x in w),
                "overlap_duplicates": sum(x.overlap_duplicates for x in w),
                "rereads": sum(x.rereads for x in w), "shortfall": sum(x.shortfall for x in w),
                "requests": self.requests, "failed_attempts": self.failed_attempts, "bytes": self.bytes}


def read_window(pager: Pager, source: PullSource, scope: str, window: Window, max_rereads: int = 3,
                ) -> tuple[dict[str, Any], WindowResult]:
    """Every distinct record of the window (by key, first-seen order) and what it took to get them."""
    result = WindowResult(scope, window, "")
    seen: dict[str, Any] = {}
    total = 0
    for read in range(max_rereads + 1):
        page, raw, in_read = 1, 0, set()
        while True:
            got = pager.fetch(scope, window.start_ms, window.end_ms, page)
            total = got.total
            raw += len(got.records)
            result.pages.append({"read": read + 1, "page": page, "status": got.status, "records": len(got.records),
                                 "total": got.total, "bytes": got.bytes, "fetched_at_ms": int(time.time() * 1000)})
            for record in got.records:
                key = source.key(source.name, record)
                in_read.add(key)
                seen.setdefault(key, record)
            if not got.records or len(got.records) < pager.page_size or page * pager.page_size >= total:
                break
            page += 1
            if page > total // max(1, pager.page_size) + 3:
                raise PullError(f"{source.name} {scope}: paging does not end (page {page}, total {total})")
        result.page_duplicates += raw - len(in_read)
        if len(seen) >= total:
            break
        result.rereads += 1
    result.shortfall = max(0, total - len(seen))
    return seen, result


def pull_day(source_name: str, day: date, landing: Path, config: VendorConfig, *, cursor_dir: Path,
             tz: str = "Asia/Shanghai", window_minutes: int = 60, overlap_minutes: int = 15,
             until_ms: int | None = None, incremental: bool = False, page_size: int = 500,
             retry: Retry | None = None, threads: int = 4, scopes: Iterable[str] | None = None,
             rate_per_s: float | None = None) -> PullReport:
    """Pull ``source_name`` for ``day`` into ``landing`` (see module doc). ``incremental`` starts each scope at
    its cursor instead of the day's start; ``until_ms`` stops at the last window that has settled."""
    if source_name not in SOURCES:
        raise ValueError(f"no pull protocol for source {source_name!r}; known: {', '.join(sorted(SOURCES))}")
    source, zone = SOURCES[source_name], ZoneInfo(tz)
    report = PullReport(source_name, day.isoformat())
    started = time.monotonic()
    cursor = Cursor(cursor_dir, source_name)
    rate = source.rate_per_s if rate_per_s is None else rate_per_s
    shared = RateLimiter(rate, burst=2)
    wanted = list(scopes) if scopes is not None else source.scopes(config)

    def one_scope(scope: str) -> tuple[list[WindowResult], HttpClient]:
        client = HttpClient(retry=retry or Retry(),
                            limiter=RateLimiter(rate, burst=2) if source.per_scope_limit else shared)
        pager = source.pager(config, client, page_size)
        start_at = cursor.load().get(scope) if incremental else None
        folder = landing / source_name / day.isoformat() / scope
        windows = day_windows(day, zone, window_minutes, overlap_minutes, until_ms, start_at)
        landed = _landed_keys(source, folder, {source.file_name(scope, w, zone) for w in windows})
        # what the collector already landed: the pull only fills the gaps (reconciliation)
        landed |= landed_keys(landing, source_name, day.isoformat(), scope, PUSH_PREFIX)
        history: set[str] = set()
        out = []
        for window in windows:
            records, result = read_window(pager, source, scope, window)
            history.update(records)
            # in key order: the file's bytes do not depend on how the platform paged this time (idempotent)
            fresh = sorted(((k, r) for k, r in records.items() if k not in landed), key=lambda kr: kr[0])
            result.overlap_duplicates = len(records) - len(fresh)
            result.records = len(fresh)
            result.file = source.file_name(scope, window, zone)
            path = folder / result.file
            if fresh or window.own_start_ms < window.end_ms:
                sha = write_atomic(path, source.render([r for _, r in fresh]))
                landed.update(k for k, _ in fresh)
                write_provenance(landing, source_name, day.isoformat(), scope, result.file, {
                    "source": source_name, "scope": scope, "window_start_ms": window.start_ms,
                    "window_end_ms": window.end_ms, "pages": result.pages, "records": result.records,
                    "page_duplicates": result.page_duplicates, "overlap_duplicates": result.overlap_duplicates,
                    "rereads": result.rereads, "shortfall": result.shortfall, "file_sha256": sha})
            cursor.advance(scope, window.end_ms)
            out.append(result)
        if not incremental and until_ms is None:  # the whole day was read: the platform's total for the day
            save_history_keys(landing, source_name, day.isoformat(), scope, history)
        return out, client

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = {scope: pool.submit(one_scope, scope) for scope in wanted}
        for scope, future in futures.items():
            try:
                results, client = future.result()
            except PullError as exc:
                report.errors.append(f"{scope}: {exc}")
                continue
            report.windows += results
            report.requests += len(client.attempts)
            report.failed_attempts += sum(1 for a in client.attempts if a.status is None or a.status >= 400)
            report.bytes += sum(p["bytes"] for r in results for p in r.pages)
    report.elapsed_s = round(time.monotonic() - started, 3)
    return report


def _landed_keys(source: PullSource, folder: Path, rewriting: set[str]) -> set[str]:
    """Keys of records already landed by pulls of this day in ``folder``, except files about to be rewritten."""
    keys: set[str] = set()
    if not folder.is_dir():
        return keys
    for path in folder.glob(f"{PULL_PREFIX}*{source.suffix}"):
        if path.name in rewriting:
            continue
        for record in parse_pulled(source.name, path.read_bytes()):
            keys.add(source.key(source.name, record))
    return keys


def parse_pulled(source_name: str, data: bytes) -> list[Any]:
    """The records of a file a pull wrote (inverse of the source's ``render``)."""
    if source_name == "vehicle_passages":
        objects = json.loads(data)["MotorVehicleListObject"]["MotorVehicleObject"]
        return list(objects)
    records = [json.loads(line) for line in data.splitlines() if line.strip()]
    if source_name == "access_events":
        return [{**ev, "ability": env["params"]["ability"]} for env in records for ev in env["params"]["events"]]
    return records


def day_span(day: date, tz: str) -> tuple[int, int]:
    return day_bounds(day, ZoneInfo(tz))
