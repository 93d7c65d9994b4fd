"""One simulated district-day as the vendor platforms hold it: the catalog of every record they received, the
push stream they send, the history they serve, the files they export, and the ledger of all of it.

``VendorPlatform.stage(workdir, day)`` runs the district simulator into ``workdir/platform_store`` (the vendors'
own storage, not a landing zone) and reads it back:

- event sources (``telemetry``, ``access_events``, ``vehicle_passages``, ``parking``): every record with its
  ``received_ms`` (the platform's receive time, see ``RECEIVE_TIME``) and its key (``ledger.record_key``);
- the push stream: every line (document, for GA/T 1400) of the push files in receive order, duplicates included;
- history: the unique valid records (for parking the union of ``pushes.ndjson`` and ``backfill.ndjson``);
- file exports (``device_registry``, ``sites``, ``property_services``, ``governance``, parking's registers).

Keys are computed per record in Python (the identity is canonical JSON: sorted keys, Python's number forms,
absent versus null keys; no polars or DuckDB JSON re-encoding reproduces it), in two worker processes for a big
day. Everything else is columnar: receive times in polars per file, the ledger as a streaming polars group-by,
history order and the push plan as out-of-core DuckDB sorts into parquet. Record texts stay on disk
(``catalog/history.parquet``, read by row group when a page is served): in memory are the ledger and, per
history row, its receive time. The catalog is cached beside the store: re-staging the same day, size and seed
reads it back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from connectors.config import CommunityPlatforms, VendorConfig
from connectors.keys import canonical, digest, identity
from simulator.vendor_sim.ledger import document_wrapper, envelope_events, raw_key, vehicle_objects

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY_MS = 86_400_000
EVENT_SOURCES = ("telemetry", "access_events", "vehicle_passages", "parking")
PLATFORMS = ("ctwing", "iotda", "thingsboard")
FILE_SOURCES = ("device_registry", "sites", "property_services", "governance", "parking")
DISTRICT = "district"
CATALOG_VERSION = 5
PARALLEL_BYTES = 64 << 20  # scan in two worker processes above this much stored data
ROW_GROUP = 4096  # rows per parquet row group of history and pushes (what one page read decompresses)
# the out-of-core sorts and the bucketed de-duplication spill beyond this (NEURON_SIM_DUCKDB_MEMORY sets it)
DUCKDB_MEMORY = os.environ.get("NEURON_SIM_DUCKDB_MEMORY", "3GB")
HISTORY_BUCKET_BYTES = 96 << 20  # compressed occurrence bytes de-duplicated per pass (see _build)

# where each source keeps the platform's receive time (first candidate that parses inside the day wins; none:
# a deterministic spread over the day from the record's key)
RECEIVE_TIME = {
    "telemetry/ctwing": ("timestamp",),
    "telemetry/iotda": ("event_time_ms", "event_time"),
    "telemetry/thingsboard": ("received_ms",),
    "access_events": ("data.ExtReceiveTime", "happenTime", "<envelope>.sendTime"),
    "vehicle_passages": ("PassTime",),
    "parking": ("leave_time", "enter_time", "payment_list[0].pay_time"),
}

_OCC_SCHEMA = {"source": pl.String, "community_id": pl.String, "platform": pl.String, "file": pl.String,
               "unit": pl.Int64, "key": pl.String, "valid": pl.Boolean, "pushed": pl.Boolean, "item": pl.String,
               "c1": pl.String, "c2": pl.String, "c3": pl.String}
_UNIT_SCHEMA = {"source": pl.String, "community_id": pl.String, "platform": pl.String, "file": pl.String,
                "unit": pl.Int64, "kind": pl.String, "target": pl.String, "body": pl.String, "t": pl.String}
_TB_DEVICE = re.compile(r'"device":"([^"]*)"')


# --- credentials --------------------------------------------------------------------------------------------


def _h(seed: int, *parts: Any) -> str:
    return hashlib.sha256(":".join(["neuron-vendor-sim", str(seed), *map(str, parts)]).encode()).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """What the platforms issued to Neuron, derived from the seed (the same day and seed: the same secrets)."""

    ctwing_application: str
    ctwing_secret: str
    export_token: str
    push_tokens: dict[str, str]
    communities: dict[str, CommunityPlatforms]

    @classmethod
    def derive(cls, seed: int, communities: list[str]) -> Credentials:
        comms = {}
        for cid in communities:
            comms[cid] = CommunityPlatforms(
                community_id=cid,
                isc_app_key=str(int(_h(seed, cid, "isc-key"), 16) % 10**8).zfill(8),
                isc_app_secret=_h(seed, cid, "isc-secret")[:20],
                viid_device_id=f"3101070000503{7}{cid[-6:]}",
                viid_password=_h(seed, cid, "viid")[:16],
                parking_app_id="pk" + _h(seed, cid, "parking-id")[:10],
                parking_app_secret=_h(seed, cid, "parking-secret")[:32],
            )
        return cls(ctwing_application=_h(seed, "aep-app")[:10], ctwing_secret=_h(seed, "aep-secret")[:32],
                   export_token=_h(seed, "export")[:40],
                   push_tokens={p: _h(seed, "push", p)[:32] for p in ("ctwing", "iotda", "isc")},
                   communities=comms)


# --- scanning one file (runs in worker processes for a big day) ---------------------------------------------


def _s(value: Any) -> str | None:
    """A candidate time as text (numbers as their digits)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    if isinstance(value, str):
        return value
    return None


