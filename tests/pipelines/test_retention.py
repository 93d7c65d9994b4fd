"""Landing retention: old published days are purged, unpublished ones are kept and reported."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipelines.retention import purge_landing


def _day(root: Path, source: str, day: str) -> Path:
    d = root / "landing" / source / day
    d.mkdir(parents=True)
    (d / "x.ndjson.gz").write_bytes(b"raw" * 10)
    return d


def _publish(root: Path, day: str) -> None:
    m = root / "outbox" / "zhilian_putuo" / "device_health_daily" / day / "v1"
    m.mkdir(parents=True)
    (m / "manifest.json").write_text("{}")


def test_purges_published_days_past_the_window_and_keeps_the_rest(tmp_path: Path):
    old_published = _day(tmp_path, "telemetry", "2026-09-01")
    old_unpublished = _day(tmp_path, "telemetry", "2026-09-02")
    recent = _day(tmp_path, "telemetry", "2026-11-20")
    canaries = tmp_path / "landing" / "_canaries"
    canaries.mkdir(parents=True)
    (canaries / "2026-09-02.json").write_text("{}")
    _publish(tmp_path, "2026-09-01")

    dry = purge_landing(tmp_path / "landing", tmp_path / "outbox", date(2026, 11, 22), 30, dry_run=True)
    assert dry.removed and old_published.exists()

    report = purge_landing(tmp_path / "landing", tmp_path / "outbox", date(2026, 11, 22), 30)
    assert not old_published.exists()
    assert old_unpublished.exists() and recent.exists()
    assert report.kept_unpublished == ["telemetry/2026-09-02"]
    assert not (canaries / "2026-09-02.json").exists()
    assert report.bytes_freed > 0


def test_provenance_of_the_wire_follows_its_day(tmp_path: Path):
    """landing/_wire/<source>/<day>/ (pull provenance, history keys) is purged with its day, and only then."""
    old = tmp_path / "landing" / "_wire" / "access_events" / "2026-09-01" / "310107001001"
    old.mkdir(parents=True)
    (old / "pull-0000-0100.ndjson.json").write_text("{}")
    unpublished = tmp_path / "landing" / "_wire" / "access_events" / "2026-09-02"
    unpublished.mkdir(parents=True)
    _publish(tmp_path, "2026-09-01")
    report = purge_landing(tmp_path / "landing", tmp_path / "outbox", date(2026, 11, 22), 30)
    assert not old.exists() and unpublished.exists()
    assert "_wire/access_events/2026-09-01" in report.removed
    assert report.kept_unpublished == ["access_events/2026-09-02"]
