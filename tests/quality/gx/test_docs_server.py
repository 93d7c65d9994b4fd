"""pipelines/docs_server.py: serves Data Docs pages over http, read-only, and nothing outside the site."""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.docs_server import RunningServer, resolve, run_in_thread

SECRET = "token-key=do-not-serve"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    docs = tmp_path / "quality" / "docs"
    (docs / "validations" / "silver.x" / "2026-01-02").mkdir(parents=True)
    (docs / "validations" / "silver.x" / "2026-01-02" / "page.html").write_text("<html>the page</html>")
    (docs / "index.html").write_text("<html>the index</html>")
    (docs / ".index.lock").write_text("")
    (tmp_path / "quality" / "secret.txt").write_text(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "leak.html").write_text(SECRET)
    os.symlink(tmp_path / "outside", docs / "linked")
    os.symlink(tmp_path / "quality" / "secret.txt", docs / "secret.html")
    return docs


@pytest.fixture
def server(site: Path) -> Iterator[RunningServer]:
    with run_in_thread(site, port=0) as running:
        yield running


def _get(server: RunningServer, raw_path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Send ``raw_path`` exactly as given (http.client does not normalise ``..`` the way browsers do)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, raw_path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_serves_a_page_and_the_index_over_http(server: RunningServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    status, headers, body = _get(server, "/validations/silver.x/2026-01-02/page.html")
    assert (status, body) == (200, b"<html>the page</html>")
    assert headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in headers["content-security-policy"]  # a page could not load a CDN
    assert _get(server, "/")[2] == b"<html>the index</html>"
    assert _get(server, "/index.html")[0] == 200
    assert _get(server, "/validations/silver.x/2026-01-02/page.html", method="HEAD")[0] == 200


@pytest.mark.parametrize(
    "raw_path",
    [
        "/../secret.txt",
        "/../../quality/secret.txt",
        "/validations/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/validations/%2e%2e%2f%2e%2e%2fsecret.txt",
        "//etc/passwd",
        "/..\\secret.txt",
        "/linked/leak.html",  # a symlink out of the site
        "/secret.html",  # a symlink to a file outside
        "/.index.lock",  # hidden files (the lock, temporary writes) are not pages
        "/missing.html",
    ],
)
def test_refuses_anything_outside_the_site(server: RunningServer, raw_path: str) -> None:
    status, _, body = _get(server, raw_path)
    assert status in (400, 404), (raw_path, status)
    assert SECRET.encode() not in body


def test_is_read_only(server: RunningServer) -> None:
    for method in ("POST", "PUT", "DELETE"):
        assert _get(server, "/index.html", method=method)[0] == 405


def test_resolve_keeps_every_path_inside_the_site(site: Path) -> None:
    assert resolve(site, "/validations/silver.x/2026-01-02/page.html") == (
        site / "validations/silver.x/2026-01-02/page.html"
    ).resolve()
    assert resolve(site, "/") == (site / "index.html").resolve()
    for escape in ("/../secret.txt", "/a/../../secret.txt", "/linked/leak.html", "/\x00", "/etc/passwd"):
        assert resolve(site, escape) is None


def test_a_missing_site_answers_not_found_until_a_suite_runs(tmp_path: Path) -> None:
    with run_in_thread(tmp_path / "not-yet", port=0) as running:
        assert _get(running, "/index.html")[0] == 404
