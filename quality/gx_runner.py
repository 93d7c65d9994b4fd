"""Run one declared expectation suite with great-expectations over Parquet files, through DuckDB SQL.

One ``batch.validate`` call per suite; results are mapped back to specs by name, sample values redacted,
and optionally rendered as a Data Docs page (``quality.data_docs``). GX is imported only when a suite runs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.expectations import Severity, Spec, snake_name, validate_specs
from quality.data_docs import DataDocsSite
from quality.gx_duckdb import DUCKDB_MEMORY_URL, new_context

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.expectations import Expectation

Redactor = Callable[[str], str]

DEFAULT_SAMPLE_SIZE = 5
MAX_SAMPLE_SIZE = 20
DATASOURCE_NAME = "neuron_duckdb"
# Marker stored in each GX expectation's ``meta`` so results map back to specs: GX does not keep
# suite order in its results.
_META_KEY = "neuron_check"
_GX_SEVERITY = {"ERROR": "critical", "WARN": "warning"}


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one spec: what Dagster turns into one ``AssetCheckResult``."""

    name: str
    kind: str
    severity: Severity
    description: str
    gx_expectation: str
    success: bool
    observed_value: int | float | str | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    sample_unexpected: tuple[str, ...] = ()
    exception: str | None = None


@dataclass(frozen=True)
class SuiteResult:
    """All outcomes of one suite run over one set of Parquet files."""

    suite_name: str
    outcomes: tuple[ExpectationOutcome, ...]
    file_count: int
    row_count: int | None
    elapsed_seconds: float
    data_docs_page: str | None = None  # relative to the Data Docs root (``quality.data_docs``)
    data_docs_day: str | None = None  # the partition's list of pages, relative to the root
    data_docs_error: str | None = None  # the page could not be written (validation results stand)
    note: str | None = None

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def blocking_failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.success and o.severity == "ERROR")

    def outcome(self, name: str) -> ExpectationOutcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)


def run_suite(
    suite_name: str,
    parquet_paths: Sequence[str | Path] | str | Path,
    specs: Sequence[Spec],
    docs_dir: Path | None = None,
    *,
    redactor: Redactor | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    run_name: str | None = None,
    run_id: str | None = None,
) -> SuiteResult:
    """Validate the union of ``parquet_paths`` against ``specs`` with one GX validation.

    Sample unexpected values pass through ``redactor`` (value by value) before they are returned or
    written to Data Docs; without a redactor they are returned as-is. With ``docs_dir`` the redacted
    result becomes a new page of the Data Docs site there, kept beside every earlier one and listed under
    ``run_name`` (the partition key); ``run_id`` (the Dagster run) is recorded with it.
    Per-expectation GX exceptions become failed outcomes; setup errors (unreadable files) raise.
    """
    validate_specs(specs)
    if not 0 <= sample_size <= MAX_SAMPLE_SIZE:
        raise ValueError(f"sample_size must be within [0, {MAX_SAMPLE_SIZE}]; got {sample_size}")
    paths = [str(parquet_paths)] if isinstance(parquet_paths, str | Path) else [str(p) for p in parquet_paths]
    started = time.perf_counter()
    if not paths:
        return _no_files_result(suite_name, specs, started)
    if not specs:
        return SuiteResult(
            suite_name, (), len(paths), None, time.perf_counter() - started, note="no expectations"
        )

    import great_expectations as gx

    started = time.perf_counter()  # the one-off GX import stays out of elapsed_seconds
    context = new_context()
    datasource = context.data_sources.add_sql(DATASOURCE_NAME, connection_string=DUCKDB_MEMORY_URL)
    file_list = ", ".join(_sql_literal(p) for p in paths)
    asset = datasource.add_query_asset(
        name=snake_name(suite_name),
        query=f"SELECT * FROM read_parquet([{file_list}], union_by_name = true)",
    )
    try:
        batch = asset.add_batch_definition_whole_table("whole").get_batch()
        by_name = {spec.name: spec for spec in specs}
        suite = gx.ExpectationSuite(name=suite_name, expectations=[_to_gx(spec) for spec in specs])
        result = batch.validate(
            suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": sample_size}
        )
    finally:
        datasource.get_execution_engine().close()

    redact = redactor or _identity
    outcomes = tuple(
        _outcome(by_name[r.expectation_config.meta[_META_KEY]], r, redact, sample_size)
        for r in result.results
    )
    order = {spec.name: i for i, spec in enumerate(specs)}
    outcomes = tuple(sorted(outcomes, key=lambda o: order[o.name]))
    row_count = _row_count(result)

    suite_result = SuiteResult(
        suite_name=suite_name,
        outcomes=outcomes,
        file_count=len(paths),
        row_count=row_count,
        elapsed_seconds=time.perf_counter() - started,
        note="no rows" if row_count == 0 else None,
    )
    if docs_dir is None:
        return suite_result
    _redact_in_place(result, redact, sample_size)
    try:
        record = DataDocsSite(Path(docs_dir)).publish(
            result,
            suite=suite_name,
            partition=run_name or "unpartitioned",
            run_id=run_id,
            success=suite_result.success,
            evaluated=len(outcomes),
            failed=sum(not o.success for o in outcomes),
            blocking_failed=len(suite_result.blocking_failures),
            row_count=row_count,
            file_count=len(paths),
        )
    except OSError as exc:  # a full or read-only docs disk must not turn a validation into a failure
        return dataclasses.replace(suite_result, data_docs_error=f"{type(exc).__name__}: {exc.strerror or exc}")
    return dataclasses.replace(
        suite_result,
        data_docs_page=record.page,
        data_docs_day=record.day_page,
        elapsed_seconds=time.perf_counter() - started,
    )


