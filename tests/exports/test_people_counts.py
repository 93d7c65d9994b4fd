"""Contracts that count people: declared as such, backed by suppressed gold, and gated at export."""

from __future__ import annotations

import json

import duckdb
import pytest

from exports.contracts import ContractError, disclosures, load_contracts, validate
from exports.definitions import small_cell_problems
from kernel.disclosure import Disclosure


def _telemetry_contract():
    return next(c for c in load_contracts() if c.id == "zhilian_putuo.device_health_daily")


def test_a_contract_must_say_whether_it_counts_people():
    c = _telemetry_contract()
    raw = json.loads(json.dumps(c.raw))
    del raw["counts_people"]
    with pytest.raises(ContractError, match="counts_people"):
        validate(raw, c.path)


def test_a_people_count_contract_needs_suppressed_gold_and_its_count_columns():
    c = _telemetry_contract()
    raw = json.loads(json.dumps(c.raw))
    raw["counts_people"] = True
    with pytest.raises(ContractError, match="suppression columns"):
        validate(raw, c.path)


def test_every_people_count_contract_lists_count_columns_that_exist():
    for c in load_contracts():
        if c.counts_people:
            names = [col["name"] for col in c.columns]
            assert c.count_columns and set(c.count_columns) <= set(names), c.id
            assert {"suppressed", "suppression"} <= set(names), c.id


class _Stub:
    counts_people = True
    k_threshold = 5
    count_columns = ["passes", "visitors"]
    disclosure = Disclosure("suppression", k=5)


def test_small_cell_gate_finds_unsuppressed_counts_below_k_and_accepts_zero_null_and_k():
    con = duckdb.connect()
    relation = """SELECT * FROM (VALUES
        (0, 7, false), (5, 0, false), (NULL, NULL, true), (3, 9, true), (2, 6, false)
    ) t(passes, visitors, suppressed)"""
    problems = small_cell_problems(con, relation, _Stub())
    assert problems == ["passes: 1 unsuppressed cells below k=5"]
    clean = relation.replace("(2, 6, false)", "(6, 6, false)")
    assert small_cell_problems(con, clean, _Stub()) == []


def test_count_columns_must_be_the_people_counts_the_dataset_declares():
    c = next(c for c in load_contracts() if c.id == "zhilian_putuo.access_daily")
    raw = json.loads(json.dumps(c.raw))
    raw["count_columns"] = raw["count_columns"][:-1]  # one people count left unprotected
    with pytest.raises(ContractError, match="differ from the people counts"):
        validate(raw, c.path)
    raw = json.loads(json.dumps(c.raw))
    raw["counts_people"] = False  # the declaration says it counts people
    with pytest.raises(ContractError, match="must say counts_people: true"):
        validate(raw, c.path)


def _access_daily_raw():
    c = next(c for c in load_contracts() if c.id == "zhilian_putuo.access_daily")
    return c, json.loads(json.dumps(c.raw))


@pytest.mark.parametrize(("block", "message"), [
    (None, "disclosure.method"),
    ({"method": "noise"}, "disclosure.method"),
    ({"method": "cell_key", "variance": 1.0}, "max_deviation"),
    ({"method": "cell_key", "max_deviation": 2, "variance": 9.0}, "variance"),
    ({"method": "cell_key", "max_deviation": 2, "variance": 1.0, "js": 2}, "js"),
])
def test_a_people_count_contract_must_name_a_valid_disclosure_method(block, message):
    c, raw = _access_daily_raw()
    raw.pop("disclosure", None)
    if block is not None:
        raw["disclosure"] = block
    with pytest.raises(ContractError, match=message):
        validate(raw, c.path)


def test_contracts_publishing_one_dataset_must_agree_on_the_disclosure():
    c, raw = _access_daily_raw()
    other = dict(raw, disclosure={"method": "cell_key", "max_deviation": 3, "variance": 1.0})
    from exports.contracts import Contract
    with pytest.raises(ContractError, match="different disclosure"):
        disclosures([c, Contract(other, c.path)])
    assert disclosures([c, Contract(json.loads(json.dumps(raw)), c.path)])[c.source] == c.disclosure


def test_flow_contracts_use_the_cell_key_method_and_say_so():
    by_id = {c.id: c for c in load_contracts()}
    for cid in ("public_security.gate_flow_hourly", "public_security.vehicle_flow_hourly",
                "zhilian_putuo.access_daily"):
        d = by_id[cid].disclosure
        assert d.is_cell_key and d.max_deviation == 2 and d.variance == 1.0 and d.js == 0, cid


def test_the_cell_key_gate_rejects_a_positive_count_up_to_js():
    class CK(_Stub):
        disclosure = Disclosure("cell_key", max_deviation=3, variance=1.5, js=2)

    con = duckdb.connect()
    relation = "SELECT * FROM (VALUES (2, 0, false), (7, 3, false)) t(passes, visitors, suppressed)"
    assert small_cell_problems(con, relation, CK()) == ["passes: 1 cells between 1 and js=2"]
