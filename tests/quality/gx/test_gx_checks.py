"""build_gx_checks in Dagster: blocking ERROR checks stop publication per partition, WARN checks only inform."""

# No ``from __future__ import annotations``: Dagster inspects ``context`` annotations at runtime.
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from kernel.expectations import Expect
from kernel.resource import NeuronResource
from quality.gx_checks import build_gx_checks

from . import PLATE_REGEX, passages, plant, write

DAILY = dg.DailyPartitionsDefinition(start_date="2026-01-01")
PASSAGES = dg.AssetKey(["silver", "vehicle_passages"])
EXPORT = dg.AssetKey(["export", "public_security", "vehicle_passages"])
BAD_DAY = "2026-01-02"  # the simulated gate firmware bug: negative dwell times on 7 rows
CLEAN_DAY = "2026-01-03"
NEGATIVE_DWELL_ROWS = list(range(100, 107))
def materialize(*args, instance: dg.DagsterInstance | None = None, **kwargs) -> dg.ExecuteInProcessResult:
    """``dg.materialize`` inside an instance's context (a fresh ephemeral one unless the caller holds one open):
    definitions loaded during the call then never see the state storage of an instance an earlier test left."""
    if instance is not None:
        return dg.materialize(*args, instance=instance, resources=resources(), **kwargs)
    with dg.DagsterInstance.ephemeral() as inst:
        return dg.materialize(*args, instance=inst, resources=resources(), **kwargs)


def resources() -> dict:
    """A fresh resource per run (one reused across runs would keep a reference to an earlier run's instance);
    settings are read when a step runs: NEURON_QUALITY_DIR from the fixture."""
    return {"neuron": NeuronResource()}


def _token(value: str) -> str:
    return f"tok({len(value)})"


def _specs():
    return [
        Expect.not_null("passage_id"),
        Expect.unique("passage_id"),
        Expect.between("dwell_seconds", 0, 86_400),
        Expect.in_set("gate_id", ["north", "south", "east"]),
        Expect.regex("plate", PLATE_REGEX, severity="WARN"),
        Expect.row_count_between(1, 10_000),
    ]


