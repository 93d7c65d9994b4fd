"""The collector as a process: SIGKILL in the middle of a burst loses nothing that was acknowledged, leaves no
torn line where a parser can see it, and the senders' retries after the restart land everything; the command
line answers bad arguments with one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from connectors.collector.cli import main
from connectors.protocols import parking

from .support import COMMUNITIES, free_port, landed, parts, start_collector, stop_collector, vendor_config

C1, C2 = COMMUNITIES
N, THREADS, KILL_AFTER = 1800, 8, 500


def message(i: int) -> tuple[str, bytes, bytes]:
    """(path, body, the line it lands as) of burst message i (a third each: CTWing, ISC, parking)."""
    if i % 3 == 0:
        record = {"deviceId": f"dev{i % 50}", "timestamp": 1795107082607 + i, "id": i,
                  "payload": {"serviceData": {"Gas_Concentration": 1.4}}}
        return "/push/ctwing/tok-ctwing", json.dumps(record, indent=1).encode(), \
            json.dumps(record, separators=(",", ":")).encode()
    if i % 3 == 1:
        record = {"method": "OnEventNotify", "id": i, "params": {"events": [{"eventId": f"acs{i}"}]}}
        return f"/push/isc/{C1}/tok-isc", json.dumps(record).encode(), json.dumps(record, separators=(",", ":")).encode()
    record = {"event_type": "enter", "parking_serial": f"S{i}", "plate": "沪H56998", "id": i}
    body = json.dumps(parking.signed(record, "park1", "park-secret-1"), ensure_ascii=False).encode()
    return f"/push/parking/{C2}", body, json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def send(url: str, ids: list[int], acked: list[int]) -> None:
    session = requests.Session()
    for i in ids:
        path, body, _ = message(i)
        try:
            r = session.post(url + path, data=body, timeout=10)
            ok = r.status_code == 200 and (r.json().get("state", 1) == 1)
        except requests.RequestException:
            ok = False
        if ok:
            acked.append(i)


def on_disk(landing: Path) -> dict[int, int]:
    """id -> how many times its line is in a parser-visible file; asserts every line there is whole JSON."""
    counts: dict[int, int] = {}
    for source in ("telemetry", "access_events", "parking"):
        for name, lines in landed(landing, source).items():
            assert name.endswith(".ndjson")
            for line in lines:
                record = json.loads(line)  # a torn line would fail here
                counts[record["id"]] = counts.get(record["id"], 0) + 1
    return counts


def test_sigkill_mid_burst_loses_nothing_acknowledged(tmp_path: Path) -> None:
    config_path = vendor_config().save(tmp_path / "vendors.yaml")
    landing, log = tmp_path / "landing", tmp_path / "collector.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_collector(config_path, landing, port, "k1", "--no-mqtt", log=log)

    acked: list[int] = []
    shares = [list(range(t, N, THREADS)) for t in range(THREADS)]
    threads = [threading.Thread(target=send, args=(url, share, acked)) for share in shares]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)  # mid-burst: requests in flight, lines buffered, minute files open
    proc.wait()
    for t in threads:
        t.join()
    burst_acked = set(acked)
    assert KILL_AFTER <= len(burst_acked) < N, "the kill did not land mid-burst"
    assert parts(landing), "a minute file was open when the collector died"

    proc = start_collector(config_path, landing, port, "k1", "--no-mqtt", log=log)  # recovers
    retried: list[int] = []
    missing = [i for i in range(N) if i not in burst_acked]
    retry_threads = [threading.Thread(target=send, args=(url, missing[t::4], retried)) for t in range(4)]
    for t in retry_threads:
        t.start()
    for t in retry_threads:
        t.join()
    assert sorted(retried) == missing  # the senders' retries are all acknowledged
    assert stop_collector(proc) == 0

    assert parts(landing) == []
    counts = on_disk(landing)
    assert all(counts.get(i) == 1 for i in burst_acked)  # once per acknowledgement
    assert all(1 <= counts.get(i, 0) <= 2 for i in missing)  # a line landed but not acknowledged comes twice
    assert sum(counts.values()) - N <= THREADS  # at most the requests in flight at the kill
    for i in (0, 1, 2):  # the lines are the rule's
        source = ("telemetry", "access_events", "parking")[i]
        assert message(i)[2] in [line for lines in landed(landing, source).values() for line in lines]
    assert "Traceback" not in log.read_text()


def test_cli_bad_arguments_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--port", "http"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("neuron collect: error: ") and "TCP port" in err

    assert main(["--vendors", str(tmp_path / "missing.yaml"), "--landing", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no vendor config" in err

    config_path = vendor_config().save(tmp_path / "vendors.yaml")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert main(["--vendors", str(config_path), "--landing", str(tmp_path), "--port", port, "--no-mqtt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot listen" in err

    assert main(["--vendors", str(config_path), "--landing", str(tmp_path), "--port", str(free_port()),
                 "--collector-id", "no-dashes"]) == 2
    assert "collector id" in capsys.readouterr().err
