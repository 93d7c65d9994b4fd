"""Neuron's pool limits on a local instance (pipelines/pools.py): one warehouse writer, NEURON_INGEST_SLOTS bronze
parses; an operator's own limit is never overridden; and the limit is what a real multiprocess run obeys."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import pytest

from kernel.settings import SettingsError, load_settings
from pipelines.cli import prepare_dagster_home
from pipelines.pools import INGEST_POOL, MARKER
from warehouse.definitions import WAREHOUSE_POOL


def _limits(home: Path) -> dict[str, tuple[int, bool]]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return {p.name: (p.limit, p.from_default) for p in instance.event_log_storage.get_pool_limits()}


def test_a_fresh_instance_gets_neurons_limits_and_follows_the_setting(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("NEURON_INGEST_SLOTS", raising=False)
    home = prepare_dagster_home(tmp_path / "home")
    assert _limits(home) == {INGEST_POOL: (2, False), WAREHOUSE_POOL: (1, False)}
    monkeypatch.setenv("NEURON_INGEST_SLOTS", "3")
    prepare_dagster_home(home)
    assert _limits(home)[INGEST_POOL] == (3, False)  # Neuron's own earlier value moves with the setting
    with dg.DagsterInstance.from_config(str(home)) as instance:
        stored = instance.run_storage.get_cursor_values({MARKER})[MARKER]
    assert json.loads(stored) == {INGEST_POOL: 3, WAREHOUSE_POOL: 1}


def test_an_operators_limit_is_kept(tmp_path: Path, monkeypatch):
    home = prepare_dagster_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:  # `dagster instance concurrency set`
        instance.event_log_storage.set_concurrency_slots(INGEST_POOL, 5)
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 4)  # one warehouse per district
    for slots in ("2", "1", "7"):
        monkeypatch.setenv("NEURON_INGEST_SLOTS", slots)
        prepare_dagster_home(home)
        assert _limits(home) == {INGEST_POOL: (5, False), WAREHOUSE_POOL: (4, False)}
    # even when the operator's value happens to equal Neuron's later one, it stays the operator's
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots(INGEST_POOL, 7)
    prepare_dagster_home(home)
    monkeypatch.setenv("NEURON_INGEST_SLOTS", "2")
    prepare_dagster_home(home)
    assert _limits(home)[INGEST_POOL] == (7, False)


@pytest.mark.parametrize("raw", ["0", "65", "two", "-1"])
def test_a_bad_slot_count_is_refused_by_name(raw: str):
    with pytest.raises(SettingsError, match="NEURON_INGEST_SLOTS"):
        load_settings({"NEURON_INGEST_SLOTS": raw})


def _parse() -> tuple[float, float]:
    t = time.time()
    time.sleep(1.5)
    return t, time.time()


_a, _b, _c = (dg.op(name=f"_parse_{n}", pool=INGEST_POOL)(_parse) for n in "abc")


@dg.job(executor_def=dg.multiprocess_executor.configured({"max_concurrent": 3}))
def three_parses():
    _a()
    _b()
    _c()


def test_a_run_obeys_the_slots(tmp_path: Path, monkeypatch):
    """Three pooled steps, three executor slots, two pool slots: two run together and the third waits."""
    monkeypatch.setenv("NEURON_INGEST_SLOTS", "2")
    home = prepare_dagster_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance, \
            dg.execute_job(dg.reconstructable(three_parses), instance) as res:
        assert res.success
        spans = [res.output_for_node(f"_parse_{n}") for n in "abc"]
    overlaps = sorted(min(x[1], y[1]) - max(x[0], y[0]) for i, x in enumerate(spans) for y in spans[i + 1:])
    assert overlaps[-1] > 0.5, spans  # two at once
    assert min(s[1] for s in spans) <= max(s[0] for s in spans), spans  # never three: the last starts after one ended

def test_neuron_pools_prints_each_limit_and_whose_it_is(data_root: Path, monkeypatch, capsys):
    from pipelines.cli import main

    monkeypatch.setenv("NEURON_INGEST_SLOTS", "3")
    assert main(["pools"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{INGEST_POOL}: 3", f"{WAREHOUSE_POOL}: 1"]
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 4)
    assert main(["pools"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"{WAREHOUSE_POOL}: 4 (set by an operator; Neuron's would be 1)"
    monkeypatch.setenv("NEURON_INGEST_SLOTS", "zero")
    assert main(["pools"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "neuron pools: error: NEURON_INGEST_SLOTS must be a number, got 'zero'"]