def _dig(obj: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def _key(source: str, obj: Any) -> str:
    return digest(canonical(identity(source, obj)))


def _compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _parking_times(obj: Any) -> tuple[str | None, str | None, str | None]:
    if not isinstance(obj, dict):
        return None, None, None
    if isinstance(obj.get("data"), dict) and "method" in obj:  # the method/data cloud: float epoch seconds
        data = obj["data"]
        out = []
        for name in ("outTime", "inTime"):
            v = data.get(name)
            out.append(str(int(round(v * 1000))) if isinstance(v, int | float) and not isinstance(v, bool) else None)
        return out[0], out[1], None
    pays = obj.get("payment_list")
    pay = _s(pays[0].get("pay_time")) if isinstance(pays, list) and pays and isinstance(pays[0], dict) else None
    return _s(obj.get("leave_time")), _s(obj.get("enter_time")), pay


def _read_lines(path: Path) -> list[bytes]:
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return [ln for ln in fh.read().split(b"\n") if ln.strip()]


def scan_file(task: tuple[str, str, str | None, str, str, bool]) -> tuple[dict[str, list], dict[str, list]]:
    """Occurrences and push units of one file: (source, community, platform, path, relpath, pushed)."""
    source, community, platform, path_s, rel, pushed = task
    path = Path(path_s)
    occ: dict[str, list] = {k: [] for k in _OCC_SCHEMA}
    units: dict[str, list] = {k: [] for k in _UNIT_SCHEMA}

    def add_occ(unit: int | None, key: str, valid: bool, item: str, c: tuple = (None, None, None)) -> None:
        occ["source"].append(source)
        occ["community_id"].append(community)
        occ["platform"].append(platform)
        occ["file"].append(rel)
        occ["unit"].append(unit)
        occ["key"].append(key)
        occ["valid"].append(valid)
        occ["pushed"].append(pushed)
        occ["item"].append(item)
        occ["c1"].append(c[0])
        occ["c2"].append(c[1])
        occ["c3"].append(c[2])

    def add_unit(unit: int, kind: str, target: str | None, body: str | None, t: str | None = None) -> None:
        for k, v in (("source", source), ("community_id", community), ("platform", platform), ("file", rel),
                     ("unit", unit), ("kind", kind), ("target", target), ("body", body), ("t", t)):
            units[k].append(v)

    if source == "vehicle_passages":
        data = path.read_bytes()
        text = data.decode("utf-8", "replace")
        try:
            doc = json.loads(data)
        except ValueError:
            add_occ(0, raw_key(data), False, text)
            add_unit(0, "viid", "/VIID/SubscribeNotifications", text)
            return occ, units
        objs = vehicle_objects(doc)
        for o in objs:
            add_occ(0, _key(source, o), True, _compact(o), (_s(o.get("PassTime")), None, None))
        wrapper = document_wrapper(doc)
        if wrapper == "MotorVehicleListObject":
            add_unit(0, "viid", "/VIID/MotorVehicles", text)
        elif wrapper == "SubscribeNotificationListObject":
            add_unit(0, "viid", "/VIID/SubscribeNotifications", text)
        else:  # another wrapper (dispositions, MotorVehicleObjectList): re-wrapped as one notification
            note = {"NotificationID": community + "04" + hashlib.md5(rel.encode()).hexdigest()[:19],
                    "SubscribeID": community + "03" + "0" * 19, "Title": "motor vehicles", "TriggerTime": "",
                    "InfoIDs": "", "ExecuteOperation": 1, "MotorVehicleObjectList": {"MotorVehicleObject": objs}}
            add_unit(0, "viid", "/VIID/SubscribeNotifications",
                     _compact({"SubscribeNotificationListObject": {"SubscribeNotificationObject": [note]}}))
        return occ, units

    for n, line in enumerate(_read_lines(path)):
        text = line.strip().decode("utf-8", "replace")
        try:
            obj = json.loads(line)
        except ValueError:
            add_occ(n if pushed else None, raw_key(line), False, text)
            if pushed:  # sent as it is: the receiver lands its bytes
                if source == "telemetry" and platform == "thingsboard":
                    m = _TB_DEVICE.search(text)
                    target = f"v1/devices/{m.group(1)}/telemetry" if m and "v1/devices/" in text \
                        else "v1/gateway/telemetry"
                    add_unit(n, platform, target, text)
                elif source == "telemetry":
                    add_unit(n, str(platform), None, text)
                else:
                    add_unit(n, "isc" if source == "access_events" else "parking", community, text)
            continue
        if source == "telemetry":
            if platform == "ctwing":
                c = (_s(_dig(obj, "timestamp")), None, None)
            elif platform == "iotda":
                c = (_s(_dig(obj, "event_time_ms")), _s(_dig(obj, "event_time")), None)
            else:
                c = (_s(_dig(obj, "received_ms")), None, None)
            add_occ(n, _key(source, obj), True, text, c)
            if platform == "thingsboard":
                topic = _dig(obj, "topic")
                device = _dig(obj, "device")
                if topic == "v1/devices/me/telemetry":
                    target = f"v1/devices/{device or 'me'}/telemetry"
                else:
                    target = "v1/gateway/telemetry"
                payload = obj.get("payload") if isinstance(obj, dict) else obj
                add_unit(n, platform, target, _compact(payload))
            else:
                add_unit(n, platform, None, None)
        elif source == "access_events":
            events = envelope_events(obj)
            send = _s(_dig(obj, "params", "sendTime"))
            ability = _dig(obj, "params", "ability")
            for ev in events or []:
                item = _compact({"ability": ability, **ev} if ability is not None else ev)
                add_occ(n, _key(source, ev), True, item,
                        (_s(_dig(ev, "data", "ExtReceiveTime")), _s(ev.get("happenTime")), send))
            if events is None:  # JSON, but not an envelope: one record, as sent
                add_occ(n, _key(source, obj), True, text, (None, None, send))
            add_unit(n, "isc", community, text, send)
        else:  # parking
            add_occ(n if pushed else None, _key(source, obj), True, text, _parking_times(obj))
            if pushed:
                add_unit(n, "parking", community, None)
    return occ, units


# --- receive times ------------------------------------------------------------------------------------------


def _parse_ms(col: str) -> pl.Expr:
    s = pl.col(col).str.strip_chars()
    epoch = pl.when(s.str.contains(r"^\d{13}$")).then(s.cast(pl.Int64, strict=False))
    viid = s.str.to_datetime("%Y%m%d%H%M%S", strict=False, time_zone="Asia/Shanghai").dt.epoch("ms")
    viid = pl.when(s.str.contains(r"^\d{14}$")).then(viid)
    iotda = s.str.to_datetime("%Y%m%dT%H%M%SZ", strict=False, time_zone="UTC").dt.epoch("ms")
    iso = (s.str.replace(r"Z$", "+00:00").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC")
           .dt.epoch("ms"))
    naive = s.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_zone="Asia/Shanghai").dt.epoch("ms")
    return pl.coalesce(epoch, viid, iotda, iso, naive)


