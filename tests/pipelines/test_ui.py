"""The UI path: dagster-webserver loads workspace.yaml, shows the groups, and a launched day-partition run
succeeds (the GraphQL mutation the UI's Materialize button sends, run by the instance's run launcher).

The run is launched with the in-process executor (a launchpad choice any operator has): the default
multiprocess executor starts one process per step (109 for the five domains), which costs minutes on two
cores and tests nothing more about the UI path."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from simulator.district import simulate_day
from simulator.telemetry import FaultRates

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-16"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gql(port: int, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                 data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def test_webserver_shows_groups_and_materialises_a_day_partition(data_root: Path):
    simulate_day(data_root / "landing", date.fromisoformat(DAY), n_communities=1, seed=2, rates=FaultRates.none())
    port = _free_port()
    # what `make ui` runs: the webserver plus the daemon that dequeues runs (the instance queues them)
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.Popen([str(dagster), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                             "-p", str(port)], cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                time.sleep(1)
        nodes = _gql(port, "{ assetNodes { groupName } }")["data"]["assetNodes"]
        assert {"telemetry_bronze", "telemetry_silver", "telemetry_gold", "export_zhilian_putuo",
                "warehouse"} <= {n["groupName"] for n in nodes}
        repo = _gql(port, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
                    )["data"]["repositoriesOrError"]["nodes"][0]
        launched = _gql(port, """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
                __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
                        {"p": {"selector": {"repositoryLocationName": repo["location"]["name"],
                                            "repositoryName": repo["name"], "jobName": "daily_job"},
                               "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]},
                               "runConfigData": json.dumps({"execution": {"config": {"in_process": {}}}})}}
                        )["data"]["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        status = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = _gql(port, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                          {"id": run_id})["data"]["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(2)
        assert status == "SUCCESS"
        assert (data_root / "outbox" / "zhilian_putuo" / "device_health_daily" / DAY / "v1" / "manifest.json").exists()
        assert (data_root / "outbox" / "public_security" / "gate_flow_hourly" / DAY / "v1" / "manifest.json").exists()
        # a launched run captures compute logs (stdout/stderr per step): they, the event log and every
        # output must be free of identifiers and of the canary residents
        from quality.pii_scan import load_canaries, scan_tree

        logs = [p for p in (data_root / "dagster_home" / "storage").rglob("*") if p.is_file()]
        assert any(p.suffix in (".err", ".out", ".complete") for p in logs)
        hits = scan_tree(data_root, exclude=[data_root / "landing"], canaries=load_canaries(data_root / "landing"))
        assert hits == [], [(h.kind, h.location) for h in hits[:10]]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # dagster dev and its webserver/daemon children
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
