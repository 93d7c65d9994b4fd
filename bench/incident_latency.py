"""Benchmark: how long an alarm takes from the push collector to 智能公安's receipt, through the real daemon.

Usage: .venv/bin/python bench/incident_latency.py [--communities 6] [--minutes 10] [--day YYYY-MM-DD] [--seed 42]
       [--episodes-per-community 8] [--burst 1000] [--drain-timeout 240] [--what-else-ran TEXT] [--keep]

What runs, each as production runs it (deploy/README.md), in a scratch folder under /tmp:

* the reference receiver (``python -m exports.receiver``, a process of its own, signed pushes over loopback);
* the push collector (``python -m connectors.collector --clock-start <day>T00:00``: the day is replayed now);
* the Dagster daemon (``dagster-daemon run -w workspace.yaml``, a temporary DAGSTER_HOME with the local instance
  config, deploy/dagster.local.yaml: SQLite, queued runs), which evaluates ``incident_sensor`` (the engine runs in
  the sensor) and launches ``incident_job`` runs (a process each) that push the versions to the receiver.

The data dir holds the simulator's device registry of ``--communities`` communities
(``simulator.district.district_registry``, as ``simulate_day`` writes it). The alarms are CTWing ``dataReport``
messages of the registry's smoke, gas, manhole and SOS devices, each built from a message the simulator itself
writes for that product model (``simulate_telemetry_day``) with the alarm key and code of ``vendor_keys.csv`` /
``vendor_codes.csv`` (LiAn ``Alarm_Status`` 1 on, 7 normal; ``Smoke_Alarm``, ``Gas_Alarm``, ``Cover_Status``,
``SOS_Status`` 1/0): episodes over the day (on every 30 s for 1-8 minutes, then off) and one fire (``--burst``
alarms in one minute from the smoke detectors of the building with the most, cleared an hour later). The day
is compressed into ``--minutes`` of wall time: a message is pushed at t0 + (its second of the day / 86400) x the
window, with its own timestamp on the simulated day, by the vendor simulator's sender
(``simulator.vendor_sim.push``: CTWing's token URL, its retries), and the collector's acknowledgement is timed.

Latency of a delivered version = the receiver's ``received_at`` - the acknowledgement of the push that caused
it: for ``opened``, the earliest acknowledged alarm of the same community, building, event type and local minute
as the version's ``started_minute``; for ``cleared``, the earliest "off" message of its ``cleared_minute`` (the
earliest is a conservative, i.e. larger, latency). ``updated`` versions are counted, not timed. Also per incident:
its first alarm's acknowledgement -> the first version of it the receiver held (``incident_first_receipt``), and
where the time goes (acknowledgement -> the engine's ``detected_at`` -> the run's creation, start -> receipt).
Percentiles are nearest-rank. Compression shortens episodes too (at 10 minutes a simulated minute is 0.42 s), so
an episode often opens and clears between two sensor ticks: its first version is then ``cleared``, and
``updated`` versions are rare. Prints JSON and writes it to bench/out/incident_latency.json. Not a test: the daemon, its runs,
the collector, the receiver and the sender share the machine's cores (and with whatever else runs, which
``--what-else-ran`` records).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import math
import os
import queue
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROG = "bench/incident_latency.py"
TZ = ZoneInfo("Asia/Shanghai")
OUT = ROOT / "bench" / "out" / "incident_latency.json"
VENDORS = ROOT / "assets" / "telemetry" / "vendors"
# the registry's alarm devices and the silver flag each raises (assets/incidents/engine.py ALARM_METRICS)
ALARM_FLAG = {"smoke": "smoke_alarm", "gas": "gas_alarm", "manhole": "cover_open", "sos_button": "sos"}
REPEAT_S = 30  # an alarm repeats every 30 s while it lasts
FIRE_AT_S = 14 * 3600  # the fire's minute: 14:00 of the simulated day
FIRE_CLEARED_AFTER_S = 60 * 60  # long enough in wall time (25 s at 10 minutes) for the opening to be seen alone
COLLECTOR_ID = "bench"
SENDERS = 16  # sender threads (the burst needs a few connections in flight)


class BenchError(Exception):
    """A bad argument or a piece that would not start: one line on stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        sys.stderr.write(f"{PROG}: error: {message}\n")
        sys.exit(2)


def _int_in(low: int, high: int):  # noqa: ANN202
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {text!r}")
        return value
    return parse


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 1 <= value <= 120:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be minutes from 1 to 120, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 10 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be seconds from 10 to 3600, got {text!r}")
    return value


