"""Neuron's Data Docs site: one GX validation page per suite, partition and run, kept, listed and offline.

GX's own site builder rebuilds the whole site from its stores and deletes pages its (ephemeral) stores do not
know, so only the last suite's page survived. Here GX renders just the new page (~45 ms); the page is stripped
of every CDN reference, written atomically, and recorded in a small JSON file beside it; the day's page and
the root index are regenerated from those records under a file lock, so parallel check steps never lose
each other's entries. Layout under the site root (all relative links, served by ``pipelines/docs_server.py``)::

    index.html                                 every validated partition, newest first
    days/<partition>.html, .json               every run of every suite for that partition
    validations/<suite>/<partition>/<stamp>-<run>.html, .json
    static/...                                 GX's font and images, Neuron's css/js (no CDN)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import html
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult

    from quality.gx_runner import SuiteResult

DEFAULT_BASE_URL = "http://127.0.0.1:3100"
INDEX = "index.html"
NEURON_STATIC = Path(__file__).with_name("data_docs_static")
_LOCK_NAME = ".index.lock"
# from GX's package; neuron.css declares the two fonts
_STATIC_FILES = ("images/favicon.ico", "images/logo-long.png", "fonts/HKGrotesk/HKGrotesk-Regular.otf",
                 "fonts/HKGrotesk/HKGrotesk-Bold.otf")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STAMP = "%Y%m%dT%H%M%S%fZ"
KEEP_RUNS = 10  # validation pages kept per suite and partition (newest first); older runs are pruned


@dataclass(frozen=True)
class PageRecord:
    """What the indexes know of one validation page (no values of the data: counts and names only)."""

    suite: str
    partition: str
    run_id: str
    run_time: str  # ISO 8601, UTC
    success: bool
    evaluated: int
    failed: int
    blocking_failed: int
    row_count: int | None
    page: str  # POSIX path relative to the site root

    @property
    def day_page(self) -> str:
        return day_page(self.partition)


def path_component(text: str) -> str:
    """``text`` as one safe path segment: never empty, never ``.``/``..``, no separators."""
    cleaned = _SAFE.sub("_", text.replace("..", "__")).strip(".")
    return cleaned or "_"


def day_page(partition: str) -> str:
    return f"days/{path_component(partition)}.html"


def page_url(base_url: str, relative: str) -> str:
    """The http URL of a page of the site (``relative`` as returned in a ``PageRecord``)."""
    return base_url.rstrip("/") + "/" + relative.lstrip("/")


class DataDocsSite:
    """A Data Docs folder: add validation pages, regenerate the indexes, list leftovers of killed writes."""

    def __init__(self, root: Path, keep_runs: int = KEEP_RUNS) -> None:
        if keep_runs < 1:
            raise ValueError(f"keep_runs must be at least 1, got {keep_runs}")
        self.root = Path(root)
        self.keep_runs = keep_runs

    def publish(
        self,
        result: ExpectationSuiteValidationResult,
        *,
        suite: str,
        partition: str,
        run_id: str | None,
        success: bool,
        evaluated: int,
        failed: int,
        blocking_failed: int,
        row_count: int | None,
        file_count: int,
    ) -> PageRecord:
        """Render ``result`` (already redacted) as a new page, record it and refresh the indexes."""
        now = dt.datetime.now(dt.UTC)
        run = path_component((run_id or "adhoc")[:8])
        relative = (
            f"validations/{path_component(suite)}/{path_component(partition)}/{now.strftime(_STAMP)}-{run}.html"
        )
        record = PageRecord(
            suite=suite,
            partition=partition,
            run_id=run_id or "",
            run_time=now.isoformat(),
            success=success,
            evaluated=evaluated,
            failed=failed,
            blocking_failed=blocking_failed,
            row_count=row_count,
            page=relative,
        )
        self.install_static()
        page_html = render_validation_html(result, partition=partition, run_time=now, file_count=file_count)
        _write_atomic(self.root / relative, localize(page_html, relative, day_page(partition)).encode())
        # the record after the page: an index never lists a page that is not there
        _write_atomic(
            (self.root / relative).with_suffix(".json"), json.dumps(asdict(record), sort_keys=True).encode()
        )
        self.refresh(partition)
        return record

    def refresh(self, partition: str) -> None:
        """Regenerate the partition's page and the root index from the records on disk (serialised)."""
        with self._lock():
            records = self._prune(self.records(partition))
            _write_atomic(self.root / day_page(partition), _day_html(partition, records).encode())
            summary = _day_summary(partition, records)
            _write_atomic(
                (self.root / day_page(partition)).with_suffix(".json"), json.dumps(summary, sort_keys=True).encode()
            )
            _write_atomic(self.root / INDEX, _index_html(self._day_summaries()).encode())

    def records(self, partition: str | None = None) -> list[PageRecord]:
        """Every recorded page (of one partition), suite by suite, newest run first."""
        part = path_component(partition) if partition is not None else "*"
        found = []
        for path in self.root.glob(f"validations/*/{part}/*.json"):
            try:
                found.append(PageRecord(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # a record being replaced right now, or not ours: the next refresh lists it
        found.sort(key=lambda r: r.run_time, reverse=True)
        return sorted(found, key=lambda r: r.suite)  # stable: newest run first within a suite

    def _prune(self, records: list[PageRecord]) -> list[PageRecord]:
        """Delete the pages (and records) of all but the newest ``keep_runs`` runs of each suite; keep the rest.

        Re-running a day keeps adding pages; without this a day re-run by a sensor every few minutes grows
        its folder without bound. The record goes first, so an index never lists a page that is gone.
        """
        kept: list[PageRecord] = []
        per_suite: dict[str, int] = {}
        for record in records:  # suite by suite, newest run first
            per_suite[record.suite] = per_suite.get(record.suite, 0) + 1
            if per_suite[record.suite] <= self.keep_runs:
                kept.append(record)
                continue
            page = self.root / record.page
            for path in (page.with_suffix(".json"), page):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return kept

    def stale_temp(self) -> list[Path]:
        """Temporary files of writes a killed process left behind (for ``neuron doctor``)."""
        return sorted(self.root.rglob(".*.tmp")) if self.root.is_dir() else []

    def install_static(self) -> None:
        """Copy GX's fonts and images and Neuron's css/js under ``static/`` once (atomically per file)."""
        from great_expectations.render.view import view as gx_view

        gx_static = Path(gx_view.__file__).with_name("static")
        wanted: list[tuple[Path, Path]] = [(gx_static / name, self.root / "static" / name) for name in _STATIC_FILES]
        wanted += [(p, self.root / "static" / "neuron" / p.name) for p in sorted(NEURON_STATIC.iterdir())
                   if p.suffix in (".css", ".js")]
        for source, target in wanted:
            if not target.is_file() or target.stat().st_size != source.stat().st_size:
                _copy_atomic(source, target)

    def _day_summaries(self) -> list[dict[str, Any]]:
        out = []
        for path in self.root.glob("days/*.json"):
            with contextlib.suppress(OSError, ValueError):
                out.append(json.loads(path.read_text()))
        return sorted(out, key=lambda s: str(s.get("partition")), reverse=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / _LOCK_NAME, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def render_validation_html(
    result: ExpectationSuiteValidationResult, *, partition: str, run_time: dt.datetime, file_count: int
) -> str:
    """GX's validation page for ``result`` (GX's renderer and Jinja view, no site builder)."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.render.renderer import ValidationResultsPageRenderer

    result.meta["run_id"] = RunIdentifier(run_name=partition, run_time=run_time)
    result.meta["validation_time"] = run_time
    batch_spec = result.meta.get("batch_spec")
    if isinstance(batch_spec, dict) and "query" in batch_spec:
        # the query names absolute lake paths; the page only needs to say what was read
        batch_spec = {**batch_spec, "query": f"{file_count} Parquet file(s) of partition {partition}"}
        result.meta["batch_spec"] = batch_spec
    document = ValidationResultsPageRenderer().render(result)
    return _page_view().render(document, show_how_to_buttons=False)


@functools.cache
def _page_view() -> Any:
    """One GX page view per process: each view has its own Jinja environment, which compiles every template
    again (68 templates, ~70 ms a page; a day renders 28 pages)."""
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView()


_EXTERNAL_TAG = re.compile(
    r"<script\b[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>|<link\b[^>]*\bhref=[\"']https?://[^>]*>", re.I
)
_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>.*?</script>", re.I | re.S)
_EXTERNAL_IMG = re.compile(r"<img\b[^>]*\bsrc=[\"']https?://[^>]*>", re.I | re.S)
_EXTERNAL_ANCHOR = re.compile(r"<a\b[^>]*\bhref=[\"']https?://[^\"']*[\"'][^>]*>(.*?)</a>", re.I | re.S)
_FOOTER = re.compile(r"<footer\b.*?</footer>", re.I | re.S)  # GX's newsletter call, not ours to make
_CSS_URL = re.compile(r"url\(\s*['\"]?https?://[^)]*\)", re.I)
_SITE_LINK = re.compile(r"(?:\.\./)+(index\.html|static/|expectations/[^\"']*)")
_ANY_EXTERNAL = re.compile(r"https?://[^\s\"'<>)]*", re.I)


def localize(page: str, relative: str, day: str) -> str:
    """GX's page with no CDN: external css/js/images/links removed, site links re-rooted, local css/js added."""
    up = "../" * relative.count("/")
    page = _FOOTER.sub("", page)
    page = _EXTERNAL_TAG.sub("", page)
    page = _INLINE_SCRIPT.sub("", page)  # jQuery handlers; neuron.js defines the same functions
    page = _EXTERNAL_IMG.sub(f'<img src="{up}static/images/logo-long.png" alt="Data Docs" style="height: 40px"/>', page)
    page = _EXTERNAL_ANCHOR.sub(r"\1", page)
    page = _CSS_URL.sub("none", page)

    def reroot(match: re.Match[str]) -> str:
        target = match.group(1)
        return up + (day if target.startswith("expectations/") else target)

    page = _SITE_LINK.sub(reroot, page)
    page = _ANY_EXTERNAL.sub("", page)  # belt and braces: nothing may reach out, even as text
    head = (
        f'<link rel="stylesheet" href="{up}static/neuron/neuron.css"/>\n'
        f'<script src="{up}static/neuron/neuron.js" defer></script>\n</head>'
    )
    return page.replace("</head>", head, 1)


def markdown_summary(result: SuiteResult, partition: str, page_link: str | None = None) -> str:
    """The page's essentials as markdown for check metadata: each expectation's status, observed value,
    unexpected count and (already redacted) samples; readable in the UI without the docs server."""
    failed = [o for o in result.outcomes if not o.success]
    rows = "rows unknown" if result.row_count is None else f"{result.row_count:,} rows"
    lines = [
        f"**{_md(result.suite_name)}** · partition `{_md(partition)}` · {rows} in {result.file_count} file(s) · "
        f"{len(failed)} of {len(result.outcomes)} expectations failed",
        "",
        "| status | expectation | severity | observed | unexpected | samples (redacted) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for o in result.outcomes:
        status = "passed" if o.success else ("**FAILED**" if o.severity == "ERROR" else "failed (warn)")
        observed = "" if o.observed_value is None else _md(str(o.observed_value))
        unexpected = "" if o.unexpected_count is None else str(o.unexpected_count)
        if o.unexpected_percent is not None and o.unexpected_count:
            unexpected += f" ({o.unexpected_percent:.3g}%)"
        samples = ", ".join(f"`{_md(s).replace('`', '')}`" for s in o.sample_unexpected)
        if o.exception:
            samples = f"error: {_md(o.exception)}"
        lines.append(f"| {status} | {_md(o.name)} | {o.severity} | {observed} | {unexpected} | {samples} |")
    if result.note:
        lines += ["", f"_{_md(result.note)}_"]
    if page_link:
        lines += ["", f"[Data Docs page]({page_link})"]
    return "\n".join(lines)


def _md(text: str) -> str:
    text = " ".join(str(text).split())
    return re.sub(r"([\\|*_\[\]<>#])", r"\\\1", text)[:300]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _copy_atomic(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _day_summary(partition: str, records: Sequence[PageRecord]) -> dict[str, Any]:
    latest = _latest_per_suite(records)
    return {
        "partition": partition,
        "page": day_page(partition),
        "suites": len(latest),
        "runs": len(records),
        "failing_suites": sum(not r.success for r in latest.values()),
        "blocking_suites": sum(r.blocking_failed > 0 for r in latest.values()),
        "last_run_time": max((r.run_time for r in records), default=""),
    }


def _latest_per_suite(records: Sequence[PageRecord]) -> dict[str, PageRecord]:
    latest: dict[str, PageRecord] = {}
    for r in records:
        if r.suite not in latest or r.run_time > latest[r.suite].run_time:
            latest[r.suite] = r
    return latest


def _status(success: bool, blocking: int) -> str:
    if success:
        return '<span class="neuron-status-passed">passed</span>'
    label = "failed (blocking)" if blocking else "failed (warn only)"
    return f'<span class="neuron-status-failed">{label}</span>'


def _shell(title: str, up: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
        f"<title>{html.escape(title)}</title>"
        f'<link rel="stylesheet" href="{up}static/neuron/neuron.css"/>'
        f'<link rel="icon" href="{up}static/images/favicon.ico"/></head>\n'
        f'<body><nav class="navbar border-bottom"><a href="{up}{INDEX}"><strong>Neuron Data Docs</strong></a>'
        f"</nav>\n<div class=\"container-fluid pt-4 pb-4\">{body}</div></body></html>\n"
    )


def _day_html(partition: str, records: Sequence[PageRecord]) -> str:
    latest = {r.page for r in _latest_per_suite(records).values()}
    rows = []
    for r in records:
        rows.append(
            "<tr>"
            f"<td>{html.escape(r.suite)}</td>"
            f"<td>{_status(r.success, r.blocking_failed)}</td>"
            f"<td>{r.failed} of {r.evaluated}</td>"
            f"<td>{'' if r.row_count is None else f'{r.row_count:,}'}</td>"
            f"<td>{html.escape(r.run_time[:19].replace('T', ' '))} UTC</td>"
            f"<td><code>{html.escape(r.run_id[:8])}</code>{'' if r.page in latest else ' <span class=neuron-note>earlier run</span>'}</td>"
            f'<td><a href="../{html.escape(r.page)}">page</a></td>'
            "</tr>"
        )
    body = (
        f"<h3>Validations of partition {html.escape(partition)}</h3>"
        f"<p class=\"neuron-note\">{len(_latest_per_suite(records))} suites, {len(records)} validation runs; "
        "every run keeps its page.</p>"
        '<table class="table table-bordered table-sm"><thead><tr><th>dataset (suite)</th><th>status</th>'
        "<th>expectations failed</th><th>rows</th><th>validated</th><th>Dagster run</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return _shell(f"Data Docs: {partition}", "../", body)


def _index_html(days: Sequence[dict[str, Any]]) -> str:
    rows = []
    for d in days:
        failing = int(d.get("failing_suites", 0))
        blocking = int(d.get("blocking_suites", 0))
        status = _status(failing == 0, blocking)
        if failing:
            status += f" {failing} suite(s)"
        rows.append(
            "<tr>"
            f'<td><a href="{html.escape(str(d.get("page", "")))}">{html.escape(str(d.get("partition", "")))}</a></td>'
            f"<td>{status}</td><td>{int(d.get('suites', 0))}</td><td>{int(d.get('runs', 0))}</td>"
            f"<td>{html.escape(str(d.get('last_run_time', ''))[:19].replace('T', ' '))} UTC</td>"
            "</tr>"
        )
    body = (
        "<h3>Validation results by partition</h3>"
        "<p class=\"neuron-note\">great-expectations suites run per dataset and partition; each partition lists "
        "every run of every suite. Sample values on the pages are redacted.</p>"
        '<table class="table table-bordered table-sm"><thead><tr><th>partition</th><th>latest status</th>'
        "<th>suites</th><th>runs</th><th>last validated</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return _shell("Neuron Data Docs", "", body)
