"""Benchmark: a whole district-day as ONE Dagster run of the daily job, with the executor production uses.

Usage: uv run python bench/district_day.py [--communities 600] [--workdir DIR] [--skip-generate]

Phases, each in its own process:
1. generate: `neuron simulate` for every domain (telemetry, access, vehicles and parking, services, governance),
   every fault switched on.
2. floor: bare DuckDB reading every source's landing files into Parquet, without validation, accounting or
   privacy work: the JSON sources as one JSON document per record (`read_json_objects`), the CSV exports as text
   columns, and the telemetry additionally parsed to long format (device, time, key, value), the parse the
   ingest target is measured against.
3. run: the daily job for the day through `dagster.execute_job` on a persistent instance configured as
   deploy/dagster.local.yaml (pools: one ingest parser, one warehouse writer), with the job's own run config for
   the day, so the executor a scheduled run gets runs it: the multiprocess executor, one process per step, as many
   at once as the machine has cores (what the daemon's run worker does). The reference receiver listens on loopback so the exports are pushed as in the
   demo. Before it, unless --cold-engine, the incident engine reads the day's landing as the incident sensor does
   while the day lands (timed apart: `incident_engine`). While the run runs, the memory of the whole process tree
   (the run process and every step process together, RSS and PSS summed) is sampled every 0.2 s.

Writes bench/out/district_day.json (communities, end_to_end_s, floor_s, peak_rss_mb, steps: name -> seconds,
cpu_s and cpu_utilisation: the run's CPU time over its wall time times the cores, plus detail) and prints the
same. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path

import psutil

from kernel.settings import child_environment

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "district_day.json"

GENERATE = """
    from datetime import date
    from simulator.district import simulate_day
    r = simulate_day(LANDING, date.fromisoformat(DAY), COMMUNITIES, 42)
    # what a vendor would deliver: the simulator's truth and canaries (folders starting with _) excepted
    sizes = [p.stat().st_size for p in LANDING.rglob("*")
             if p.is_file() and not p.relative_to(LANDING).parts[0].startswith("_")]
    OUT.update(telemetry_lines=r.telemetry.lines, telemetry_readings=r.telemetry.readings, files=len(sizes),
               landing_mb=round(sum(sizes) / 2**20, 1))
"""

FLOOR = r"""
    import duckdb
    from bench.floor import telemetry_long_sql
    con = duckdb.connect(config={"memory_limit": "3GB", "preserve_insertion_order": False, "threads": 2})
    con.execute(f"SET temp_directory = '{WORK}/tmp'")
    floor = WORK / "floor"
    floor.mkdir(exist_ok=True)
    parts = {
        # telemetry of the carrier platforms parsed to long format; ThingsBoard's gateway payloads as JSON
        "telemetry_long": telemetry_long_sql(f"{LANDING}/telemetry/{DAY}/[ci]*/*.ndjson.gz"),
        "telemetry_thingsboard": f"SELECT * FROM read_json_objects('{LANDING}/telemetry/{DAY}/thingsboard/*', "
                                 f"format='newline_delimited', ignore_errors=true, filename=true)",
    }
    for source in sorted(p.name for p in LANDING.iterdir() if p.is_dir() and not p.name.startswith("_")
                         and p.name != "telemetry"):
        files = [p for p in (LANDING / source / DAY).rglob("*") if p.is_file()]
        for suffix in sorted({"".join(p.suffixes[-2:]) if p.name.endswith(".gz") else p.suffix for p in files}):
            glob = f"{LANDING}/{source}/{DAY}/**/*{suffix}"
            if suffix == ".csv":
                sql = (f"SELECT * FROM read_csv('{glob}', all_varchar=true, union_by_name=true, ignore_errors=true, "
                       f"null_padding=true, filename=true, delim=',', quote='\"', escape='\"', header=true, "
                       f"strict_mode=false)")
            else:  # newline-delimited JSON (access, parking, governance) or one document per file (GA/T 1400)
                fmt = "auto" if suffix == ".json" else "newline_delimited"
                sql = (f"SELECT * FROM read_json_objects('{glob}', format='{fmt}', ignore_errors=true, "
                       f"filename=true, maximum_object_size=268435456)")
            parts[f"{source}{suffix}"] = sql
    for name, sql in parts.items():
        t = time.perf_counter()
        target = floor / f"{name.replace('.', '_')}.parquet"
        con.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
        rows = con.execute(f"SELECT count(*) FROM '{target}'").fetchall()[0][0]
        OUT[name] = {"seconds": round(time.perf_counter() - t, 2), "rows": rows}
