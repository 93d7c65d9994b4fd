"""The incident engine's episode logic (repeat, update, clear, re-open, late data, midnight), its cursor over open
minute files, restarts and a crash mid-advance, and agreement with the daily path's rule under any arrival order."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from assets.incidents.engine import IncidentEngine
from assets.telemetry.parse import ingest_day
from kernel.lake import Lake
from kernel.settings import load_settings
from tests.assets.incidents.landing import DAY, OFF, ON, SILENCED, SMOKE, Landing, local
from tests.assets.telemetry.vendor_parse import Parsed, fake_tokens


@pytest.fixture
def world(tmp_path):
    landing = Landing(tmp_path / "landing", extra_smoke=3)
    engine = IncidentEngine(load_settings({"NEURON_MODE": "test"}, data_dir=tmp_path))
    return landing, engine


def records(engine: IncidentEngine) -> list[dict]:
    return [json.loads(r) for r in engine.versions()["record"]]


def test_a_repeating_alarm_is_one_incident_with_a_few_updates(world):
    landing, engine = world
    # LiAn detectors repeat the alarm every 30 s while smoke is present: 20 minutes of it
    for i in range(40):
        at = local("10:00", second=30 * i)
        landing.push([landing.smoke_line(SMOKE, at, ON)], minute=at.strftime("%Y%m%d%H%M"))
        if i % 4 == 3:
            engine.advance(now=at + timedelta(seconds=5))
    engine.advance(now=local("10:21"))
    recs = records(engine)
    assert len({r["incident_id"] for r in recs}) == 1
    assert [r["version"] for r in recs] == list(range(1, len(recs) + 1))
    assert recs[0]["status"] == "opened" and all(r["status"] == "updated" for r in recs[1:])
    # an update at most every 5 minutes of event time: 19.5 minutes of repeats -> 3 updates, not 39
    assert len(recs) == 4
    assert recs[-1]["reports"] == 40 and recs[-1]["last_seen_minute"] == "2026-11-20T10:19:00"
    assert recs[0]["building_id"] == "310107001001-B01" and recs[0]["started_minute"] == "2026-11-20T10:00:00"


def test_clear_closes_and_a_new_alarm_reopens_as_a_new_incident(world):
    landing, engine = world
    landing.push([landing.smoke_line(SMOKE, local("10:00"), ON), landing.smoke_line(SMOKE, local("10:01"), ON)])
    engine.advance(now=local("10:01", second=5))
    landing.push([landing.smoke_line(SMOKE, local("10:02"), SILENCED)], minute="202611201002")  # silenced = off
    engine.advance(now=local("10:02", second=5))
    landing.push([landing.smoke_line(SMOKE, local("10:30"), ON)], minute="202611201030")
    engine.advance(now=local("10:30", second=5))
    recs = records(engine)
    assert [(r["version"], r["status"]) for r in recs] == [(1, "opened"), (2, "cleared"), (1, "opened")]
    assert recs[0]["incident_id"] == recs[1]["incident_id"] != recs[2]["incident_id"]
    assert recs[1]["cleared_minute"] == "2026-11-20T10:02:00"
    inc = engine.day_incidents(DAY)
    assert inc.height == 2 and sorted(inc["status"]) == ["cleared", "opened"]


def test_late_data_splits_an_episode_and_a_late_start_withdraws_one(world):
    landing, engine = world
    landing.push([landing.smoke_line(SMOKE, local("09:57"), OFF), landing.smoke_line(SMOKE, local("10:00"), ON),
                  landing.smoke_line(SMOKE, local("10:04"), ON)])
    engine.advance(now=local("10:04", second=5))
    # the night's pull recovers two readings the pushes lost (a cooldown minute)
    landing.pulled([landing.smoke_line(SMOKE, local("10:02"), OFF), landing.smoke_line(SMOKE, local("09:58"), ON)])
    engine.advance(now=local("23:00"))
    recs = records(engine)
    first, *rest = recs
    assert first["status"] == "opened" and first["started_minute"] == "2026-11-20T10:00:00"
    by_status = {r["status"]: r for r in rest}
    # 10:00 is no longer an episode start (09:58 is): withdrawn; 09:58-10:02 and 10:04- are, both late
    assert by_status["withdrawn"]["incident_id"] == first["incident_id"]
    opened = sorted((r for r in rest if r["status"] != "withdrawn"), key=lambda r: r["started_minute"])
    assert [(r["started_minute"][11:16], r["status"], r["late"]) for r in opened] == [
        ("09:58", "cleared", True), ("10:04", "opened", True)]
    assert sorted(engine.day_incidents(DAY)["event_minute"].dt.strftime("%H:%M")) == ["09:58", "10:04"]


def test_an_alarm_on_at_midnight_opens_the_next_days_incident_which_continues_it(world):
    landing, engine = world
    landing.push([landing.smoke_line(SMOKE, local("23:59"), ON)], minute="202611202359")
    engine.advance(now=local("23:59", second=5))
    nxt = "2026-11-21"
    landing.push([landing.smoke_line(SMOKE, local("00:00", day=nxt, second=20), ON)], day=nxt,
                 minute="202611210000")
    engine.advance(now=local("00:00", day=nxt, second=30))
    a, b = records(engine)
    assert a["stat_date"] == DAY and b["stat_date"] == nxt and b["continues"] == a["incident_id"]
    assert a["incident_id"] != b["incident_id"]


def test_open_minute_files_are_read_to_their_last_complete_line_and_not_again_once_renamed(world):
    landing, engine = world
    part = landing.push([landing.smoke_line(SMOKE, local("10:00"), ON)], open_=True)
    with part.open("a") as fh:  # a line the collector is still writing
        fh.write(landing.smoke_line(SMOKE, local("10:00", second=30), ON)[:50])
    first = engine.advance(now=local("10:00", second=35))
    assert first.lines == 1 and first.versions == {"opened": 1}
    with part.open("a") as fh:
        fh.write(landing.smoke_line(SMOKE, local("10:00", second=30), ON)[50:] + "\n")
    assert engine.advance(now=local("10:00", second=40)).lines == 1
    landing.close(part)
    again = engine.advance(now=local("10:01"))
    assert again.lines == 0 and again.new_versions == 0
    assert engine.day_incidents(DAY)["version"].to_list() == [1]


def test_a_restart_mid_episode_continues_it_and_a_crash_mid_advance_loses_nothing(world, tmp_path, monkeypatch):
    landing, engine = world
    landing.push([landing.smoke_line(SMOKE, local("10:00"), ON)])
    engine.advance(now=local("10:00", second=5))
    landing.push([landing.smoke_line(SMOKE, local("10:01"), ON), landing.smoke_line(SMOKE, local("10:02"), OFF)],
                 minute="202611201001")

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-advance")

    monkeypatch.setattr(IncidentEngine, "_diff", crash)
    with pytest.raises(RuntimeError):
        engine.advance(now=local("10:02", second=5))
    monkeypatch.undo()
    restarted = IncidentEngine(load_settings({"NEURON_MODE": "test"}, data_dir=tmp_path))  # a new process
    r = restarted.advance(now=local("10:02", second=10))
    assert r.lines == 2 and r.versions == {"cleared": 1}
    recs = records(restarted)
    assert [(r["version"], r["status"]) for r in recs] == [(1, "opened"), (2, "cleared")]
    assert recs[1]["reports"] == 2


def test_a_forced_door_is_one_incident_at_its_building_and_minute_without_any_person_data(world):
    landing, engine = world
    line = landing.forced_door("5F2A0C1E9B8D4E7FA1B2C3D4E5F60799", local("10:05", second=12))
    landing.push([line, line], source="access_events", folder="310107001001", minute="202611201005")
    landing.pulled([line], source="access_events", folder="310107001001")  # the pull re-delivers it
    engine.advance(now=local("10:06"))
    (rec,) = records(engine)
    assert rec["event_type"] == "forced_door" and rec["source"] == "access_control"
    assert rec["started_minute"] == "2026-11-20T10:05:00" and rec["building_id"] is None  # a gate
    text = json.dumps(rec)
    assert "73fc53c9" not in text and "5F2A0C1E" not in text  # neither the door nor the event id


def test_a_fire_burst_is_one_incident_per_device(world):
    landing, engine = world
    devices = [landing.smoke_id(i) for i in range(3)] + [SMOKE]
    # 1,000 alarm messages in one minute from four detectors
    lines = [landing.smoke_line(devices[i % 4], local("03:10", second=(i * 60) / 1000), ON) for i in range(1000)]
    landing.push(lines, minute="202611200310")
    r = engine.advance(now=local("03:11"))
    assert r.versions == {"opened": 4} and engine.day_incidents(DAY).height == 4


def _daily_alarms(root, landing: Landing) -> list[str]:
    """Start minutes of the day's smoke episodes by the daily path itself: ``ingest_day`` over the same landing
    files, silver, then ``silver/device_alarms`` (tests/assets/telemetry/vendor_parse.py runs the domain's SQL)."""
    con = duckdb.connect()
    con.register("registry_df", pl.read_csv(landing.root / "device_registry" / "2026-01-01" / "devices.csv",
                                            infer_schema=False))
    con.execute("CREATE VIEW registry AS SELECT * EXCLUDE (report_interval_s), "
                "CAST(report_interval_s AS INTEGER) AS report_interval_s FROM registry_df")
    stats = ingest_day(con, Lake(root / "lake"), landing.root, DAY, "Asia/Shanghai", fake_tokens)
    _, alarms, _ = Parsed(con, root, DAY, stats).silver_and_alarms()
    return sorted(alarms.filter(pl.col("alarm_type") == "smoke")["event_ts"].dt.convert_time_zone(
        "Asia/Shanghai").dt.strftime("%H:%M").to_list())


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: each example runs the daily path
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 40), st.sampled_from([ON, OFF, SILENCED])),
                min_size=1, max_size=30),
       st.integers(1, 4), st.randoms(use_true_random=False))
