"""``neuron vendor-sim``: serve one simulated district-day through the vendors' protocols until SIGINT/SIGTERM.

    neuron vendor-sim --day 2026-11-20 --communities 6 --seed 42 --port 8700 --workdir DIR \\
        --config-out DIR/vendors.yaml [--faults rate_limit=5,page_drift] [--clean] [--push-to URL]

Stages the day (``VendorPlatform.stage``), serves it, writes the ``VendorConfig`` Neuron needs (mode 0600) and,
with ``--push-to``, sends the day's push stream to a collector once. Faults change at runtime through
``POST /_sim/faults`` (JSON; ``{"down_for_s": 30}`` for an outage).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import date
from pathlib import Path
from typing import NoReturn

from simulator.vendor_sim.faults import Faults, FaultSpecError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--day {text!r} is not YYYY-MM-DD") from None


def _bounded(name: str, low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} {text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be within {low}..{high}, not {value}")
        return value
    return parse


def _faults(text: str) -> Faults:
    try:
        return Faults.parse(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(f"--faults: {exc}") from None


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="neuron vendor-sim", description="Serve one simulated district-day through the vendor "
                                                      "platforms' protocols (docs/connectors.md).")
    p.add_argument("--day", type=_day, required=True, help="the local day to simulate (YYYY-MM-DD)")
    p.add_argument("--communities", type=_bounded("--communities", 1, 10_000), default=6)
    p.add_argument("--seed", type=_bounded("--seed", 0, 2**31 - 1), default=42)
    p.add_argument("--port", type=_bounded("--port", 0, 65535), default=8700, help="0: any free port")
    p.add_argument("--workdir", type=Path, required=True, help="where the platforms keep their data")
    p.add_argument("--config-out", type=Path, default=None, help="the vendor config to write "
                                                                  "(default: <workdir>/vendors.yaml)")
    p.add_argument("--faults", type=_faults, default=Faults(), help="e.g. rate_limit=5,page_drift,late_share=0.1")
    p.add_argument("--clean", action="store_true", help="simulate without the vendors' data faults")
    p.add_argument("--push-to", default=None, help="collector URL: push the day's stream once, then keep serving")
    p.add_argument("--mqtt-host", default="127.0.0.1")
    p.add_argument("--mqtt-port", type=_bounded("--mqtt-port", 1, 65535), default=1883)
    p.add_argument("--mqtt-topic-prefix", default="neuron/thingsboard")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from simulator.vendor_sim.catalog import VendorPlatform
    from simulator.vendor_sim.server import VendorServer

    out = args.config_out or args.workdir / "vendors.yaml"
    platform = VendorPlatform.stage(args.workdir, args.day, communities=args.communities, seed=args.seed,
                                    faults=not args.clean)
    server = VendorServer(platform, port=args.port, faults=args.faults)
    try:
        server.start()
    except OSError as exc:
        print(f"neuron vendor-sim: error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        config = platform.config(server.url, mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port,
                                 mqtt_topic_prefix=args.mqtt_topic_prefix)
        config.save(out)
        print(f"vendor-sim: {args.day} ({args.communities} communities, seed {args.seed}) on {server.url}; "
              f"config {out}", flush=True)
        if args.push_to:
            from simulator.vendor_sim.push import push_day

            def push() -> None:
                report = push_day(platform, args.push_to, config, faults=server.faults)
                print("vendor-sim push: " + json.dumps(report.as_dict()), flush=True)

            threading.Thread(target=push, daemon=True, name="vendor-sim-push").start()
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