"""

# the incident engine reading the day's landing, as the incident sensor (every 5 s) does while the day lands; without
# this phase the daily run reads all of it, in its incidents_read check beside the bronze parses (--cold-engine)
ENGINE = """
    from assets.incidents.engine import IncidentEngine
    from kernel.settings import export_environment, load_settings
    export_environment({"NEURON_DATA_DIR": str(WORK / "data"), "NEURON_LANDING_DIR": str(LANDING)})
    OUT["advances"] = len(IncidentEngine(load_settings()).catch_up())
"""

RUN = """
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from kernel.settings import export_environment
    from pipelines.cli import demo_receiver, prepare_dagster_home
    export_environment({"NEURON_DATA_DIR": str(WORK / "data"), "NEURON_LANDING_DIR": str(LANDING),
                        "DAGSTER_HOME": str(prepare_dagster_home(WORK / "data" / "dagster_home"))})
    from pipelines.definitions import defs
    job = ReconstructableRepository.for_module("pipelines.definitions", "defs", str(ROOT)
                                               ).get_reconstructable_job("daily_job")
    with dg.DagsterInstance.get() as instance, demo_receiver(WORK / "data" / "receiver"):
        t = time.perf_counter()
        # the daily job's own run config for a day (its executor config), with quieter console logging
        config = {**defs.resolve_job_def("daily_job").partitioned_config.get_run_config_for_partition_key(DAY),
                  "loggers": {"console": {"config": {"log_level": "ERROR"}}}}
        res = dg.execute_job(job, instance, tags={"dagster/partition": DAY}, run_config=config)
        OUT["run_config_execution"] = instance.get_run_by_id(res.run_id).run_config.get("execution")
        OUT["run_s"] = round(time.perf_counter() - t, 2)
        OUT["success"] = res.success
        OUT["run_id"] = res.run_id
        stats = instance.get_run_step_stats(res.run_id)
        OUT["step_pids"] = {r.dagster_event.event_specific_data.metadata["pid"].value: r.dagster_event.step_key
                            for r in instance.all_logs(res.run_id)
                            if r.dagster_event and r.dagster_event.event_type_value == "STEP_WORKER_STARTED"}
        OUT["steps"] = {s.step_key: round(s.end_time - s.start_time, 2) for s in stats if s.end_time}
        OUT["step_status"] = {s.step_key: str(s.status.value) for s in stats}
        OUT["failed_checks"] = sorted(f"{e.asset_key.to_user_string()}:{e.check_name}"
                                      for e in res.get_asset_check_evaluations() if not e.passed)
"""


def _tree_memory(root: psutil.Process) -> tuple[int, int, list[tuple[int, int, int]]]:
    """(RSS, PSS) summed over the process tree, and (pid, RSS, PSS) of each process. The RSS sum counts a page
    shared by forked step processes once per process (an upper bound); PSS divides each shared page among its
    sharers, so its sum is the tree's share of physical memory."""
    parts = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except psutil.Error:  # a step process that just ended
            continue
        parts.append((proc.pid, info.rss, getattr(info, "pss", info.rss)))
    return sum(p[1] for p in parts), sum(p[2] for p in parts), parts


def run_phase(name: str, body: str, work: Path, landing: Path, day: str, communities: int,
              sample: bool = False) -> dict:
    code = textwrap.dedent(f"""
        import json, resource, sys, time
        from pathlib import Path
        ROOT, WORK, LANDING = Path({str(ROOT)!r}), Path({str(work)!r}), Path({str(landing)!r})
        DAY, COMMUNITIES = {day!r}, {communities}
        OUT = {{}}
        t0 = time.perf_counter()
    """) + textwrap.dedent(body) + textwrap.dedent("""
        OUT["seconds"] = round(time.perf_counter() - t0, 2)
        OUT["largest_process_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print("RESULT " + json.dumps(OUT, default=str))
    """)
    env = child_environment(PYTHONPATH=str(ROOT), NEURON_MODE=os.environ.get("NEURON_MODE", "demo"))
    # the CPU time of the phase: a one-process phase's from our RUSAGE_CHILDREN once it is reaped; the run's, whose
    # step processes are the forkserver's children and never reach our RUSAGE_CHILDREN, as the sum over every
    # process of the tree of its last sampled user + system time (a lower bound: a step's last 0.2 s is missed)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seen: dict[tuple[int, float], float] = {}  # (pid, start time): a reused pid is another process
    peak = [0, 0]
    peak_parts: list[tuple[int, int, int]] = []
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, cwd=ROOT) as proc:
        done = threading.Event()

        def sampler() -> None:
            root = psutil.Process(proc.pid)
            while not done.wait(0.2):
                try:
                    rss, pss, parts = _tree_memory(root)
                except psutil.Error:
                    return
                for child in [root, *root.children(recursive=True)]:
                    try:
                        key, times = (child.pid, child.create_time()), child.cpu_times()
                    except psutil.Error:
                        continue
                    cpu_seen[key] = max(cpu_seen.get(key, 0.0), times.user + times.system)
                if pss > peak[1]:
                    peak_parts[:] = parts
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)

        thread = threading.Thread(target=sampler, daemon=True)
        if sample:
            thread.start()
        stdout, stderr = proc.communicate()
        done.set()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{stderr[-4000:]}")
    line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT "):])
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = cpu_after.ru_utime - cpu_before.ru_utime + cpu_after.ru_stime - cpu_before.ru_stime
    out["cpu_s"] = round(max(reaped, sum(cpu_seen.values())), 1)
    # 1.0: every core busy for the whole phase (then only less work shortens it, not more overlap)
    out["cpu_utilisation"] = round(out["cpu_s"] / (out["seconds"] * (os.cpu_count() or 1)), 3)
    if sample:
        out["tree_peak_rss_mb"] = round(peak[0] / 2**20)
        out["tree_peak_pss_mb"] = round(peak[1] / 2**20)
        # who held the memory at the PSS peak: step processes named by the run's STEP_WORKER_STARTED events
        names = {int(pid): step for pid, step in out.pop("step_pids", {}).items()}
        names[proc.pid] = "run process"
        out["tree_peak_processes"] = sorted(
            ({"process": names.get(pid, "executor's forkserver or other"), "rss_mb": round(r / 2**20),
              "pss_mb": round(p / 2**20)} for pid, r, p in peak_parts), key=lambda d: -d["pss_mb"])
    return out


