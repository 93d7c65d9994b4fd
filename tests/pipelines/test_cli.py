"""The `neuron` CLI answers a bad argument or setting with one line on stderr, before anything is written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("args", "says"), [
    (["demo", "--day", "2026-13-45"], "argument --day: must be a date as YYYY-MM-DD"),
    (["demo", "--day", "yesterday"], "argument --day: must be a date as YYYY-MM-DD"),
    (["simulate", "--day", "20261120"], "argument --day: must be a date as YYYY-MM-DD"),
    (["demo", "--communities", "0"], "argument --communities: must be a whole number of at least 1"),
    (["simulate", "--communities", "many"], "argument --communities: must be a whole number of at least 1"),
    (["demo", "--day", "2099-01-01"], "is not a closed day"),
    (["simulate", "--day", "2025-12-31"], "is not a closed day: days run from 2026-01-01"),
    (["purge-landing", "--days", "-3"], "argument --days: must be a whole number of at least 1"),
    (["demo", "--bogus"], "unrecognized arguments: --bogus"),
    (["nonsense"], "invalid choice: 'nonsense'"),
    (["collect", "--port", "0"], "argument --port: must be a TCP port"),
    (["vendor-sim", "--communities", "0"], "argument --communities"),
])
def test_a_bad_argument_is_one_line_and_writes_nothing(args: list[str], says: str, data_root: Path):
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuron") and says in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not any(data_root.glob("landing/*/*")), "nothing is simulated for a bad argument"


def test_a_bad_setting_is_one_line(data_root: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEURON_LANDING_RETENTION_DAYS", "thirty")
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "purge-landing", "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "NEURON_LANDING_RETENTION_DAYS must be a whole number" in proc.stderr


def test_the_doctor_in_production_refuses_an_instance_without_its_config(data_root: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    """A production container whose dagster.yaml mount is missing: the doctor must not copy the local SQLite
    config in and report a clean, empty instance of its own."""
    monkeypatch.setenv("NEURON_MODE", "production")
    monkeypatch.setenv("DAGSTER_HOME", str(data_root / "prod_home"))
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "doctor"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "no dagster.yaml in DAGSTER_HOME" in proc.stderr
    assert not (data_root / "prod_home" / "dagster.yaml").exists()


def test_doctor_lists_and_clears_a_half_written_data_docs_page(data_root: Path):
    """A check step killed while writing a validation page leaves `.<page>.<random>.tmp`: doctor finds it."""
    leftover = data_root / "quality" / "docs" / "validations" / "silver.telemetry" / "2026-11-20" / ".p.html.x1.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("<html>half")
    kept = leftover.with_name("20261120T000000Z-abcd.html")
    kept.write_text("<html>whole</html>")
    # a pull killed mid-write leaves `.<file>.<random>.tmp` in the landing zone; one written seconds ago may be the
    # collector's write in flight, which the doctor leaves alone
    pulled = data_root / "landing" / "parking" / "2026-11-20" / "c1" / ".pull-0900-1000.ndjson.x2.tmp"
    pulled.parent.mkdir(parents=True)
    pulled.write_text("{half")
    os.utime(pulled, (time.time() - 3600, time.time() - 3600))
    in_flight = pulled.with_name(".push-202611200901-c.json.x3.tmp")
    in_flight.write_text("{")

    def doctor(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipelines.cli", "doctor", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    found = doctor()
    assert found.returncode == 1 and str(leftover) in found.stdout, found.stdout + found.stderr
    assert str(pulled) in found.stdout and str(in_flight) not in found.stdout
    assert doctor("--repair").returncode == 0
    assert not leftover.exists() and kept.exists()
    assert not pulled.exists() and in_flight.exists()
    in_flight.unlink()
    assert doctor().returncode == 0
