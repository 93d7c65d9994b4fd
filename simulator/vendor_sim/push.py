"""The platforms' push side (docs/connectors.md, "Push"): the push stream of a staged day sent to a collector as
each platform sends it.

CTWing and IoTDA: one message per POST to ``/push/<platform>/<token>``; ISC: the ``OnEventNotify`` envelope to
``/push/isc/<community>/<token>``; VIID: ``/VIID/System/Register`` (HTTP Digest) and a keepalive, then each
document to ``/VIID/MotorVehicles`` (``MotorVehicleListObject``) or ``/VIID/SubscribeNotifications`` with
``User-Identify``; parking: the record signed (``connectors.protocols.parking``) to
``/push/parking/<community>``; ThingsBoard: MQTT QoS 1 to ``<prefix>/<community>/v1/gateway/telemetry`` (device
API lines to ``<prefix>/<community>/v1/devices/<device>/telemetry``), payload = the line's ``payload``.

A push that fails (connection error, non-2xx, parking ``state`` 0, a VIID status other than 0, no PUBACK) is
retried at most 3 times (CTWing's semantics), then lost. Faults: ``push_cooldown_minute`` (never sent, the
ledger's ``dropped``), ``burst`` (n pushes of the busiest minute sent at once).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import requests

from connectors.config import VendorConfig
from connectors.protocols import parking
from simulator.vendor_sim.catalog import VendorPlatform
from simulator.vendor_sim.faults import Faults

MAX_RETRIES = 3


@dataclass
class SourceReport:
    sent: int = 0  # pushes sent at least once
    acknowledged: int = 0
    retried: int = 0  # retry attempts
    lost: int = 0  # sent, never acknowledged after the retries
    dropped: int = 0  # never sent (cooldown)


@dataclass
class PushReport:
    sources: dict[str, SourceReport] = field(default_factory=dict)
    burst: int = 0  # pushes sent at once
    elapsed_s: float = 0.0
    # one row per push of the plan: push_id, source, outcome (acknowledged | lost | dropped), attempts
    outcomes: pl.DataFrame = field(default_factory=pl.DataFrame)

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sources.values())

    def acknowledged_keys(self, plan: pl.DataFrame) -> pl.DataFrame:
        """``source, community_id, key`` of every record in an acknowledged push (one row per push)."""
        ok = self.outcomes.filter(pl.col("outcome") == "acknowledged").select("push_id")
        return (plan.join(ok, on="push_id").select("source", "community_id", "keys").explode("keys")
                .rename({"keys": "key"}).drop_nulls("key"))

    def as_dict(self) -> dict[str, Any]:
        return {"sources": {k: vars(v) for k, v in sorted(self.sources.items())}, "burst": self.burst,
                "elapsed_s": round(self.elapsed_s, 3)}


class _Sender:
    """HTTP pushes, one session per thread, and the VIID registrations."""

    def __init__(self, url: str, config: VendorConfig, timeout_s: float, backoff_s: float) -> None:
        self.url, self.config, self.timeout_s, self.backoff_s = url.rstrip("/"), config, timeout_s, backoff_s
        self._local = threading.local()
        self._registered: set[str] = set()
        self._reg_lock = threading.Lock()

    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def register(self, community: str, force: bool = False) -> bool:
        c = self.config.community(community)
        with self._reg_lock:
            if c.viid_device_id in self._registered and not force:
                return True
            auth = requests.auth.HTTPDigestAuth(c.viid_device_id, c.viid_password)
            try:
                r = self.session().post(f"{self.url}/VIID/System/Register", auth=auth, timeout=self.timeout_s,
                                        json={"RegisterObject": {"DeviceID": c.viid_device_id}})
                if not (200 <= r.status_code < 300 and _viid_ok(r)):
                    return False
                self.session().post(f"{self.url}/VIID/System/Keepalive", timeout=self.timeout_s,
                                    headers={"User-Identify": c.viid_device_id},
                                    json={"KeepaliveObject": {"DeviceID": c.viid_device_id}})
            except requests.RequestException:
                return False
            self._registered.add(c.viid_device_id)
            return True

    def once(self, row: dict[str, Any]) -> bool:
        """One attempt of one push; True when acknowledged."""
        kind, body, cid = row["kind"], row["body"] or "", row["community_id"]
        tokens = self.config.push_tokens
        headers = {"Content-Type": "application/json;charset=UTF-8"}
        try:
            if kind in ("ctwing", "iotda"):
                r = self.session().post(f"{self.url}/push/{kind}/{tokens[kind]}", data=body.encode(),
                                        headers=headers, timeout=self.timeout_s)
                return 200 <= r.status_code < 300
            if kind == "isc":
                r = self.session().post(f"{self.url}/push/isc/{cid}/{tokens['isc']}", data=body.encode(),
                                        headers=headers, timeout=self.timeout_s)
                return 200 <= r.status_code < 300
            if kind == "parking":
                c = self.config.community(cid)
                try:
                    fields = json.loads(body)
                except ValueError:
                    fields = None
                if isinstance(fields, dict):
                    data = json.dumps(parking.signed(fields, c.parking_app_id, c.parking_app_secret),
                                      ensure_ascii=False).encode()
                else:
                    data = body.encode()
                r = self.session().post(f"{self.url}/push/parking/{cid}", data=data, headers=headers,
                                        timeout=self.timeout_s)
                if not 200 <= r.status_code < 300:
                    return False
                try:
                    return str(r.json().get("state")) == "1"
                except (ValueError, AttributeError):
                    return False
            if kind == "viid":
                c = self.config.community(cid)
                if not self.register(cid):
                    return False
                h = {"Content-Type": "application/VIID+JSON;charset=UTF-8", "User-Identify": c.viid_device_id}
                r = self.session().post(f"{self.url}{row['target']}", data=body.encode(), headers=h,
                                        timeout=self.timeout_s)
                if r.status_code == 401:  # the registration lapsed: register again before the retry
                    self.register(cid, force=True)
                    return False
                return 200 <= r.status_code < 300 and _viid_ok(r)
        except requests.RequestException:
            return False
        raise ValueError(f"unknown push kind {kind!r}")

    def push(self, row: dict[str, Any]) -> tuple[bool, int]:
        """A push with its retries: (acknowledged, attempts)."""
        for attempt in range(MAX_RETRIES + 1):
            if self.once(row):
                return True, attempt + 1
            if attempt < MAX_RETRIES:
                time.sleep(self.backoff_s * 2 ** attempt)
        return False, MAX_RETRIES + 1


def _viid_ok(r: requests.Response) -> bool:
    try:
        body = r.json()
    except ValueError:
        return True  # an empty 2xx
    statuses = (body or {}).get("ResponseStatusListObject", {}).get("ResponseStatusObject") \
        if isinstance(body, dict) else None
    if statuses is None and isinstance(body, dict):
        statuses = body.get("ResponseStatusObject")
    if statuses is None:
        return True
    if isinstance(statuses, dict):
        statuses = [statuses]
    return all(str(s.get("StatusCode", "0")) == "0" for s in statuses if isinstance(s, dict))


def _publish_mqtt(rows: list[dict[str, Any]], config: VendorConfig, timeout_s: float,
                  backoff_s: float) -> list[tuple[bool, int]]:
    """ThingsBoard lines, QoS 1, in order; a publish without PUBACK in time is sent again (at most 3 times)."""
    import paho.mqtt.client as mqtt

    if not rows:
        return []
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"vendor-sim-tb-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(100)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p=None: connected.set() if not rc.is_failure else None
    results: list[tuple[bool, int]] = [(False, 0)] * len(rows)
    for attempt in range(MAX_RETRIES + 1):
        try:
            client.connect(config.mqtt_host, config.mqtt_port, keepalive=30)
            break
        except OSError:
            if attempt == MAX_RETRIES:
                return [(False, MAX_RETRIES + 1)] * len(rows)
            time.sleep(backoff_s * 2 ** attempt)
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            return [(False, 1)] * len(rows)
        pending = list(range(len(rows)))
        attempts = [0] * len(rows)
        for attempt in range(MAX_RETRIES + 1):
            infos = []
            for i in pending:
                r = rows[i]
                topic = f"{config.mqtt_topic_prefix}/{r['community_id']}/{r['target']}"
                attempts[i] += 1
                infos.append((i, client.publish(topic, (r["body"] or "").encode(), qos=1)))
            failed = []
            for i, info in infos:
                with contextlib.suppress(RuntimeError, ValueError):  # not connected / queue full: not published
                    info.wait_for_publish(timeout_s)
                if info.is_published():
                    results[i] = (True, attempts[i])
                else:
                    failed.append(i)
            pending = failed
            if not pending:
                break
            if attempt < MAX_RETRIES:
                time.sleep(backoff_s * 2 ** attempt)
        for i in pending:
            results[i] = (False, attempts[i])
    finally:
        client.loop_stop()
        client.disconnect()
    return results


def push_plan(platform: VendorPlatform, *, sources: Iterable[str] | None = None,
              kinds: Iterable[str] | None = None, window: tuple[int, int] | None = None) -> pl.DataFrame:
    """The pushes ``push_day`` sends: all, or those of ``sources`` / ``kinds`` (ctwing, iotda, thingsboard, isc,
    viid, parking) with ``push_ms`` in ``window``."""
    plan = platform.scan_pushes()
    if sources is not None:
        plan = plan.filter(pl.col("source").is_in(list(sources)))
    if kinds is not None:
        plan = plan.filter(pl.col("kind").is_in(list(kinds)))
    if window is not None:
        plan = plan.filter(pl.col("push_ms") >= window[0], pl.col("push_ms") < window[1])
    return plan.collect()


def push_day(platform: VendorPlatform, collector_url: str, config: VendorConfig, *, concurrency: int = 8,
             faults: Faults | None = None, sources: Iterable[str] | None = None,
             kinds: Iterable[str] | None = None, window: tuple[int, int] | None = None, timeout_s: float = 10.0,
             retry_backoff_s: float = 0.05) -> PushReport:
    """Send the day's push stream (or the part ``sources``/``kinds``/``window`` select, see ``push_plan``) to
    ``collector_url`` and the MQTT broker of ``config``; see the module doc. Marks the ledger's ``dropped`` for
    the cooldown minute."""
    faults = faults or Faults()
    started = time.monotonic()
    plan = push_plan(platform, sources=sources, kinds=kinds, window=window)
    minute = faults.push_cooldown_minute
    cooled = (platform.minute_of(pl.col("push_ms")) == minute) if minute is not None else pl.lit(False)
    plan = plan.with_columns(dropped=cooled)
    platform.mark_dropped(plan.filter("dropped"))
    report = PushReport(sources={s: SourceReport() for s in plan["source"].unique().sort().to_list()})
    outcome: dict[int, tuple[str, int]] = {}
    for pid in plan.filter("dropped")["push_id"].to_list():
        outcome[pid] = ("dropped", 0)
    live = plan.filter(~pl.col("dropped"))
    http = live.filter(pl.col("kind") != "thingsboard")
    mqtt_rows = live.filter(pl.col("kind") == "thingsboard").rows(named=True)

    # the burst: n pushes from the busiest minute, all at once
    burst_ids: set[int] = set()
    if faults.burst and http.height:
        busiest = (http.group_by(m=platform.minute_of(pl.col("push_ms"))).len().sort("len", "m", descending=[True, False])
                   ["m"][0])
        burst_ids = set(http.filter(platform.minute_of(pl.col("push_ms")) == busiest)
                        .head(faults.burst)["push_id"].to_list())
    sender = _Sender(collector_url, config, timeout_s, retry_backoff_s)
    rows = http.rows(named=True)
    normal = [r for r in rows if r["push_id"] not in burst_ids]
    bursting = [r for r in rows if r["push_id"] in burst_ids]

    def run(row: dict[str, Any]) -> None:
        ok, attempts = sender.push(row)
        outcome[row["push_id"]] = ("acknowledged" if ok else "lost", attempts)

    if bursting:
        barrier = threading.Barrier(len(bursting))

        def at_once(row: dict[str, Any]) -> None:
            barrier.wait()
            run(row)

        threads = [threading.Thread(target=at_once, args=(r,), daemon=True) for r in bursting]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report.burst = len(bursting)
    mqtt_thread = None
    if mqtt_rows:
        def mqtt_run() -> None:
            for row, (ok, attempts) in zip(mqtt_rows, _publish_mqtt(mqtt_rows, config, timeout_s, retry_backoff_s),
                                           strict=True):
                outcome[row["push_id"]] = ("acknowledged" if ok else "lost", attempts)
        mqtt_thread = threading.Thread(target=mqtt_run, daemon=True)
        mqtt_thread.start()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        list(pool.map(run, normal))
    if mqtt_thread is not None:
        mqtt_thread.join()

    out = pl.DataFrame({"push_id": list(outcome), "outcome": [v[0] for v in outcome.values()],
                        "attempts": [v[1] for v in outcome.values()]},
                       schema={"push_id": pl.UInt32, "outcome": pl.String, "attempts": pl.Int64})
    out = plan.select("push_id", "source").join(out, on="push_id", how="left").sort("push_id")
    for (source,), grp in out.group_by("source"):
        s = report.sources[str(source)]
        counts = dict(grp.group_by("outcome").len().iter_rows())
        s.acknowledged = counts.get("acknowledged", 0)
        s.lost = counts.get("lost", 0)
        s.dropped = counts.get("dropped", 0)
        s.sent = s.acknowledged + s.lost
        s.retried = int((grp["attempts"].fill_null(0) - 1).clip(lower_bound=0).sum())
    report.outcomes = out
    report.elapsed_s = time.monotonic() - started
    return report