def _day(text: str) -> date:
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"must be a date as YYYY-MM-DD, got {text!r}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--communities", type=_int_in(1, 600), default=6, help="communities in the registry (default 6)")
    p.add_argument("--minutes", type=_minutes, default=10.0, help="wall-clock minutes the day is pushed in (default 10)")
    p.add_argument("--day", type=_day, default=None, help="the simulated day (default yesterday, Asia/Shanghai)")
    p.add_argument("--seed", type=_int_in(0, 2**31), default=42)
    p.add_argument("--episodes-per-community", type=_int_in(0, 200), default=8,
                   help="ordinary alarm episodes per community over the day (default 8)")
    p.add_argument("--burst", type=_int_in(0, 20000), default=1000, help="alarms of the fire's minute (default 1000)")
    p.add_argument("--drain-timeout", type=_seconds, default=240.0,
                   help="seconds to wait after the last push for every version to reach the receiver (default 240)")
    p.add_argument("--what-else-ran", default="", help="free text: what else used the machine meanwhile")
    p.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a new one under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, landing, instance)")
    p.add_argument("--out", type=Path, default=OUT, help=f"JSON output (default {OUT.relative_to(ROOT)})")
    args = p.parse_args(argv)
    if args.day is None:
        args.day = datetime.now(TZ).date() - timedelta(days=1)
    if not args.burst and not args.episodes_per_community:
        p.error("nothing to push: --burst and --episodes-per-community are both 0")
    if not (ROOT / ".venv" / "bin" / "dagster-daemon").exists() and not shutil.which("dagster-daemon"):
        p.error("dagster-daemon not found: run `make install` first")
    return args


# --- processes ---------------------------------------------------------------------------------------------------


