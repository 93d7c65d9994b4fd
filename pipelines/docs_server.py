"""Serve the Data Docs folder read-only over http, so a check's ``data_docs`` link opens from the Dagster UI.

Browsers block ``file://`` links from an http page; this small Starlette app answers GET/HEAD for files
under the site root only (no ``..``, no hidden files, no symlinks out) with a content policy that forbids
anything off-site. ``run_in_thread`` serves it beside ``neuron ui``; ``main`` runs it standalone.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from kernel.settings import load_settings
from quality.gx_checks import data_docs_site

# FileResponse reads through anyio.open_file, which anyio imports lazily on first use: in the server's thread, while
# the main thread may be importing too. CPython 3.11 can fail compiling two modules at once in two threads
# ("SystemError: AST constructor recursion depth mismatch", fixed in 3.12), and the page then went out as headers
# without a body (a test saw it). Imported here, in the importing thread
_ = anyio.open_file

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3100
_HEADERS = {
    # pages may only load what this server serves: no CDN, no beacon, even if a template changes
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; font-src 'self'; connect-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
}


def resolve(site_dir: Path, url_path: str) -> Path | None:
    """The file ``url_path`` names under ``site_dir``, or None if it names nothing servable there."""
    root = site_dir.resolve()
    parts = [p for p in url_path.split("/") if p]
    if any(p in (".", "..") or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return None
    candidate = root.joinpath(*parts)
    try:
        target = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def create_app(site_dir: Path) -> Starlette:
    """The read-only Data Docs app over ``site_dir`` (which may not exist yet: 404 until a suite runs)."""
    site = Path(site_dir)

    async def serve(request: Request) -> Response:
        target = resolve(site, request.url.path)
        if target is None:
            return PlainTextResponse("not found", status_code=404, headers=_HEADERS)
        return FileResponse(target, headers=_HEADERS)

    return Starlette(routes=[Route("/{path:path}", serve, methods=["GET", "HEAD"])])


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def run_in_thread(site_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> Iterator[RunningServer]:
    """Serve ``site_dir`` from a daemon thread for the duration of the block (``port=0``: any free port)."""
    config = uvicorn.Config(create_app(site_dir), host=host, port=port, log_level="warning", access_log=False,
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="neuron-docs-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the Data Docs server did not start on {host}:{port} (port in use?)")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
    try:
        yield RunningServer(host, int(bound))
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="neuron-docs-server", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="Data Docs folder (default: $NEURON_QUALITY_DIR/docs)")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    site = args.dir or data_docs_site(load_settings())
    print(f"serving Data Docs from {site} on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(create_app(site), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
