"""Helpers of the collector tests: a vendor config, a real uvicorn server (thread or subprocess), landed files."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests
import uvicorn

from connectors.collector.service import quiet_access_log
from connectors.config import CommunityPlatforms, VendorConfig

ROOT = Path(__file__).resolve().parents[3]
PYTHON = sys.executable
COMMUNITIES = ("310107001001", "310107002001")


def device_id(i: int) -> str:
    return f"3101070000120{i:07d}"


def vendor_config(topic_prefix: str | None = None) -> VendorConfig:
    return VendorConfig(
        base_url="http://127.0.0.1:8700", ctwing_application="app", ctwing_secret="secret", export_token="export",
        push_tokens={"ctwing": "tok-ctwing", "iotda": "tok-iotda", "isc": "tok-isc"},
        communities=tuple(CommunityPlatforms(
            community_id=c, isc_app_key=f"ak{i}", isc_app_secret=f"as{i}", viid_device_id=device_id(i),
            viid_password=f"viid-pass-{i}", parking_app_id=f"park{i}", parking_app_secret=f"park-secret-{i}")
            for i, c in enumerate(COMMUNITIES)),
        mqtt_topic_prefix=topic_prefix or f"neuron-test/{uuid.uuid4().hex[:10]}/thingsboard",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """A real uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = free_port()
    quiet_access_log()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_config=None,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def start_collector(config_path: Path, landing: Path, port: int, collector_id: str, *extra: str,
                    log: Path | None = None) -> subprocess.Popen:
    """``python -m connectors.collector`` as a subprocess, returned once /health answers."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [PYTHON, "-m", "connectors.collector", "--port", str(port), "--vendors", str(config_path),
         "--landing", str(landing), "--collector-id", collector_id, "--log-level", "warning", *extra],
        cwd=ROOT, stdout=out, stderr=out, env={**os.environ, "NEURON_MODE": "test"})
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"collector did not start (exit {proc.poll()}); log: "
                                 f"{log.read_text() if log else '-'}")
        time.sleep(0.05)


def stop_collector(proc: subprocess.Popen, timeout: float = 20) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def landed(landing: Path, source: str) -> dict[str, list[bytes]]:
    """Parser-visible pushed files of a source (relative path -> lines)."""
    return {str(p.relative_to(landing)): p.read_bytes().splitlines()
            for p in sorted((landing / source).glob("*/*/push-*")) if p.is_file()}


def all_lines(landing: Path, source: str) -> list[bytes]:
    return [line for lines in landed(landing, source).values() for line in lines]


def parts(landing: Path) -> list[Path]:
    return sorted(landing.rglob("*.part"))
