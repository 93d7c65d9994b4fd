"""The district dimension (NEURON_DISTRICTS): settings per district, date × district partitions, the resource
resolving a run's district, leases and sensors per district, and the CLI's answers.

The whole path (two districts, two days, Celery workers, the Postgres instance and the lake on object storage,
against the same district-days on disk) is ``test_celery_executor.py``'s.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from kernel.settings import SettingsError, load_settings

DISTRICTS = "putuo,jingan"


@pytest.fixture
def districts(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEURON_DISTRICTS", DISTRICTS)
    return data_root


@pytest.fixture(scope="module")
def city_defs() -> dg.Definitions:
    """The code location of a two-district deployment (built from settings, as the loader builds it)."""
    from pipelines.definitions import build_definitions

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEURON_DISTRICTS", DISTRICTS)
        mp.setenv("NEURON_MODE", "test")
        return build_definitions(load_settings())


@pytest.mark.parametrize("raw, error", [
    ("Putuo", "not a district name"), ("pu|tuo", "not a district name"), ("putuo,putuo", "twice"),
    ("1st", "not a district name"), ("../etc", "not a district name"), ("a" * 33, "not a district name")])
def test_bad_district_lists_are_refused_with_the_variable_named(raw: str, error: str):
    with pytest.raises(SettingsError, match=error) as exc:
        load_settings({"NEURON_DISTRICTS": raw})
    assert "NEURON_DISTRICTS" in str(exc.value)


def test_a_district_is_a_sub_root_of_every_data_part_and_shares_the_instance_and_caches(tmp_path: Path):
    root = load_settings({"NEURON_DATA_DIR": str(tmp_path), "NEURON_DISTRICTS": " putuo , jingan ",
                          "NEURON_LAKE_URI": "s3://city/lake", "NEURON_OUTBOX_URI": "s3://city/outbox/",
                          "NEURON_VENDORS_FILE": str(tmp_path / "{district}.yaml")})
    assert root.districts == ("putuo", "jingan") and root.district == ""
    p = root.for_district("putuo")
    assert p.landing_dir == tmp_path / "landing" / "putuo" and p.lake_dir == tmp_path / "lake" / "putuo"
    assert (p.lake_uri, p.outbox_uri) == ("s3://city/lake/putuo", "s3://city/outbox/putuo")
    assert p.warehouse_path == tmp_path / "warehouse" / "putuo" / "neuron.duckdb"
    assert (p.outbox_dir, p.quality_dir) == (tmp_path / "outbox" / "putuo", tmp_path / "quality" / "putuo")
    assert p.leases_dir == tmp_path / ".leases" / "putuo" and p.incidents_dir == tmp_path / "incidents" / "putuo"
    assert p.connectors_dir == tmp_path / "connectors" / "putuo" and p.vendors_path == tmp_path / "putuo.yaml"
    # one instance, one host cache and one spill folder for all districts; the keys are the deployment's
    assert (p.dagster_home, p.lake_cache_dir, p.duckdb_tmp) == (root.dagster_home, root.lake_cache_dir,
                                                                root.duckdb_tmp)
    assert p.for_district("putuo") is p and root.for_district("") is root
    with pytest.raises(SettingsError, match="unknown district 'minhang'"):
        root.for_district("minhang")
    with pytest.raises(SettingsError, match="already"):
        p.for_district("jingan")
    with pytest.raises(SettingsError, match="NEURON_OUTBOX_URI must be s3://"):
        load_settings({"NEURON_OUTBOX_URI": "/srv/outbox"})
    with pytest.raises(SettingsError, match="NEURON_DISTRICTS is unset"):
        load_settings({"NEURON_DATA_DIR": str(tmp_path)}).for_district("putuo")


def test_partition_keys_are_days_or_district_days_and_code_reads_them_through_one_place():
    from kernel.partitions import day_of, district_of, partition_key, partitions_def

    one = load_settings({})
    city = load_settings({"NEURON_DISTRICTS": DISTRICTS})
    assert isinstance(partitions_def(one), dg.DailyPartitionsDefinition)
    multi = partitions_def(city)
    assert isinstance(multi, dg.MultiPartitionsDefinition) and partitions_def(city) is multi
    assert multi.time_window_dimension.partitions_def.timezone == "Asia/Shanghai"
    key = partition_key(city, "2026-03-05", "jingan")
    assert key == "2026-03-05|jingan" and key in multi.get_partition_keys()
    assert (day_of(key), district_of(key), day_of(str(key)), district_of(str(key))) == (
        "2026-03-05", "jingan", "2026-03-05", "jingan")
    assert (day_of("2026-03-05"), district_of("2026-03-05"), district_of(None)) == ("2026-03-05", "", "")
    assert partition_key(one, "2026-03-05") == "2026-03-05"
    assert [partition_key(city, "2026-03-05", x) for x in city.districts] == ["2026-03-05|putuo", "2026-03-05|jingan"]
    with pytest.raises(ValueError, match="NEURON_DISTRICTS is unset"):
        partition_key(one, "2026-03-05", "putuo")
    with pytest.raises(ValueError, match="not one of"):
        partition_key(city, "2026-03-05", "")


def test_a_district_day_run_writes_its_district_only_and_another_district_takes_the_same_day_at_once(
        districts: Path, city_defs: dg.Definitions):
    """Two districts' runs of one day, in process on one instance: each writes under its district's lake and
    neither waits for the other's day lease."""
    from kernel.lake import Lake
    from kernel.partitions import partition_key
    from kernel.runs import DayBusy, claim_day, day_holder
    from simulator.district import simulate_day

    day = "2026-03-05"
    root = load_settings()
    for seed, district in enumerate(root.districts):
        simulate_day(root.for_district(district).landing_dir, date.fromisoformat(day), n_communities=1, seed=seed)
    job = city_defs.resolve_job_def("daily_job")
    selection = [dg.AssetKey(["landing", "device_registry"]), dg.AssetKey(["bronze", "device_registry"])]
    rows = {}
    with dg.DagsterInstance.get() as instance:
        for district in root.districts:
            key = partition_key(root, day, district)
            result = job.execute_in_process(partition_key=key, instance=instance, asset_selection=selection,
                                            run_config={"execution": {"config": {"in_process": {}}}})
            assert result.success
            assert result.dagster_run.tags["dagster/partition/district"] == district
            s = root.for_district(district)
            rows[district] = Lake(s.lake_dir).partition_rows("bronze", "device_registry", day)
            assert day_holder(s.leases_dir, day) == result.run_id
        # a live run (queued) holding one district's day stops that district-day, not the other district's
        live = instance.create_run_for_job(job_def=job, tags={"dagster/partition": partition_key(root, day, "putuo")})
        putuo, jingan = root.for_district("putuo"), root.for_district("jingan")
        claim_day(instance, live.run_id, day, putuo.leases_dir, "putuo")
        with pytest.raises(DayBusy, match=live.run_id):
            claim_day(instance, "another-run", day, putuo.leases_dir, "putuo")
        claim_day(instance, "another-run", day, jingan.leases_dir, "jingan")
        assert day_holder(jingan.leases_dir, day) == "another-run"
    assert all(n > 0 for n in rows.values()) and rows["putuo"] != rows["jingan"]
    assert not (districts / "lake" / "bronze").exists()  # nothing at the deployment's root
    assert sorted(p.name for p in (districts / "lake").iterdir()) == ["jingan", "putuo"]