def test_incidents_equal_the_daily_rule_whatever_the_arrival_order(tmp_path_factory, readings, batches, rnd):
    """Any readings, delivered in any order and any number of batches, give exactly the daily path's episodes."""
    root = tmp_path_factory.mktemp("w")
    landing = Landing(root / "landing", extra_smoke=2)
    engine = IncidentEngine(load_settings({"NEURON_MODE": "test"}, data_dir=root))
    devices = [landing.smoke_id(0), landing.smoke_id(1)]
    rows = [(devices[d], local("08:00", second=20 * k), s) for d, k, s in readings]
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    cuts = sorted(random.Random(len(rows)).sample(range(1, len(rows) + 1), min(batches, len(rows))))
    start = 0
    for n, cut in enumerate(cuts):
        landing.pulled([landing.smoke_line(d, t, s) for d, t, s in shuffled[start:cut]])
        engine.advance(now=local("09:00") + timedelta(minutes=n))
        start = cut
    daily = _daily_alarms(root, landing)
    state = engine.versions()
    latest = {}
    for rec in (json.loads(r) for r in state["record"]):
        assert rec["version"] == latest.get(rec["incident_id"], {"version": 0})["version"] + 1  # no gaps
        latest[rec["incident_id"]] = rec
    live = [r for r in latest.values() if r["status"] != "withdrawn"]
    assert sorted(r["started_minute"][11:16] for r in live) == daily
    assert engine.day_incidents(DAY).height == len(daily)


