"""Incidents over the session's simulated district-day: the daily check that the batch equals the incidents, a
check that fails when they differ, and publication to a real receiver on loopback (down, then up: in order, once,
nothing personal)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from assets.incidents.engine import INCIDENT_TYPES, IncidentEngine
from exports.contracts import CONTRACTS_DIR
from exports.incidents import CHECK, READ_AHEAD_CHECK, compare_day, pii_hits, publish_pending
from exports.publishing.incident_push import list_incidents
from exports.receiver import run_in_thread
from kernel.lake import Lake
from kernel.settings import load_settings
from quality.pii_scan import load_canaries, scan_text
from tests.conftest import copy_of_day
from tests.exports import ACCESS_KEY, KEYS, SECRET_KEY

pytestmark = pytest.mark.slow


def _check_results(run, check: str = CHECK) -> list:
    return [e.event_specific_data for e in run.result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == check]


def test_the_days_security_events_equal_its_incidents(e2e_run):
    (evaluation,) = _check_results(e2e_run)
    assert evaluation.passed, evaluation.metadata
    engine = IncidentEngine(load_settings({"NEURON_MODE": "test"}, data_dir=e2e_run.root))
    incidents = engine.day_incidents(e2e_run.day)
    gold = pl.read_parquet(e2e_run.root / "lake" / "gold" / "security_events" / f"date={e2e_run.day}" / "*.parquet")
    by_type = gold.filter(pl.col("event_type").is_in(INCIDENT_TYPES)).group_by("event_type").agg(pl.col("events").sum())
    assert dict(incidents.group_by("event_type").len().iter_rows()) == dict(by_type.iter_rows())
    assert "forced_door" in set(incidents["event_type"])  # the session day has forced doors (its alarms are rare)
    assert evaluation.metadata["incidents"].value == incidents.height > 0


def test_the_engine_reads_the_day_right_after_landing(e2e_run, tmp_path, monkeypatch):
    """``incidents_read`` has the engine read the whole day beside the bronze parses; ``matches_incidents`` at the
    end then finds nothing left to read. A landing file the engine has not read is reported."""
    (read,) = _check_results(e2e_run, READ_AHEAD_CHECK)
    assert read.passed and read.metadata["files_read"].value > 0 and read.metadata["files_unread"].value == 0
    assert read.metadata["lines_read"].value > 0
    events = [e for e in e2e_run.result.all_events if e.event_type_value == "STEP_SUCCESS"]
    order = [e.step_key for e in events]
    assert order.index("landing_incidents_read") < order.index("gold_security_events_matches_incidents")

    root = copy_of_day(e2e_run, monkeypatch, tmp_path)
    engine = IncidentEngine(load_settings({"NEURON_MODE": "test"}, data_dir=root))
    assert engine.unread(e2e_run.day)[0] > 0  # a copy without the engine's state: nothing of the day read yet
    while engine.advance().backlog:
        pass
    assert engine.unread(e2e_run.day) == (0, 0)
    late = next((root / "landing" / "access_events" / e2e_run.day).glob("*/*.ndjson.gz"))
    extra = late.with_name("late-" + late.name)
    extra.write_bytes(late.read_bytes())  # a file delivered after the engine caught up
    assert engine.unread(e2e_run.day) == (1, extra.stat().st_size)
    engine.advance()
    assert engine.unread(e2e_run.day) == (0, 0)
    # files no platform should send: a gzip cut mid-stream, an empty one, and a push minute still being written
    (late.parent / "cut.ndjson.gz").write_bytes(late.read_bytes()[: late.stat().st_size // 2])
    (late.parent / "empty.ndjson.gz").write_bytes(b"")
    (late.parent / ".push-0000-x.ndjson.part").write_text('{"method": "OnEventNotify"', encoding="utf-8")
    assert engine.unread(e2e_run.day)[0] == 2  # the open minute file is not counted as unread
    advances = engine.catch_up()
    assert advances and engine.unread(e2e_run.day) == (0, 0)  # read (and left to the daily path's quarantine)


def test_an_incident_the_engine_lost_fails_the_check(e2e_run, tmp_path, monkeypatch):
    root = copy_of_day(e2e_run, monkeypatch, tmp_path)
    engine = IncidentEngine(load_settings({"NEURON_MODE": "test"}, data_dir=root))
    while engine.advance().backlog:
        pass
    assert compare_day(engine, Lake(root / "lake"), e2e_run.day).equal
    with engine.state() as con:  # an engine bug: one incident never recorded
        con.execute("DELETE FROM incidents WHERE incident_id = (SELECT min(incident_id) FROM incidents)")
    cmp = compare_day(engine, Lake(root / "lake"), e2e_run.day)
    assert not cmp.equal and len(cmp.missing) == 1 and not cmp.extra


def test_the_days_incidents_reach_the_receiver_in_order_once_after_it_was_down(e2e_run, tmp_path, monkeypatch):
    root = copy_of_day(e2e_run, monkeypatch, tmp_path)
    with run_in_thread(tmp_path / "receiver", CONTRACTS_DIR, KEYS) as receiver:
        settings = load_settings({"NEURON_MODE": "test", "NEURON_PUBLIC_SECURITY_URL": receiver.base_url,
                                  "NEURON_PUBLIC_SECURITY_ACCESS_KEY": ACCESS_KEY,
                                  "NEURON_PUBLIC_SECURITY_SECRET_KEY": SECRET_KEY,
                                  "NEURON_PUBLISH_BACKOFF_S": "0.01", "NEURON_PUBLISH_MAX_RETRIES": "1"},
                                 data_dir=root)
        engine = IncidentEngine(settings)
        while engine.advance().backlog:
            pass
        total = len(engine.pending(100_000))
        assert total > 0
        receiver.inject_failures(2, path_contains="/v1/incidents")  # down for both attempts of the first push
        first = publish_pending(engine, settings)
        assert first.error and first.sent < total and first.pending == total - first.sent
        second = publish_pending(engine, settings, limit=100_000)
        assert second.error is None and second.pending == 0 and first.sent + second.sent == total
        again = publish_pending(engine, settings)  # nothing left: nothing sent twice
        assert again.sent == 0
        held = list_incidents(receiver.base_url, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    ours = [json.loads(r) for r in engine.versions()["record"]]
    assert [(h["record"]["incident_id"], h["record"]["version"]) for h in held] == [
        (r["incident_id"], r["version"]) for r in ours]
    canaries = load_canaries(root / "landing")
    text = json.dumps([h["record"] for h in held], ensure_ascii=False)
    assert scan_text(text, canaries) == [] and pii_hits(ours, settings) == []