def _in_day(expr: pl.Expr, start: int) -> pl.Expr:
    return pl.when((expr >= start) & (expr < start + DAY_MS)).then(expr)


def spread_ms(key: pl.Expr, start: int) -> pl.Expr:
    """The deterministic receive time of a record without one: a point of the day from its key."""
    return start + key.str.slice(0, 12).str.to_integer(base=16) % DAY_MS


def part_frames(task: tuple, day_start_ms: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One file's occurrences (with ``received_ms``, ``late_u``, ``seq``) and push units (with ``t_ms``)."""
    occ, units = scan_file(task)
    start = day_start_ms
    recv = pl.coalesce(_in_day(_parse_ms("c1"), start), _in_day(_parse_ms("c2"), start),
                       _in_day(_parse_ms("c3"), start), spread_ms(pl.col("key"), start))
    o = (pl.DataFrame(occ, schema=_OCC_SCHEMA)
         .with_columns(received_ms=recv.cast(pl.Int64), seq=pl.int_range(pl.len(), dtype=pl.Int64),
                       # the late-arrival draw of a record, from its key (uniform in [0, 1))
                       late_u=(pl.col("key").str.slice(12, 8).str.to_integer(base=16).cast(pl.Float64)
                               / float(1 << 32)).cast(pl.Float32))
         .drop("c1", "c2", "c3"))
    u = (pl.DataFrame(units, schema=_UNIT_SCHEMA)
         .with_columns(t_ms=_in_day(_parse_ms("t"), start).cast(pl.Int64)).drop("t"))
    return o, u


def _write_parts(jobs: list[tuple[tuple, str]], day_start_ms: int) -> None:
    for task, prefix in jobs:
        o, u = part_frames(task, day_start_ms)
        o.write_parquet(prefix + ".occ.parquet")
        u.write_parquet(prefix + ".units.parquet")


def _worker_main(argv: list[str]) -> int:
    """``python -m simulator.vendor_sim.catalog scan <jobs.json>``: a scan worker of a big day."""
    spec = json.loads(Path(argv[1]).read_text())
    _write_parts([(tuple(t), p) for t, p in spec["jobs"]], int(spec["day_start_ms"]))
    return 0


# --- serving items from the history file --------------------------------------------------------------------


class _Items:
    """The ``item`` column of ``history.parquet``, read by row group (a few kept): the catalog of a big day
    never holds every record's text in memory."""

    def __init__(self, path: Path, keep: int = 64) -> None:
        import pyarrow.parquet as pq

        self._file = pq.ParquetFile(path)
        meta = self._file.metadata
        self._starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        self._cache: OrderedDict[int, Any] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def _group(self, g: int) -> Any:
        got = self._cache.get(g)
        if got is None:
            got = self._file.read_row_group(g, columns=["item"]).column(0).combine_chunks()
            self._cache[g] = got
            if len(self._cache) > self._keep:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(g)
        return got

    def take(self, rows: np.ndarray) -> list[str]:
        rows = np.asarray(rows, dtype=np.int64)
        out: list[str] = [""] * rows.size
        if not rows.size:
            return out
        groups = np.searchsorted(self._starts, rows, side="right") - 1
        with self._lock:
            for g in np.unique(groups).tolist():
                where = np.flatnonzero(groups == g)
                values = self._group(g).take(rows[where] - self._starts[g]).to_pylist()
                for i, v in zip(where.tolist(), values, strict=True):
                    out[i] = v
        return out


# --- the platform -------------------------------------------------------------------------------------------


@dataclass
class History:
    """One history of one scope (an IoT platform of the CTWing tenant, or a community's platform), in serving
    order (received_ms, key)."""

    received: np.ndarray
    late_u: np.ndarray  # the late-arrival draw of each record (from its key)
    late_slot: np.ndarray  # received in the last 10 minutes of an hour
    first: int  # the scope's first row in history.parquet
    store: _Items

    def __len__(self) -> int:
        return int(self.received.size)

    def window(self, begin_ms: int, end_ms: int) -> tuple[int, int]:
        return (int(np.searchsorted(self.received, begin_ms, "left")),
                int(np.searchsorted(self.received, end_ms, "left")))

    def items_at(self, rows: Any) -> list[str]:
        """The records (JSON texts, as served) at positions ``rows`` of this history."""
        return self.store.take(self.first + np.asarray(rows, dtype=np.int64))


def _duck(workdir: Path) -> Any:
    import duckdb

    tmp = workdir / "catalog" / "duckdb_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET memory_limit='{DUCKDB_MEMORY}'")
    con.execute(f"SET temp_directory='{tmp}'")
    con.execute("SET threads=2")
    con.execute("SET preserve_insertion_order=false")  # every COPY here orders explicitly
    return con


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


