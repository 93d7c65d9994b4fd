"""Turn a declared expectation suite into Dagster asset checks: one check per expectation, one GX run per step.

Building the definition never imports great-expectations; the suite runs (and GX loads) only when the
check step executes.
"""

# No ``from __future__ import annotations``: Dagster inspects the ``context`` annotation at runtime.
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import dagster as dg

from kernel.expectations import Spec, snake_name, validate_specs
from kernel.partitions import day_of
from kernel.resource import NeuronResource
from kernel.settings import Settings
from quality.data_docs import DEFAULT_BASE_URL, INDEX, markdown_summary, page_url
from quality.gx_runner import DEFAULT_SAMPLE_SIZE, ExpectationOutcome, Redactor, SuiteResult, run_suite

DATA_DOCS_SUBDIR = "docs"
_SEVERITY = {"ERROR": dg.AssetCheckSeverity.ERROR, "WARN": dg.AssetCheckSeverity.WARN}


def build_gx_checks(
    asset_key: dg.AssetKey,
    suite_name: str,
    specs: Sequence[Spec],
    paths_for_partition: Callable[[NeuronResource, str | None], list[str]],
    partitions_def: dg.PartitionsDefinition | None = None,
    *,
    redactor: Redactor | None = None,
    data_docs: bool = True,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    name: str | None = None,
    op_tags: Mapping[str, str] | None = None,
) -> dg.AssetChecksDefinition:
    """One ``@multi_asset_check`` with an ``AssetCheckSpec`` per expectation (ERROR specs are blocking).

    ``paths_for_partition`` maps the run's partition key (``None`` when unpartitioned) to the Parquet
    files to validate. Pass the asset's ``partitions_def`` so evaluations are recorded per partition.
    ``redactor`` is applied to every sampled value before it reaches check metadata or Data Docs
    (written under the resource's ``quality_dir / "docs"`` unless ``data_docs=False``). Each evaluation
    carries the suite's results as markdown and, with Data Docs, http links to its page (served by
    ``pipelines/docs_server.py`` at ``data_docs_base_url(settings)``).
    """
    validate_specs(specs)
    if not specs:
        raise ValueError(f"suite {suite_name!r} declares no expectations")
    with warnings.catch_warnings():
        # Partitioned checks are a preview feature in Dagster 1.13; we opt in deliberately, so the
        # warning would only repeat on every code-location load.
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        check_specs = [
            dg.AssetCheckSpec(
                name=spec.name,
                asset=asset_key,
                description=_check_description(spec, suite_name),
                blocking=spec.blocking,
                metadata={"severity": spec.severity, "kind": spec.kind, "suite": suite_name},
                partitions_def=partitions_def,
            )
            for spec in specs
        ]

    @dg.multi_asset_check(
        specs=check_specs,
        name=name or f"{snake_name(suite_name)}_gx_checks",
        description=f"great-expectations suite `{suite_name}` ({len(specs)} expectations) on DuckDB",
        can_subset=True,
        compute_kind="great_expectations",
        op_tags=op_tags,
    )
    def _gx_checks(context: dg.AssetCheckExecutionContext, neuron: NeuronResource) -> Iterator[dg.AssetCheckResult]:
        selected = {key.name for key in context.selected_asset_check_keys if key.asset_key == asset_key}
        keys = partition_keys_of(context)
        paths = [path for key in keys for path in paths_for_partition(neuron, key)]
        docs_dir = data_docs_dir(neuron.settings.quality_dir) if data_docs else None
        named = [k for k in keys if k]
        run_name = "..".join(dict.fromkeys([named[0], named[-1]])) if named else "unpartitioned"
        result = run_suite(
            suite_name,
            paths,
            [spec for spec in specs if spec.name in selected],
            docs_dir=docs_dir,
            redactor=redactor,
            sample_size=sample_size,
            run_name=run_name,
            run_id=context.run.run_id,
        )
        context.log.info(
            f"suite {suite_name} on {run_name}: {len(result.outcomes)} expectations, "
            f"{len(result.blocking_failures)} blocking failures, {result.elapsed_seconds:.2f}s"
        )
        if result.data_docs_error:
            context.log.warning(f"suite {suite_name}: Data Docs page not written ({result.data_docs_error})")
        docs = _docs_metadata(result, run_name, data_docs_base_url(neuron.settings))
        for outcome in result.outcomes:
            yield _check_result(asset_key, outcome, result, run_name, docs)

    return _gx_checks