def _definitions(lake: Path, outbox: Path) -> list:
    def partition_dir(key: str | None) -> Path:
        return lake / "silver" / "vehicle_passages" / f"date={key}"

    @dg.asset(key=PASSAGES, partitions_def=DAILY)
    def vehicle_passages(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        day = context.partition_key
        df = passages(500, day=day)
        df = df.with_columns(plate=df["plate"].scatter([0], "not a plate"))  # WARN-level noise every day
        if day == BAD_DAY:
            df = plant(df, "dwell_seconds", NEGATIVE_DWELL_ROWS, -30.0)
        write(df, partition_dir(day) / "part-0.parquet")
        return dg.MaterializeResult(metadata={"rows": len(df)})

    @dg.asset(key=EXPORT, partitions_def=DAILY, deps=[PASSAGES])
    def export_vehicle_passages(context: dg.AssetExecutionContext) -> None:
        target = outbox / f"{context.partition_key}.done"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("published")

    checks = build_gx_checks(
        PASSAGES,
        "silver_vehicle_passages",
        _specs(),
        lambda neuron, key: sorted(str(p) for p in partition_dir(key).glob("*.parquet")),
        partitions_def=DAILY,
        redactor=_token,
    )
    return [vehicle_passages, export_vehicle_passages, checks]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEURON_QUALITY_DIR", str(tmp_path / "quality"))
    return tmp_path / "lake", tmp_path / "outbox", tmp_path / "quality"


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {m.asset_key for m in result.get_asset_materialization_events() if m.asset_key}


def test_check_definition_has_one_blocking_check_per_error_expectation(env) -> None:
    checks = _definitions(*env[:2])[2]
    specs = {s.key.name: s for s in checks.check_specs}
    assert set(specs) == {s.name for s in _specs()}
    assert specs["dwell_seconds_between"].blocking and not specs["plate_matches_regex"].blocking
    assert specs["dwell_seconds_between"].partitions_def == DAILY


def test_bad_batch_fails_blocking_check_and_export_does_not_materialize(env) -> None:
    lake, outbox, _ = env
    result = materialize(
        _definitions(lake, outbox),
        partition_key=BAD_DAY,
        
        raise_on_error=False,
    )
    assert not result.success
    evaluations = _evaluations(result)
    dwell = evaluations["dwell_seconds_between"]
    assert dwell.passed is False and dwell.severity == dg.AssetCheckSeverity.ERROR
    assert dwell.partition == BAD_DAY
    assert dwell.metadata["unexpected_count"].value == len(NEGATIVE_DWELL_ROWS)
    assert dwell.metadata["sample_unexpected"].value == ["tok(5)"] * 5  # "-30.0", redacted
    assert dwell.metadata["gx_expectation"].value == "expect_column_values_to_be_between"
    assert dwell.metadata["validation_seconds"].value > 0
    assert evaluations["passage_id_unique"].passed
    assert _materialized(result) == {PASSAGES}
    assert not (outbox / f"{BAD_DAY}.done").exists()


def test_clean_batch_passes_and_export_materializes_despite_warn_failure(env) -> None:
    lake, outbox, quality = env
    result = materialize(
        _definitions(lake, outbox),
        partition_key=CLEAN_DAY,
        
        raise_on_error=False,
    )
    assert result.success
    evaluations = _evaluations(result)
    assert {n for n, e in evaluations.items() if not e.passed} == {"plate_matches_regex"}
    plate = evaluations["plate_matches_regex"]
    assert plate.severity == dg.AssetCheckSeverity.WARN
    assert plate.metadata["unexpected_count"].value == 1
    assert plate.metadata["sample_unexpected"].value == ["tok(11)"]
    assert evaluations["dwell_seconds_between"].metadata["unexpected_count"].value == 0
    assert evaluations["row_count_between"].metadata["observed_value"].value == 500
    docs = evaluations["dwell_seconds_between"].metadata["data_docs"].value
    assert docs.startswith("http://127.0.0.1:3100/validations/silver_vehicle_passages/2026-01-03/")
    assert (quality / "docs" / docs.removeprefix("http://127.0.0.1:3100/")).is_file()
    assert _materialized(result) == {PASSAGES, EXPORT}
    assert (outbox / f"{CLEAN_DAY}.done").read_text() == "published"


def test_every_check_has_a_description_saying_what_it_checks_and_whether_it_blocks(env) -> None:
    checks = _definitions(*env[:2])[2]
    for spec in checks.check_specs:
        assert spec.description and len(spec.description) > 20, spec.key
    specs = {s.key.name: s for s in checks.check_specs}
    assert specs["dwell_seconds_between"].description.startswith("`dwell_seconds` is between 0 and 86400")
    assert "blocks downstream publication" in specs["dwell_seconds_between"].description
    assert "informs only" in specs["plate_matches_regex"].description
    assert checks.node_def.description


def test_check_metadata_links_its_page_over_http_and_summarises_it_in_markdown(env) -> None:
    lake, outbox, quality = env
    defs = _definitions(lake, outbox)
    with dg.DagsterInstance.ephemeral() as instance:
        first = materialize(defs, partition_key=BAD_DAY, instance=instance, raise_on_error=False)
        second = materialize(defs, partition_key=BAD_DAY, instance=instance, raise_on_error=False)
    urls = set()
    for result in (first, second):
        dwell = _evaluations(result)["dwell_seconds_between"]
        url = dwell.metadata["data_docs"].value
        assert url.startswith("http://127.0.0.1:3100/validations/") and url.endswith(".html")
        assert dwell.metadata["data_docs_index"].value == "http://127.0.0.1:3100/index.html"
        assert dwell.metadata["data_docs_partition"].value == f"http://127.0.0.1:3100/days/{BAD_DAY}.html"
        summary = dwell.metadata["data_docs_summary"]
        assert isinstance(summary, dg.MarkdownMetadataValue)
        row = next(line for line in summary.value.splitlines() if "dwell\\_seconds\\_between" in line)
        assert "**FAILED**" in row and "| 7 (" in row and "`tok(5)`" in row
        assert "not a plate" not in summary.value  # the WARN sample stays redacted too
        assert url in summary.value
        urls.add(url)
    assert len(urls) == 2  # a re-run adds a page; the first run's page stays

    from pipelines.docs_server import run_in_thread

    with run_in_thread(quality / "docs", port=0) as server:
        for url in urls:
            with urllib.request.urlopen(url.replace("http://127.0.0.1:3100", server.base_url)) as response:
                page = response.read().decode()
            assert response.status == 200 and "dwell_seconds" in page and "https://" not in page
        with urllib.request.urlopen(f"{server.base_url}/days/{BAD_DAY}.html") as response:
            day = response.read().decode()
        assert all(url.rsplit("/", 1)[1] in day for url in urls)


def test_check_only_run_reads_the_partition_from_run_tags(env) -> None:
    lake, outbox, _ = env
    defs = _definitions(lake, outbox)
    with dg.DagsterInstance.ephemeral() as instance:
        materialize(defs, partition_key=BAD_DAY, instance=instance, raise_on_error=False)
        # Dagster 1.13 cannot infer a partitions definition for a check-only selection, so a
        # re-check of one partition is launched with the partition tag instead of partition_key.
        result = materialize(
            defs,
            selection=dg.AssetSelection.checks_for_assets(PASSAGES),
            tags={"dagster/partition": BAD_DAY},
            instance=instance,
            raise_on_error=False,
        )
    evaluations = _evaluations(result)
    assert evaluations["dwell_seconds_between"].partition == BAD_DAY
    assert evaluations["dwell_seconds_between"].metadata["unexpected_count"].value == 7
    assert _materialized(result) == set()


def test_missing_partition_files_fail_the_row_count_check(env) -> None:
    lake, outbox, _ = env
    result = materialize(
        _definitions(lake, outbox),
        selection=dg.AssetSelection.checks_for_assets(PASSAGES),
        tags={"dagster/partition": "2026-01-09"},
        
        raise_on_error=False,
    )
    evaluations = _evaluations(result)
    assert evaluations["row_count_between"].passed is False
    assert evaluations["row_count_between"].metadata["files"].value == 0
    assert evaluations["passage_id_not_null"].passed  # vacuously: there is nothing to check


def test_building_checks_does_not_import_great_expectations(tmp_path: Path) -> None:
    code = (
        "import sys, dagster as dg\n"
        "from kernel.expectations import Expect\n"
        "from quality.gx_checks import build_gx_checks\n"
        "build_gx_checks(dg.AssetKey('a'), 's', [Expect.not_null('x')], lambda n, k: [])\n"
        "assert 'great_expectations' not in sys.modules, 'GX imported at definition time'\n"
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