class VendorPlatform:
    """The vendor platforms of one simulated district-day (see module doc)."""

    def __init__(self, workdir: Path, day: date, communities: list[str], seed: int, data_faults: bool,
                 ledger: pl.DataFrame, files: pl.DataFrame) -> None:
        self.workdir = Path(workdir)
        self.store = self.workdir / "platform_store"
        self.catalog_dir = self.workdir / "catalog"
        self.day = day
        self.communities = communities
        self.seed = seed
        self.data_faults = data_faults
        self.credentials = Credentials.derive(seed, communities)
        self.day_start_ms = int(datetime.combine(day, time(0), SHANGHAI).timestamp() * 1000)
        self.day_end_ms = int(datetime.combine(day + timedelta(days=1), time(0), SHANGHAI).timestamp() * 1000)
        self.ledger = ledger
        self.files = files
        self._pushes: pl.DataFrame | None = None
        self._items = _Items(self.catalog_dir / "history.parquet")
        index = pl.read_parquet(self.catalog_dir / "history.parquet",
                                columns=["source", "scope", "received_ms", "late_u", "late_slot"])
        self._received = index["received_ms"].to_numpy()
        self._late_u = index["late_u"].to_numpy()
        self._late_slot = index["late_slot"].to_numpy()
        bounds = index.with_row_index("row").group_by("source", "scope").agg(
            first=pl.col("row").min(), n=pl.len())
        self._bounds = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in bounds.iter_rows()}
        self._history: dict[tuple[str, str], History] = {}

    # --- staging ---------------------------------------------------------------------------------------------

    @classmethod
    def stage(cls, workdir: Path, day: date, communities: int = 6, seed: int = 42, faults: bool = True,
              workers: int | None = None) -> VendorPlatform:
        """Simulate ``day`` into ``workdir/platform_store`` (unless already there) and build the catalog (unless
        cached). ``faults``: the simulator's data faults (malformed lines, duplicates...). ``workers``: scan
        processes (None: two above ``PARALLEL_BYTES`` of stored data, else in this process)."""
        from simulator.registry import communities as community_table

        workdir = Path(workdir)
        if communities < 1:
            raise ValueError("communities must be >= 1")
        manifest = {"version": CATALOG_VERSION, "day": day.isoformat(), "communities": communities, "seed": seed,
                    "faults": bool(faults)}
        store = workdir / "platform_store"
        mark = store / ".vendor_sim.json"
        catalog = workdir / "catalog"
        if store.exists() and (not mark.exists() or json.loads(mark.read_text()) != manifest):
            if not mark.exists() and any(store.iterdir()):
                raise FileExistsError(f"{store} holds something the vendor simulator did not write")
            shutil.rmtree(store)
            shutil.rmtree(catalog, ignore_errors=True)
        if not mark.exists():
            from simulator.district import simulate_day
            from simulator.telemetry import FaultRates

            simulate_day(store, day, n_communities=communities, seed=seed,
                         rates=None if faults else FaultRates.none())
            mark.write_text(json.dumps(manifest))
        comm_ids = community_table(communities, seed)["community_id"].to_list()
        cached = catalog / "manifest.json"
        if not (cached.exists() and json.loads(cached.read_text()) == manifest):
            shutil.rmtree(catalog, ignore_errors=True)
            catalog.mkdir(parents=True)
            cls._build(workdir, day, comm_ids, workers)
            cached.write_text(json.dumps(manifest))
        return cls(workdir, day, comm_ids, seed, faults, pl.read_parquet(catalog / "ledger.parquet"),
                   pl.read_parquet(catalog / "files.parquet"))

    @classmethod
    def _tasks(cls, store: Path, d: str, communities: list[str]) -> list[tuple]:
        tasks = []

        def visible(p: Path) -> bool:
            return p.is_file() and not p.name.startswith(".") and not p.name.endswith((".part", ".tmp"))

        for platform in PLATFORMS:
            folder = store / "telemetry" / d / platform
            for p in sorted(folder.glob("*.ndjson.gz")) if folder.is_dir() else []:
                if visible(p):
                    tasks.append(("telemetry", p.name.split("-")[0], platform, str(p),
                                  str(p.relative_to(store)), True))
        for cid in communities:
            for p in sorted((store / "access_events" / d / cid).glob("*.ndjson.gz")):
                if visible(p):
                    tasks.append(("access_events", cid, None, str(p), str(p.relative_to(store)), True))
            for p in sorted((store / "vehicle_passages" / d / cid).glob("*.json")):
                if visible(p):
                    tasks.append(("vehicle_passages", cid, None, str(p), str(p.relative_to(store)), True))
            for name, pushed in (("pushes.ndjson", True), ("backfill.ndjson", False)):
                p = store / "parking" / d / cid / name
                if visible(p):
                    tasks.append(("parking", cid, None, str(p), str(p.relative_to(store)), pushed))
        return tasks

    @classmethod
    def _scan_all(cls, tasks: list[tuple], parts: Path, day_start_ms: int, workers: int | None = None) -> list[str]:
        """Scan every file into ``parts`` (in worker processes for a big day); returns the part prefixes."""
        parts.mkdir(parents=True, exist_ok=True)
        jobs = [(t, str(parts / f"{i:06d}")) for i, t in enumerate(tasks)]
        sizes = [os.path.getsize(t[3]) for t in tasks]
        if workers is None:
            workers = 2 if sum(sizes) > PARALLEL_BYTES and (os.cpu_count() or 1) > 1 else 1
        if workers <= 1:
            _write_parts(jobs, day_start_ms)
            return [p for _, p in jobs]
        # biggest first, to the least loaded, so the workers finish together
        shares: list[list] = [[] for _ in range(workers)]
        loads = [0] * workers
        for i in sorted(range(len(jobs)), key=lambda i: -sizes[i]):
            w = loads.index(min(loads))
            shares[w].append(jobs[i])
            loads[w] += sizes[i]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        procs = []
        for w, share in enumerate(shares):
            spec = parts / f"worker-{w}.json"
            spec.write_text(json.dumps({"day_start_ms": day_start_ms, "jobs": share}))
            procs.append(subprocess.Popen([sys.executable, "-m", "simulator.vendor_sim.catalog", "scan", str(spec)],
                                          env=env, stderr=subprocess.PIPE))
        errors = [proc.communicate()[1].decode(errors="replace")[-2000:] for proc in procs]
        for proc, err in zip(procs, errors, strict=True):
            if proc.returncode:
                raise RuntimeError(f"catalog scan worker failed ({proc.returncode}): {err}")
        return [p for _, p in jobs]

    @classmethod
    def _build(cls, workdir: Path, day: date, communities: list[str], workers: int | None = None) -> None:
        """Build ``workdir/catalog``: ledger.parquet, history.parquet, pushes.parquet, files.parquet."""
        store, catalog = workdir / "platform_store", workdir / "catalog"
        d = day.isoformat()
        start = int(datetime.combine(day, time(0), SHANGHAI).timestamp() * 1000)
        prefixes = cls._scan_all(cls._tasks(store, d, communities), catalog / "parts", start, workers)
        occ_files = [p + ".occ.parquet" for p in prefixes]
        unit_files = [p + ".units.parquet" for p in prefixes]
        # the ledger: one row per record (streamed: no record text is read)
        ident = ["source", "community_id", "platform", "key"]
        (pl.scan_parquet(occ_files).select(*ident, "received_ms", "pushed", "valid")
         .group_by(ident)
         .agg(received_ms=pl.col("received_ms").min(), pushed=pl.col("pushed").sum().cast(pl.Int64),
              in_history=pl.col("valid").any())
         .with_columns(dropped=pl.lit(0, pl.Int64))
         .sort("source", "community_id", "platform", "received_ms", "key", nulls_last=False)
         .collect(engine="streaming")
         .write_parquet(catalog / "ledger.parquet"))
        con = _duck(workdir)
        occ, units = _sql_list(occ_files), _sql_list(unit_files)
        # history: the unique valid records per scope, in serving order; out of core, record texts included. The
        # de-duplication runs per bucket of keys (a hash aggregate holding record texts does not spill well: a
        # 600-community day ran out of 10 GB in one GROUP BY), then one out-of-core sort orders the buckets.
        buckets = max(1, -(-sum(Path(f).stat().st_size for f in occ_files) // HISTORY_BUCKET_BYTES))
        dedup = catalog / "parts" / "history"
        dedup.mkdir(parents=True, exist_ok=True)
        for b in range(buckets):
            con.execute(f"""
                COPY (
                  SELECT source, CASE WHEN source = 'telemetry' THEN platform ELSE community_id END AS scope, key,
                         min(received_ms) AS received_ms, any_value(item) AS item, any_value(late_u) AS late_u
                  FROM read_parquet({occ}) WHERE valid AND hash(key) % {buckets} = {b} GROUP BY ALL
                ) TO '{dedup / f"bucket-{b:04d}.parquet"}' (FORMAT parquet, COMPRESSION zstd)""")
        con.execute(f"""
            COPY (
              SELECT source, scope, received_ms, key, item, late_u,
                     ((received_ms - {start}) % 3600000) >= 3000000 AS late_slot
              FROM read_parquet('{dedup / "bucket-*.parquet"}')
              ORDER BY source, scope, received_ms, key
            ) TO '{catalog / "history.parquet"}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})""")
        # the push plan: one row per push in send order, with the records it carries. Per bucket of push units, as
        # the history (an aggregate holding every push's keys and first record text ran out of 2.7 GB at 600
        # communities); then the send order is numbered on the narrow columns only, and the wide rows sorted by it.
        plan = catalog / "parts" / "pushes"
        plan.mkdir(parents=True, exist_ok=True)
        unit_ident = "u.source = o.source AND u.community_id = o.community_id " \
                     "AND u.platform IS NOT DISTINCT FROM o.platform AND u.file = o.file AND u.unit = o.unit"
        for b in range(buckets):
            con.execute(f"""
                COPY (
                  SELECT u.source, u.community_id, u.platform, u.kind, u.target, u.file, u.unit,
                         coalesce(u.t_ms, o.recv) AS push_ms, coalesce(u.body, o.first_item) AS body,
                         coalesce(o.keys, []::VARCHAR[]) AS keys
                  FROM (SELECT * FROM read_parquet({units}) WHERE hash(file, unit) % {buckets} = {b}) u LEFT JOIN (
                    SELECT source, community_id, platform, file, unit, list(key ORDER BY seq) AS keys,
                           max(received_ms) AS recv, arg_min(item, seq) AS first_item
                    FROM read_parquet({occ}) WHERE pushed AND hash(file, unit) % {buckets} = {b} GROUP BY ALL) o
                  ON {unit_ident}
                ) TO '{plan / f"bucket-{b:04d}.parquet"}' (FORMAT parquet, COMPRESSION zstd)""")
        con.execute(f"""
            COPY (
              SELECT (row_number() OVER (ORDER BY push_ms, source, community_id, platform, file, unit) - 1)::UINTEGER
                       AS push_id, source, community_id, platform, file, unit
              FROM read_parquet('{plan / "bucket-*.parquet"}')
            ) TO '{plan / "order.parquet"}' (FORMAT parquet, COMPRESSION zstd)""")
        con.execute(f"""
            COPY (
              SELECT o.push_id, u.*
              FROM read_parquet('{plan / "bucket-*.parquet"}') u JOIN read_parquet('{plan / "order.parquet"}') o
                ON {unit_ident}
              ORDER BY o.push_id
            ) TO '{catalog / "pushes.parquet"}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})""")
        con.close()
        shutil.rmtree(catalog / "parts", ignore_errors=True)
        shutil.rmtree(catalog / "duckdb_tmp", ignore_errors=True)
        cls._files(store, d, communities).write_parquet(catalog / "files.parquet")

    @staticmethod
    def _files(store: Path, d: str, communities: list[str]) -> pl.DataFrame:
        rows = []
        known = set(communities)
        for source in FILE_SOURCES:
            root = store / source / d
            if not root.is_dir():
                continue
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(root)
                if not p.is_file() or any(x.startswith(".") for x in rel.parts) or p.name.endswith((".part", ".tmp")):
                    continue
                if source == "parking" and p.name.endswith((".ndjson", ".ndjson.gz", ".json")):
                    continue  # parking's event files are pushes and history, not exports
                scope = rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in known else DISTRICT
                data = p.read_bytes()
                rows.append({"source": source, "community_id": scope, "relpath": rel.as_posix(), "size": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()})
        return pl.DataFrame(rows, schema={"source": pl.String, "community_id": pl.String, "relpath": pl.String,
                                          "size": pl.Int64, "sha256": pl.String})

    # --- what the server and the sender read -----------------------------------------------------------------

    def config(self, base_url: str, *, mqtt_host: str = "127.0.0.1", mqtt_port: int = 1883,
               mqtt_topic_prefix: str = "neuron/thingsboard") -> VendorConfig:
        c = self.credentials
        return VendorConfig(base_url=base_url.rstrip("/"), ctwing_application=c.ctwing_application,
                            ctwing_secret=c.ctwing_secret, export_token=c.export_token,
                            push_tokens=dict(c.push_tokens),
                            communities=tuple(c.communities[cid] for cid in self.communities),
                            mqtt_host=mqtt_host, mqtt_port=mqtt_port, mqtt_topic_prefix=mqtt_topic_prefix,
                            # what the simulated platforms allow: its page-size ceiling, a generous request rate
                            pull_limits={s: {"rate_per_s": 50.0, "page_size": 1000} for s in
                                         ("telemetry", "access_events", "vehicle_passages", "parking")})

    def history(self, source: str, scope: str) -> History | None:
        """The history of ``scope`` (a platform name for telemetry, else a community id); None if unknown."""
        if (source, scope) not in self._history:
            if source == "telemetry" and scope not in PLATFORMS:
                return None
            if source != "telemetry" and (source not in EVENT_SOURCES or scope not in self.communities):
                return None
            first, n = self._bounds.get((source, scope), (0, 0))
            self._history[(source, scope)] = History(
                received=self._received[first:first + n], late_u=self._late_u[first:first + n],
                late_slot=self._late_slot[first:first + n], first=first, store=self._items)
        return self._history[(source, scope)]

    def scan_pushes(self) -> pl.LazyFrame:
        """The push stream in send order (lazily, for a big day): push_id, source, community_id, platform, kind,
        target, file, unit, push_ms, body, keys (the records a push carries)."""
        return pl.scan_parquet(self.catalog_dir / "pushes.parquet")

    @property
    def pushes(self) -> pl.DataFrame:
        """``scan_pushes()`` collected (read once)."""
        if self._pushes is None:
            self._pushes = self.scan_pushes().collect()
        return self._pushes

    def minute_of(self, ms: pl.Expr) -> pl.Expr:
        return (ms - self.day_start_ms) // 60_000

    def cooldown_pushes(self, minute: int | None) -> pl.DataFrame:
        """The pushes whose ``push_ms`` falls in ``minute`` of the local day."""
        if minute is None:
            return self.pushes.head(0)
        return self.scan_pushes().filter(self.minute_of(pl.col("push_ms")) == minute).collect()

    def mark_dropped(self, dropped: pl.DataFrame) -> None:
        """Set the ledger's ``dropped``: per record, how many of its pushes (rows of ``dropped``, a part of
        ``pushes``) were never sent."""
        counts = (dropped.select("source", "community_id", "platform", "keys").explode("keys")
                  .rename({"keys": "key"}).drop_nulls("key")
                  .group_by("source", "community_id", "platform", "key").agg(n=pl.len().cast(pl.Int64)))
        self.ledger = (self.ledger.drop("dropped")
                       .join(counts, on=["source", "community_id", "platform", "key"], how="left", nulls_equal=True,
                             maintain_order="left")
                       .with_columns(dropped=pl.col("n").fill_null(0)).drop("n"))

    def export_files(self, scope: str, source: str) -> pl.DataFrame:
        return self.files.filter(pl.col("source") == source, pl.col("community_id") == scope)

    def export_path(self, source: str, relpath: str) -> Path:
        return self.store / source / self.day.isoformat() / relpath


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "scan":
        sys.exit(_worker_main(sys.argv[1:]))
    sys.exit("usage: python -m simulator.vendor_sim.catalog scan <jobs.json>")
