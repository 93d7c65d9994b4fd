"""Debian's Chromium for the browser tests: installed with apt when absent (CI must have it, so no skip), and
driven by Playwright through that executable (``playwright install`` is never run)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# chromium-driver is not used by Playwright (it speaks CDP to the browser itself); the issue names both packages
# and it is small, so a machine set up by the tests matches one set up by hand
APT_PACKAGES = ("chromium", "chromium-driver")
OUTPUT = Path(__file__).resolve().parents[1] / ".output" / "browser"


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _install_chromium() -> None:
    """``apt-get install`` (after ``apt-get update`` only if the lists are stale), or fail saying what to do."""
    hint = f"the browser tests need {CHROMIUM}: apt-get install -y {' '.join(APT_PACKAGES)}"
    if shutil.which("apt-get") is None:
        pytest.fail(f"{hint} (no apt-get on this machine)", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail(f"{hint} (as root; the tests install it themselves only when run as root)", pytrace=False)
    install = ("install", "-y", "--no-install-recommends", *APT_PACKAGES)
    started = time.monotonic()
    done = _apt(*install)
    if done.returncode != 0:
        _apt("update")
        done = _apt(*install)
    if done.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(f"{hint}; it failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}",
                    pytrace=False)
    print(f"installed {' '.join(APT_PACKAGES)} in {time.monotonic() - started:.1f} s")


@pytest.fixture(scope="session")
def chromium_executable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The system Chromium, installed once per machine; xdist workers wait on one lock instead of racing apt."""
    if not CHROMIUM.exists():
        lock_path = tmp_path_factory.getbasetemp().parent / "chromium-install.lock"
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not CHROMIUM.exists():
                _install_chromium()
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_executable: Path) -> Iterator[object]:
    """A headless Chromium (the apt one) under Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(chromium_executable), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the browser tests leave their screenshots (``tests/.output/browser/``, ignored by git)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for old in OUTPUT.glob("*.png"):  # a failed run must not leave the previous run's pictures looking current
        old.unlink()
    return OUTPUT
