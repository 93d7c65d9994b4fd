"""Which ready step a run starts first: an upward rank over the declared lake steps.

Dagster's multiprocess executor starts, among the steps whose inputs are ready, those with the highest
``dagster/priority`` op tag first (ties in plan order). Without it, a district-day's two slots went to some
thirty small check steps while the telemetry parser, the longest chain of the day, waited: at 60 communities it
started 71 s into a 262 s run (bench/district_day.py, 2026-12-07). Ranking a step by the work that still
depends on it (list scheduling's "upward rank") starts the long chains first.

A step's rank is its cost plus the highest rank among the steps that read what it writes; a step's cost is
what it declares (``lake_asset(cost=...)``: the parsers and the heavy silver steps, in seconds per 60 communities
as the benchmark measured them), 1 otherwise. (Without the silver steps' costs, silver_telemetry, 84 s at 600
communities, ranked below the governance parser's small checks and waited 20 s for them: bench/district_day.py,
2026-12-08.) A dataset's checks (privacy scan, suite) take the rank of the step that writes
it: they gate the same readers, so they run before them and after nothing more urgent.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernel.lake_asset import LakeAsset

PRIORITY_TAG = "dagster/priority"


def upward_ranks(steps: Iterable[LakeAsset]) -> dict[str, int]:
    """Dataset key -> the rank of the step writing it, for every output of ``steps``."""
    steps = list(steps)
    writer = {ds.key: s.name for s in steps for ds in s.outputs}
    readers: dict[str, set[str]] = {s.name: set() for s in steps}
    for s in steps:
        for r in s.reads.values():
            w = writer.get(r.dataset.key)
            if w is not None and w != s.name and r.days_back == 0:  # yesterday's partition is not waited for
                readers[w].add(s.name)
    by_name = {s.name: s for s in steps}

    @functools.cache
    def rank(name: str) -> int:
        return by_name[name].cost + max((rank(r) for r in readers[name]), default=0)

    return {key: rank(name) for key, name in writer.items()}


def op_tags(ranks: Mapping[str, int], dataset_key: str) -> dict[str, str]:
    """The op tags giving a step or check on ``dataset_key`` its rank (none when the dataset has no rank)."""
    return {PRIORITY_TAG: str(ranks[dataset_key])} if dataset_key in ranks else {}
