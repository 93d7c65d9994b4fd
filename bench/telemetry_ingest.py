"""Benchmark: telemetry ingest of a district-day against bare DuckDB reading the same files into Parquet.

Usage: uv run python bench/telemetry_ingest.py [--communities 600] [--out bench/out] [--skip-generate]
Each phase runs in its own process so its wall time and peak RSS are measured alone. Not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from bench.floor import ENVELOPE_COLUMNS
from kernel.settings import child_environment, load_settings

ROOT = Path(__file__).resolve().parents[1]

PHASES = {
    "generate": """
        from datetime import date
        from simulator.district import simulate_day
        r = simulate_day(LANDING, date.fromisoformat(DAY), COMMUNITIES, 42)
        OUT.update(lines=r.telemetry.lines, readings=r.telemetry.readings, files=r.telemetry.files)
    """,
    "bare_duckdb": """
        import duckdb
        con = duckdb.connect(config={"memory_limit": "3GB", "preserve_insertion_order": False})
        con.execute(f"SET temp_directory = '{WORK}/tmp'")
        files = f"{LANDING}/telemetry/{DAY}/*/*.ndjson.gz"
        cols = ENVELOPE_COLUMNS
        con.execute(f"COPY (SELECT * FROM read_json('{files}', format='newline_delimited', ignore_errors=true, "
                    f"filename=true, columns={cols})) TO '{WORK}/bare.parquet' (FORMAT parquet, COMPRESSION zstd)")
        OUT.update(rows=con.execute(f"SELECT count(*) FROM '{WORK}/bare.parquet'").fetchall()[0][0])
    """,
    "bare_duckdb_long": """
        import duckdb
        from bench.floor import telemetry_long_sql
        con = duckdb.connect(config={"memory_limit": "3GB", "preserve_insertion_order": False})
        con.execute(f"SET temp_directory = '{WORK}/tmp'")
        # the same parse to long format (device, time, property, value), without validation or accounting
        query = telemetry_long_sql(f"{LANDING}/telemetry/{DAY}/*/*.ndjson.gz")
        con.execute(f"COPY ({query}) TO '{WORK}/bare_long.parquet' (FORMAT parquet, COMPRESSION zstd)")
        OUT.update(rows=con.execute(f"SELECT count(*) FROM '{WORK}/bare_long.parquet'").fetchall()[0][0])
    """,
    "neuron_ingest": """
        from assets.telemetry.datasets import DEVICE_REGISTRY, INGEST_STATS
        from assets.telemetry.parse import ingest_day
        from kernel.accounting import write_ingest
        from kernel.io import create_view, write_dataset
        from kernel.resource import NeuronResource
        neuron = NeuronResource(data_dir=str(WORK / "data"))
        lake = neuron.lake
        con = neuron.duckdb()
        snap = LANDING / "device_registry" / DAY / "devices.csv"
        write_dataset(con, lake, DEVICE_REGISTRY, DAY, f"SELECT * FROM read_csv('{snap}', header=true, all_varchar=true)")
        create_view(con, "registry", lake, DEVICE_REGISTRY, DAY)
        tok = neuron.tokenizer()
        stats = ingest_day(con, lake, LANDING, DAY, "Asia/Shanghai", lambda v: tok.tokenize_series(v, "person"))
        write_ingest(con, lake, INGEST_STATS, DAY, [stats])
        OUT.update(lines=stats.lines, landed=stats.landed, bronze_rows=stats.bronze_rows,
                   quarantined=stats.quarantined)
    """,
    "neuron_downstream": """
        import dagster as dg
        from assets.telemetry.assets import (gold_device_health_daily, gold_environment_hourly,
                                             silver_device_alarms, silver_telemetry)
        from kernel.lake_asset import Area
        from kernel.partitions import daily_partitions
        from kernel.resource import NeuronResource
        neuron = NeuronResource(data_dir=str(WORK / "data"))
        area = Area(daily_partitions(neuron.settings))
        steps = [silver_telemetry, silver_device_alarms, gold_device_health_daily, gold_environment_hourly]
        res = dg.materialize([s.build(area) for s in steps], partition_key=DAY, resources={"neuron": neuron},
                             instance=dg.DagsterInstance.ephemeral())
        OUT.update(success=res.success)
    """,
    "validate": """
        from kernel.resource import NeuronResource
        from quality.gx_runner import run_suite
        from quality.pii_checks import scan_files
        from quality.pii_scan import redact
        from assets.registry import datasets
        DATASETS = datasets()
        lake = NeuronResource(data_dir=str(WORK / "data")).lake
        t = time.perf_counter()
        for ds in DATASETS.values():
            files = lake.files(ds.layer, ds.name, DAY)
            if ds.suite and files:
                r = run_suite(f"{ds.layer}.{ds.name}", files, ds.suite, redactor=redact)
                OUT[f"gx/{ds.key}"] = round(r.elapsed_seconds, 2)
                OUT[f"gx_failed/{ds.key}"] = [o.name for o in r.outcomes if not o.success]
        OUT["gx_seconds"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        hits = 0
        for ds in DATASETS.values():
            if ds.layer in ("silver", "gold"):
                hits += len(scan_files(lake.files(ds.layer, ds.name, DAY), LANDING))
        OUT["pii_scan_seconds"] = round(time.perf_counter() - t, 2)
        OUT["pii_hits"] = hits
    """,
}


def run_phase(name: str, work: Path, landing: Path, day: str, communities: int) -> dict:
    code = textwrap.dedent(f"""
        import json, resource, sys, time
        from pathlib import Path
        WORK, LANDING, DAY, COMMUNITIES = Path({str(work)!r}), Path({str(landing)!r}), {day!r}, {communities}
        ENVELOPE_COLUMNS = {ENVELOPE_COLUMNS!r}
        OUT = {{}}
        t0 = time.perf_counter()
    """) + textwrap.dedent(PHASES[name]) + textwrap.dedent("""
        OUT["seconds"] = round(time.perf_counter() - t0, 2)
        OUT["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print("RESULT " + json.dumps(OUT))
    """)
    env = child_environment(PYTHONPATH=str(ROOT), NEURON_MODE=load_settings().mode)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-4000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--communities", type=int, default=600)
    ap.add_argument("--day", default="2026-11-20")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--skip-generate", action="store_true")
    args = ap.parse_args()
    work = args.out / f"c{args.communities}"
    landing = work / "landing"
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    results = {}
    if not args.skip_generate:
        results["generate"] = run_phase("generate", work, landing, args.day, args.communities)
        print("generate", results["generate"], flush=True)
    results["bare_duckdb"] = run_phase("bare_duckdb", work, landing, args.day, args.communities)
    print("bare_duckdb", results["bare_duckdb"], flush=True)
    results["bare_duckdb_long"] = run_phase("bare_duckdb_long", work, landing, args.day, args.communities)
    print("bare_duckdb_long", results["bare_duckdb_long"], flush=True)
    results["neuron_ingest"] = run_phase("neuron_ingest", work, landing, args.day, args.communities)
    print("neuron_ingest", results["neuron_ingest"], flush=True)
    for phase in ("neuron_downstream", "validate"):
        results[phase] = run_phase(phase, work, landing, args.day, args.communities)
        print(phase, results[phase], flush=True)
    ratio = results["neuron_ingest"]["seconds"] / results["bare_duckdb"]["seconds"]
    ratio_long = results["neuron_ingest"]["seconds"] / results["bare_duckdb_long"]["seconds"]
    gz = sum(p.stat().st_size for p in (landing / "telemetry" / args.day).rglob("*.gz"))
    summary = {"communities": args.communities, "landing_gz_mb": round(gz / 2**20), **results,
               "ratio_neuron_over_bare_copy": round(ratio, 2),
               "ratio_neuron_over_bare_long_parse": round(ratio_long, 2), "target": "<= 2.0 (design.md)",
               "validation_over_ingest": round(results["validate"]["seconds"] / results["neuron_ingest"]["seconds"], 3),
               "validation_target": "< 0.25 (issue 6)"}
    (work / "result.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
