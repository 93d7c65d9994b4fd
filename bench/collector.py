"""Benchmark: the push collector's throughput and push-to-durable latency on loopback.

Usage: .venv/bin/python bench/collector.py [--messages 60000] [--processes 2] [--threads 16] [--keep DIR]

Starts ``python -m connectors.collector --no-mqtt`` on 127.0.0.1 (a subprocess, landing in a temp dir), then
``--processes`` client processes with ``--threads`` threads each push CTWing messages over keep-alive HTTP/1.1
connections (``http.client``, one per thread). Every push is timed from just before its request is written to
its ``200`` (which the collector sends only after the line is fsynced): that is the push-to-durable latency a
platform observes. Prints JSON: events/s (acknowledged pushes over the wall time of the burst), p50/p99/max
latency, the collector's fsync count (so the group-commit batch size), and checks the landed line count after
a clean stop. Not a test; the clients share the machine's cores with the collector.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.config import CommunityPlatforms, VendorConfig  # noqa: E402

TOKEN = "bench-ctwing-token"


def message(i: int) -> bytes:
    """A CTWing dataReport of the simulator's shape (~420 bytes)."""
    return json.dumps({
        "upPacketSN": -1, "upDataSN": -1, "topic": "v1/up/ad19prof", "timestamp": 1795107082607 + i,
        "tenantId": "2000031415", "serviceId": "", "protocol": "lwm2m", "productId": "15001111",
        "messageType": "dataReport", "deviceType": "", "deviceId": f"150011111006920261{i % 100000:05d}",
        "assocAssetId": "", "IMSI": "undefined", "IMEI": f"8606189034{i % 100000:05d}",
        "payload": {"serviceId": "notification", "serviceData": {"Gas_Alarm": 0, "Gas_Concentration": 1.4,
                                                                 "Battery_Level": 74.0, "RSRP": -107.0, "SNR": 9.4}},
        "seq": i}).encode()


def _client(port: int, first: int, count: int, threads: int, start_at: float, out: mp.Queue) -> None:
    bodies = [message(first + k) for k in range(count)]
    lat: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads

    def worker(t: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        path = f"/push/ctwing/{TOKEN}"
        headers = {"Content-Type": "application/json"}
        mine, record = bodies[t::threads], lat[t]
        while time.time() < start_at:
            time.sleep(0.001)
        for body in mine:
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body, headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            if ok:
                record.append(time.perf_counter() - t0)
            else:
                errors[t] += 1
        conn.close()

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(([x for part in lat for x in part], sum(errors), time.time()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    text = conn.getresponse().read().decode()
    conn.close()
    return text


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=60000)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=16, help="keep-alive connections per client process")
    p.add_argument("--keep", type=Path, default=None, help="land here (default: a temp dir, removed)")
    args = p.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="neuron-bench-collector-")
    work = args.keep or Path(tmp.name)
    landing = work / "landing"
    config = VendorConfig(
        base_url="http://127.0.0.1:8700", ctwing_application="a", ctwing_secret="s", export_token="e",
        push_tokens={"ctwing": TOKEN, "iotda": "x", "isc": "y"},
        communities=(CommunityPlatforms("310107001001", "k", "s", "31010700001200000000", "p", "pa", "ps"),))
    vendors = config.save(work / "vendors.yaml")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "connectors.collector", "--no-mqtt", "--port", str(port),
                             "--vendors", str(vendors), "--landing", str(landing), "--collector-id", "bench",
                             "--log-level", "warning"], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(port, "/health")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the collector did not start") from None
                time.sleep(0.05)
        # warm-up (connections, first minute file)
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for i in range(200):
            conn.request("POST", f"/push/ctwing/{TOKEN}", message(-1 - i))
            conn.getresponse().read()
        conn.close()
        before = _get(port, "/metrics")

        out: mp.Queue = mp.Queue()
        per = args.messages // args.processes
        start_at = time.time() + 1.0 + 0.2 * args.processes
        clients = [mp.Process(target=_client, args=(port, k * per, per, args.threads, start_at, out))
                   for k in range(args.processes)]
        for c in clients:
            c.start()
        results = [out.get() for _ in clients]
        for c in clients:
            c.join()
        after = _get(port, "/metrics")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)

    latencies = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    end = max(r[2] for r in results)
    wall = end - start_at
    fsyncs = _metric(after, "neuron_collector_fsync_seconds_count") - _metric(before, "neuron_collector_fsync_seconds_count")
    landed = sum(len(f.read_bytes().splitlines()) for f in landing.glob("telemetry/*/ctwing/push-*.ndjson"))

    def q(f: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(f * len(latencies)))] * 1000, 2)

    report = {
        "messages": args.messages, "acknowledged": len(latencies), "errors": errors,
        "client_processes": args.processes, "connections": args.processes * args.threads,
        "wall_s": round(wall, 3), "events_per_s": round(len(latencies) / wall),
        "latency_ms": {"p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": round(latencies[-1] * 1000, 2)},
        "fsyncs": int(fsyncs), "lines_per_fsync": round(len(latencies) / fsyncs, 1) if fsyncs else None,
        "landed_lines": landed, "landed_ok": landed == len(latencies) + 200, "collector_exit": rc,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report, indent=1))
    tmp.cleanup()
    return 0 if report["landed_ok"] and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
