"""run_suite over Parquet: planted defects are counted exactly, samples are redacted, empty input is handled."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kernel.expectations import Expect, Spec, validate_specs
from quality.gx_runner import _gx_query, run_suite

from . import PLATE_REGEX, defective, passages, write


def _token(value: str) -> str:
    return "tok_" + hashlib.sha256(value.encode()).hexdigest()[:8]


def _suite() -> list[Spec]:
    return [
        Expect.not_null("gate_id"),
        Expect.between("dwell_seconds", 0, 86_400),
        Expect.in_set("direction", ["in", "out"], severity="WARN"),
        Expect.unique("passage_id"),
        Expect.unique("gate_id", "plate", name="gate_plate_unique"),
        Expect.row_count_between(1, 5_000),
        Expect.regex("plate", PLATE_REGEX),
        Expect.sql(
            "no_negative_dwell_on_exit",
            "SELECT passage_id FROM {batch} WHERE direction = 'out' AND dwell_seconds < 0",
        ),
    ]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> str:
    df = defective(
        1_000,
        {
            "gate_id": ([1, 2, 3], None),
            "dwell_seconds": ([10, 11, 12], -1.0),  # row 11 is an exit, rows 10 and 12 are entries
            "direction": ([20, 21, 22, 23], "sideways"),
            "passage_id": ([30], "2026-01-02-000031"),
            "plate": ([40, 41, 42, 43, 44], "NOT-A-PLATE"),
        },
    )
    return write(df, tmp_path_factory.mktemp("lake") / "passages.parquet")


@pytest.fixture(scope="module")
def planted_result(planted: str):
    return run_suite("silver_vehicle_passages", [planted], _suite(), redactor=_token)


def test_spec_names_are_stable_snake_case_and_descriptions_are_derived() -> None:
    specs = _suite()
    assert [s.name for s in specs] == [
        "gate_id_not_null",
        "dwell_seconds_between",
        "direction_in_set",
        "passage_id_unique",
        "gate_plate_unique",
        "row_count_between",
        "plate_matches_regex",
        "no_negative_dwell_on_exit",
    ]
    assert specs[1].description == "`dwell_seconds` is between 0 and 86400"
    assert Expect.between("x", 0, strict_min=True).description == "`x` is greater than 0"
    assert specs[5].description == "row count is between 1 and 5000"
    assert Expect.not_null("plate", mostly=0.99).description.endswith("(in at least 99.00% of non-null rows)")
    assert [s.blocking for s in specs[:3]] == [True, True, False]


def test_spec_vocabulary_rejects_bad_declarations() -> None:
    with pytest.raises(ValueError, match="severity"):
        Expect.not_null("x", severity="FATAL")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mostly"):
        Expect.in_set("x", ["a"], mostly=1.5)
    with pytest.raises(ValueError, match="batch"):
        Expect.sql("q", "SELECT 1")
    with pytest.raises(ValueError, match="duplicate"):
        validate_specs([Expect.not_null("x"), Expect.not_null("x")])


def test_sql_braces_are_doubled_for_gx_except_batch() -> None:
    assert _gx_query("SELECT a FROM {batch} WHERE x ~ 'a{2}'") == "SELECT a FROM {batch} WHERE x ~ 'a{{2}}'"


def test_planted_defects_are_counted_exactly(planted_result) -> None:
    r = planted_result
    got = {o.name: (o.success, o.unexpected_count) for o in r.outcomes}
    assert got == {
        "gate_id_not_null": (False, 3),
        "dwell_seconds_between": (False, 3),
        "direction_in_set": (False, 4),
        "passage_id_unique": (False, 2),
        "gate_plate_unique": (False, 4),  # NOT-A-PLATE twice at gate south and twice at east
        "row_count_between": (True, None),
        "plate_matches_regex": (False, 5),
        "no_negative_dwell_on_exit": (False, 1),
    }
    assert r.outcome("row_count_between").observed_value == 1_000
    assert r.outcome("gate_id_not_null").unexpected_percent == pytest.approx(0.3)
    assert r.row_count == 1_000 and r.file_count == 1
    assert [o.name for o in r.blocking_failures] == [
        "gate_id_not_null",
        "dwell_seconds_between",
        "passage_id_unique",
        "gate_plate_unique",
        "plate_matches_regex",
        "no_negative_dwell_on_exit",
    ]
    assert r.outcome("plate_matches_regex").gx_expectation == "neuron_unexpected_rows"
    assert r.elapsed_seconds > 0


def test_samples_pass_through_the_redactor(planted_result) -> None:
    plate = planted_result.outcome("plate_matches_regex")
    assert plate.sample_unexpected == (_token("NOT-A-PLATE"),) * 5
    assert planted_result.outcome("direction_in_set").sample_unexpected[:1] == (_token("sideways"),)
    assert planted_result.outcome("passage_id_unique").sample_unexpected == (_token("2026-01-02-000031"),) * 2
    everything = repr(planted_result)
    assert "NOT-A-PLATE" not in everything and "sideways" not in everything


def test_mostly_tolerates_a_small_unexpected_fraction(planted: str) -> None:
    result = run_suite("tolerant", planted, [Expect.in_set("direction", ["in", "out"], mostly=0.99)])
    outcome = result.outcome("direction_in_set")
    assert outcome.success and outcome.unexpected_count == 4


def test_an_expectation_that_raises_in_gx_is_a_failure_with_the_message(planted: str) -> None:
    result = run_suite("broken", [planted], [Expect.not_null("no_such_column"), Expect.row_count_between(1)])
    broken = result.outcome("no_such_column_not_null")
    assert broken.success is False
    assert broken.exception and "no_such_column" in broken.exception
    assert result.outcome("row_count_between").success


def test_no_files_gives_a_clear_result_without_running_gx() -> None:
    specs = [Expect.not_null("gate_id"), Expect.row_count_between(1, 10)]
    result = run_suite("empty", [], specs)
    assert (result.file_count, result.row_count) == (0, 0)
    assert "no Parquet files" in (result.note or "")
    assert result.outcome("gate_id_not_null").success
    assert result.outcome("row_count_between").success is False
    assert [o.name for o in result.blocking_failures] == ["row_count_between"]


def test_zero_row_partition_validates(tmp_path: Path) -> None:
    path = write(passages(0), tmp_path / "empty.parquet")
    result = run_suite("zero", [path], [*_suite()[:5], Expect.row_count_between(1)])
    assert result.row_count == 0 and result.note == "no rows"
    assert all(o.exception is None for o in result.outcomes)
    assert [o.name for o in result.outcomes if not o.success] == ["row_count_between"]


def test_several_files_are_validated_as_one_batch(tmp_path: Path) -> None:
    paths = [write(passages(300, day=d), tmp_path / f"{d}.parquet") for d in ("2026-01-01", "2026-01-02")]
    result = run_suite("two_days", paths, [Expect.unique("passage_id"), Expect.row_count_between(600, 600)])
    assert result.success and result.file_count == 2 and result.row_count == 600


def test_data_docs_are_built_with_redacted_samples(planted: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    result = run_suite("docs_suite", planted, _suite(), docs_dir=docs, redactor=_token, run_name="2026-01-02")
    assert result.data_docs_page and not result.data_docs_page.startswith(("/", "file:"))
    page = docs / result.data_docs_page
    assert page.is_file() and "2026-01-02" in page.parts
    assert (docs / "index.html").is_file() and (docs / result.data_docs_day).is_file()
    html = "".join(p.read_text(errors="ignore") for p in docs.rglob("*.html"))
    assert _token("NOT-A-PLATE") in html or _token("sideways") in html
    assert "NOT-A-PLATE" not in html and "sideways" not in html
    assert str(Path(planted).parent) not in html  # the batch query's lake paths are not shown either


def test_an_unwritable_docs_folder_keeps_the_validation_result(planted: str, tmp_path: Path) -> None:
    blocker = tmp_path / "docs"
    blocker.write_text("a file where the docs folder should be")
    result = run_suite("docs_suite", planted, _suite()[:2], docs_dir=blocker, redactor=_token, run_name="d")
    assert result.data_docs_page is None and result.data_docs_error
    assert result.outcome("dwell_seconds_between").unexpected_count == 3
