"""Every runtime setting of Neuron in one typed place, read from ``NEURON_*`` environment variables.

All runtime state lives under one data root (``./data`` by default); each sub-root can be moved on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MODES = ("demo", "test", "production")
# variables that move one part of the data root; unset, each part follows NEURON_DATA_DIR
SUBROOT_VARIABLES = ("NEURON_LANDING_DIR", "NEURON_LAKE_DIR", "NEURON_WAREHOUSE_PATH", "NEURON_OUTBOX_DIR",
                     "NEURON_QUALITY_DIR")


class SettingsError(RuntimeError):
    """A required setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    mode: str
    data_dir: Path
    landing_dir: Path
    lake_dir: Path
    warehouse_path: Path
    outbox_dir: Path
    quality_dir: Path
    dagster_home: Path
    timezone: str
    partitions_start: str

    @property
    def is_demo_or_test(self) -> bool:
        return self.mode in ("demo", "test")


def _path(env: dict[str, str], name: str, default: Path) -> Path:
    raw = env.get(name)
    return (Path(raw) if raw else default).expanduser().absolute()


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Resolve settings from the environment (``os.environ`` unless given)."""
    env = dict(os.environ if env is None else env)
    mode = env.get("NEURON_MODE", "production").strip().lower()
    if mode not in MODES:
        raise SettingsError(f"NEURON_MODE must be one of {', '.join(MODES)}; got {mode!r}")
    data_dir = _path(env, "NEURON_DATA_DIR", Path.cwd() / "data")
    return Settings(
        mode=mode,
        data_dir=data_dir,
        landing_dir=_path(env, "NEURON_LANDING_DIR", data_dir / "landing"),
        lake_dir=_path(env, "NEURON_LAKE_DIR", data_dir / "lake"),
        warehouse_path=_path(env, "NEURON_WAREHOUSE_PATH", data_dir / "warehouse" / "neuron.duckdb"),
        outbox_dir=_path(env, "NEURON_OUTBOX_DIR", data_dir / "outbox"),
        quality_dir=_path(env, "NEURON_QUALITY_DIR", data_dir / "quality"),
        dagster_home=_path(env, "DAGSTER_HOME", data_dir / "dagster_home"),
        timezone=env.get("NEURON_TIMEZONE", "Asia/Shanghai"),
        partitions_start=env.get("NEURON_PARTITIONS_START", "2026-01-01"),
    )