class Processes:
    """The subprocesses this benchmark started, each in a session of its own (the daemon's code server and run
    workers are its children): stopped by their ids on exit, whatever the exit."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def alive(self, name: str) -> bool:
        return name in self.procs and self.procs[name].poll() is None

    def tail(self, name: str, lines: int = 1) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return " | ".join(line.strip() for line in text[-lines:])

    def stop(self, name: str, timeout: float = 20.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        pgid = proc.pid  # its own session: the group id is its pid
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        # whatever of its group is left (a run worker, a code server): TERM, then KILL
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def stop_all(self) -> None:
        for name in ("daemon", "collector", "receiver"):  # readers first: nothing reads a stopped writer's files
            self.stop(name)
        for name in list(self.procs):
            self.stop(name)


class CpuSampler(threading.Thread):
    """What the machine's cores did meanwhile: busy share (``/proc/stat``) and CPU seconds of this benchmark's
    processes (itself, and each session it started: the daemon's holds its code servers and runs) against
    everything else, by program (``/proc/<pid>/stat``; processes that start and end between two samples are
    missed)."""

    def __init__(self, sessions, every_s: float = 5.0) -> None:  # noqa: ANN001
        super().__init__(daemon=True, name="cpu-sampler")
        self.sessions, self.every_s = sessions, every_s
        self.stop_event = threading.Event()
        self.ours: Counter[str] = Counter()
        self.others = 0.0
        self.by_program: Counter[str] = Counter()
        self.busy = self.total = 0
        self.tick = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _machine() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        return sum(values) - values[3] - values[4], sum(values)  # busy (not idle, not iowait), all

    @staticmethod
    def _program(pid: str, comm: str) -> str:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return comm
        rest = [a.decode(errors="replace") for a in args[1:] if a and not a.startswith(b"-")]
        return f"{comm} {Path(rest[0]).name[:60]}" if rest else comm  # one argument: no option values, no keys

    def _processes(self) -> dict[str, tuple[float, int, str]]:
        out = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            comm, rest = raw[raw.index("(") + 1:raw.rindex(")")], raw[raw.rindex(")") + 2:].split()
            out[entry.name] = ((int(rest[11]) + int(rest[12])) / self.tick, int(rest[3]), comm)
        return out

    def run(self) -> None:
        me = str(os.getpid())
        before, (busy0, total0) = self._processes(), self._machine()
        while not self.stop_event.wait(self.every_s):
            now, (busy1, total1) = self._processes(), self._machine()
            sessions = self.sessions()
            for pid, (cpu, sid, comm) in now.items():
                delta = cpu - before[pid][0] if pid in before else cpu
                if delta <= 0:
                    continue
                if pid == me or sid in sessions:
                    self.ours["bench" if pid == me else sessions[sid]] += delta
                else:
                    self.others += delta
                    self.by_program[self._program(pid, comm)] += delta
            self.busy, self.total = self.busy + busy1 - busy0, self.total + total1 - total0
            before, busy0, total0 = now, busy1, total1

    def result(self) -> dict[str, Any]:
        return {"machine_busy_pct": round(100 * self.busy / self.total, 1) if self.total else None,
                "bench_cpu_s": {k: round(v, 1) for k, v in sorted(self.ours.items())},
                "others_cpu_s": round(self.others, 1),
                "others_top": {k: round(v, 1) for k, v in self.by_program.most_common(5) if v >= 0.5}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(what: str, ok, procs: Processes, name: str, timeout: float, every: float = 0.2) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ok():
                return
        except Exception:  # noqa: BLE001 (not up yet)
            pass
        if not procs.alive(name):
            raise BenchError(f"the {what} exited: {procs.tail(name) or 'see its log'}")
        if time.monotonic() > deadline:
            raise BenchError(f"the {what} did not come up within {timeout:.0f} s: {procs.tail(name)}")
        time.sleep(every)


# --- the registry and the messages -------------------------------------------------------------------------------


@dataclass
class Message:
    at_s: float  # second of the simulated day
    local: datetime  # the same, as the local time the message carries
    device_id: str
    community_id: str
    building_id: str
    event_type: str
    on: bool
    burst: bool
    body: str
    scheduled: float = 0.0  # wall time it is due
    ack: float | None = None  # wall time of the collector's 200
    attempts: int = 0

    @property
    def minute(self) -> str:
        """The local minute, as a version names it (``started_minute``, ``cleared_minute``)."""
        return self.local.strftime("%Y-%m-%dT%H:%M:00")


def write_registry(landing: Path, day: date, communities: int, seed: int):  # noqa: ANN201
    """The device registry ``simulate_day`` writes (same function, same columns), and the frame."""
    from simulator.district import REGISTRY_COLUMNS, district_registry

    regs = district_registry(communities, seed)
    folder = landing / "device_registry" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    regs.select(REGISTRY_COLUMNS).write_csv(folder / "devices.csv")
    return regs


def alarm_vocabulary(platform: str, model: str, flag: str) -> tuple[str, Any, Any]:
    """(vendor key, on value, off value) of a model's alarm flag: its code table (vendor_codes.csv) when it has
    one (LiAn: Alarm_Status 1 alarm, 7 normal), else its key (vendor_keys.csv) with 1 and 0."""
    import polars as pl

    codes = pl.read_csv(VENDORS / "vendor_codes.csv", infer_schema=False).filter(
        pl.col("platform") == platform, pl.col("vendor_model").is_in([model, "*"]), pl.col("metric") == flag)
    if codes.height:
        on = codes.filter(pl.col("value") == "1")["code"][0]
        offs = codes.filter(pl.col("value") == "0")
        normal = offs.filter(pl.col("meaning").str.contains("normal"))
        off = (normal if normal.height else offs)["code"][0]
        key = codes["vendor_key"][0]
        return key, int(on) if on.isdigit() else on, int(off) if off.isdigit() else off
    keys = pl.read_csv(VENDORS / "vendor_keys.csv", infer_schema=False).filter(
        pl.col("platform") == platform, pl.col("vendor_model").is_in([model, "*"]), pl.col("metric") == flag,
        pl.col("role") == "metric")
    if not keys.height:
        raise BenchError(f"no vendor key for {flag} of {platform} {model} in {VENDORS}")
    return keys["vendor_key"][0], 1, 0


def templates(regs, day: date, seed: int, scratch: Path) -> dict[str, dict]:  # noqa: ANN001
    """One message per alarm-device model, as the simulator writes it (a fault-free day of one device each)."""
    import polars as pl

    from simulator.telemetry import FaultRates, simulate_telemetry_day

    sample = regs.filter(pl.col("device_type").is_in(list(ALARM_FLAG))).unique("vendor_model", keep="first",
                                                                              maintain_order=True)
    simulate_telemetry_day(scratch, sample, day, seed, FaultRates.none(), 1)
    model_of = dict(zip(sample["device_id"], sample["vendor_model"], strict=True))
    out: dict[str, dict] = {}
    for f in sorted(scratch.glob("telemetry/*/*/*.ndjson.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                msg = json.loads(line)
                model = model_of.get(msg.get("deviceId"))
                if model and model not in out and msg.get("messageType") == "dataReport":
                    out[model] = msg
    missing = set(model_of.values()) - set(out)
    if missing:
        raise BenchError(f"the simulator wrote no dataReport for {sorted(missing)}")
    return out


def _imei(device_id: str) -> str:
    return "86" + str(int(hashlib.sha256(device_id.encode()).hexdigest(), 16) % 10**13).zfill(13)


def render(template: dict, device_id: str, ts_ms: int, key: str, value: Any, on: bool) -> str:
    """The template message as ``device_id`` sends it at ``ts_ms`` with its alarm key set to ``value``."""
    msg = json.loads(json.dumps(template))
    msg["deviceId"], msg["timestamp"] = device_id, ts_ms
    payload = msg["payload"]
    data = payload.get("serviceData", payload)
    if key not in data:
        raise BenchError(f"the simulator's {msg.get('productId')} message has no {key}")
    data[key] = value
    if "AlarmLevel" in data:  # LiAn: 100 while alarming (tests/assets/incidents/landing.py)
        data["AlarmLevel"] = 100 if on else 0
    for where in (msg, data):
        if "IMEI" in where:
            where["IMEI"] = _imei(device_id)
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False)


def schedule(regs, day: date, seed: int, per_community: int, burst: int, tmpl: dict[str, dict]  # noqa: ANN001
             ) -> tuple[list[Message], dict[str, Any]]:
    """The day's alarm messages (ordinary episodes and the fire), in order of their second of the day."""
    import polars as pl

    from assets.incidents.engine import ALARM_METRICS

    rng = random.Random(seed)
    day_start = datetime(day.year, day.month, day.day, tzinfo=TZ)
    alarm = regs.filter(pl.col("device_type").is_in(list(ALARM_FLAG)))
    vocab = {}
    for dt, model, platform in alarm.select("device_type", "vendor_model", "platform").unique().rows():
        vocab[model] = (*alarm_vocabulary(platform, model, ALARM_FLAG[dt]), ALARM_METRICS[ALARM_FLAG[dt]])
    messages: list[Message] = []

    def add(row: dict, at_s: float, on: bool, burst_: bool) -> None:
        key, on_value, off_value, event_type = vocab[row["vendor_model"]]
        local = day_start + timedelta(seconds=at_s)
        ts_ms = int(local.timestamp() * 1000)
        body = render(tmpl[row["vendor_model"]], row["device_id"], ts_ms, key, on_value if on else off_value, on)
        messages.append(Message(at_s, local, row["device_id"], row["community_id"], row["building_id"], event_type,
                                on, burst_, body))

    smoke = alarm.filter(pl.col("device_type") == "smoke")
    fire_building = (smoke.group_by("community_id", "building_id").len()
                     .sort(["len", "community_id", "building_id"], descending=[True, False, False]).row(0, named=True))
    fire_devices = smoke.filter(pl.col("building_id") == fire_building["building_id"]).sort("device_id").rows(named=True)
    if burst:
        for i in range(burst):
            add(fire_devices[i % len(fire_devices)], FIRE_AT_S + i * 60 / burst, True, True)
        for k, dev in enumerate(fire_devices):
            add(dev, FIRE_AT_S + FIRE_CLEARED_AFTER_S + 2 * k, False, True)
    # ordinary episodes: distinct devices outside the fire's building, on every 30 s for 1-8 minutes, then off
    others = alarm.filter(pl.col("building_id") != fire_building["building_id"]).rows(named=True)
    by_community: dict[str, list[dict]] = {}
    for row in others:
        by_community.setdefault(row["community_id"], []).append(row)
    episodes = 0
    for cid in sorted(by_community):
        devices = rng.sample(by_community[cid], min(per_community, len(by_community[cid])))
        for dev in devices:
            start = rng.uniform(120, 86400 - 30 * 60)
            repeats = rng.randint(2, 16)
            for k in range(repeats):
                add(dev, start + k * REPEAT_S + rng.uniform(-2, 2), True, False)
            add(dev, start + repeats * REPEAT_S, False, False)
            episodes += 1
    messages.sort(key=lambda m: m.at_s)
    info = {"episodes": episodes, "fire": {
        "community_id": fire_building["community_id"], "building_id": fire_building["building_id"],
        "detectors": len(fire_devices), "model": fire_devices[0]["vendor_model"] if fire_devices else None,
        "minute": (day_start + timedelta(seconds=FIRE_AT_S)).strftime("%H:%M"), "messages": burst}}
    return messages, info


# --- pushing -----------------------------------------------------------------------------------------------------


def push_all(messages: list[Message], collector_url: str, config, window_s: float, t0: float) -> float:  # noqa: ANN001
    """Send each message at its wall time with the vendor simulator's sender; records acknowledgement times."""
    from simulator.vendor_sim.push import _Sender

    sender = _Sender(collector_url, config, timeout_s=10.0, backoff_s=0.05)
    work: queue.Queue[Message] = queue.Queue()
    for m in messages:
        m.scheduled = t0 + m.at_s / 86400 * window_s
        work.put(m)
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                m = work.get_nowait()
            except queue.Empty:
                return
            delay = m.scheduled - time.time()
            if delay > 0 and stop.wait(delay):
                return
            ok, m.attempts = sender.push({"kind": "ctwing", "body": m.body, "community_id": m.community_id,
                                          "target": None})
            if ok:
                m.ack = time.time()

    threads = [threading.Thread(target=worker, daemon=True, name=f"sender-{i}") for i in range(SENDERS)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    finally:
        stop.set()
    return time.time() - t0


# --- the instance, the engine, the receiver ----------------------------------------------------------------------


def _engine_settings(env: dict[str, str]):  # noqa: ANN202
    from kernel.settings import load_settings

    return load_settings(env)


def engine_progress(settings, day: str) -> dict[str, int]:  # noqa: ANN001
    """Bytes of the day's CTWing minute files not yet read by the engine, versions, and those not yet published
    (the engine's state, under its lock for a moment)."""
    from assets.incidents.engine import IncidentEngine

    engine = IncidentEngine(settings)
    folder = settings.landing_dir / "telemetry" / day / "ctwing"
    sizes: dict[str, int] = {}
    for f in folder.glob("*") if folder.is_dir() else []:
        name = f.name
        key = name[1:-5] if name.startswith(".push-") and name.endswith(".ndjson.part") else name
        if key.startswith("push-"):
            with contextlib.suppress(FileNotFoundError):
                sizes[f"telemetry/{day}/ctwing/{key}"] = f.stat().st_size
    with engine.state() as con:
        read = dict(con.execute("SELECT path, offset_bytes FROM files").fetchall())
        versions, unpublished = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM versions").fetchall()[0]
    unread = sum(max(0, size - read.get(key, 0)) for key, size in sizes.items())
    return {"unread_bytes": unread, "versions": versions, "unpublished": unpublished}


def sensor_ticks(instance, name: str) -> list:  # noqa: ANN001
    from dagster._core.definitions.run_request import InstigatorType  # no public name for it in 1.13

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == name:
            return list(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=100000))
    return []


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)], 3)


