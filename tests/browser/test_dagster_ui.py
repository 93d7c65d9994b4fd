"""The Dagster UI in a real browser (Debian's Chromium under Playwright) against ``dagster dev`` on workspace.yaml:
the asset graph, a day partition materialised through the Materialize dialog, an asset page with its column
schema and check results, and a check's Data Docs link opening its page from Neuron's docs server.

One simulated community-day, one ``dagster dev`` for the module. The UI run materialises the access lineage of
``gold/gate_flow_hourly`` (bronze, silver, that gold asset) with the in-process executor, chosen in the dialog's
config editor as an operator would: the default multiprocess executor starts a process per step, which costs
a minute on two cores and tests nothing more about the UI. Screenshots go to ``tests/.output/browser/``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import expect

from assets.access.datasets import ACCESS_SILVER
from kernel.metadata import column_schema
from simulator.district import simulate_day
from simulator.telemetry import FaultRates
from tests.conftest import use_data_root

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-16"
ASSET_PATH = ACCESS_SILVER.key
SUITE = f"{ACCESS_SILVER.layer}.{ACCESS_SILVER.name}"  # its great-expectations suite
# silver/access_events and everything it reads (bronze and silver multi-assets are not subsettable); a gold
# table reads audit/completeness, which needs every domain's silver: too much for a browser test's run
# the landing assets access bronze reads come first (unmaterialised, the UI would ask "Are you sure?"); with no
# vendor config in the test's data root they report the files as delivered
SELECTION = 'key:"landing/access_events" or key:"landing/sites" or group:access_bronze or group:access_silver'
IN_PROCESS = "execution: {config: {in_process: {}}}"
GROUPS = {"telemetry_bronze", "access_silver", "access_gold", "vehicles_gold", "services_gold", "governance_gold",
          "export_zhilian_putuo", "export_public_security", "warehouse"}
DOCS_CHECK = "event_id_not_null"  # a great-expectations check: its metadata links to the suite's Data Docs page
TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1600, "height": 1300}  # tall enough for an asset page's whole column table
RUN_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Dagster:
    """A running ``dagster dev``: its address, and its GraphQL API for what the browser cannot tell."""

    url: str
    root: Path

    def gql(self, query: str, variables: dict | None = None) -> dict:
        req = urllib.request.Request(f"{self.url}/graphql", headers={"content-type": "application/json"},
                                     data=json.dumps({"query": query, "variables": variables or {}}).encode())
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.load(resp)
        assert "errors" not in body, body["errors"]
        return body["data"]


def _wait_until_loaded(dagster: Dagster, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster dev exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            nodes = dagster.gql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")
            if nodes["repositoriesOrError"].get("nodes"):
                return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"dagster dev did not load workspace.yaml in 180 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dagster]:
    """``dagster dev -w workspace.yaml`` (what ``make ui`` runs) over one simulated community-day."""
    with pytest.MonkeyPatch.context() as mp:
        out = tmp_path_factory.mktemp("browser")
        root = use_data_root(mp, out / "data")
        simulate_day(root / "landing", date.fromisoformat(DAY), n_communities=1, seed=2, rates=FaultRates.none())
        # where check metadata points Data Docs links (the docs server is started on the port a link names)
        mp.setenv("NEURON_DATA_DOCS_URL", f"http://127.0.0.1:{_free_port()}")
        port = _free_port()
        log = out / "dagster-dev.log"
        with open(log, "w") as sink:
            proc = subprocess.Popen([str(Path(sys.executable).with_name("dagster")), "dev", "-w",
                                     str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                                    cwd=ROOT, env=dict(os.environ), stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            running = Dagster(f"http://127.0.0.1:{port}", root)
            _wait_until_loaded(running, proc, log)
            # the "join the community" dialog a fresh instance shows on localhost; dismissed as its Skip button does
            running.gql("mutation { setNuxSeen }")
            yield running
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # dagster dev and its webserver/daemon/code-server children
            try:  # its graceful shutdown outlasted 30 s in the full suite (measured 12-08): the group is killed after 5
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def page(browser, screenshots: Path):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


@dataclass
class UiRun:
    run_id: str
    status: str
    tags: dict[str, str]


@pytest.fixture(scope="module")
def ui_run(dagster: Dagster, browser, screenshots: Path) -> UiRun:
    """Materialise the day partition of the selection from the lineage page: Materialize all → partition
    dialog → the day typed into the partition picker → in-process executor in the config editor → Launch."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    try:
        pg.goto(f"{dagster.url}/asset-groups~{urllib.parse.quote(SELECTION, safe='')}/")
        pg.get_by_role("button", name="Materialize all…").click()
        dialog = pg.get_by_role("dialog").filter(has_text="Launch runs to materialize")
        # the picker offers the last 90 days until asked for all (partitions start 2026-01-01: always more)
        dialog.get_by_role("button", name="Show all partitions").click()
        picker = dialog.get_by_role("textbox")  # the partition picker: keys and [from...to] ranges
        picker.fill(DAY)
        picker.press("Enter")
        dialog.get_by_text("1 partition", exact=True).wait_for()

        dialog.get_by_text("Config", exact=True).click()
        dialog.get_by_role("button", name="Add config").click()
        editor = pg.get_by_role("dialog").filter(has_text="Config Editor")
        editor.locator(".CodeMirror").click()
        pg.keyboard.insert_text(IN_PROCESS)  # typed keys would be auto-closed and auto-indented by the editor
        editor.get_by_text("No errors").wait_for()
        editor.get_by_role("button", name="Save config").click()
        editor.wait_for(state="hidden")
        dialog.get_by_text(IN_PROCESS).wait_for()
        pg.screenshot(path=screenshots / "02-materialize-dialog.png")

        with pg.expect_response(lambda r: "/graphql" in r.url and r.request.post_data is not None
                                and "LaunchPipelineExecution" in r.request.post_data) as launched:
            dialog.get_by_role("button", name="Launch 1 run").click()
        body = launched.value.json()["data"]["launchPipelineExecution"]
        assert body["__typename"] == "LaunchRunSuccess", body
        run_id = body["run"]["id"]
        pg.get_by_text(f"Launched run {run_id[:8]}").wait_for()
        pg.screenshot(path=screenshots / "03-run-launched.png")
    finally:
        context.close()

    query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value } } } }"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        run = dagster.gql(query, {"id": run_id})["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() > deadline:
            break
        time.sleep(1)
    return UiRun(run_id, run["status"], {t["key"]: t["value"] for t in run["tags"]})


