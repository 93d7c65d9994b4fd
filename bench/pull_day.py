"""Benchmark: pulling a whole district-day from the vendor platforms (the `landing_pull` step's work).

Usage: .venv/bin/python bench/pull_day.py [--communities 20] [--seed 42] [--workdir DIR] [--rate 50] [--page-size 1000]

Stages the day on the vendor-platform simulator (`simulator/vendor_sim`, cached in ``--workdir`` so a second run
skips it), serves it on loopback, then pulls every pulled source (telemetry history, ISC events, VIID motor
vehicles, parking records) and every file export into an empty landing zone, the sources concurrently as the
Dagster step does. Prints JSON: staging seconds, per source the pull's wall time, requests, bytes, records
landed, re-reads; the file exports; the total wall time, and the records/s and requests/s achieved. At 600
communities the staged day takes about 12 GB of disk; the simulator's catalog build de-duplicates in buckets
within its DuckDB memory (3 GB; ``NEURON_SIM_DUCKDB_MEMORY`` changes it). The
platform and the client share the machine's two cores, so these are lower bounds for a remote platform with
the same limits. Not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.pull.files import FILE_SOURCES, pull_files  # noqa: E402
from connectors.pull.run import SOURCES, pull_day  # noqa: E402
from simulator.vendor_sim.catalog import VendorPlatform  # noqa: E402
from simulator.vendor_sim.server import VendorServer  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--communities", type=int, default=20)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--day", type=date.fromisoformat, default=date(2026, 11, 20))
    p.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench" / "vendor_sim")
    p.add_argument("--rate", type=float, default=None, help="requests/s per source (default: the config's limits)")
    p.add_argument("--page-size", type=int, default=None)
    args = p.parse_args()

    t0 = time.monotonic()
    workdir = args.workdir / f"{args.day}-{args.communities}-{args.seed}"
    platform = VendorPlatform.stage(workdir, args.day, communities=args.communities, seed=args.seed)
    stage_s = time.monotonic() - t0
    server = VendorServer(platform).start()
    landing = Path(tempfile.mkdtemp(prefix="neuron-bench-pull-"))
    try:
        config = server.config

        def pull(source: str) -> dict:
            rate, size = config.limits(source)
            started = time.monotonic()
            r = pull_day(source, args.day, landing, config, cursor_dir=landing / "_cursors",
                         rate_per_s=args.rate or rate, page_size=args.page_size or size or 500)
            return {"wall_s": round(time.monotonic() - started, 2), "requests": r.requests, "bytes": r.bytes,
                    "errors": len(r.errors), **r.totals()}

        def files(source: str) -> dict:
            started = time.monotonic()
            r = pull_files(source, args.day, landing, config)
            return {"wall_s": round(time.monotonic() - started, 2), "listed": r.listed, "bytes": r.bytes,
                    "requests": r.requests, "errors": len(r.errors)}

        t1 = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(SOURCES) + len(FILE_SOURCES)) as pool:
            pulled = {s: pool.submit(pull, s) for s in SOURCES}
            exported = {s: pool.submit(files, s) for s in FILE_SOURCES}
            pulled = {s: f.result() for s, f in pulled.items()}
            exported = {s: f.result() for s, f in exported.items()}
        wall = time.monotonic() - t1
        records = sum(v.get("records", 0) for v in pulled.values())
        requests = sum(v["requests"] for v in pulled.values()) + sum(v["requests"] for v in exported.values())
        out = {"communities": args.communities, "day": args.day.isoformat(), "stage_s": round(stage_s, 1),
               "pull_wall_s": round(wall, 1), "records": records, "requests": requests,
               "bytes": sum(v["bytes"] for v in pulled.values()) + sum(v["bytes"] for v in exported.values()),
               "records_per_s": round(records / wall), "requests_per_s": round(requests / wall, 1),
               "sources": pulled, "files": exported}
        print(json.dumps(out, indent=2))
    finally:
        server.stop()
        shutil.rmtree(landing, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
