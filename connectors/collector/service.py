"""Running the collector: uvicorn serving the push endpoints, the store's minute closer and the MQTT subscriber,
in one process. SIGTERM or SIGINT: uvicorn stops accepting and finishes the requests in flight (each waits for
its fsync), the subscriber acks what is durable and disconnects, and the store closes every minute file."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from connectors.collector.app import build_app
from connectors.collector.mqtt import MqttSubscriber
from connectors.collector.store import MinuteStore
from connectors.config import VendorConfig

log = logging.getLogger("neuron.collector")

DEFAULT_PORT = 8710


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (bound here, so a busy port is one clear error before anything starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def quiet_access_log() -> None:
    """No access log, ever: the push URLs carry tokens, and the logs must not."""
    logging.getLogger("uvicorn.access").disabled = True


@contextlib.contextmanager
def _stop_signals(server: uvicorn.Server) -> Iterator[None]:
    """uvicorn re-raises the signal that stopped it once it is done; with these handlers that does not kill the
    process before the subscriber and the store are closed (and a signal before uvicorn's own handlers are in
    place still stops the server)."""
    def stop(*_: object) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(config: VendorConfig, landing: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
        collector_id: str = "collector", mqtt: bool = True, *, grace_s: float = 5.0,
        clock: Callable[[], float] = time.time) -> None:
    """Serve until SIGTERM/SIGINT; raises OSError (port), StoreError (collector id) before serving."""
    sock = bind(host, port)
    try:
        store = MinuteStore(Path(landing), collector_id, grace_s=grace_s, clock=clock)
    except BaseException:
        sock.close()
        raise
    subscriber = MqttSubscriber(config, store) if mqtt else None
    quiet_access_log()
    try:
        app = build_app(config, store, mqtt=subscriber)
        server = uvicorn.Server(uvicorn.Config(
            app, access_log=False, log_config=None, lifespan="off", server_header=False,
            timeout_keep_alive=75, timeout_graceful_shutdown=15, backlog=2048))
        if subscriber is not None:
            subscriber.start()
        log.info("collector %s listening on %s:%d, landing in %s (mqtt %s)", collector_id, host,
                 sock.getsockname()[1], landing, "on" if subscriber else "off")
        with _stop_signals(server):
            server.run(sockets=[sock])
    finally:
        if subscriber is not None:
            subscriber.stop()
        store.close()
        sock.close()
        log.info("collector %s stopped; every minute file closed", collector_id)
