"""``neuron collect --port 8710 --vendors FILE [--no-mqtt]``: run the push collector (``service.run``).

Bad arguments and settings are one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import logging
import re
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.collector.service import DEFAULT_PORT, run
from connectors.collector.store import DEFAULT_TZ, StoreError
from connectors.config import VendorConfig, VendorConfigError
from kernel.settings import SettingsError, load_settings

PROG = "neuron collect"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _port(text: str) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise argparse.ArgumentTypeError(f"must be a TCP port from 1 to 65535, got {text!r}")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}")
    return value


def _clock_start(text: str) -> float:
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a local time as YYYY-MM-DDTHH:MM") from None
    return (start if start.tzinfo else start.replace(tzinfo=ZoneInfo(DEFAULT_TZ))).timestamp()


def default_collector_id() -> str:
    """The host's name as a collector id (stable across restarts, which recovery needs)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64] or "collector"


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Receive the vendor platforms' pushes and land them durably.")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--vendors", type=Path, default=None,
                   help="vendors.yaml (default: NEURON_VENDORS_FILE, else <data dir>/connectors/vendors.yaml)")
    p.add_argument("--landing", type=Path, default=None, help="landing zone (default: the settings' landing dir)")
    p.add_argument("--district", default=None,
                   help="the district whose pushes this collector receives (one of NEURON_DISTRICTS; required when it "
                        "is set): its landing zone and vendor config are the district's")
    p.add_argument("--collector-id", default=None,
                   help="this collector's name in file names; keep it across restarts (default: the host name)")
    p.add_argument("--no-mqtt", action="store_true", help="do not subscribe to ThingsBoard over MQTT")
    p.add_argument("--grace-seconds", type=_seconds, default=5.0,
                   help="close a minute's file this long after the minute ends (default 5)")
    p.add_argument("--clock-start", type=_clock_start, default=None, metavar="YYYY-MM-DDTHH:MM",
                   help="run the collector's clock from this local time instead of the real one (replaying a past "
                        "day on the vendor simulator: `neuron demo`, tests); files and days follow that clock")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.vendors is None or args.landing is None:
            try:
                settings = load_settings().for_named_district(args.district)
            except SettingsError as exc:
                raise VendorConfigError(str(exc)) from None
            vendors = args.vendors or settings.vendors_path
            landing = args.landing or settings.landing_dir
        else:
            vendors, landing = args.vendors, args.landing
        config = VendorConfig.load(vendors)
        clock = time.time
        if args.clock_start is not None:
            offset = args.clock_start - time.time()
            clock = lambda: time.time() + offset  # noqa: E731
        run(config, landing, args.host, args.port, args.collector_id or default_collector_id(),
            mqtt=not args.no_mqtt, grace_s=args.grace_seconds, clock=clock)
    except (VendorConfigError, StoreError) as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"{PROG}: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n"
                         if exc.errno in (98, 99, 13) else f"{PROG}: error: {type(exc).__name__}: {exc}\n")
        return 2
    return 0