def _data_docs_link(page):
    """The link in the ``data_docs`` row of a check's metadata table."""
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="data_docs", exact=True))
    return row.get_by_role("link").first


def test_asset_graph_shows_every_domain_group(dagster: Dagster, page, screenshots: Path):
    groups = {n["groupName"] for n in dagster.gql("{ assetNodes { groupName } }")["assetNodes"]}
    assert groups >= GROUPS
    page.goto(f"{dagster.url}/asset-groups")
    page.get_by_text("Global asset lineage").wait_for()
    # every group of the code location: an entry in the sidebar tree and a node in the graph (whose label
    # may be truncated in the middle, so both are found by the full name they carry as title / tooltip)
    for group in sorted(groups):
        page.get_by_role("button").filter(has=page.get_by_title(group, exact=True)).first.wait_for()
        if group in GROUPS:  # the graph renders what fits the viewport; the core groups are drawn first
            page.locator(f'[data-tooltip="{group}"]').first.wait_for(state="attached")
    # "Materialize all (n)" or, with partitioned assets in view, "Materialize all…" (opens the partition dialog)
    page.get_by_role("button", name=re.compile(r"Materialize all( \(\d+\)|…)")).wait_for()
    page.screenshot(path=screenshots / "01-asset-graph.png")


def test_partition_materialised_from_the_ui(ui_run: UiRun):
    assert ui_run.status == "SUCCESS", f"run {ui_run.run_id} ended {ui_run.status}"
    assert ui_run.tags.get("dagster/partition") == DAY
    assert ui_run.tags.get("dagster/from_ui") == "true"


