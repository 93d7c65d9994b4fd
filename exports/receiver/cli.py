"""``neuron receiver`` / ``python -m exports.receiver``: command-line arguments and access keys for serving the
reference receiver until interrupted."""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

from exports.publishing.signing import DEFAULT_MAX_SKEW
from exports.receiver.http import DEFAULT_REQUEST_TIMEOUT, make_server
from exports.receiver.store import DEFAULT_MAX_CHUNK_BYTES

log = logging.getLogger("neuron.receiver")

DESCRIPTION = (
    "Reference receiver for Neuron's HTTP push protocol (signed, idempotent, chunked, contract-validated):\n"
    "the executable spec behind ``openapi.yaml`` that the district can run or re-implement."
)


def _parse_keys(pairs: Sequence[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for pair in pairs:
        pair = pair.strip()
        if not pair or pair.startswith("#"):
            continue
        key, sep, secret = pair.partition("=")
        if not sep or not key or not secret:
            raise argparse.ArgumentTypeError(f"expected KEY=SECRET, got {pair.split('=')[0]!r}=...")
        keys[key] = secret
    return keys


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from exc
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """``neuron receiver``: serve until interrupted."""
    parser = argparse.ArgumentParser(prog="neuron receiver", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--store", required=True, type=Path, help="where committed batches are stored")
    parser.add_argument(
        "--contracts", required=True, type=Path, help="folder of <consumer>/<dataset>.yaml contracts"
    )
    parser.add_argument(
        "--keys", nargs="*", default=[], metavar="KEY=SECRET", help="access keys (visible in ps)"
    )
    parser.add_argument("--keys-file", type=Path, help="file with one KEY=SECRET per line (preferred)")
    parser.add_argument(
        "--max-skew", type=float, default=DEFAULT_MAX_SKEW, help="allowed clock skew, seconds"
    )
    parser.add_argument("--max-chunk-bytes", type=int, default=DEFAULT_MAX_CHUNK_BYTES)
    parser.add_argument(
        "--request-timeout",
        type=_positive_seconds,
        default=DEFAULT_REQUEST_TIMEOUT,
        help="socket timeout per connection, seconds: a client stalled this long (TLS handshake, headers, "
        f"body, idle keep-alive) is disconnected (default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate chain; serve HTTPS")
    parser.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        keys = _parse_keys(args.keys)
        if args.keys_file:
            keys.update(_parse_keys(args.keys_file.read_text(encoding="utf-8").splitlines()))
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if not keys:
        parser.error("give at least one access key with --keys or --keys-file")
    server = make_server(
        args.store,
        args.contracts,
        keys,
        host=args.host,
        port=args.port,
        max_skew=args.max_skew,
        max_chunk_bytes=args.max_chunk_bytes,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        request_timeout=args.request_timeout,
    )
    log.info(
        "receiver on %s, store %s, %d contract(s)", server.base_url, args.store, len(server.store.contracts)
    )
    # SIGINT and SIGTERM stop it, whatever dispositions it inherited: a parent that ignores SIGINT (a test worker
    # after Dagster ran, a service manager) passes SIG_IGN on, and Python then installs no KeyboardInterrupt
    # (seen in CI: the receiver ignored SIGINT for 30 s); systemd stops a service with SIGTERM
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
