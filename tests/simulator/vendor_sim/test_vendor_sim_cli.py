"""``neuron vendor-sim`` (simulator.vendor_sim.cli.main): one-line argument errors; a real run serves the day,
writes the vendor config and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from connectors.config import VendorConfig
from simulator.vendor_sim.catalog import VendorPlatform
from simulator.vendor_sim.cli import main

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("argv, message", [
    (["--day", "2026-02-30", "--workdir", "w"], "--day '2026-02-30' is not YYYY-MM-DD"),
    (["--day", "2026-11-20", "--workdir", "w", "--communities", "0"], "--communities must be within"),
    (["--day", "2026-11-20", "--workdir", "w", "--port", "70000"], "--port must be within"),
    (["--day", "2026-11-20", "--workdir", "w", "--faults", "gremlins=3"], "unknown fault 'gremlins'"),
    (["--day", "2026-11-20", "--workdir", "w", "--faults", "late_share=2"], "late_share must be within"),
    (["--workdir", "w"], "the following arguments are required: --day"),
])
def test_bad_arguments_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("neuron vendor-sim: error: ") and message in err


def test_serves_until_sigterm(platform: VendorPlatform, vendor_workdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "vendors.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from simulator.vendor_sim.cli import main; sys.exit(main(sys.argv[1:]))",
         "--day", platform.day.isoformat(), "--communities", "2", "--seed", "7", "--port", "0",
         "--workdir", str(vendor_workdir), "--config-out", str(out), "--faults", "rate_limit=5,page_drift"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline()
        assert "vendor-sim: 2026-11-20 (2 communities, seed 7) on http://127.0.0.1:" in line, proc.stderr.read()
        config = VendorConfig.load(out)
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert config.ctwing_secret == platform.credentials.ctwing_secret
        health = requests.get(f"{config.base_url}/_sim/health", timeout=5).json()
        assert health["faults"]["rate_limit"] == 5 and health["faults"]["page_drift"] is True
        assert health["communities"] == platform.communities
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