def test_the_schedule_sensors_and_retry_schedule_request_one_run_per_district(districts: Path,
                                                                             city_defs: dg.Definitions):
    from kernel.resource import NeuronResource
    from simulator.district import simulate_day

    schedule = city_defs.resolve_schedule_def("daily_job_schedule")
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 21, 2, 0,
                                                                      tzinfo=ZoneInfo("Asia/Shanghai")))
    assert sorted(r.partition_key for r in schedule.evaluate_tick(ctx).run_requests) == [
        "2026-11-20|jingan", "2026-11-20|putuo"]
    # landing files for one district only: one run, of that district-day
    root = load_settings()
    simulate_day(root.for_district("jingan").landing_dir, date(2026, 11, 19), n_communities=1, seed=3)
    sensor = city_defs.resolve_sensor_def("landing_sensor")
    resources = {"neuron": NeuronResource(data_dir=str(districts))}
    with dg.instance_for_test() as instance:
        res = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert [r.partition_key for r in res.run_requests] == ["2026-11-19|jingan"]
        assert json.loads(res.cursor).keys() == {"2026-11-19|jingan"}
        again = sensor(dg.build_sensor_context(instance=instance, cursor=res.cursor, resources=resources))
        assert again.run_requests == []
        simulate_day(root.for_district("putuo").landing_dir, date(2026, 11, 19), n_communities=1, seed=4)
        third = sensor(dg.build_sensor_context(instance=instance, cursor=res.cursor, resources=resources))
        assert [r.partition_key for r in third.run_requests] == ["2026-11-19|putuo"]


