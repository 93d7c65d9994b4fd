"""Every contract column has a short Chinese title (the CSV header), unique within its contract; contract loading
refuses a contract without one, and every column type maps to the JSON Schema."""

from __future__ import annotations

import json

import pytest

from exports.contracts import ContractError, load_contracts, validate
from exports.publishing.contract_doc import json_type, row_schema

CONTRACTS = load_contracts()


def _raw(contract) -> dict:
    return json.loads(json.dumps(contract.raw))


def test_every_column_of_every_contract_has_a_unique_short_chinese_title() -> None:
    for c in CONTRACTS:
        titles = [col["title_zh"] for col in c.columns]
        assert len(set(titles)) == len(titles), c.id
        for col in c.columns:
            assert any("\u4e00" <= ch <= "\u9fff" for ch in col["title_zh"]), (c.id, col["name"])
            # shorter than the description it is derived from (or the same when that is short already)
            assert len(col["title_zh"]) <= max(len(col["description_zh"]), 24), (c.id, col["name"])


@pytest.mark.parametrize(("change", "message"), [
    (lambda cols: cols[1].pop("title_zh"), "title_zh"),
    (lambda cols: cols[1].update(title_zh=""), "has no title_zh"),
    (lambda cols: cols[1].update(title_zh=cols[0]["title_zh"]), "is used by"),
    (lambda cols: cols[1].update(title_zh="编码,名称"), "comma"),
    (lambda cols: cols[1].update(title_zh="编码\n名称"), "control character"),
    (lambda cols: cols[1].update(title_zh=" 编码"), "surrounding spaces"),
])
def test_a_contract_without_unique_titles_does_not_load(change, message) -> None:
    c = CONTRACTS[0]
    raw = _raw(c)
    change(raw["columns"])
    with pytest.raises(ContractError, match=message):
        validate(raw, c.path)


def test_every_contract_type_has_a_json_schema_type_and_unknown_types_are_refused() -> None:
    for c in CONTRACTS:
        row_schema(c.raw)
    assert json_type("DATE") == {"type": "string", "format": "date"}
    assert json_type("BIGINT")["type"] == "integer" and json_type("DECIMAL(5,2)") == {"type": "number"}
    assert json_type("TIMESTAMP WITH TIME ZONE") == {"type": "string", "format": "date-time"}
    c = CONTRACTS[0]
    raw = _raw(c)
    raw["columns"][1]["type"] = "BLOB"
    with pytest.raises(ContractError, match="no JSON Schema for DuckDB type 'BLOB'"):
        validate(raw, c.path)
