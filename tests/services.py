"""The machine's local services the tests talk to (PostgreSQL, Mosquitto): listening, or started the way the
machine starts them (the env entry of the tool library) when they are down."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

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


S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def moto_s3(bucket: str, wait_s: float = 20) -> Iterator[str]:
    """An S3-compatible server on a free loopback port (moto's standalone server, in its own process so it does not
    share the test's interpreter lock with a Dagster run), with ``bucket`` created; yields its endpoint URL."""
    from kernel.object_lake import s3_filesystem

    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    server = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
    if server is None:
        raise RuntimeError("moto_server is not installed (moto[s3] is a dev dependency: make install)")
    proc = subprocess.Popen([server, "-H", LOOPBACK, "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + wait_s
        while not listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start on port {port}")
            time.sleep(0.1)
        url = f"http://{LOOPBACK}:{port}"
        s3_filesystem(url, S3_CREDENTIALS["AWS_ACCESS_KEY_ID"], S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]).call_s3(
            "create_bucket", Bucket=bucket)
        yield url
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def postgres_database(user: str = "postgres") -> Iterator[str]:
    """A throwaway database on the machine's PostgreSQL (trust auth), dropped after (open connections too)."""
    import uuid

    import psycopg2

    def admin():
        con = psycopg2.connect(host=LOOPBACK, port=POSTGRES_PORT, user=user, dbname="postgres")
        con.autocommit = True  # CREATE DATABASE cannot run in a transaction (nor in psycopg2's `with con`)
        return con

    if not ensure_postgres():
        raise RuntimeError("PostgreSQL is not listening on 127.0.0.1:5432 and could not be started")
    name = f"neuron_test_{uuid.uuid4().hex[:12]}"
    con = admin()
    with con.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    con.close()
    try:
        yield name
    finally:
        con = admin()
        with con.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.close()