def _identity(value: str) -> str:
    return value


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_ident(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _gx_query(sql: str) -> str:
    # GX formats the query with str.format: literal braces must be doubled, ``{batch}`` kept.
    return sql.replace("{", "{{").replace("}", "}}").replace("{{batch}}", "{batch}")


def _to_gx(spec: Spec) -> Expectation:
    import great_expectations.expectations as gxe

    common: dict[str, Any] = {
        "meta": {_META_KEY: spec.name},
        "description": spec.description,
        "severity": _GX_SEVERITY[spec.severity],
    }
    if spec.mostly is not None:
        common["mostly"] = spec.mostly
    p = spec.params
    match spec.kind:
        case "not_null":
            return gxe.ExpectColumnValuesToNotBeNull(column=spec.column, **common)
        case "between":
            return gxe.ExpectColumnValuesToBeBetween(
                column=spec.column,
                min_value=p["min_value"],
                max_value=p["max_value"],
                strict_min=p["strict_min"],
                strict_max=p["strict_max"],
                **common,
            )
        case "in_set":
            return gxe.ExpectColumnValuesToBeInSet(
                column=spec.column, value_set=list(p["value_set"]), **common
            )
        case "unique" if len(spec.columns) == 1:
            return gxe.ExpectColumnValuesToBeUnique(column=spec.column, **common)
        case "unique":
            return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(spec.columns), **common)
        case "row_count_between":
            return gxe.ExpectTableRowCountToBeBetween(
                min_value=p["min_value"], max_value=p["max_value"], **common
            )
        case "regex":
            col = _sql_ident(spec.column)
            # the regex runs once per distinct value (ids repeat millions of times in a day); the semi-join
            # keeps GX's row-level unexpected count
            query = (
                f"SELECT {col} FROM {{batch}} WHERE {col} IN (SELECT DISTINCT {col} FROM {{batch}} "
                f"WHERE {col} IS NOT NULL AND NOT regexp_matches(CAST({col} AS VARCHAR), {_sql_literal(p['pattern'])}))"
            )
            return _sampled_unexpected_rows_class()(unexpected_rows_query=_gx_query(query), **common)
        case "sql":
            return _sampled_unexpected_rows_class()(unexpected_rows_query=_gx_query(p["query"]), **common)
    raise ValueError(f"unknown expectation kind {spec.kind!r}")


@functools.cache
def _sampled_unexpected_rows_class() -> type[Expectation]:
    """``UnexpectedRowsExpectation`` that keeps a few unexpected rows in SUMMARY results.

    Stock GX only returns rows with COMPLETE, which would also make every column expectation compute
    full unexpected lists (~1.6x slower). The rows are already fetched (capped by GX), so keeping a
    few costs nothing. Defined lazily so importing this module does not import GX.
    """
    import great_expectations.expectations as gxe

    class NeuronUnexpectedRows(gxe.UnexpectedRowsExpectation):
        def _validate(
            self, metrics: dict, runtime_configuration: dict | None = None, execution_engine: Any = None
        ):
            out = super()._validate(metrics, runtime_configuration, execution_engine)
            result = out.get("result") if isinstance(out, dict) else None
            if isinstance(result, dict) and "details" not in result:
                rows = metrics.get("unexpected_rows_query.table") or []
                result["details"] = {"unexpected_rows": list(rows[:MAX_SAMPLE_SIZE])}
            return out

    return NeuronUnexpectedRows


