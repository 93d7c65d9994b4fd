"""Publishing through Dagster: corrections as new versions, receipts, and a receiver that is down."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from exports.contracts import CONTRACTS_DIR, load_contracts
from exports.receiver import run_in_thread
from simulator.district import simulate_day
from simulator.telemetry import FaultRates

pytestmark = pytest.mark.slow
DAY = "2026-11-17"
CONSUMER_ENV = ("NEURON_PUBLISHER_ZHILIAN_PUTUO", "NEURON_ZHILIAN_PUTUO_URL", "NEURON_ZHILIAN_PUTUO_ACCESS_KEY",
                "NEURON_ZHILIAN_PUTUO_SECRET_KEY")


def _run():
    from pipelines.definitions import defs

    with dg.DagsterInstance.get() as instance:
        return defs.resolve_job_def("daily_job").execute_in_process(partition_key=DAY, instance=instance,
                                                                    raise_on_error=False)


def _push_env(mp: pytest.MonkeyPatch, url: str) -> None:
    for var, value in zip(CONSUMER_ENV, ("https_push", url, "neuron-test", "s3cret-s3cret-s3cret"), strict=True):
        mp.setenv(var, value)


def _receipts(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "outbox").glob(f"*/_receipts/*/{DAY}/v*.json"))]


def test_push_correction_and_receiver_down(tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch):
    simulate_day(data_root / "landing", date.fromisoformat(DAY), n_communities=2, seed=5, rates=FaultRates.none())
    store = tmp_path / "district"
    with run_in_thread(store, CONTRACTS_DIR, {"neuron-test": "s3cret-s3cret-s3cret"}) as rx:
        _push_env(monkeypatch, rx.base_url)
        first = _run()
        assert first.success
        receipts = _receipts(data_root)
        pushed = sorted(c.dataset for c in load_contracts() if c.consumer == "zhilian_putuo")
        assert {(r["dataset"], r["version"]) for r in receipts} == {(d, 1) for d in pushed}
        stored = sorted(p.relative_to(store).as_posix() for p in store.glob(f"zhilian_putuo/*/{DAY}/v*"))
        assert stored == [f"zhilian_putuo/{d}/{DAY}/v1" for d in pushed]

        # an unchanged re-run publishes nothing new, locally or remotely
        assert _run().success
        assert len(_receipts(data_root)) == len(pushed)
        assert len(list(store.glob(f"zhilian_putuo/*/{DAY}/v*"))) == len(pushed)

        # a late file changes the day: the environment dataset goes out as version 2, a correction
        late = data_root / "landing" / "telemetry" / DAY / "iotda" / "310107001001-0009-late.ndjson.gz"
        src = next((data_root / "landing" / "telemetry" / DAY / "iotda").glob("310107002001-0001*"))
        lines = gzip.decompress(src.read_bytes()).decode().splitlines()
        env_lines = [ln.replace('"noise":', '"noise":9').replace('"pm25":', '"pm25":1') for ln in lines
                     if '"AirQuality"' in ln][:40]
        late.write_bytes(gzip.compress(("\n".join(env_lines) + "\n").encode()))
        assert _run().success
        manifest = json.loads((data_root / "outbox" / "zhilian_putuo" / "environment_hourly" / DAY /
                               "manifest.json").read_text())
        assert manifest["version"] == 2 and manifest["is_correction"] and manifest["supersedes"] == 1
        assert (data_root / "outbox" / "zhilian_putuo" / "environment_hourly" / DAY / "history" / "v1").is_dir()
        assert (store / "zhilian_putuo" / "environment_hourly" / DAY / "v2").is_dir()
        assert {(r["dataset"], r["version"]) for r in _receipts(data_root)} >= {("environment_hourly", 2)}
        dead_url = rx.base_url

    # the receiver is gone: retries, then a failed export step and no receipt for the new version
    _push_env(monkeypatch, dead_url)
    monkeypatch.setenv("NEURON_PUBLISH_MAX_RETRIES", "1")
    monkeypatch.setenv("NEURON_PUBLISH_BACKOFF_S", "0.05")
    late.write_bytes(gzip.compress(("\n".join(env_lines[:10]) + "\n").encode()))
    before = _receipts(data_root)
    res = _run()
    assert not res.success
    failed = {e.step_key for e in res.all_events if e.event_type_value == "STEP_FAILURE"}
    assert any("environment_hourly" in k and k.startswith("export") for k in failed)
    assert _receipts(data_root) == before