def test_asset_page_shows_column_schema(dagster: Dagster, ui_run: UiRun, page, screenshots: Path):
    page.goto(f"{dagster.url}/assets/{ASSET_PATH}")
    # the UI run's materialization of the day (its value loads after the label: seen taking over 5 s in the full
    # suite on two busy cores)
    expect(page.get_by_text("Latest materialization", exact=True).locator("xpath=..")).to_contain_text(
        DAY, timeout=30_000)
    expected = column_schema(ACCESS_SILVER).columns
    table = page.locator("table").filter(has=page.get_by_text("Column name", exact=True))  # header cells are <td>
    expect(table.locator("tbody tr")).to_have_count(len(expected))
    rows = table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells, c => c.innerText.trim()))")
    shown = {cells[0]: cells for cells in rows}
    assert list(shown) == [c.name for c in expected]
    for col in expected:
        _, type_cell, description = shown[col.name]
        assert type_cell.split()[0] == col.type, (col.name, type_cell)
        assert ("non-nullable" in type_cell) == (not col.constraints.nullable), (col.name, type_cell)
        assert description == col.description, col.name
    page.screenshot(path=screenshots / "04-asset-page.png")


def test_asset_page_shows_check_results(dagster: Dagster, ui_run: UiRun, page, screenshots: Path):
    checks = dagster.gql("""query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
            assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } } }""",
                         {"key": {"path": ASSET_PATH.split("/")}})["assetNodeOrError"]["assetChecksOrError"]["checks"]
    names = sorted(c["name"] for c in checks)
    assert {"no_personal_data", DOCS_CHECK} <= set(names)
    page.goto(f"{dagster.url}/assets/{ASSET_PATH}?view=checks")
    page.get_by_text(f"Checks ({len(names)})").wait_for()
    for name in names:  # every check of the asset evaluated on the UI run, and passed: "<name> Succeeded"
        entry = page.get_by_title(name, exact=True).first.locator("xpath=..")
        expect(entry).to_contain_text("Succeeded")
    page.get_by_title(DOCS_CHECK, exact=True).first.click()
    page.wait_for_url(re.compile(rf"checkDetail={DOCS_CHECK}"))
    page.get_by_text("Evaluation result").wait_for()
    page.get_by_text("Passed", exact=True).first.wait_for()
    page.get_by_text(DAY, exact=True).first.wait_for()
    _data_docs_link(page).wait_for()
    page.screenshot(path=screenshots / "05-asset-checks.png")


def test_data_docs_link_opens_from_a_check(dagster: Dagster, ui_run: UiRun, page, screenshots: Path):
    from kernel.settings import load_settings
    from pipelines.docs_server import run_in_thread
    from quality.gx_checks import data_docs_dir

    page.goto(f"{dagster.url}/assets/{ASSET_PATH}?view=checks&checkDetail={DOCS_CHECK}")
    link = _data_docs_link(page)
    href = link.get_attribute("href")
    target = urllib.parse.urlsplit(href)
    assert target.scheme == "http" and target.hostname == "127.0.0.1", href  # a file:// link is blocked from http
    assert f"/{DAY}/" in target.path and ui_run.run_id[:8] in target.path, href  # this day's page, this run's
    fetched: list[str] = []
    failed: list[str] = []
    page.context.on("request", lambda r: fetched.append(r.url))
    page.context.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    with run_in_thread(data_docs_dir(load_settings().quality_dir), target.hostname, target.port) as server:
        seen = len(fetched)
        with page.context.expect_page() as opened:
            link.click()  # target=_blank: a new tab, as a user gets
        docs = opened.value
        docs.wait_for_load_state("networkidle")
        assert docs.url == href
        docs.get_by_text("Expectation Validation Result").first.wait_for()
        docs.get_by_text(f"Expectation Suite: {SUITE}").wait_for()
        docs.get_by_text("Succeeded").first.wait_for()
        docs.screenshot(path=screenshots / "06-data-docs.png", full_page=True)
        from_docs = [u for u in fetched[seen:] if not u.startswith(dagster.url)]
    assert failed == []
    assert href in from_docs
    # everything the page loads comes from Neuron's server (no CDN: it opens offline)
    assert [u for u in from_docs if not u.startswith(server.base_url)] == []