def test_readings_of_days_long_past_are_pruned_and_late_lines_for_them_change_nothing(world):
    landing, engine = world
    landing.push([landing.smoke_line(SMOKE, local("10:00"), ON)])
    engine.advance(now=local("10:00", second=5))
    later = "2026-11-28"  # eight days on
    landing.push([landing.smoke_line(SMOKE, local("10:00", day=later), ON)], day=later, minute="202611281000")
    engine.advance(now=local("10:00", day=later, second=5))
    with engine.state() as con:
        assert con.execute("SELECT DISTINCT CAST(day AS VARCHAR) FROM readings").fetchall() == [(later,)]
    # a late file for the pruned day: not re-evaluated (it would withdraw what its missing readings started)
    landing.pulled([landing.smoke_line(SMOKE, local("09:59"), OFF), landing.smoke_line(SMOKE, local("10:01"), ON)])
    r = engine.advance(now=local("10:01", day=later))
    assert r.stale == 2 and r.new_versions == 0
    assert engine.day_incidents(DAY).height == 1


def test_a_byte_budget_smaller_than_the_landing_is_worked_off_over_several_advances(world, tmp_path):
    """Each advance reads at most ``max_bytes``; what it leaves is a backlog, never dropped (seen in the demo: a
    day's telemetry used the budget, the access files after it were half read and reported done)."""
    landing, _ = world
    smoke = [landing.smoke_line(landing.smoke_id(i), local(f"{8 + i}:00"), ON) for i in range(3)]
    landing.pulled(smoke * 4)
    for i in range(6):  # forced doors in files read after the telemetry
        landing.pulled([landing.forced_door(f"5F2A0C1E9B8D4E7FA1B2C3D4E5F607{i:02d}", local(f"1{i}:05"))],
                       source="access_events", folder="310107001001")

    def engine(name: str, **kw) -> IncidentEngine:  # an engine state of its own over the same landing
        (tmp_path / name).mkdir()
        (tmp_path / name / "landing").symlink_to(landing.root)
        return IncidentEngine(load_settings({"NEURON_MODE": "test"}, data_dir=tmp_path / name), **kw)

    whole = engine("whole")
    assert not whole.advance(now=local("23:59")).backlog
    expected = whole.day_incidents(DAY).drop("first_seen", strict=False).sort("incident_id")
    assert expected.filter(pl.col("event_type") == "forced_door").height == 6
    small = engine("small", max_bytes=1500)
    advances = 1
    while small.advance(now=local("23:59")).backlog:
        advances += 1
        assert advances < 500
    assert advances > 3
    got = small.day_incidents(DAY).drop("first_seen", strict=False).sort("incident_id")
    assert got.select(sorted(got.columns)).equals(expected.select(sorted(expected.columns)))
    # a line longer than the whole budget is read whole, not skipped or looped on
    tiny = engine("tiny", max_bytes=10)
    while tiny.advance(now=local("23:59")).backlog:
        pass
    assert tiny.day_incidents(DAY).height == expected.height


def test_a_withdrawn_incident_that_later_data_brings_back_is_reinstated(world):
    """Found by the arrival-order property: 08:06 opened, a late "on" at 08:05:40 withdraws it, a late "off" at
    08:05:50 makes 08:06 a start again; the same incident comes back by its next version and the day agrees."""
    landing, engine = world
    landing.pulled([landing.smoke_line(SMOKE, local("08:06"), ON)])
    engine.advance(now=local("08:07"))
    landing.pulled([landing.smoke_line(SMOKE, local("08:05", second=40), ON)])
    engine.advance(now=local("08:08"))
    landing.pulled([landing.smoke_line(SMOKE, local("08:05", second=50), OFF)])
    engine.advance(now=local("08:09"))
    recs = records(engine)
    first = recs[0]["incident_id"]
    assert [(r["status"], r["version"]) for r in recs if r["incident_id"] == first] == [
        ("opened", 1), ("withdrawn", 2), ("opened", 3)]
    day = engine.day_incidents(DAY)
    assert day["event_minute"].dt.strftime("%H:%M").to_list() == ["08:05", "08:06"]
