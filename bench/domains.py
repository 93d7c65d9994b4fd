"""Benchmark: the access, vehicle, service and governance domains for a district-day, one process per phase.

Usage: uv run python bench/domains.py [--communities 600] [--domains access,vehicles,services,governance]
Phase "generate/<domain>" runs that domain's simulator; phase "run/<domain>" materialises its bronze, silver
and gold groups (plus the device registry, the community list) through Dagster for the day; telemetry is
not run, so cross-domain inputs (device alarms, environment) read as empty.
Wall time and peak RSS are measured per process. Not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from kernel.settings import child_environment, load_settings

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ("access", "vehicles", "services", "governance")

GENERATE = """
    import importlib
    from datetime import date
    from simulator.canaries import canary_residents
    from simulator.district import REGISTRY_COLUMNS, district_registry
    from simulator.registry import communities
    module = importlib.import_module(f"simulator.{DOMAIN}")
    regs = district_registry(COMMUNITIES, 42)
    (LANDING / "device_registry" / DAY).mkdir(parents=True, exist_ok=True)
    regs.select(REGISTRY_COLUMNS).write_csv(LANDING / "device_registry" / DAY / "devices.csv")
    OUT["summary"] = module.simulate(LANDING, date.fromisoformat(DAY), communities(COMMUNITIES, 42),
                                     regs, 42, canary_residents(42), faults=True)
    OUT["landing_mb"] = round(sum(p.stat().st_size for p in LANDING.rglob("*") if p.is_file()) / 2**20, 1)
"""

RUN = """
    import time
    import dagster as dg
    from kernel.settings import export_environment
    from pipelines.cli import prepare_dagster_home
    export_environment({"NEURON_DATA_DIR": str(WORK / "data"), "NEURON_LANDING_DIR": str(LANDING),
                        "DAGSTER_HOME": str(prepare_dagster_home(WORK / "data" / "dagster_home"))})
    from pipelines.definitions import defs
    groups = [g for g in (f"{DOMAIN}_bronze", f"{DOMAIN}_silver", f"{DOMAIN}_gold")]
    # the device registry is the community list some domains check against
    selection = dg.AssetSelection.groups(*groups) | dg.AssetSelection.assets(["bronze", "device_registry"])
    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job("bench", selection)])
                               ).resolve_job_def("bench")
    with dg.DagsterInstance.get() as instance:
        res = job.execute_in_process(partition_key=DAY, instance=instance, raise_on_error=False,
                                     run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
        OUT["success"] = res.success
        steps = {}
        for e in res.all_events:
            if e.event_type_value == "STEP_SUCCESS":
                steps[e.step_key] = round(e.event_specific_data.duration_ms / 1000, 2)
        OUT["steps_s"] = steps
        mats = [ev.event_specific_data.materialization for ev in res.get_asset_materialization_events()]
        OUT["rows"] = {m.asset_key.to_user_string(): m.metadata["dagster/row_count"].value
                       for m in mats if "dagster/row_count" in m.metadata}
        OUT["failed_checks"] = [f"{e.asset_key.to_user_string()}:{e.check_name}"
                                for e in res.get_asset_check_evaluations() if not e.passed]
"""


def run_phase(code_body: str, work: Path, landing: Path, day: str, communities: int, domain: str) -> dict:
    code = textwrap.dedent(f"""
        import json, resource, sys, time
        from pathlib import Path
        WORK, LANDING, DAY, COMMUNITIES = Path({str(work)!r}), Path({str(landing)!r}), {day!r}, {communities}
        DOMAIN = {domain!r}
        OUT = {{}}
        t0 = time.perf_counter()
    """) + textwrap.dedent(code_body) + textwrap.dedent("""
        OUT["seconds"] = round(time.perf_counter() - t0, 2)
        OUT["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print("RESULT " + json.dumps(OUT, default=str))
    """)
    env = child_environment(PYTHONPATH=str(ROOT), NEURON_MODE=load_settings().mode)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{domain} failed:\n{proc.stderr[-4000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--communities", type=int, default=600)
    ap.add_argument("--day", default="2026-11-20")
    ap.add_argument("--domains", default=",".join(DOMAINS))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--skip-generate", action="store_true")
    args = ap.parse_args()
    work = args.out / f"domains_c{args.communities}"
    landing = work / "landing"
    results = {}
    for domain in args.domains.split(","):
        if not args.skip_generate:
            results[f"generate/{domain}"] = run_phase(GENERATE, work, landing, args.day, args.communities, domain)
            print(f"generate/{domain}", json.dumps(results[f"generate/{domain}"])[:400], flush=True)
        results[f"run/{domain}"] = run_phase(RUN, work, landing, args.day, args.communities, domain)
        print(f"run/{domain}", json.dumps(results[f"run/{domain}"]), flush=True)
    (work / "result.json").write_text(json.dumps({"communities": args.communities, **results}, indent=2))


if __name__ == "__main__":
    main()