def _exception_message(info: Any) -> str | None:
    """GX reports exceptions either flat or keyed by metric id; return the first message, if any."""
    if not isinstance(info, Mapping) or not info:
        return None
    if "raised_exception" in info:
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "GX raised an exception without a message")
        return None
    for nested in info.values():
        message = _exception_message(nested)
        if message:
            return message
    return None


def _render(value: Any, redact: Redactor) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, Mapping):
        if len(value) == 1:
            return _render(next(iter(value.values())), redact)
        return ", ".join(f"{k}={_render(v, redact)}" for k, v in value.items())
    return redact(str(value))


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _outcome(spec: Spec, r: Any, redact: Redactor, sample_size: int) -> ExpectationOutcome:
    res: Mapping[str, Any] = r.result or {}
    error = _exception_message(r.exception_info)
    if "partial_unexpected_list" in res:
        raw_samples = list(res.get("partial_unexpected_list") or [])
    else:
        raw_samples = list((res.get("details") or {}).get("unexpected_rows") or [])
    unexpected_count = _number(res.get("unexpected_count"))
    observed = res.get("observed_value")
    if spec.kind in ("regex", "sql"):
        # For SQL expectations GX's observed value is the number of unexpected rows.
        unexpected_count = _number(observed)
    observed_value: int | float | str | None = _number(observed)
    if observed is not None and observed_value is None:
        observed_value = _render(observed, redact)
    return ExpectationOutcome(
        name=spec.name,
        kind=spec.kind,
        severity=spec.severity,
        description=spec.description,
        gx_expectation=r.expectation_config.type,
        success=bool(r.success) and error is None,
        observed_value=observed_value,
        unexpected_count=None if unexpected_count is None else int(unexpected_count),
        unexpected_percent=_number(res.get("unexpected_percent")),
        sample_unexpected=tuple(_render(v, redact) for v in raw_samples[:sample_size]),
        exception=error,
    )


def _row_count(result: ExpectationSuiteValidationResult) -> int | None:
    for r in result.results:
        res = r.result or {}
        if (
            r.expectation_config.type == "expect_table_row_count_to_be_between"
            and _number(res.get("observed_value")) is not None
        ):
            return int(res["observed_value"])
        if _number(res.get("element_count")) is not None:
            return int(res["element_count"])
    return None


def _redact_in_place(result: ExpectationSuiteValidationResult, redact: Redactor, sample_size: int) -> None:
    """Strip raw values from the GX result before it is rendered into Data Docs HTML."""
    for r in result.results:
        res = r.result
        if not res:
            continue
        if "partial_unexpected_list" in res:
            res["partial_unexpected_list"] = [
                _render(v, redact) for v in res["partial_unexpected_list"][:sample_size]
            ]
        if "partial_unexpected_counts" in res:
            res["partial_unexpected_counts"] = [
                {"value": _render(c.get("value"), redact), "count": c.get("count")}
                for c in res["partial_unexpected_counts"][:sample_size]
            ]
        for key in ("partial_unexpected_index_list", "unexpected_list", "unexpected_index_list"):
            res.pop(key, None)
        details = res.get("details")
        if isinstance(details, dict) and "unexpected_rows" in details:
            details["unexpected_rows"] = [
                {k: _render(v, redact) for k, v in row.items()}
                if isinstance(row, Mapping)
                else _render(row, redact)
                for row in details["unexpected_rows"][:sample_size]
            ]


def _no_files_result(suite_name: str, specs: Sequence[Spec], started: float) -> SuiteResult:
    """No Parquet files: evaluate row-count bounds against 0; every other expectation holds vacuously."""
    outcomes = []
    for spec in specs:
        success = True
        observed: int | None = None
        if spec.kind == "row_count_between":
            lo, hi = spec.params["min_value"], spec.params["max_value"]
            success = (lo is None or lo <= 0) and (hi is None or hi >= 0)
            observed = 0
        outcomes.append(
            ExpectationOutcome(
                name=spec.name,
                kind=spec.kind,
                severity=spec.severity,
                description=spec.description,
                gx_expectation="not_run_no_files",
                success=success,
                observed_value=observed,
                unexpected_count=None if spec.kind == "row_count_between" else 0,
            )
        )
    return SuiteResult(
        suite_name=suite_name,
        outcomes=tuple(outcomes),
        file_count=0,
        row_count=0,
        elapsed_seconds=time.perf_counter() - started,
        note="no Parquet files for this partition; only row-count expectations were evaluated",
    )
