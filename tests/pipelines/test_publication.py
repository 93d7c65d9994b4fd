"""Publishing through Dagster: corrections as new versions, receipts, and a receiver that is down.

Runs on a private copy of the session's simulated day (its lake and outbox already built by the daily job),
so each step below re-runs only the assets it is about: the exports, or telemetry and one export.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import dagster as dg
import pytest

from exports.contracts import CONTRACTS_DIR, load_contracts
from exports.receiver import run_in_thread
from tests.conftest import copy_of_day

pytestmark = pytest.mark.slow
CONSUMER_ENV = ("NEURON_PUBLISHER_ZHILIAN_PUTUO", "NEURON_ZHILIAN_PUTUO_URL", "NEURON_ZHILIAN_PUTUO_ACCESS_KEY",
                "NEURON_ZHILIAN_PUTUO_SECRET_KEY")
ENV_EXPORT = dg.AssetKey(["export", "zhilian_putuo", "environment_hourly"])
ENV_PUBLISH = dg.AssetKey(["publish", "zhilian_putuo", "environment_hourly"])
WAREHOUSE = dg.AssetKey(["warehouse", "neuron_duckdb"])
EXPORTS = dg.AssetSelection.groups("export_zhilian_putuo", "publish_zhilian_putuo")
# a late telemetry file re-materialises telemetry and the environment export that publishes it
LATE = dg.AssetSelection.groups("telemetry_bronze", "telemetry_silver", "telemetry_gold") | \
    dg.AssetSelection.assets(ENV_EXPORT, ENV_PUBLISH)


def _run(day: str, selection: dg.AssetSelection) -> dg.ExecuteInProcessResult:
    from pipelines.definitions import defs

    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job("publish", selection)]))
    with dg.DagsterInstance.get() as instance:
        return job.resolve_job_def("publish").execute_in_process(partition_key=day, instance=instance,
                                                                 raise_on_error=False)


def _push_env(mp: pytest.MonkeyPatch, url: str) -> None:
    for var, value in zip(CONSUMER_ENV, ("https_push", url, "neuron-test", "s3cret-s3cret-s3cret"), strict=True):
        mp.setenv(var, value)


def _receipts(root: Path, day: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "outbox").glob(f"*/_receipts/*/{day}/v*.json"))]


def _late_file(root: Path, day: str, keep: int) -> tuple[Path, list[str]]:
    """A late iotda file re-sending a community's air-quality messages with changed values."""
    folder = root / "landing" / "telemetry" / day / "iotda"
    for src in sorted(folder.glob("*.ndjson.gz")):
        lines = gzip.decompress(src.read_bytes()).decode().splitlines()
        env = [ln.replace('"noise":', '"noise":9').replace('"pm25":', '"pm25":1') for ln in lines
               if '"AirQuality"' in ln][:keep]
        if env:
            late = folder / f"{src.name.split('-', 1)[0]}-0009-late.ndjson.gz"
            late.write_bytes(gzip.compress(("\n".join(env) + "\n").encode()))
            return late, env
    raise AssertionError("the simulated day has no air-quality messages")


def test_push_correction_and_receiver_down(e2e_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root, day = copy_of_day(e2e_run, monkeypatch, tmp_path), e2e_run.day
    store = tmp_path / "district"
    with run_in_thread(store, CONTRACTS_DIR, {"neuron-test": "s3cret-s3cret-s3cret"}) as rx:
        _push_env(monkeypatch, rx.base_url)
        assert _run(day, EXPORTS).success
        receipts = _receipts(root, day)
        pushed = sorted(c.dataset for c in load_contracts() if c.consumer == "zhilian_putuo"
                        and c.is_publication_day(day))
        assert {(r["dataset"], r["version"]) for r in receipts} == {(d, 1) for d in pushed}
        stored = sorted(p.relative_to(store).as_posix() for p in store.glob(f"zhilian_putuo/*/{day}/v*"))
        assert stored == [f"zhilian_putuo/{d}/{day}/v1" for d in pushed]

        # an unchanged re-run publishes nothing new, locally or remotely
        assert _run(day, EXPORTS).success
        assert len(_receipts(root, day)) == len(pushed)
        assert len(list(store.glob(f"zhilian_putuo/*/{day}/v*"))) == len(pushed)

        # a late file changes the day: the environment dataset goes out as version 2, a correction
        late, env_lines = _late_file(root, day, keep=40)
        assert _run(day, LATE).success
        env_day = root / "outbox" / "zhilian_putuo" / "environment_hourly" / day
        manifest = json.loads((env_day / "v2" / "manifest.json").read_text())
        assert manifest["version"] == 2 and manifest["is_correction"] and manifest["supersedes"] == 1
        assert (env_day / "latest").read_text() == "v2\n" and (env_day / "v1" / "manifest.json").is_file()
        assert manifest["correction"]["rows"]["changed"] > 0
        assert any(t["kind"] == "landing_files" and t["input"] == f"telemetry/{day}"
                   for t in manifest["correction"]["triggers"]), manifest["correction"]
        assert (store / "zhilian_putuo" / "environment_hourly" / day / "v2").is_dir()
        assert {(r["dataset"], r["version"]) for r in _receipts(root, day)} >= {("environment_hourly", 2)}
        dead_url = rx.base_url

    # the receiver is gone: retries, then a failed publish step and no receipt for the new version; the file
    # drop (v3 in the outbox) and the warehouse go on without it, and the retry schedule sees the day
    _push_env(monkeypatch, dead_url)
    monkeypatch.setenv("NEURON_PUBLISH_MAX_RETRIES", "1")
    monkeypatch.setenv("NEURON_PUBLISH_BACKOFF_S", "0.05")
    late.write_bytes(gzip.compress(("\n".join(env_lines[:10]) + "\n").encode()))
    before = _receipts(root, day)
    res = _run(day, LATE | dg.AssetSelection.assets(WAREHOUSE))
    assert not res.success
    failed = {e.step_key for e in res.all_events if e.event_type_value == "STEP_FAILURE"}
    assert failed == {"publish__zhilian_putuo__environment_hourly"}, failed
    done = {m.asset_key for m in res.get_asset_materialization_events()}
    assert {ENV_EXPORT, WAREHOUSE} <= done and ENV_PUBLISH not in done
    assert _receipts(root, day) == before
    from exports.definitions import pending_days
    from kernel.settings import load_settings

    assert pending_days(load_contracts(), load_settings()) == [day]
    # the retry schedule asks for a run of that day (and of no other)
    from kernel.resource import NeuronResource
    from pipelines.definitions import defs

    retry = defs.resolve_schedule_def("publish_retry_schedule")
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(instance=instance, resources={"neuron": NeuronResource()})
        requests = retry(ctx)
    assert [r.partition_key for r in requests] == [day] and retry.job_name == "publish_job"