def _check_description(spec: Spec, suite_name: str) -> str:
    what = (spec.description or f"{spec.kind} expectation").rstrip(". ")
    effect = "blocks downstream publication when it fails" if spec.blocking else "informs only (WARN)"
    return f"{what}. great-expectations suite `{suite_name}`; {effect}."


def partition_keys_of(context: dg.AssetCheckExecutionContext) -> list[str | None]:
    """The days a check step covers: one partition's, a range's, or ``[None]`` if unpartitioned. With districts
    the key's district is the run's (``NeuronResource`` resolves its settings to it), so only the day is given.

    Works for runs that materialize the asset with a partition key and for check-only runs tagged with
    ``dagster/partition`` (Dagster 1.13 derives the key from the run's partition tags in both cases).
    """
    if context.has_partition_key:
        return [day_of(context.partition_key)]
    if context.has_partition_key_range:
        return list(dict.fromkeys(day_of(k) for k in context.partition_keys))
    return [None]


def data_docs_base_url(settings: Settings) -> str:
    """Where the Data Docs server answers (``http://127.0.0.1:3100`` unless the setting moves it) for these
    settings' pages: a district's are under ``/<district>/<docs folder>/`` (the server then serves the quality
    root, ``data_docs_site``)."""
    base = (settings.data_docs_url or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}/{settings.district}/{DATA_DOCS_SUBDIR}" if settings.district else base


def data_docs_site(settings: Settings) -> Path:
    """The folder the Data Docs server serves: the docs folder, or with districts the quality root above every
    district's docs folder."""
    return settings.quality_dir if settings.districts and not settings.district else data_docs_dir(settings.quality_dir)


def _docs_metadata(result: SuiteResult, run_name: str, base_url: str) -> dict[str, dg.MetadataValue]:
    """The same for every check of the suite: links to its page and the page's essentials as markdown."""
    page = page_url(base_url, result.data_docs_page) if result.data_docs_page else None
    metadata: dict[str, dg.MetadataValue] = {
        "data_docs_summary": dg.MetadataValue.md(markdown_summary(result, run_name, page)),
    }
    if page and result.data_docs_day:
        metadata["data_docs"] = dg.MetadataValue.url(page)
        metadata["data_docs_partition"] = dg.MetadataValue.url(page_url(base_url, result.data_docs_day))
        metadata["data_docs_index"] = dg.MetadataValue.url(page_url(base_url, INDEX))
    if result.data_docs_error:
        metadata["data_docs_error"] = dg.MetadataValue.text(result.data_docs_error)
    return metadata


def _check_result(
    asset_key: dg.AssetKey,
    outcome: ExpectationOutcome,
    result: SuiteResult,
    run_name: str,
    docs: dict[str, dg.MetadataValue],
) -> dg.AssetCheckResult:
    metadata: dict[str, dg.MetadataValue] = {
        "gx_expectation": dg.MetadataValue.text(outcome.gx_expectation),
        "validation_seconds": dg.MetadataValue.float(round(result.elapsed_seconds, 3)),
        "sample_unexpected": dg.MetadataValue.json(list(outcome.sample_unexpected)),
        "partition": dg.MetadataValue.text(run_name),
        "files": dg.MetadataValue.int(result.file_count),
    }
    if isinstance(outcome.observed_value, int):
        metadata["observed_value"] = dg.MetadataValue.int(outcome.observed_value)
    elif isinstance(outcome.observed_value, float):
        metadata["observed_value"] = dg.MetadataValue.float(outcome.observed_value)
    elif outcome.observed_value is not None:
        metadata["observed_value"] = dg.MetadataValue.text(outcome.observed_value)
    if outcome.unexpected_count is not None:
        metadata["unexpected_count"] = dg.MetadataValue.int(outcome.unexpected_count)
    if outcome.unexpected_percent is not None:
        metadata["unexpected_percent"] = dg.MetadataValue.float(round(outcome.unexpected_percent, 6))
    if result.row_count is not None:
        metadata["validated_rows"] = dg.MetadataValue.int(result.row_count)
    metadata.update(docs)
    if outcome.exception:
        metadata["error"] = dg.MetadataValue.text(outcome.exception)
    description = outcome.description
    if outcome.exception:
        description = f"GX raised while evaluating: {outcome.exception}"
    elif result.note:
        description = f"{outcome.description} ({result.note})"
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=outcome.name,
        passed=outcome.success,
        severity=_SEVERITY[outcome.severity],
        metadata=metadata,
        description=description,
    )


def data_docs_dir(quality_dir: Path) -> Path:
    """Where Data Docs are written (under the configured quality directory)."""
    return quality_dir / DATA_DOCS_SUBDIR
