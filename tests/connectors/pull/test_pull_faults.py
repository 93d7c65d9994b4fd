"""Exactly-once landing by pull against the vendor simulator's ledger, one test per fault.

For every fault the platform can show, the day pulled into an empty landing zone holds every record the
platform's history holds for the source, each exactly once, and nothing else; what the faults cost (re-reads,
duplicates seen on pages, retries) is reported, not landed. The simulator enforces each protocol's
authentication and paging (simulator/vendor_sim); nothing here is mocked.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from connectors.pull.files import pull_files
from connectors.pull.http import Retry
from connectors.pull.run import pull_day
from connectors.reconcile import reconcile
from simulator.vendor_sim.ledger import landed_records
from tests.conftest import VENDOR_DAY

D = VENDOR_DAY.isoformat()
FAST = Retry(attempts=6, backoff_s=0.01, max_backoff_s=0.1, timeout_s=5.0)


def _history(platform, source: str) -> set[str]:
    led = platform.ledger.filter((pl.col("source") == source) & pl.col("in_history"))
    return set(led["key"].to_list())


def _pull(server, tmp_path: Path, source: str, **kw):
    landing = tmp_path / "landing"
    report = pull_day(source, VENDOR_DAY, landing, server.config, cursor_dir=tmp_path / "cursors",
                      retry=kw.pop("retry", FAST), page_size=kw.pop("page_size", 500),
                      rate_per_s=kw.pop("rate_per_s", 500.0), **kw)
    return landing, report


def _assert_exactly_once(platform, landing: Path, source: str) -> Counter:
    landed = landed_records(landing, D, source)
    counts = Counter(landed["key"].to_list())
    assert set(counts) == _history(platform, source), "landed records differ from the platform's history"
    assert max(counts.values()) == 1, f"{sum(v - 1 for v in counts.values())} records landed twice"
    return counts


@pytest.mark.parametrize("source", ["telemetry", "access_events", "vehicle_passages", "parking"])
def test_a_clean_day_lands_every_record_once(platform, server, tmp_path, source):
    landing, report = _pull(server, tmp_path, source)
    assert not report.errors
    _assert_exactly_once(platform, landing, source)
    t = report.totals()
    assert t["shortfall"] == 0 and t["records"] == len(_history(platform, source))
    # every pulled file has its provenance, naming each page fetched
    files = [p for p in (landing / source / D).rglob("pull-*")]
    assert files and all(
        json.loads((landing / "_wire" / source / D / f.parent.name / f"{f.name}.json").read_text())["pages"]
        for f in files)


def test_page_drift_is_caught_by_re_reading_the_window(platform, server, tmp_path):
    server.faults.page_drift = True
    landing, report = _pull(server, tmp_path, "access_events", page_size=100)
    _assert_exactly_once(platform, landing, "access_events")
    assert report.totals()["rereads"] > 0  # a naive pager would have skipped a record per drifted window


def test_duplicates_across_pages_are_counted_not_landed(platform, server, tmp_path):
    server.faults.duplicate_pages = True
    landing, report = _pull(server, tmp_path, "access_events", page_size=100)
    _assert_exactly_once(platform, landing, "access_events")
    assert report.totals()["page_duplicates"] > 0


def test_late_arrivals_are_found_by_the_overlap(platform, server, tmp_path):
    server.faults.late_share = 0.5
    landing, report = _pull(server, tmp_path, "telemetry", overlap_minutes=15)
    _assert_exactly_once(platform, landing, "telemetry")
    assert report.totals()["overlap_duplicates"] > 0


def test_without_overlap_late_arrivals_would_be_lost(platform, server, tmp_path):
    """The control for the test above: the fault is real, the overlap is what recovers it."""
    server.faults.late_share = 0.5
    landing, _ = _pull(server, tmp_path, "telemetry", overlap_minutes=0)
    landed = set(landed_records(landing, D, "telemetry")["key"].to_list())
    assert landed < _history(platform, "telemetry")


def test_429_with_retry_after_is_honoured(platform, server, tmp_path):
    server.faults.rate_limit = 7
    server.faults.retry_after_s = 1
    started = time.monotonic()
    landing, report = _pull(server, tmp_path, "vehicle_passages", window_minutes=240, threads=1)
    _assert_exactly_once(platform, landing, "vehicle_passages")
    limited = report.totals()["failed_attempts"]
    assert limited > 0 and time.monotonic() - started >= limited * 0.9  # waited Retry-After each time


def test_a_burst_of_5xx_is_retried(platform, server, tmp_path):
    server.faults.error_burst = 4
    landing, report = _pull(server, tmp_path, "parking")
    _assert_exactly_once(platform, landing, "parking")
    assert report.totals()["failed_attempts"] >= 4


def test_a_slow_platform_is_retried_past_the_timeout(platform, server, tmp_path):
    server.faults.slow_s = 0.4
    slow = Retry(attempts=3, backoff_s=0.01, timeout_s=0.2)
    landing, report = _pull(server, tmp_path, "parking", window_minutes=720, retry=slow)
    assert report.errors and all("ReadTimeout" in e for e in report.errors)  # every attempt timed out
    assert not any((landing / "parking" / D).rglob("pull-*")), "nothing half-pulled is landed"
    server.faults.slow_s = 0.0
    landing, report = _pull(server, tmp_path, "parking", window_minutes=720)
    _assert_exactly_once(platform, landing, "parking")


def test_a_platform_that_is_down_then_back_lands_the_day_once(platform, server, tmp_path):
    server.faults.down = True
    landing, report = _pull(server, tmp_path, "vehicle_passages", retry=Retry(attempts=2, backoff_s=0.01))
    assert report.errors and all("ConnectionError" in e for e in report.errors)
    server.faults.down = False
    landing, report = _pull(server, tmp_path, "vehicle_passages")
    assert not report.errors
    _assert_exactly_once(platform, landing, "vehicle_passages")


@pytest.mark.parametrize("source", ["telemetry", "access_events"])
def test_clock_skew_beyond_the_signature_tolerance_is_corrected(platform, server, tmp_path, source):
    server.faults.clock_skew_s = 3600  # the platform's clock is an hour ahead: every signature is "expired"
    landing, report = _pull(server, tmp_path, source)
    assert not report.errors
    _assert_exactly_once(platform, landing, source)


def test_backfilling_a_day_again_is_idempotent(platform, server, tmp_path):
    landing, _ = _pull(server, tmp_path, "access_events")
    before = {p: p.read_bytes() for p in (landing / "access_events" / D).rglob("pull-*")}
    server.faults.page_drift = True  # a different paging on the second pull changes nothing landed
    landing, report = _pull(server, tmp_path, "access_events", page_size=100)
    after = {p: p.read_bytes() for p in (landing / "access_events" / D).rglob("pull-*")}
    assert after == before and not report.errors


def test_the_cursor_resumes_where_the_last_pull_stopped(platform, server, tmp_path):
    start, _ = _day_ms()
    noon = start + 12 * 3600_000
    landing, first = _pull(server, tmp_path, "parking", until_ms=noon, incremental=True)
    cursors = json.loads((tmp_path / "cursors" / "parking.json").read_text())
    assert set(cursors.values()) == {noon}
    landing, second = _pull(server, tmp_path, "parking", incremental=True)
    assert min(w.window.own_start_ms for w in second.windows) >= noon  # the morning is not read again
    _assert_exactly_once(platform, landing, "parking")


def test_push_and_reconciliation_land_every_record_once(platform, server, tmp_path):
    """The collector's files stand in for what was pushed: the pull lands only the gap, and reconciliation,
    counted from the landing files, balances."""
    landing = tmp_path / "landing"
    pushed_folder = landing / "parking" / D
    history = platform.ledger.filter((pl.col("source") == "parking") & pl.col("in_history"))
    # half of each community's records arrived by push (one minute file per community)
    for community in history["community_id"].unique().to_list():
        _, first = _pull(server, tmp_path / community, "parking", scopes=[community])
        pulled = landed_records(tmp_path / community / "landing", D, "parking")
        lines = [line for f in sorted((tmp_path / community / "landing" / "parking" / D / community).glob("pull-*"))
                 for line in f.read_bytes().splitlines()]
        (pushed_folder / community).mkdir(parents=True, exist_ok=True)
        (pushed_folder / community / "push-202611200800-c1.ndjson").write_bytes(b"\n".join(lines[::2]) + b"\n")
        assert len(pulled) == len(lines)
    landing, report = _pull(server, tmp_path, "parking")
    _assert_exactly_once(platform, landing, "parking")
    for community in history["community_id"].unique().to_list():
        r = reconcile(landing, "parking", D, community)
        assert r.balanced and r.pushed > 0 and r.reconciled > 0
        assert r.pushed + r.reconciled == r.platform_total


def test_file_exports_land_byte_for_byte_and_a_second_pull_writes_nothing(platform, server, tmp_path):
    landing = tmp_path / "landing"
    for source in ("device_registry", "sites", "property_services", "governance", "parking"):
        report = pull_files(source, VENDOR_DAY, landing, server.config, retry=FAST)
        assert not report.errors and report.written == report.listed > 0, source
    for row in platform.files.iter_rows(named=True):
        import hashlib
        landed = landing / row["source"] / D / row["relpath"]
        assert hashlib.sha256(landed.read_bytes()).hexdigest() == row["sha256"], row["relpath"]
    again = pull_files("governance", VENDOR_DAY, landing, server.config, retry=FAST)
    assert again.written == 0 and again.unchanged == again.listed


def test_a_wrong_secret_is_an_error_naming_the_platform_never_a_silent_empty_day(platform, server, tmp_path):
    import dataclasses

    bad = dataclasses.replace(server.config, communities=tuple(
        dataclasses.replace(c, parking_app_secret="wrong") for c in server.config.communities))
    report = pull_day("parking", VENDOR_DAY, tmp_path / "landing", bad, cursor_dir=tmp_path / "c", retry=FAST)
    assert report.errors and all("sign error" in e for e in report.errors)  # HTTP 200 with a hint, read as failure
    assert not any((tmp_path / "landing").rglob("pull-*"))


def _day_ms() -> tuple[int, int]:
    from connectors.pull.run import day_span
    return day_span(VENDOR_DAY, "Asia/Shanghai")


def test_the_per_vendor_rate_limit_spaces_requests(platform, server, tmp_path):
    started = time.monotonic()
    _, report = _pull(server, tmp_path, "vehicle_passages", scopes=[server.config.communities[0].community_id],
                      window_minutes=120, rate_per_s=20.0)
    elapsed = time.monotonic() - started
    assert report.requests >= 13 and elapsed >= (report.requests - 2) / 20.0
