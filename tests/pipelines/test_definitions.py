"""The code location loads, its graph has the expected shape, and schedules and sensors behave."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from exports.contracts import ContractError, load_contracts, validate


def test_code_location_loads_with_groups_per_domain_and_layer():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"telemetry_bronze", "telemetry_silver", "telemetry_gold", "export_zhilian_putuo", "warehouse"} <= groups
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"bronze/telemetry", "quarantine/telemetry", "silver/telemetry", "silver/device_alarms",
            "gold/device_health_daily", "gold/environment_hourly", "warehouse/neuron_duckdb",
            "export/zhilian_putuo/device_health_daily"} <= keys
    job = defs.resolve_job_def("daily_job")
    assert job.partitions_def.timezone == "Asia/Shanghai"


def test_every_domain_has_its_layers_and_every_contract_its_export():
    from exports.contracts import load_contracts
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    for domain in ("telemetry", "access", "vehicles", "services", "governance"):
        assert {f"{domain}_bronze", f"{domain}_silver", f"{domain}_gold"} <= groups, domain
    assert {"export_zhilian_putuo", "export_public_security"} <= groups
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"silver/access_events", "gold/gate_flow_hourly", "gold/security_events", "silver/vehicle_passages",
            "silver/parking_sessions", "gold/vehicle_flow_hourly", "gold/parking_occupancy_15min",
            "silver/work_orders", "gold/community_daily", "gold/work_orders_daily", "silver/governance_ballots",
            "gold/governance_monthly"} <= keys
    assert {f"export/{c.consumer}/{c.dataset}" for c in load_contracts()} <= keys
    assert {c.id for c in load_contracts() if c.consumer == "public_security"} == {
        "public_security.gate_flow_hourly", "public_security.vehicle_flow_hourly", "public_security.security_events"}


def test_every_silver_and_gold_dataset_gets_the_privacy_check_and_accounting_is_blocking():
    from assets.registry import datasets
    from pipelines.definitions import defs

    DATASETS = datasets()  # noqa: N806
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name): graph.get_check_spec(k) for k in graph.asset_check_keys}
    for ds in DATASETS.values():
        if ds.layer in ("silver", "gold"):
            spec = checks[(ds.key, "no_personal_data")]
            assert spec.blocking, ds.key
    accounting = [spec for (asset, name), spec in checks.items() if name.startswith("row_accounting")]
    assert len(accounting) >= 9 and all(s.blocking for s in accounting)


def test_every_check_has_a_description_and_every_asset_an_owner_and_description():
    """What the UI shows an operator: no check without a sentence saying what it guards, no anonymous asset."""
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    bare = [f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys
            if not (graph.get_check_spec(k).description or "").strip()]
    assert not bare, f"{len(bare)} checks without a description, e.g. {bare[:5]}"
    materialisable = [graph.get(k) for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    assert materialisable
    assert not [n.key.to_user_string() for n in materialisable if not (n.description or "").strip()]
    assert not [n.key.to_user_string() for n in materialisable if not n.owners]


def test_workspace_yaml_points_at_the_code_location():
    ws = yaml.safe_load((Path(__file__).parents[2] / "workspace.yaml").read_text())
    assert ws["load_from"][0]["python_module"]["module_name"] == "pipelines.definitions"


def test_daily_schedule_closes_day_d_at_two_on_d_plus_one():
    from pipelines.definitions import defs

    daily_schedule = defs.resolve_schedule_def("daily_job_schedule")
    assert daily_schedule.cron_schedule == "0 2 * * *"
    assert daily_schedule.execution_timezone == "Asia/Shanghai"
    from datetime import datetime
    from zoneinfo import ZoneInfo

    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 21, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    reqs = list(daily_schedule.evaluate_tick(ctx).run_requests)
    assert [r.partition_key for r in reqs] == ["2026-11-20"]


def test_landing_sensor_requests_a_run_for_a_closed_day_once(data_root: Path):
    from kernel.resource import NeuronResource
    from pipelines.definitions import defs
    from simulator.district import simulate_day

    landing_sensor = defs.resolve_sensor_def("landing_sensor")
    resources = {"neuron": NeuronResource(data_dir=str(data_root))}
    simulate_day(data_root / "landing", date(2026, 11, 19), n_communities=1, seed=3)
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources=resources)
        res = landing_sensor(ctx)
        assert [r.partition_key for r in res.run_requests] == ["2026-11-19"]
        cursor = res.cursor
        again = landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
        assert again.run_requests == []
        # a late file for the closed day: a new run (which will publish a correction if content changed)
        late = data_root / "landing" / "telemetry" / "2026-11-19" / "iotda" / "310107001001-0003-late.ndjson.gz"
        late.write_bytes((data_root / "landing" / "telemetry" / "2026-11-19" / "iotda" /
                          "310107001001-0001.ndjson.gz").read_bytes())
        third = landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
        assert [r.partition_key for r in third.run_requests] == ["2026-11-19"]
        assert json.loads(third.cursor)["2026-11-19"] != json.loads(cursor)["2026-11-19"]


def test_contracts_load_and_match_their_gold_datasets():
    contracts = load_contracts()
    assert {c.id for c in contracts} >= {"zhilian_putuo.device_health_daily", "zhilian_putuo.environment_hourly"}


def test_contract_that_drifts_from_its_dataset_is_rejected(tmp_path: Path):
    c = load_contracts()[0]
    raw = json.loads(json.dumps(c.raw))
    raw["columns"] = raw["columns"][:-1]
    with pytest.raises(ContractError, match="do not match"):
        validate(raw, c.path)
    raw = json.loads(json.dumps(c.raw))
    del raw["catalogue"]["resource_code"]
    with pytest.raises(ContractError, match="resource_code"):
        validate(raw, c.path)


def test_landing_freshness_checks_warn_on_stale_sources(data_root: Path):
    import os
    import time

    from pipelines.definitions import defs

    stale = data_root / "landing" / "device_registry" / "2026-11-01" / "devices.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("device_id\n")
    old = time.time() - 3 * 86400
    os.utime(stale, (old, old))
    fresh = data_root / "landing" / "telemetry" / "2026-11-21" / "iotda" / "x.ndjson.gz"
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"")
    with dg.instance_for_test() as instance:
        res = defs.resolve_job_def("landing_freshness_job").execute_in_process(instance=instance)
    by_asset = {e.asset_key.path[-1]: e for e in res.get_asset_check_evaluations()}
    assert by_asset["telemetry"].passed
    assert not by_asset["device_registry"].passed
    assert by_asset["device_registry"].severity == dg.AssetCheckSeverity.WARN
    assert by_asset["device_registry"].metadata["newest_day_folder"].value == "2026-11-01"


def test_production_without_a_token_key_fails_at_load_naming_the_variable():
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("NEURON_TOKEN")}
    env["NEURON_MODE"] = "production"
    proc = subprocess.run([sys.executable, "-c", "import pipelines.definitions"], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).parents[2])
    assert proc.returncode != 0
    assert "NEURON_TOKEN_KEY" in proc.stderr


def test_push_sensor_observes_what_the_collector_landed_once_per_change(data_root: Path):
    from zoneinfo import ZoneInfo

    from kernel.resource import NeuronResource
    from pipelines.definitions import defs

    sensor = defs.resolve_sensor_def("push_observation_sensor")
    resources = {"neuron": NeuronResource(data_dir=str(data_root))}
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    folder = data_root / "landing" / "access_events" / today / "310107001001"
    folder.mkdir(parents=True)
    (folder / f"push-{today.replace('-', '')}0901-c1.ndjson").write_bytes(b'{"a":1}\n')
    (folder / f".push-{today.replace('-', '')}0902-c1.ndjson.part").write_bytes(b'{"a":2}\n')  # still open
    (folder / "pull-0900-1000.ndjson").write_bytes(b'{"a":3}\n')  # pulled: not the collector's
    with dg.instance_for_test() as instance:
        res = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        obs = [e for e in res.asset_events if isinstance(e, dg.AssetObservation)]
        assert [(o.asset_key, o.metadata["push_files"].value, o.metadata["push_bytes"].value) for o in obs] == \
            [(dg.AssetKey(["landing", "access_events"]), 1, 8)]
        assert obs[0].metadata["newest_push_minute"].value == f"{today.replace('-', '')}0901"
        again = sensor(dg.build_sensor_context(instance=instance, cursor=res.cursor, resources=resources))
        assert not again.asset_events  # nothing new: nothing observed
        (folder / f".push-{today.replace('-', '')}0902-c1.ndjson.part").rename(
            folder / f"push-{today.replace('-', '')}0902-c1.ndjson")  # the minute closed
        third = sensor(dg.build_sensor_context(instance=instance, cursor=res.cursor, resources=resources))
        assert [o.metadata["push_files"].value for o in third.asset_events] == [2]
