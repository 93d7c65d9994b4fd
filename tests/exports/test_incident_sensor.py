"""incident_sensor and incident_job through Dagster against a real receiver on loopback: a run only when versions
wait, one run per batch of state changes, in order and once; while the receiver is down the runs fail, the
sensor backs off, and nothing is lost or sent twice when it returns."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from exports.contracts import CONTRACTS_DIR
from exports.incidents import SENSOR
from exports.publishing.incident_push import list_incidents
from exports.receiver import run_in_thread
from kernel.resource import NeuronResource
from pipelines.definitions import build_definitions
from tests.assets.incidents.landing import OFF, ON, SMOKE, Landing, local
from tests.conftest import use_data_root
from tests.exports import ACCESS_KEY, KEYS, SECRET_KEY


@pytest.fixture
def world(tmp_path, monkeypatch):
    root = use_data_root(monkeypatch, tmp_path / "data")
    landing = Landing(root / "landing")
    with run_in_thread(tmp_path / "receiver", CONTRACTS_DIR, KEYS) as receiver:
        monkeypatch.setenv("NEURON_PUBLIC_SECURITY_URL", receiver.base_url)
        monkeypatch.setenv("NEURON_PUBLIC_SECURITY_ACCESS_KEY", ACCESS_KEY)
        monkeypatch.setenv("NEURON_PUBLIC_SECURITY_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("NEURON_PUBLISH_BACKOFF_S", "0.01")
        monkeypatch.setenv("NEURON_PUBLISH_MAX_RETRIES", "1")
        from kernel.settings import load_settings

        defs = build_definitions(load_settings())
        with dg.instance_for_test() as instance:
            yield landing, receiver, defs, instance, root


def _tick(defs, instance, root, cursor=None):
    sensor = defs.resolve_sensor_def(SENSOR)
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"neuron": NeuronResource(data_dir=str(root))}))


def _run(defs, instance, request):
    job = defs.resolve_job_def("incident_job")
    return job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)


def _held(receiver):
    return [(h["record"]["status"], h["record"]["version"]) for h in
            list_incidents(receiver.base_url, access_key=ACCESS_KEY, secret_key=SECRET_KEY)]


def test_a_run_only_when_versions_wait_and_each_goes_out_once_in_order(world):
    landing, receiver, defs, instance, root = world
    quiet = _tick(defs, instance, root)
    assert not quiet.run_requests  # nothing landed: no run
    landing.push([landing.smoke_line(SMOKE, local("10:00"), ON)], open_=True)
    first = _tick(defs, instance, root)
    (request,) = first.run_requests
    assert _run(defs, instance, request).success
    assert _held(receiver) == [("opened", 1)]
    # repeats of the same alarm inside five minutes change nothing the district sees: no run
    landing.push([landing.smoke_line(SMOKE, local("10:00", second=30), ON)], open_=True)
    assert not _tick(defs, instance, root, first.cursor).run_requests
    landing.push([landing.smoke_line(SMOKE, local("10:02"), OFF)], minute="202611201002")
    (clear,) = _tick(defs, instance, root, first.cursor).run_requests
    result = _run(defs, instance, clear)
    assert result.success
    assert _held(receiver) == [("opened", 1), ("cleared", 2)]
    (mat,) = result.get_asset_materialization_events()
    assert mat.materialization.metadata["sent"].value == 1
    runs = instance.get_runs(dg.RunsFilter(job_name="incident_job"))
    assert len(runs) == 2


def test_while_the_receiver_is_down_runs_fail_the_sensor_backs_off_and_nothing_is_lost(world):
    landing, receiver, defs, instance, root = world
    landing.push([landing.smoke_line(SMOKE, local("10:00"), ON)])
    receiver.inject_failures(2, path_contains="/v1/incidents")  # both attempts of the first run
    tick = _tick(defs, instance, root)
    (request,) = tick.run_requests
    assert not _run(defs, instance, request).success
    assert _held(receiver) == []
    again = _tick(defs, instance, root, tick.cursor)
    assert not again.run_requests and "retry in 10 s" in str(again.skip_reason)
    # the clear arrives meanwhile; once the back-off is over both versions go, in order
    landing.push([landing.smoke_line(SMOKE, local("10:01"), OFF)], minute="202611201001")
    cursor = json.loads(again.cursor)
    cursor["at"] -= 11
    (retry,) = _tick(defs, instance, root, json.dumps(cursor)).run_requests
    assert _run(defs, instance, retry).success
    assert _held(receiver) == [("opened", 1), ("cleared", 2)]
    assert not _tick(defs, instance, root).run_requests


def test_each_district_goes_to_its_own_receiver_and_a_district_without_one_waits(tmp_path, monkeypatch):
    """With districts, the sensor reads and requests per district (a run tagged with its district), each district's
    incidents go to its own receiver (NEURON_PUBLIC_SECURITY_URL_<DISTRICT>), and a district with no receiver yet
    is not read until it has one; then nothing it landed meanwhile is lost."""
    from exports.incidents import DISTRICT_TAG
    from kernel.settings import load_settings

    root = use_data_root(monkeypatch, tmp_path / "data")
    monkeypatch.setenv("NEURON_DISTRICTS", "putuo,jingan")
    monkeypatch.setenv("NEURON_PUBLISH_BACKOFF_S", "0.01")
    landings = {d: Landing(root / "landing" / d) for d in ("putuo", "jingan")}
    for landing in landings.values():
        landing.push([landing.smoke_line(SMOKE, local("10:00"), ON)], open_=True)
    with run_in_thread(tmp_path / "rx_putuo", CONTRACTS_DIR, KEYS) as rx_putuo, \
            run_in_thread(tmp_path / "rx_jingan", CONTRACTS_DIR, KEYS) as rx_jingan:
        for var, value in (("URL_PUTUO", rx_putuo.base_url), ("ACCESS_KEY", ACCESS_KEY), ("SECRET_KEY", SECRET_KEY)):
            monkeypatch.setenv(f"NEURON_PUBLIC_SECURITY_{var}", value)
        defs = build_definitions(load_settings())
        with dg.instance_for_test() as instance:
            first = _tick(defs, instance, root)
            (request,) = first.run_requests  # jingan has no receiver: not read, no run
            assert request.tags[DISTRICT_TAG] == "putuo"
            assert _run(defs, instance, request).success
            assert _held(rx_putuo) == [("opened", 1)] and _held(rx_jingan) == []
            assert not (root / "incidents" / "jingan").exists()
            assert not _tick(defs, instance, root, first.cursor).run_requests
            # jingan's receiver configured: what it landed meanwhile goes there, and only there
            monkeypatch.setenv("NEURON_PUBLIC_SECURITY_URL_JINGAN", rx_jingan.base_url)
            defs = build_definitions(load_settings())
            (request,) = _tick(defs, instance, root, first.cursor).run_requests
            assert request.tags[DISTRICT_TAG] == "jingan"
            assert _run(defs, instance, request).success
            assert _held(rx_jingan) == [("opened", 1)] and _held(rx_putuo) == [("opened", 1)]
