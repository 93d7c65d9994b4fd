"""Landing sources: the raw deliveries each domain reads, as external assets with a freshness check.

A domain declares its sources (``LandingSource``); the root collects them for the landing sensor and the
freshness job. The check warns (it does not block) when the newest file is older than the source's cycle.
"""

# No ``from __future__ import annotations``: Dagster inspects the context and resource annotations.
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from kernel.resource import NeuronResource

FRESHNESS_CHECK = "landing_fresh"


@dataclass(frozen=True)
class LandingSource:
    """``data/landing/<name>/<yyyy-mm-dd>/...``: one vendor feed, expected at least every ``cycle_h`` hours."""

    name: str
    cycle_h: float
    description: str = ""

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey(["landing", self.name])

    def spec(self) -> dg.AssetSpec:
        text = self.description or f"Raw {self.name} deliveries"
        return dg.AssetSpec(self.key, group_name="landing", kinds={"file"},
                            description=f"{text} under data/landing/{self.name}/<yyyy-mm-dd>/ "
                                        f"(expected at least every {self.cycle_h:g} h).")

    def freshness_check(self) -> dg.AssetChecksDefinition:
        source, cycle_h = self.name, self.cycle_h

        @dg.asset_check(asset=self.key, name=FRESHNESS_CHECK, blocking=False,
                        description=f"newest {source} landing file is younger than {cycle_h:g} h")
        def _fresh(neuron: NeuronResource) -> dg.AssetCheckResult:
            root = neuron.settings
            now = time.time()
            # with districts, every district's feed must be fresh: the stalest one is reported
            ages = {s.district: newest_file_age_h(s.landing_dir / source, now) for s in root.each_district()}
            stale = [d for d, (age, _) in ages.items() if age is None or age > cycle_h]
            worst = max(ages, key=lambda d: float("inf") if ages[d][0] is None else ages[d][0])
            age, folder = ages[worst]
            return dg.AssetCheckResult(
                passed=not stale, severity=dg.AssetCheckSeverity.WARN,
                metadata={"newest_file_age_h": round(age, 2) if age is not None else -1.0,
                          "expected_cycle_h": cycle_h, "newest_day_folder": folder or "",
                          **({"stale_districts": ", ".join(stale), "stalest_district": worst}
                             if root.districts else {})},
            )

        return _fresh


def newest_file_age_h(root: Path, now: float) -> tuple[float | None, str | None]:
    """Hours since the newest complete file under ``root`` arrived, and its day folder."""
    newest, where = None, None
    if root.exists():
        for p in root.rglob("*"):
            if p.is_file() and not p.name.endswith(".part"):
                m = p.stat().st_mtime
                if newest is None or m > newest:
                    newest, where = m, p.relative_to(root).parts[0]
    return (None, None) if newest is None else ((now - newest) / 3600, where)


def landing_signatures(landing: Path, sources: tuple[str, ...]) -> dict[str, str]:
    """Per day folder: '<files>:<newest mtime ns>' over all sources (cheap: one stat per file)."""
    sigs: dict[str, tuple[int, int]] = {}
    for source in sources:
        root = landing / source
        if not root.exists():
            continue
        for day_dir in root.iterdir():
            if not day_dir.is_dir():
                continue
            files = [p for p in day_dir.rglob("*") if p.is_file() and not p.name.endswith(".part")]
            if not files:
                continue
            n, newest = sigs.get(day_dir.name, (0, 0))
            sigs[day_dir.name] = (n + len(files), max(newest, *(p.stat().st_mtime_ns for p in files)))
    return {day: f"{n}:{m}" for day, (n, m) in sigs.items()}
