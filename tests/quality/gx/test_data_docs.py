"""The Data Docs site: every page kept per suite, partition and run and listed; nothing loaded from a CDN;
no raw values; parallel writers never lose each other's entries."""

from __future__ import annotations

import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kernel.expectations import Expect
from quality.data_docs import DataDocsSite, localize, markdown_summary, path_component
from quality.gx_runner import run_suite

from . import defective, passages, write

RAW_PLATE = "NOT-A-PLATE"


def _token(value: str) -> str:
    return f"tok({len(value)})"


def _specs():
    return [
        Expect.not_null("gate_id"),
        Expect.between("dwell_seconds", 0, 86_400),
        Expect.regex("plate", r"^[\x{4e00}-\x{9fa5}][A-Z][A-Z0-9]{5,6}$", severity="WARN"),
        Expect.row_count_between(1, 5_000),
    ]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("lake")
    bad = defective(400, {"dwell_seconds": ([5, 6], -3.0), "plate": ([7, 8, 9], RAW_PLATE)})
    return {
        "2026-01-02": write(bad, root / "2026-01-02.parquet"),
        "2026-01-03": write(passages(300, day="2026-01-03"), root / "2026-01-03.parquet"),
    }


@pytest.fixture(scope="module")
def site(lake: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two datasets validated in two runs for one day, and once more for another day."""
    docs = tmp_path_factory.mktemp("quality") / "docs"
    for run_id in ("run-aaaa-1111", "run-bbbb-2222"):
        for suite in ("silver.vehicle_passages", "gold.vehicle_flow_hourly"):
            run_suite(suite, lake["2026-01-02"], _specs(), docs_dir=docs, redactor=_token,
                      run_name="2026-01-02", run_id=run_id)
    run_suite("silver.vehicle_passages", lake["2026-01-03"], _specs(), docs_dir=docs, redactor=_token,
              run_name="2026-01-03", run_id="run-cccc-3333")
    return docs


class _Links(HTMLParser):
    """Every URL a page would load or link to: src/href attributes and url(...) in inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "src" or (tag == "link" and name == "href"):
                self.loads.append(value)
            elif name == "href":
                self.links.append(value)
            elif name == "style":
                self.loads += re.findall(r"url\(['\"]?([^'\")]+)", value)

    def handle_data(self, data: str) -> None:
        self.loads += re.findall(r"url\(['\"]?([^'\")]+)", data)  # <style> blocks


def _links(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text())
    return parser


def test_pages_for_two_datasets_and_two_runs_are_all_kept_and_listed(site: Path) -> None:
    pages = sorted(site.glob("validations/*/*/*.html"))
    assert len(pages) == 5  # 2 suites x 2 runs on one day, 1 on the next: nothing overwritten
    records = DataDocsSite(site).records("2026-01-02")
    assert len(records) == 4
    assert {(r.suite, r.run_id) for r in records} == {
        (s, r) for s in ("silver.vehicle_passages", "gold.vehicle_flow_hourly")
        for r in ("run-aaaa-1111", "run-bbbb-2222")
    }
    day = site / "days" / "2026-01-02.html"
    listed = {(day.parent / href).resolve() for href in _links(day).links if "validations/" in href}
    assert listed == {(site / r.page).resolve() for r in records}
    assert all(p.is_file() for p in listed)
    index_links = _links(site / "index.html").links
    assert "days/2026-01-02.html" in index_links and "days/2026-01-03.html" in index_links
    assert "earlier run" in day.read_text()  # the older run of each suite is kept, marked as such


def test_no_page_loads_anything_from_outside_and_every_local_link_resolves(site: Path) -> None:
    html_files = sorted(site.rglob("*.html"))
    assert len(html_files) == 5 + 2 + 1
    for page in html_files:
        text = page.read_text()
        assert not re.search(r"https?://", text, re.I), f"{page.relative_to(site)} reaches out"
        parsed = _links(page)
        for url in parsed.loads + parsed.links:
            if url.startswith(("#", "data:")):
                continue
            target = (page.parent / url.split("#")[0].split("?")[0]).resolve()
            assert target.is_relative_to(site.resolve()) and target.is_file(), (page.name, url)
    validation = next(site.glob("validations/silver.vehicle_passages/2026-01-02/*.html"))
    loads = _links(validation).loads
    assert any(u.endswith("static/neuron/neuron.css") for u in loads)
    assert any(u.endswith("static/neuron/neuron.js") for u in loads)
    css = (site / "static" / "neuron" / "neuron.css").read_text()
    for font in re.findall(r'url\("([^"]+)"\)', css):
        assert (site / "static" / "neuron" / font).resolve().is_file()


def test_pages_and_records_hold_redacted_samples_only(site: Path, lake: dict[str, str]) -> None:
    everything = "".join(p.read_text() for p in site.rglob("*") if p.suffix in (".html", ".json"))
    assert RAW_PLATE not in everything and "-3.0" not in everything
    assert _token("-3.0") in everything  # the between samples, as tokens
    assert str(Path(lake["2026-01-02"]).parent) not in everything


def test_localize_strips_cdn_tags_and_reroots_site_links() -> None:
    page = (
        '<html><head><script src="https://code.jquery.com/jquery.js"></script>'
        '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap.min.css"/>'
        "<style>.x { background: url('https://cdn.example/logo.png') }</style></head><body>"
        '<script>$(".a").fadeIn()</script><img class="NO-CACHE" src="https://s3.example/logo.png"/>'
        '<a href="../../../../../index.html">Home</a><a href="../../../../../expectations/a/b.html">s</a>'
        '<a href="https://example.org/about">About</a>'
        '<footer><p>newsletter <a href="https://greatexpectations.io/newsletter">Subscribe</a></p></footer>'
        "</body></html>"
    )
    out = localize(page, "validations/s/2026-01-02/x.html", "days/2026-01-02.html")
    assert "http" not in out and "$(" not in out
    assert 'href="../../../index.html"' in out and 'href="../../../days/2026-01-02.html"' in out
    assert 'src="../../../static/images/logo-long.png"' in out
    assert "About" in out and "Subscribe" not in out  # external links keep their text; GX's footer goes
    assert out.index("static/neuron/neuron.css") < out.index("</head>")


@pytest.mark.parametrize("raw", ["..", ".", "", "../../etc", "a/b", "2026-01-01..2026-01-03", ".hidden"])
def test_path_components_never_escape_their_folder(raw: str) -> None:
    part = path_component(raw)
    assert part not in ("", ".", "..") and "/" not in part and not part.startswith(".")


def _validate_in_a_process(args: tuple[str, str, str, str]) -> str:
    parquet, docs, suite, run_id = args
    result = run_suite(suite, parquet, _specs(), docs_dir=Path(docs), redactor=_token, run_name="2026-01-02",
                       run_id=run_id)
    assert result.data_docs_page, result.data_docs_error
    return result.data_docs_page


def test_parallel_check_steps_keep_every_page_listed(lake: dict[str, str], tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    jobs = [(lake["2026-01-02"], str(docs), f"silver.dataset_{i}", f"run-{i:04d}") for i in range(8)]
    # spawned, as Dagster's multiprocess executor starts its step processes: a fork of this xdist worker would copy
    # the locks of whatever threads it runs (servers of other tests) and can crash or hang the child
    with ProcessPoolExecutor(max_workers=4, mp_context=multiprocessing.get_context("spawn")) as pool:
        written = set(pool.map(_validate_in_a_process, jobs))
    assert len(written) == 8 and all((docs / p).is_file() for p in written)
    day = docs / "days" / "2026-01-02.html"
    listed = {href.removeprefix("../") for href in _links(day).links if "validations/" in href}
    assert listed == written
    assert "<td>8</td>" in (docs / "index.html").read_text()  # eight runs counted for the day
    assert DataDocsSite(docs).stale_temp() == []


def test_re_runs_keep_only_the_newest_pages_of_a_suite_and_the_index_never_lists_a_pruned_one(
    lake: dict[str, str], tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    site = DataDocsSite(docs, keep_runs=2)
    for i in range(4):
        run_suite("silver.vehicle_passages", lake["2026-01-03"], _specs(), docs_dir=docs, redactor=_token,
                  run_name="2026-01-03", run_id=f"run-{i:04d}")
    run_suite("gold.vehicle_flow_hourly", lake["2026-01-03"], _specs(), docs_dir=docs, redactor=_token,
              run_name="2026-01-03", run_id="run-gold")
    site.refresh("2026-01-03")  # prunes to two runs per suite
    records = site.records("2026-01-03")
    assert sorted((r.suite, r.run_id) for r in records) == [
        ("gold.vehicle_flow_hourly", "run-gold"),
        ("silver.vehicle_passages", "run-0002"), ("silver.vehicle_passages", "run-0003")]
    pages = sorted(p.relative_to(docs).as_posix() for p in docs.glob("validations/*/*/*.html"))
    assert pages == sorted(r.page for r in records)
    listed = {href.removeprefix("../") for href in _links(docs / "days" / "2026-01-03.html").links
              if "validations/" in href}
    assert listed == set(pages)
    with pytest.raises(ValueError):
        DataDocsSite(docs, keep_runs=0)


def test_markdown_summary_has_each_expectation_with_status_observed_count_and_samples(
    lake: dict[str, str],
) -> None:
    result = run_suite("silver.vehicle_passages", lake["2026-01-02"], _specs(), redactor=_token)
    md = markdown_summary(result, "2026-01-02", "http://127.0.0.1:3100/validations/x.html")
    lines = md.splitlines()
    dwell = next(line for line in lines if "dwell\\_seconds\\_between" in line)
    assert "**FAILED**" in dwell and "| 2 (" in dwell and f"`{_token('-3.0')}`" in dwell
    plate = next(line for line in lines if "plate\\_matches\\_regex" in line)
    assert "failed (warn)" in plate and "| 3 |" in plate
    rows = next(line for line in lines if "row\\_count\\_between" in line)
    assert "passed" in rows and "| 400 |" in rows
    assert "2 of 4 expectations failed" in lines[0] and "400 rows" in lines[0]
    assert md.endswith("[Data Docs page](http://127.0.0.1:3100/validations/x.html)")
    assert RAW_PLATE not in md