def _other_load() -> str:
    """What else was running: the load average and the busiest other processes when the bench started."""
    me = {os.getpid()}
    busy = []
    for p in psutil.process_iter(["pid", "name", "memory_info"]):
        if p.info["pid"] not in me and p.info["memory_info"] and p.info["memory_info"].rss > 200 * 2**20:
            busy.append(f"{p.info['name']} {p.info['memory_info'].rss // 2**20} MB")
    return f"load average {os.getloadavg()}; processes over 200 MB: {', '.join(busy) or 'none'}"


def main() -> None:
    ap = argparse.ArgumentParser(description="A district-day as one Dagster run; see the module docstring.")
    ap.add_argument("--communities", type=int, default=600)
    ap.add_argument("--day", default="2026-11-20")
    ap.add_argument("--workdir", type=Path, help="default: bench/out/district_day_c<N>")
    ap.add_argument("--skip-generate", action="store_true", help="reuse the landing zone of an earlier invocation")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--cold-engine", action="store_true",
                    help="leave the incident engine unread: the run reads the whole day (its incidents_read check)")
    args = ap.parse_args()
    work = args.workdir or ROOT / "bench" / "out" / f"district_day_c{args.communities}"
    landing = work / "landing"
    if not args.skip_generate and landing.exists():
        raise SystemExit(f"{landing} exists: remove it or pass --skip-generate")
    if args.skip_generate and not landing.exists():
        raise SystemExit(f"--skip-generate: no landing zone at {landing}")
    if (work / "data").exists():
        raise SystemExit(f"{work / 'data'} exists (an earlier run's lake and instance): remove it first")
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load = _other_load()
    result: dict = {"communities": args.communities, "day": args.day, "started_utc": started,
                    "machine": f"{platform.node()}: {os.cpu_count()} cores, "
                               f"{psutil.virtual_memory().total / 2**30:.0f} GB", "other_load_at_start": load}
    if not args.skip_generate:
        result["generate"] = run_phase("generate", GENERATE, work, landing, args.day, args.communities)
        print("generate", json.dumps(result["generate"]), flush=True)
    floor = run_phase("floor", FLOOR, work, landing, args.day, args.communities)
    print("floor", json.dumps(floor), flush=True)
    if not args.cold_engine:
        result["incident_engine"] = run_phase("engine", ENGINE, work, landing, args.day, args.communities)
        print("incident_engine", json.dumps(result["incident_engine"]), flush=True)
    run = run_phase("run", RUN, work, landing, args.day, args.communities, sample=True)
    steps = run.pop("steps")
    result.update(
        end_to_end_s=run["seconds"], floor_s=floor["seconds"],
        ratio_to_floor=round(run["seconds"] / floor["seconds"], 2), peak_rss_mb=run["tree_peak_rss_mb"],
        peak_pss_mb=run["tree_peak_pss_mb"],
        cpu_s=run["cpu_s"], cpu_utilisation=run["cpu_utilisation"],
        success=run["success"], steps=dict(sorted(steps.items(), key=lambda kv: -kv[1])),
        floor=floor, run=run,
        steps_total_s=round(sum(steps.values()), 1),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not run["success"]:
        raise SystemExit("the daily run failed: see run.step_status")


if __name__ == "__main__":
    main()
