"""The demo through the wire: the day reaches the landing zone the way a real district's does.

``neuron demo`` (without ``--files``) stages the simulated day on the vendor-platform simulator
(``simulator.vendor_sim``: CTWing, IoTDA, ThingsBoard, ISC/Artemis, GA/T 1400, a parking cloud and the file
exports), serves it on loopback, starts the collector (``python -m connectors.collector``, a process of its own,
as in deploy/), has the platforms push the day to it (HTTP webhooks, GA/T 1400 notifications after Digest
registration, ThingsBoard over the machine's MQTT broker) with one minute of CTWing-style push cooldown, whose
pushes are never sent, and writes the vendor config. The daily run's ``landing_pull`` step then pulls the
history and the file exports from the same simulator, lands only what no push delivered, and reconciles:
``pushed + reconciled = platform total`` per source and scope.

Only the CLI's demo imports this module (the product never imports the simulator: pyproject's import contract).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from kernel.settings import Settings

COOLDOWN_MINUTE = "09:30"  # the minute of the demo day whose pushes the platforms drop (formats.md §1.6)
PUSH_HOURS = (9, 10)  # the collector is "connected" for this hour of the day; the rest comes by the pull
COLLECTOR_ID = "demo"


class WireError(RuntimeError):
    """The wire could not be set up (a port, the collector); one line for the CLI."""


@dataclass
class WireReport:
    vendor_url: str = ""
    collector_url: str = ""
    mqtt: str = ""  # "on 127.0.0.1:1883" or why not
    pushes: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> sent/acknowledged/lost/dropped
    push_s: float = 0.0
    stage_s: float = 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def mqtt_broker(host: str = "127.0.0.1", port: int = 1883) -> str | None:
    """None when the broker answers (starting the machine's Mosquitto if it is installed and down), else why not."""
    if _reachable(host, port):
        return None
    if host in ("127.0.0.1", "localhost") and shutil.which("mosquitto"):
        subprocess.run(["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"], check=False, timeout=10,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if _reachable(host, port):
                return None
            time.sleep(0.1)
    return f"no MQTT broker on {host}:{port}"


def clear_day(settings: Settings, day: str) -> int:
    """Remove the demo day's landing folders (every source and its provenance), so a second demo of the same day
    lands the same files rather than adding to the first. Demo data only. (The pull cursors need nothing: the
    daily step pulls the whole day, not from its cursor.)"""
    removed = 0
    landing = settings.landing_dir
    for folder in [*landing.glob(f"*/{day}"), *landing.glob(f"_wire/*/{day}")]:
        if folder.is_dir():
            shutil.rmtree(folder)
            removed += 1
    return removed


def _start_collector(settings: Settings, port: int, log: Path, mqtt: bool, day: str,
                     collector_id: str) -> subprocess.Popen:
    import requests

    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115 (the child holds it)
    cmd = [sys.executable, "-m", "connectors.collector", "--port", str(port), "--vendors",
           str(settings.vendors_path), "--landing", str(settings.landing_dir), "--collector-id", collector_id,
           "--log-level", "warning", "--grace-seconds", "1",
           # the day is replayed now: the collector's clock runs from noon of that day, so what it receives lands
           # in the day's folders as it would have live
           "--clock-start", f"{day}T12:00"]
    if not mqtt:
        cmd.append("--no-mqtt")
    proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=os.environ.copy())
    out.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise WireError(f"the collector did not start (exit {proc.poll()}): {' '.join(tail) or log}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def vendor_wire(settings: Settings, day: str, communities: int, seed: int, *, data_faults: bool = True,
                cooldown: str | None = COOLDOWN_MINUTE, say=print) -> Iterator[WireReport]:
    """Stage, serve and push the day (module doc); the vendor simulator keeps serving until the block ends, so
    the daily run inside it pulls from it."""
    from simulator.vendor_sim.catalog import VendorPlatform
    from simulator.vendor_sim.faults import Faults
    from simulator.vendor_sim.push import push_day
    from simulator.vendor_sim.server import VendorServer

    report = WireReport()
    t0 = time.monotonic()
    platform = VendorPlatform.stage(settings.data_dir / "vendor_sim", date.fromisoformat(day),
                                    communities=communities, seed=seed, faults=data_faults)
    report.stage_s = time.monotonic() - t0
    faults = Faults.parse(f"push_cooldown_minute={cooldown}" if cooldown else "")
    server = VendorServer(platform, port=0, faults=faults)
    try:
        server.start()
    except OSError as exc:
        raise WireError(f"the vendor simulator cannot listen on loopback: {exc.strerror or exc}") from None
    collector = None
    try:
        report.vendor_url = server.url
        # the collector's MQTT session is persistent (QoS 1): a topic prefix and collector id of this demo alone, so
        # nothing another program published to the default prefix is queued for it
        run = uuid.uuid4().hex[:8]
        config = platform.config(server.url, mqtt_topic_prefix=f"neuron-demo-{run}/thingsboard")
        config.save(settings.vendors_path)
        why_not = mqtt_broker(config.mqtt_host, config.mqtt_port)
        report.mqtt = f"on {config.mqtt_host}:{config.mqtt_port}" if why_not is None else \
            f"off ({why_not}: ThingsBoard's lines arrive by the pull instead)"
        cleared = clear_day(settings, day)
        port = _free_port()
        collector = _start_collector(settings, port, settings.connectors_dir / "collector-demo.log",
                                     mqtt=why_not is None, day=day, collector_id=f"{COLLECTOR_ID}_{run}")
        report.collector_url = f"http://127.0.0.1:{port}"
        say(f"vendor platforms for {day} ({communities} communities, staged in {report.stage_s:.1f}s) on "
            f"{server.url}; collector on {report.collector_url} (MQTT {report.mqtt})"
            + (f"; cleared {cleared} landing folder(s) of an earlier demo of the day" if cleared else ""))
        t1 = time.monotonic()
        kinds = ["ctwing", "iotda", "isc", "parking"] + (["thingsboard"] if why_not is None else [])
        # one hour of pushes (a whole day's replay would take minutes on two cores); the pull then reconciles
        # the other 23 hours and the cooldown minute inside the hour
        hour_ms = 3_600_000
        window = (platform.day_start_ms + PUSH_HOURS[0] * hour_ms, platform.day_start_ms + PUSH_HOURS[1] * hour_ms)
        pushed = push_day(platform, report.collector_url, config, faults=server.faults, kinds=kinds, window=window)
        # GA/T 1400 notifications are few (batched passages): the whole day's, after Digest registration
        viid = push_day(platform, report.collector_url, config, faults=server.faults, kinds=["viid"])
        for name, part in viid.sources.items():
            pushed.sources[name] = part
        report.push_s = time.monotonic() - t1
        report.pushes = {k: dict(v) for k, v in pushed.as_dict()["sources"].items()}
        _stop(collector)  # every minute file closed before the run reads the landing zone
        collector = None
        acked, dropped = pushed.total("acknowledged"), pushed.total("dropped")
        say(f"pushed {PUSH_HOURS[0]:02d}:00-{PUSH_HOURS[1]:02d}:00 in {report.push_s:.1f}s: {acked:,} pushes acknowledged, {pushed.total('lost'):,} "
            f"lost, {dropped:,} dropped by the platforms' cooldown at {cooldown or '-'} (the pull reconciles them)")
        yield report
    finally:
        if collector is not None:
            _stop(collector)
        server.stop()