@pytest.mark.parametrize("argv, message", [
    (["simulate", "--day", "2026-03-05"], "name the district with --district (putuo, jingan)"),
    (["simulate", "--day", "2026-03-05", "--district", "minhang"], "unknown district 'minhang'"),
    (["warehouse", "sql", "SELECT 1"], "name the district with --district"),
    (["purge-landing", "--dry-run"], "name the district with --district"),
    (["demo", "--day", "2026-03-05"], "runs a one-district deployment"),
])
def test_the_cli_asks_for_a_district_in_one_line(districts: Path, capsys, argv: list[str], message: str):
    from pipelines.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (districts / "landing").exists()


def test_a_district_given_to_a_one_district_deployment_is_refused(data_root: Path, capsys):
    from pipelines.cli import main

    assert main(["simulate", "--day", "2026-03-05", "--district", "putuo"]) == 2
    assert "this deployment has no districts" in capsys.readouterr().err


def test_simulate_writes_the_named_districts_landing(districts: Path, capsys):
    from pipelines.cli import main

    assert main(["simulate", "--day", "2026-03-05", "--district", "jingan", "--communities", "1"]) == 0
    assert (districts / "landing" / "jingan" / "telemetry" / "2026-03-05").is_dir()
    assert not (districts / "landing" / "telemetry").exists()


def test_the_doctor_and_the_freshness_checks_look_into_every_district(districts: Path, city_defs: dg.Definitions):
    from pipelines.doctor import diagnose

    root = load_settings()
    killed = districts / "lake" / "jingan" / "silver" / "telemetry" / ".tmp-date=2026-03-05-abc"
    killed.mkdir(parents=True)
    with dg.DagsterInstance.get() as instance:
        found = diagnose(instance, root).found
        assert len(found) == 1 and str(killed) in found[0]
        assert diagnose(instance, root, repair=True).healthy and not killed.exists()
    # telemetry fresh in one district, absent in the other: the check warns and names the stale district
    fresh = root.for_district("putuo").landing_dir / "telemetry" / "2026-03-05" / "iotda" / "x.ndjson"
    fresh.parent.mkdir(parents=True)
    fresh.write_text("{}\n")
    job = city_defs.resolve_job_def("landing_freshness_job")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    (evaluation,) = [e.asset_check_evaluation_data for e in result.all_events
                     if e.event_type_value == "ASSET_CHECK_EVALUATION"
                     and e.asset_check_evaluation_data.asset_key == dg.AssetKey(["landing", "telemetry"])]
    assert not evaluation.passed
    assert evaluation.metadata["stale_districts"].value == "jingan"


