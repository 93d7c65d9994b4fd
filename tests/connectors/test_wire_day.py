"""A district-day from the wire to silver: the vendor simulator pushes an hour of the day to the real collector
(a process of its own) with one minute of CTWing-style cooldown whose pushes are never sent, GA/T 1400 pushes
its notifications after Digest registration, then the daily job runs through Dagster: ``landing_pull`` pulls
the history and the file exports, lands only what no push delivered, and reconciles.

Checked against the simulator's ledger, not against what Neuron reports: every record of the platforms'
history is in the landing zone exactly once, whichever way it came; the dropped minute came back by the pull;
the ``reconciled`` checks passed with ``pushed + reconciled = platform total``; row accounting balances from
the landing files to silver.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import requests

from connectors.reconcile import day_reconciliations
from kernel.settings import load_settings
from pipelines.wire import mqtt_broker
from simulator.vendor_sim.faults import Faults
from simulator.vendor_sim.ledger import landed_records
from simulator.vendor_sim.push import push_day, push_plan
from tests.conftest import VENDOR_DAY

pytestmark = pytest.mark.slow
D = VENDOR_DAY.isoformat()
ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000
PULLED = ("telemetry", "access_events", "vehicle_passages", "parking")
SILVER_GROUPS = ("telemetry_bronze", "telemetry_silver", "access_bronze", "access_silver", "vehicles_bronze",
                 "vehicles_silver")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def wire_day(platform, _vendor_server, tmp_path_factory):
    from tests.conftest import use_data_root

    server = _vendor_server
    server.reset()
    with pytest.MonkeyPatch.context() as mp:
        root = use_data_root(mp, tmp_path_factory.mktemp("wire") / "data")
        mp.setenv("NEURON_VENDORS_FILE", str(root / "vendors.yaml"))
        settings = load_settings()
        # a topic prefix and collector id of this run alone: the collector's MQTT session is persistent (QoS 1), so
        # a fixed id would also get what other tests publish to the default prefix, queued for it since last time
        run = uuid.uuid4().hex[:8]
        config = dataclasses.replace(server.config, mqtt_topic_prefix=f"neuron-test-{run}/thingsboard")
        config.save(settings.vendors_path)
        mqtt = mqtt_broker(config.mqtt_host, config.mqtt_port) is None
        port = _free_port()
        log = root / "collector.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "connectors.collector", "--port", str(port), "--vendors",
                 str(settings.vendors_path), "--landing", str(settings.landing_dir), "--collector-id", f"wire_{run}",
                 "--grace-seconds", "1", "--clock-start", f"{D}T12:00", "--log-level", "warning",
                 *([] if mqtt else ["--no-mqtt"])], cwd=ROOT, stdout=out, stderr=out, env=dict(os.environ))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        try:
            cooldown = Faults(push_cooldown_minute=9 * 60 + 30)
            start = platform.day_start_ms
            kinds = ["ctwing", "iotda", "isc", "parking"] + (["thingsboard"] if mqtt else [])
            window = (start + 9 * HOUR, start + 10 * HOUR)
            hour = push_day(platform, url, config, faults=cooldown, kinds=kinds, window=window)
            viid = push_day(platform, url, config, faults=cooldown, kinds=["viid"])
            hour_plan = push_plan(platform, kinds=kinds, window=window)
            acked = pl.concat([hour.acknowledged_keys(push_plan(platform, kinds=kinds, window=window)),
                               viid.acknowledged_keys(push_plan(platform, kinds=["viid"]))])
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()
        # the landing and the four pulled sources' domains up to silver (gold, exports and the warehouse are the
        # session day's subject): a real Dagster run of the daily job's steps for those assets
        from pipelines.definitions import defs

        selection = dg.AssetSelection.groups("landing", *SILVER_GROUPS).upstream() & \
            dg.AssetSelection.groups("landing", "intake_bronze", *SILVER_GROUPS)
        keys = list(selection.resolve(defs.resolve_asset_graph()))
        with dg.DagsterInstance.get() as instance:
            result = defs.resolve_job_def("daily_job").execute_in_process(
                partition_key=D, instance=instance, asset_selection=keys, raise_on_error=False)
        dropped = hour_plan.join(hour.outcomes.filter(pl.col("outcome") == "dropped").select("push_id"), on="push_id")
        yield {"root": root, "settings": settings, "result": result, "pushes": [hour, viid], "acked": acked,
               "dropped": dropped.select("source", "keys").explode("keys").rename({"keys": "key"}).drop_nulls(),
               "log": log.read_text(errors="replace")}


def test_the_day_runs_and_every_reconciliation_check_passes(wire_day):
    result = wire_day["result"]
    assert result.success
    checks = {(e.asset_check_evaluation_data.asset_key.path[1], e.asset_check_evaluation_data.check_name):
              e.asset_check_evaluation_data for e in result.all_events
              if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    for source in PULLED:
        ev = checks[(source, "reconciled")]
        assert ev.passed, (source, ev.metadata)
        meta = {k: v.value for k, v in ev.metadata.items()}
        assert meta["pushed"] + meta["reconciled"] >= meta["platform_total"] > 0


def test_pushes_were_acknowledged_and_the_cooldown_minute_was_dropped(wire_day):
    hour, viid = wire_day["pushes"]
    assert hour.total("lost") == 0 and viid.total("lost") == 0
    assert hour.total("acknowledged") > 100 and viid.total("acknowledged") > 0
    assert hour.total("dropped") > 0  # the 09:30 minute: never sent, only the pull can bring it


def test_every_record_of_the_platforms_lands_exactly_once_push_or_pull(wire_day, platform):
    landing = wire_day["settings"].landing_dir
    for source in PULLED:
        history = set(platform.ledger.filter((pl.col("source") == source) & pl.col("in_history"))["key"])
        landed = landed_records(landing, D, source)
        counts = Counter(landed["key"].to_list())
        assert history <= set(counts), f"{source}: {len(history - set(counts))} records never landed"
        # a record lands as often as a push carrying it was acknowledged (a vendor that sends a message twice is
        # recorded twice, for bronze to count as a duplicate), and once when only the pull brought it
        pushed = Counter(wire_day["acked"].filter(pl.col("source") == source)["key"].to_list())
        wrong = {k: (n, pushed.get(k, 0)) for k, n in counts.items() if n != max(1, pushed.get(k, 0))}
        assert not wrong, f"{source}: {len(wrong)} records landed other than once per push: {list(wrong.items())[:3]}"
        by_way = landed.with_columns(way=pl.col("file").str.extract(r"(?:^|/)(push|pull)-", 1))
        ways = set(by_way["way"].drop_nulls())
        if history - set(pushed):
            assert "pull" in ways, f"{source}: what no push brought did not come by the pull"
        if source != "vehicle_passages" or wire_day["pushes"][1].total("acknowledged"):
            assert "push" in ways, f"{source}: nothing arrived by push"


def test_the_dropped_minute_came_back_by_the_pull(wire_day, platform):
    dropped = wire_day["dropped"]
    assert dropped.height > 0
    landing = wire_day["settings"].landing_dir
    for (source,), grp in dropped.group_by("source"):
        landed = landed_records(landing, D, source)
        pulled = set(landed.filter(pl.col("file").str.contains(r"(?:^|/)pull-"))["key"])
        lost = set(grp["key"]) - pulled
        assert not lost, f"{source}: {len(lost)} records of the cooldown minute are missing"


def test_reconciliation_and_row_accounting_balance_from_the_wire_to_silver(wire_day):
    recs = day_reconciliations(wire_day["settings"].landing_dir, D)
    assert {r.source for r in recs} == set(PULLED)
    assert all(r.balanced for r in recs)
    assert sum(r.pushed for r in recs) > 0 and sum(r.reconciled for r in recs) > 0
    lake = wire_day["settings"].lake_dir

    def rows(layer: str, name: str) -> pl.DataFrame:
        return pl.read_parquet(lake / layer / name / f"date={D}" / "*.parquet")

    accounts = {}
    for source in PULLED:
        acc = rows("audit", f"row_accounting_{source}")
        assert acc["balanced"].all(), f"{source} does not balance: {acc.to_dicts()}"
        assert acc["landed"].sum() > 0
        accounts[source] = acc
    # what was accepted is what silver holds (access: door events in silver, other abilities routed aside)
    routed = [e.event_specific_data.materialization.metadata["routed_non_door"].value
              for e in wire_day["result"].all_events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
              and e.event_specific_data.materialization.asset_key == dg.AssetKey(["silver", "access_events"])]
    assert rows("silver", "access_events").height + routed[0] == accounts["access_events"]["accepted"].sum()
    assert rows("silver", "vehicle_passages").height == accounts["vehicle_passages"]["accepted"].sum()


def test_the_collector_log_holds_no_identifier(wire_day):
    from quality.pii_scan import scan_text

    assert not scan_text(wire_day["log"])
