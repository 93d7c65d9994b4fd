"""The DuckDB shim: GX evaluates each expectation kind over Parquet, and breaks loudly if GX internals move."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from quality import gx_duckdb
from quality.gx_duckdb import (
    PATCHED_ATTRIBUTE,
    PATCHED_MODULE,
    GXShimError,
    ensure_duckdb_support,
    new_context,
)

from . import PLATE_REGEX, defective, write


def _gx_engine_module():
    return importlib.import_module(PATCHED_MODULE)


def test_private_persisted_connection_name_still_exists_and_is_used_by_get_connection() -> None:
    # Tripwire for GX upgrades: the shim extends this private tuple, and GX must still consult it
    # when handing out connections. If this fails, revisit quality/gx_duckdb.py before upgrading.
    module = _gx_engine_module()
    assert isinstance(getattr(module, PATCHED_ATTRIBUTE, None), tuple)
    source = inspect.getsource(module.SqlAlchemyExecutionEngine.get_connection)
    assert PATCHED_ATTRIBUTE in source


def test_shim_is_idempotent() -> None:
    ensure_duckdb_support()
    ensure_duckdb_support()
    entries = getattr(_gx_engine_module(), PATCHED_ATTRIBUTE)
    assert sum(getattr(e, "value", e) == "duckdb" for e in entries) == 1
    assert gx_duckdb.duckdb_support_applied()


def test_shim_fails_loudly_when_the_private_name_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(_gx_engine_module(), PATCHED_ATTRIBUTE)
    with pytest.raises(GXShimError, match=PATCHED_ATTRIBUTE):
        ensure_duckdb_support()


def test_shim_disables_analytics_and_progress_bars() -> None:
    context = new_context()
    assert context.progress_bars["globally"] is False
    import os

    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"


def test_each_expectation_kind_evaluates_on_duckdb_over_parquet(tmp_path: Path) -> None:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    df = defective(
        1_000,
        {
            "gate_id": ([1, 2, 3], None),
            "dwell_seconds": ([10, 11], -1.0),
            "direction": ([20, 21, 22, 23], "sideways"),
            "passage_id": ([30], "2026-01-02-000031"),
            "plate": ([40, 41, 42, 43, 44], "NOT-A-PLATE"),
        },
    )
    path = write(df, tmp_path / "passages.parquet")
    context = new_context()
    datasource = context.data_sources.add_sql("duck", connection_string=gx_duckdb.DUCKDB_MEMORY_URL)
    batch = (
        datasource.add_query_asset("passages", query=f"SELECT * FROM read_parquet(['{path}'])")
        .add_batch_definition_whole_table("whole")
        .get_batch()
    )
    plate_query = (
        "SELECT plate FROM {batch} WHERE NOT regexp_matches(plate, '"
        + PLATE_REGEX.replace("{", "{{").replace("}", "}}")
        + "')"
    )
    expectations = {
        "not_null": gxe.ExpectColumnValuesToNotBeNull(column="gate_id"),
        "between": gxe.ExpectColumnValuesToBeBetween(column="dwell_seconds", min_value=0, max_value=86_400),
        "in_set": gxe.ExpectColumnValuesToBeInSet(column="direction", value_set=["in", "out"]),
        "unique": gxe.ExpectColumnValuesToBeUnique(column="passage_id"),
        "row_count": gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=1_000),
        "regex": gxe.UnexpectedRowsExpectation(unexpected_rows_query=plate_query),
    }
    for name, expectation in expectations.items():
        expectation.meta = {"t": name}
    result = batch.validate(gx.ExpectationSuite(name="shim", expectations=list(expectations.values())))
    by_name = {r.expectation_config.meta["t"]: r for r in result.results}

    for r in by_name.values():  # without the shim every one raises "list index out of range"
        assert not (r.exception_info or {}).get("raised_exception"), r.exception_info
    assert by_name["not_null"].result["element_count"] == 1_000  # DuckDB returned rows, not []
    assert (by_name["not_null"].success, by_name["not_null"].result["unexpected_count"]) == (False, 3)
    assert (by_name["between"].success, by_name["between"].result["unexpected_count"]) == (False, 2)
    assert (by_name["in_set"].success, by_name["in_set"].result["unexpected_count"]) == (False, 4)
    assert (by_name["unique"].success, by_name["unique"].result["unexpected_count"]) == (False, 2)
    assert (by_name["row_count"].success, by_name["row_count"].result["observed_value"]) == (True, 1_000)
    assert (by_name["regex"].success, by_name["regex"].result["observed_value"]) == (False, 5)
