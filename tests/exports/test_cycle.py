"""Datasets publish on their contract's cycle only: a monthly dataset writes nothing (and does not fail) on a day
that is not its publication day, and its batch on the publication day covers the closed previous month."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from assets.registry import datasets
from exports.contracts import ContractError, load_contracts, validate
from exports.definitions import build_export_asset, build_publish_asset, export_files, off_cycle
from kernel.lake_asset import Area
from kernel.resource import NeuronResource
from quality.pii_checks import build_pii_check

from .rows import write_gold

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="Asia/Shanghai")
CONTRACTS = {c.id: c for c in load_contracts()}
MONTHLY = [c for c in CONTRACTS.values() if c.cycle == "monthly"]


def _raw(contract) -> dict:
    return json.loads(json.dumps(contract.raw))


def test_every_contract_states_a_machine_readable_cycle() -> None:
    for c in CONTRACTS.values():
        assert c.raw["cycle"]["period"] in ("daily", "monthly"), c.id
    # the published governance table (gold/governance_month_final) is keyed by the day that holds the closed
    # previous month: the 1st
    governance = CONTRACTS["zhilian_putuo.governance_monthly"]
    assert governance.raw["cycle"] == {"period": "monthly", "publish_day": 1, "covers": "previous_month"}
    assert [governance] == MONTHLY


@pytest.mark.parametrize(("cycle", "message"), [
    (None, r"missing fields \[.cycle.\]"),
    ("monthly", "cycle.period"),
    ({"period": "weekly", "covers": "day"}, "cycle.period"),
    ({"period": "monthly", "covers": "previous_month"}, "publish_day"),
    ({"period": "monthly", "publish_day": 31, "covers": "previous_month"}, "publish_day"),
    ({"period": "monthly", "publish_day": 1, "covers": "day"}, "covers"),
    ({"period": "daily", "covers": "day", "publish_day": 1}, "publish_day is for monthly"),
])
def test_a_contract_with_a_bad_cycle_does_not_load(cycle, message) -> None:
    c = CONTRACTS["zhilian_putuo.governance_monthly"]
    raw = _raw(c)
    raw.pop("cycle")
    if cycle is not None:
        raw["cycle"] = cycle
    with pytest.raises(ContractError, match=message):
        validate(raw, c.path)


def test_publication_days_and_covered_periods() -> None:
    m = CONTRACTS["zhilian_putuo.governance_monthly"]
    assert [d for d in ("2026-11-30", "2026-12-01", "2026-12-02") if m.is_publication_day(d)] == ["2026-12-01"]
    assert m.next_publication_day("2026-11-20") == "2026-12-01"
    assert m.next_publication_day("2026-12-15") == "2027-01-01"
    assert m.covered_period("2027-01-01") == {"cycle": "monthly", "start": "2026-12-01", "end": "2026-12-31"}
    assert m.covered_period("2028-03-01") == {"cycle": "monthly", "start": "2028-02-01", "end": "2028-02-29"}
    daily = CONTRACTS["zhilian_putuo.device_health_daily"]
    assert daily.is_publication_day("2026-11-20") and off_cycle(daily, "2026-11-20") is None
    assert daily.covered_period("2026-11-20") == {"cycle": "daily", "start": "2026-11-20", "end": "2026-11-20"}


def _materialize(contract, day: str, data: Path) -> dg.ExecuteInProcessResult:
    area = Area(PARTITIONS)
    export = build_export_asset(contract, datasets()[contract.source], area)
    publish = build_publish_asset(contract, area)
    check = build_pii_check(export.key, export_files(contract), PARTITIONS)
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize([export, publish, check], partition_key=day, instance=instance,
                              resources={"neuron": NeuronResource(data_dir=str(data))}, raise_on_error=False)


def _metadata(result: dg.ExecuteInProcessResult, key_prefix: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key.path[0] == key_prefix]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.mark.parametrize("contract", MONTHLY, ids=[c.id for c in MONTHLY])
def test_a_monthly_dataset_writes_nothing_on_a_day_that_is_not_its_publication_day(tmp_path: Path, contract) -> None:
    day = "2026-11-20"
    write_gold(tmp_path / "lake", contract, day, n=0)  # gold writes its (empty) partition every day
    result = _materialize(contract, day, tmp_path)
    assert result.success  # not a failure
    export, publish = _metadata(result, "export"), _metadata(result, "publish")
    assert export["published"] is False and export["publication_day"] is False
    assert "not a publication day" in export["skipped"] and export["next_publication_day"] == "2026-12-01"
    assert publish["published"] is False and "not a publication day" in publish["skipped"]
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox").rglob("*"))  # no (empty) batch
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["files_scanned"].value == 0


@pytest.mark.parametrize("contract", MONTHLY, ids=[c.id for c in MONTHLY])
def test_on_its_publication_day_a_monthly_batch_covers_the_closed_month(tmp_path: Path, contract) -> None:
    day = "2026-12-01"
    write_gold(tmp_path / "lake", contract, day, n=4)
    result = _materialize(contract, day, tmp_path)
    assert result.success
    folder = tmp_path / "outbox" / contract.consumer / contract.dataset / day / "v1"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["period"] == {"cycle": "monthly", "start": "2026-11-01", "end": "2026-11-30"}
    assert manifest["row_count"] == 4 and (folder.parent / "latest").read_text() == "v1\n"
    assert _metadata(result, "export")["period"] == "2026-11-01..2026-11-30"
    # what the batch was built from is recorded, for the next correction: the closed month's last day
    assert manifest["inputs"]["landing"] and all(k.endswith("/2026-11-30") for k in manifest["inputs"]["landing"])


@pytest.mark.parametrize("contract", MONTHLY, ids=[c.id for c in MONTHLY])
def test_a_publication_day_without_the_closed_months_figures_is_withheld_not_sent_empty(tmp_path, contract) -> None:
    day = "2026-12-01"
    write_gold(tmp_path / "lake", contract, day, n=0)  # the month's last day was never built
    result = _materialize(contract, day, tmp_path)
    assert result.success
    export = _metadata(result, "export")
    assert export["published"] is False and export["publication_day"] is True and "withheld" in export["withheld"]
    assert not (tmp_path / "outbox" / contract.consumer / contract.dataset / day).exists()


def test_a_daily_dataset_publishes_on_the_same_day(tmp_path: Path) -> None:
    contract = CONTRACTS["zhilian_putuo.device_health_daily"]
    write_gold(tmp_path / "lake", contract, "2026-11-20", n=3)
    result = _materialize(contract, "2026-11-20", tmp_path)
    assert result.success and _metadata(result, "export")["published"] is True
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["files_scanned"].value == 5  # four batch files and the manifest
