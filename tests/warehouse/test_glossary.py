"""The bilingual dictionary: every declared column has Chinese in warehouse/glossary_zh.yaml, and every view and
table of the file carries comments (COMMENT ON VIEW / COLUMN) and dictionary rows in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from assets.registry import datasets
from exports.contracts import load_contracts
from kernel.dataset import C, Dataset
from kernel.lake import Lake
from tests.warehouse.conftest import SmallLake
from warehouse.catalog import build_warehouse
from warehouse.glossary import load_glossary

HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_declared_dataset_and_column_has_a_chinese_title_and_description():
    missing = load_glossary().missing(datasets().values())
    assert missing == [], f"add these to warehouse/glossary_zh.yaml: {missing}"


def test_a_column_without_an_entry_is_reported():
    gold = datasets()["gold/environment_hourly"]
    probe = Dataset("gold", "environment_hourly", gold.grain, gold.description,
                    (*gold.columns, C("humidity_avg", "DOUBLE", "Mean relative humidity, %")), domain="telemetry")
    assert load_glossary().missing([probe]) == ["gold/environment_hourly.humidity_avg"]
    unknown = Dataset("gold", "noise_daily", "one row per community per day", "Noise per day.",
                      (C("community_id", "VARCHAR", "Community code"),), domain="telemetry")
    assert load_glossary().missing([unknown]) == ["gold/noise_daily"]


def test_a_name_that_means_different_things_takes_the_dataset_override():
    g = load_glossary()
    assert g.column("bronze", "work_orders", "channel").title_zh == "报事渠道"
    assert g.column("silver", "payments", "channel").title_zh == "缴费渠道"
    assert g.column("silver", "governance_ballots", "channel").title_zh == "渠道"  # the generic entry
    assert g.column("gold", "environment_hourly", "devices").title_zh == "上报设备数"
    assert g.column("gold", "device_health_daily", "devices").title_zh == "登记设备数"


def test_gold_titles_agree_with_the_contracts_they_were_seeded_from():
    """The contracts' description_zh seeded the gold columns: each still appears in the glossary's text."""
    g = load_glossary()
    for contract in load_contracts():
        layer, name = contract.source.split("/")
        for col in contract.columns:
            if col["name"] == "stat_date":
                continue
            text = g.column(layer, name, col["name"])
            assert text.title_zh and text.description_zh, f"{contract.source}.{col['name']}"


def test_an_internal_dataset_falls_back_to_its_gold_twin():
    g = load_glossary()
    text = g.dataset("internal", "gate_flow_hourly")
    assert text.title_zh.startswith("社区出入口人行通行小时统计") and "内部精确值" in text.title_zh
    assert g.column("internal", "gate_flow_hourly", "gate_id") == g.column("gold", "gate_flow_hourly", "gate_id")


def _comments(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
                       "WHERE database_name = current_database() ORDER BY ALL").fetchall()


def test_every_view_and_column_of_the_file_has_a_bilingual_comment(small_lake: SmallLake, tmp_path: Path):
    build_warehouse(small_lake.warehouse, small_lake.lake, small_lake.outbox, load_contracts())
    con = duckdb.connect(str(small_lake.warehouse), read_only=True)
    objects = con.execute("SELECT schema_name, view_name, comment FROM duckdb_views() WHERE NOT internal "
                          "UNION ALL SELECT schema_name, table_name, comment FROM duckdb_tables() "
                          "WHERE NOT internal").fetchall()
    assert len(objects) > 90
    for schema, name, text in objects:
        assert text and HAN.search(text) and " | " in text, f"{schema}.{name}: {text!r}"
    comments = _comments(con)
    for schema, name, column, text in comments:
        assert text and HAN.search(text) and " | " in text, f"{schema}.{name}.{column}: {text!r}"
    kept = {(s, t, c) for s, t, c, _ in comments}
    # the hive partition column, the accounting union and the catalog tables are described too
    assert {("silver", "telemetry", "date"), ("audit", "row_accounting", "date"),
            ("audit", "row_accounting", "balanced"), ("meta", "exports", "generated_at"),
            ("meta", "data_dictionary", "column_title_zh"), ("dim", "community", "street_code")} <= kept
    # information_schema shows them to BI tools (DuckDB's DESCRIBE does not show comments)
    assert con.execute("SELECT column_comment FROM information_schema.columns WHERE table_schema = 'silver' "
                       "AND table_name = 'telemetry' AND column_name = 'date'").fetchall()[0][0].startswith(
        "Partition day")


def test_the_dictionary_has_both_languages_for_every_column(small_lake: SmallLake):
    build_warehouse(small_lake.warehouse, small_lake.lake, small_lake.outbox, load_contracts())
    con = duckdb.connect(str(small_lake.warehouse), read_only=True)
    gaps = con.execute("SELECT layer, dataset, column_name FROM meta.data_dictionary WHERE column_title_zh IS NULL "
                       "OR column_description_zh IS NULL OR column_description IS NULL OR dataset_title_zh IS NULL "
                       "OR dataset_description IS NULL OR dataset_description_zh IS NULL").fetchall()
    assert gaps == []
    assert con.execute("SELECT dataset_title_zh, column_title_zh, column_description FROM meta.data_dictionary "
                       "WHERE layer = 'gold' AND dataset = 'environment_hourly' AND column_name = 'date'"
                       ).fetchall() == [("社区环境监测小时数据", "分区日期",
                                         "Partition day (hive folder date=YYYY-MM-DD, a local Asia/Shanghai day): "
                                         "the day the row was processed for; filter on it to read only that "
                                         "day's files")]
    # the dictionary and the comments say the same
    mismatched = con.execute("""
        SELECT d.layer, d.dataset, d.column_name FROM meta.data_dictionary AS d
        JOIN duckdb_columns() AS c ON c.schema_name = d.layer AND c.table_name = d.dataset
            AND c.column_name = d.column_name AND c.database_name = current_database()
        WHERE NOT contains(c.comment, d.column_title_zh) OR NOT starts_with(c.comment, d.column_description)
    """).fetchall()
    assert mismatched == []


@pytest.mark.parametrize("name", ["row_accounting_parking", "row_accounting_governance_votes"])
def test_row_accounting_patterns_name_their_source(name: str):
    text = load_glossary().dataset("audit", name)
    assert name.removeprefix("row_accounting_") in text.title_zh and text.complete


def test_comments_survive_an_empty_lake(tmp_path: Path):
    path = tmp_path / "neuron.duckdb"
    build_warehouse(path, Lake(tmp_path / "lake"), tmp_path / "outbox")
    con = duckdb.connect(str(path), read_only=True)
    assert all(text for *_, text in _comments(con))