def summary(values: list[float]) -> dict[str, Any]:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "max": pct(values, 100), "n": len(values)}


# --- the run -----------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, procs: Processes, work: Path) -> dict[str, Any]:
    import dagster as dg

    from connectors.config import VendorConfig
    from exports.contracts import CONTRACTS_DIR
    from exports.incidents import FEED_KEY, JOB, SENSOR
    from exports.publishing.incident_push import list_incidents
    from pipelines.cli import prepare_dagster_home
    from simulator.vendor_sim.catalog import Credentials

    started = time.time()
    load_start = os.getloadavg()
    day = args.day.isoformat()
    data, home, scratch = work / "data", work / "dagster_home", work / "sim"
    for d in (data / "landing", home, scratch, work / "logs"):
        d.mkdir(parents=True, exist_ok=True)

    # 1. registry, messages, credentials
    regs = write_registry(data / "landing", args.day, args.communities, args.seed)
    messages, plan = schedule(regs, args.day, args.seed, args.episodes_per_community, args.burst,
                              templates(regs, args.day, args.seed, scratch))
    creds = Credentials.derive(args.seed, regs["community_id"].unique().sort().to_list())
    config = VendorConfig(base_url="http://127.0.0.1:9", ctwing_application=creds.ctwing_application,
                          ctwing_secret=creds.ctwing_secret, export_token=creds.export_token,
                          push_tokens=dict(creds.push_tokens), communities=tuple(creds.communities.values()))
    vendors = config.save(work / "vendors.yaml")
    access_key, secret_key = "bench-" + secrets.token_hex(4), secrets.token_hex(24)
    keys_file = work / "receiver.keys"
    keys_file.write_text(f"{access_key}={secret_key}\n")
    keys_file.chmod(0o600)

    # 2. receiver, collector, daemon
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("NEURON_", "DAGSTER_"))}
    base_env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                     "GX_ANALYTICS_ENABLED": "false", "NEURON_MODE": "demo", "NEURON_DATA_DIR": str(data)})
    py = sys.executable
    rport, cport = _free_port(), _free_port()
    receiver_url = f"http://127.0.0.1:{rport}"
    procs.start("receiver", [py, "-m", "exports.receiver", "--port", str(rport), "--store", str(work / "receiver"),
                             "--contracts", str(CONTRACTS_DIR), "--keys-file", str(keys_file)], base_env)
    _wait_until("receiver", lambda: list_incidents(receiver_url, access_key=access_key, secret_key=secret_key,
                                                   attempts=1, timeout=2) == [], procs, "receiver", 60)
    collector_url = f"http://127.0.0.1:{cport}"
    procs.start("collector", [py, "-m", "connectors.collector", "--port", str(cport), "--vendors", str(vendors),
                              "--landing", str(data / "landing"), "--collector-id", COLLECTOR_ID, "--no-mqtt",
                              "--log-level", "warning", "--clock-start", f"{day}T00:00"], base_env)
    import requests

    _wait_until("collector", lambda: requests.get(f"{collector_url}/health", timeout=2).status_code == 200,
                procs, "collector", 60)
    env = {**base_env, "DAGSTER_HOME": str(home), "NEURON_PUBLIC_SECURITY_URL": receiver_url,
           "NEURON_PUBLIC_SECURITY_ACCESS_KEY": access_key, "NEURON_PUBLIC_SECURITY_SECRET_KEY": secret_key}
    prepare_dagster_home(home)
    cpu = CpuSampler(lambda: {p.pid: name for name, p in list(procs.procs.items())})
    cpu.start()
    daemon_bin = ROOT / ".venv" / "bin" / "dagster-daemon"
    t_daemon = time.time()
    procs.start("daemon", [str(daemon_bin if daemon_bin.exists() else shutil.which("dagster-daemon")), "run",
                           "-w", "workspace.yaml"], env)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        _wait_until("Dagster daemon (first incident_sensor tick)",
                    lambda: any(t.end_timestamp for t in sensor_ticks(instance, SENSOR)),
                    procs, "daemon", 300, every=1.0)
    daemon_ready_s = time.time() - t_daemon

    # 3. the day's pushes, compressed into the window
    settings = _engine_settings(env)
    window_s = args.minutes * 60
    t0 = time.time() + 1.0
    push_s = push_all(messages, collector_url, config, window_s, t0)
    pushed_at = time.time()

    # 4. drain: every landed byte read by the engine, every version it made held by the receiver
    held: list[dict] = []
    progress: dict[str, int] = {}
    drained = False
    deadline = time.monotonic() + args.drain_timeout
    while time.monotonic() < deadline:
        if not (procs.alive("daemon") and procs.alive("collector") and procs.alive("receiver")):
            dead = [n for n in ("daemon", "collector", "receiver") if not procs.alive(n)]
            raise BenchError(f"{', '.join(dead)} exited during the drain: {procs.tail(dead[0])}")
        progress = engine_progress(settings, day)
        held = list_incidents(receiver_url, access_key=access_key, secret_key=secret_key)
        if progress["unread_bytes"] == 0 and progress["unpublished"] == 0 and len(held) >= progress["versions"] \
                and progress["versions"] > 0:
            drained = True
            break
        time.sleep(2.0)
    drain_s = time.time() - pushed_at
    cpu.stop_event.set()
    cpu.join()
    held = list_incidents(receiver_url, access_key=access_key, secret_key=secret_key)
    procs.stop_all()

    # 5. what happened
    from assets.incidents.engine import IncidentEngine

    versions = IncidentEngine(settings).versions()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_records = instance.get_run_records(dg.RunsFilter(job_name=JOB), ascending=True)
        other_runs = [r for r in instance.get_run_records(dg.RunsFilter()) if r.dagster_run.job_name != JOB]
        mats, cursor = [], None
        while True:
            page = instance.fetch_materializations(FEED_KEY, limit=1000, cursor=cursor, ascending=True)
            mats += page.records
            if not page.has_more:
                break
            cursor = page.cursor
        ticks = sensor_ticks(instance, SENSOR)
    return analyse(args, messages, plan, versions, held, run_records, other_runs, mats, ticks, {
        "started": started, "t0": t0, "push_s": push_s, "drain_s": drain_s, "drained": drained,
        "daemon_ready_s": daemon_ready_s, "progress": progress, "load_start": load_start,
        "load_end": os.getloadavg(), "cpu": cpu.result()})