def test_the_collector_receives_for_one_named_district(districts: Path, capsys):
    from connectors.collector.cli import main

    assert main(["--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "name the district with --district (putuo, jingan)" in err and len(err.strip().splitlines()) == 1
    assert main(["--district", "minhang", "--port", "1"]) == 2
    assert "unknown district 'minhang'" in capsys.readouterr().err


def test_each_district_pushes_to_a_receiver_of_its_own_and_two_districts_on_one_receiver_are_refused(
        districts: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The push protocol names a batch by consumer, dataset and day: two districts pushing to one receiver would
    collide there, so that is refused with the reason; each district's own endpoint and keys
    (``NEURON_<C>_URL_<DISTRICT>``) take its batches to its own receiver, which holds that district's day alone."""
    from exports.publishers import PublisherConfigError, http_publisher_for
    from exports.publishing.batch import Batch
    from exports.receiver import run_in_thread
    from tests.exports import CONSUMER, DATASET, device_health_frame, write_batch, write_contracts

    day = "2026-03-05"
    monkeypatch.setenv("NEURON_PUBLISHER_ZHILIAN_PUTUO", "https_push")
    for var, value in (("URL", "https://127.0.0.1:9/"), ("ACCESS_KEY", "a"), ("SECRET_KEY", "s")):
        monkeypatch.setenv(f"NEURON_ZHILIAN_PUTUO_{var}", value)
    with pytest.raises(PublisherConfigError, match="districts putuo, jingan would push to the same receiver"):
        http_publisher_for(CONSUMER, load_settings().for_district("putuo"))
    with pytest.raises(PublisherConfigError, match="name no district"):
        http_publisher_for(CONSUMER, load_settings())
    assert http_publisher_for("public_security", load_settings().for_district("putuo")) is None  # the file drop
    # one district's own URL equal to the consumer's, which the other district inherits: the same receiver again
    monkeypatch.setenv("NEURON_ZHILIAN_PUTUO_URL_JINGAN", "https://127.0.0.1:9")
    with pytest.raises(PublisherConfigError, match="districts putuo, jingan would push to the same receiver"):
        http_publisher_for(CONSUMER, load_settings().for_district("jingan"))
    monkeypatch.setenv("NEURON_ZHILIAN_PUTUO_URL_JINAGN", "https://127.0.0.1:10")  # a misspelt district
    with pytest.raises(SettingsError, match="NEURON_ZHILIAN_PUTUO_URL_JINAGN names no district of this deployment"):
        load_settings()
    monkeypatch.delenv("NEURON_ZHILIAN_PUTUO_URL_JINAGN")

    keys = {"putuo": ("ak_putuo", "sk_putuo_secret_0123456789"), "jingan": ("ak_jingan", "sk_jingan_secret_987654")}
    contracts = write_contracts(tmp_path / "contracts")
    with run_in_thread(tmp_path / "rx_putuo", contracts, dict([keys["putuo"]])) as rx_putuo, \
            run_in_thread(tmp_path / "rx_jingan", contracts, dict([keys["jingan"]])) as rx_jingan:
        receivers = {"putuo": rx_putuo, "jingan": rx_jingan}
        monkeypatch.delenv("NEURON_ZHILIAN_PUTUO_SECRET_KEY")
        for district, rx in receivers.items():
            monkeypatch.setenv(f"NEURON_ZHILIAN_PUTUO_URL_{district.upper()}", rx.base_url)
            monkeypatch.setenv(f"NEURON_ZHILIAN_PUTUO_ACCESS_KEY_{district.upper()}", keys[district][0])
        monkeypatch.setenv("NEURON_ZHILIAN_PUTUO_SECRET_KEY_PUTUO", keys["putuo"][1])
        with pytest.raises(PublisherConfigError, match="NEURON_ZHILIAN_PUTUO_SECRET_KEY_JINGAN is not set"):
            http_publisher_for(CONSUMER, load_settings().for_district("jingan"))
        monkeypatch.setenv("NEURON_ZHILIAN_PUTUO_SECRET_KEY_JINGAN", keys["jingan"][1])
        root = load_settings()
        folders = {}
        for seed, district in enumerate(root.districts):
            s = root.for_district(district)
            folders[district] = write_batch(s.outbox_dir, device_health_frame(day, seed=seed), partition=day)
            publisher = http_publisher_for(CONSUMER, s)
            assert (publisher.base_url, publisher.access_key) == (receivers[district].base_url, keys[district][0])
            receipt = publisher.publish(Batch.from_dir(folders[district]))
            assert (receipt.status, receipt.version) == ("committed", 1)
            assert (s.outbox_dir / CONSUMER / "_receipts" / DATASET / day / "v1.json").is_file()
    for district, rx in receivers.items():
        stored = rx.store.root / CONSUMER / DATASET / day
        assert [p.name for p in stored.glob("v*")] == ["v1"]
        assert (stored / "v1" / "data.parquet").read_bytes() == (folders[district] / "data.parquet").read_bytes()
    assert ((folders["putuo"] / "data.parquet").read_bytes() != (folders["jingan"] / "data.parquet").read_bytes())


def test_a_districts_data_docs_links_resolve_on_the_one_docs_server(districts: Path):
    import urllib.request

    from pipelines.docs_server import run_in_thread
    from quality.gx_checks import data_docs_base_url, data_docs_dir, data_docs_site

    root = load_settings()
    putuo = root.for_district("putuo")
    page = data_docs_dir(putuo.quality_dir) / "validations" / "x.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html>putuo's page</html>", encoding="utf-8")
    assert data_docs_site(root) == root.quality_dir and data_docs_site(putuo) == data_docs_dir(putuo.quality_dir)
    with run_in_thread(data_docs_site(root), "127.0.0.1", 0) as server:
        link = data_docs_base_url(putuo).replace(root.data_docs_url, server.base_url.rstrip("/"))
        assert link.endswith("/putuo/docs")
        with urllib.request.urlopen(f"{link}/validations/x.html", timeout=10) as response:
            assert "putuo's page" in response.read().decode()


def test_an_input_read_days_back_maps_to_the_same_district_the_day_before(city_defs: dg.Definitions):
    """``Read(days_back=1)`` (the month's final governance table reads the month-to-date table of the day before):
    with districts the mapping shifts the date and keeps the district. A time-window mapping alone made the
    whole day fail at that step (found running a full district-day)."""
    graph = city_defs.resolve_asset_graph()
    child, parent = dg.AssetKey(["gold", "governance_month_final"]), dg.AssetKey(["gold", "governance_monthly"])
    result = graph.get_parent_partition_keys_for_child("2026-03-01|jingan", parent, child)
    assert list(result.partitions_subset.get_partition_keys()) == ["2026-02-28|jingan"]
