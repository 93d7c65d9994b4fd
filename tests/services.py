"""The machine's local services the tests talk to (PostgreSQL, Mosquitto): listening, or started the way the
machine starts them (the env entry of the tool library) when they are down."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

LOOPBACK = "127.0.0.1"
POSTGRES_PORT, MOSQUITTO_PORT = 5432, 1883


def listening(port: int, host: str = LOOPBACK) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def _ensure(port: int, start: list[str] | None, wait_s: float) -> bool:
    """True once something listens on ``port``; ``start`` is run first when nothing does (None: not installed)."""
    if listening(port):
        return True
    if start is None or not shutil.which(start[0]):
        return False
    subprocess.run(start, check=False, capture_output=True, timeout=60)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if listening(port):
            return True
        time.sleep(0.1)
    return False


def ensure_mosquitto(wait_s: float = 5) -> bool:
    return _ensure(MOSQUITTO_PORT, ["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"], wait_s)


def ensure_postgres(wait_s: float = 30) -> bool:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    start = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"] if versions else None
    return _ensure(POSTGRES_PORT, start, wait_s)