def analyse(args, messages, plan, versions, held, run_records, other_runs, mats, ticks, t) -> dict[str, Any]:  # noqa: ANN001
    import dagster as dg

    acked = [m for m in messages if m.ack is not None]
    first_on: dict[tuple, float] = {}
    first_off: dict[tuple, float] = {}
    for m in acked:
        key = (m.community_id, m.building_id, m.event_type, m.minute)
        table = first_on if m.on else first_off
        table[key] = min(table.get(key, m.ack), m.ack)
    fire = plan["fire"]
    fire_minute = f"{args.day.isoformat()}T{fire['minute']}:00"

    # the runs that delivered: created, started, ended (wall seconds)
    runs = []
    for r in run_records:
        runs.append({"id": r.dagster_run.run_id, "status": r.dagster_run.status.value,
                     "created": r.create_timestamp.timestamp(), "start": r.start_time, "end": r.end_time})

    def run_of(received: float) -> dict | None:
        for r in runs:
            if r["start"] and r["start"] <= received <= (r["end"] or math.inf):
                return r
        return None

    by_status = Counter(versions["status"].to_list())
    latency: list[float] = []
    fire_latency: list[float] = []
    fire_opened: list[float] = []
    fire_incidents: set[str] = set()
    parts: dict[str, list[float]] = {"ack_to_detected": [], "detected_to_run_created": [],
                                     "run_created_to_started": [], "run_started_to_received": []}
    unmatched = 0
    held_status: Counter[str] = Counter()
    for item in held:
        rec, receipt = item["record"], item["receipt"]
        held_status[rec["status"]] += 1
        in_fire = (rec["community_id"], rec["building_id"], rec["event_type"], rec["started_minute"]) == (
            fire["community_id"], fire["building_id"], "smoke", fire_minute)
        if in_fire:
            fire_incidents.add(rec["incident_id"])
        if rec["status"] == "opened":
            cause = first_on.get((rec["community_id"], rec["building_id"], rec["event_type"], rec["started_minute"]))
        elif rec["status"] == "cleared":
            cause = first_off.get((rec["community_id"], rec["building_id"], rec["event_type"], rec["cleared_minute"]))
        else:
            continue
        if cause is None:
            unmatched += 1
            continue
        received = _ts(receipt["received_at"])
        latency.append(received - cause)
        if in_fire:
            fire_latency.append(received - cause)
            if rec["status"] == "opened":
                fire_opened.append(received - cause)
        detected = _ts(rec["detected_at"])
        parts["ack_to_detected"].append(detected - cause)
        r = run_of(received)
        if r is not None:
            parts["detected_to_run_created"].append(r["created"] - detected)
            parts["run_created_to_started"].append(r["start"] - r["created"])
            parts["run_started_to_received"].append(received - r["start"])

    # per incident: its first alarm's acknowledgement -> the first version of it the receiver held
    first_seen: dict[str, tuple[float, dict]] = {}
    for item in held:
        received, rec = _ts(item["receipt"]["received_at"]), item["record"]
        if rec["incident_id"] not in first_seen or received < first_seen[rec["incident_id"]][0]:
            first_seen[rec["incident_id"]] = (received, rec)
    incident_latency: list[float] = []
    fire_first: list[float] = []
    first_status: Counter[str] = Counter()
    for received, rec in first_seen.values():
        first_status[rec["status"]] += 1
        cause = first_on.get((rec["community_id"], rec["building_id"], rec["event_type"], rec["started_minute"]))
        if cause is not None:
            incident_latency.append(received - cause)
            if rec["incident_id"] in fire_incidents:
                fire_first.append(received - cause)

    lag = [m.ack - m.scheduled for m in acked if not m.burst]
    burst_lag = [m.ack - m.scheduled for m in acked if m.burst]
    burst_msgs = [m for m in acked if m.burst and m.on]
    meta = [rec.asset_materialization.metadata for rec in mats if rec.asset_materialization]
    tick_list = sorted(ticks, key=lambda k: k.timestamp)
    tick_window = [k for k in tick_list if k.timestamp >= t["t0"]]
    intervals = [b.timestamp - a.timestamp for a, b in zip(tick_window, tick_window[1:], strict=False)]
    durations = [k.end_timestamp - k.timestamp for k in tick_window if k.end_timestamp]
    status_of = dict(Counter(r["status"] for r in runs))

    def meta_value(m: dict, key: str) -> float | None:
        v = m.get(key)
        return None if v is None else float(v.value)

    return {
        "communities": args.communities,
        "window_minutes": args.minutes,
        "day": args.day.isoformat(),
        "seed": args.seed,
        "messages_pushed": len(messages),
        "messages_acknowledged": len(acked),
        "episodes": plan["episodes"],
        "incidents": int(versions["incident_id"].n_unique()) if versions.height else 0,
        "versions": dict(sorted(by_status.items())),
        "versions_held_by_receiver": dict(sorted(held_status.items())),
        "updated_versions_not_timed": by_status.get("updated", 0),
        "late_flagged_versions": sum(1 for item in held if item["record"].get("late")),
        "runs": len(runs),
        "runs_by_status": status_of,
        "other_runs_launched": dict(Counter(r.dagster_run.job_name for r in other_runs)),
        "latency_s": summary(latency),
        "latency_unmatched_versions": unmatched,
        "incident_first_receipt_latency_s": summary(incident_latency),
        "incident_first_version_status": dict(sorted(first_status.items())),
        "fire_burst": {**fire, "incidents": len(fire_incidents), "latency_s": summary(fire_latency),
                       "opened_latency_s": summary(fire_opened), "first_receipt_latency_s": summary(fire_first),
                       "pushed_in_s": round(max(m.ack for m in burst_msgs) - min(m.scheduled for m in burst_msgs), 3)
                       if burst_msgs else None},
        "where_the_time_goes_s": {k: summary(v) for k, v in parts.items()},
        "runs_detail": {
            "created_to_started_s": summary([r["start"] - r["created"] for r in runs if r["start"]]),
            "started_to_ended_s": summary([r["end"] - r["start"] for r in runs if r["start"] and r["end"]]),
            "feed_sent_per_run": summary([v for m in meta if (v := meta_value(m, "sent")) is not None]),
            "feed_latency_p50_s_per_run (detected->receipt)":
                summary([v for m in meta if (v := meta_value(m, "latency_p50_s")) is not None]),
            "feed_latency_max_s_per_run (detected->receipt)":
                summary([v for m in meta if (v := meta_value(m, "latency_max_s")) is not None]),
        },
        "incident_sensor_ticks": {
            "during_bench": len(tick_window),
            "requested_a_run": sum(1 for k in tick_window if k.run_ids),
            "failed": sum(1 for k in tick_window if k.status.value == "FAILURE"),
            "interval_s": summary(intervals), "duration_s": summary(durations)},
        "push_ack_behind_schedule_s": {"episodes": summary(lag), "fire_burst": summary(burst_lag)},
        "push_attempts_over_1": sum(1 for m in messages if m.attempts > 1),
        "drained": t["drained"],
        "not_drained": None if t["drained"] else t["progress"],
        "timings_s": {"daemon_ready": round(t["daemon_ready_s"], 1), "push": round(t["push_s"], 1),
                      "drain_after_last_push": round(t["drain_s"], 1),
                      "total": round(time.time() - t["started"], 1)},
        "machine": {"cpus": os.cpu_count(), "cpu_from_daemon_start_to_drained": t["cpu"], "loadavg_start": [round(x, 2) for x in t["load_start"]],
                    "loadavg_end": [round(x, 2) for x in t["load_end"]]},
        "stack": {"dagster": dg.__version__, "instance": "deploy/dagster.local.yaml (SQLite, queued runs)",
                  "python": sys.version.split()[0]},
        "what_else_ran": args.what_else_ran,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="incident_latency-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    procs = Processes(work / "logs")

    def on_term(signum: int, frame: Any) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started in the background (SIGINT inherited as ignored)
    try:
        result = run(args, procs, work)
    except BenchError as exc:
        sys.stderr.write(f"{PROG}: error: {exc} (logs in {work / 'logs'})\n")
        return 1
    except KeyboardInterrupt:
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        sys.stderr.write(f"{PROG}: interrupted; every process it started is stopped\n")
        return 130
    finally:
        procs.stop_all()
    text = json.dumps(result, indent=2, ensure_ascii=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        sys.stderr.write(f"kept {work}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
