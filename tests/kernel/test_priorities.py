"""The run's step order: a step's upward rank (kernel.priorities) and the op tags the daily job carries."""

from __future__ import annotations

from kernel.dataset import C, Dataset
from kernel.lake_asset import Read, Step, lake_asset
from kernel.priorities import PRIORITY_TAG, op_tags, upward_ranks


def _ds(layer: str, name: str) -> Dataset:
    return Dataset(layer, name, "one row", "A table.", (C("x", "BIGINT", "x", False),), domain="demo")


SNAP, BIG, SMALL, SIL, GOLD, SIDE = (_ds("bronze", "snap"), _ds("bronze", "big"), _ds("bronze", "small"),
                                     _ds("silver", "big"), _ds("gold", "big"), _ds("audit", "big_side"))


def _noop(step: Step) -> None:
    return None


def _steps():
    def named(name, *outputs, **kw):
        fn = type(_noop)(_noop.__code__, globals(), name)
        return lake_asset(*outputs, **kw)(fn)

    return [
        named("snap", SNAP),
        named("parse_big", BIG, SIDE, reads={"snap": SNAP}, cost=50),
        named("parse_small", SMALL, cost=5),
        named("silver", SIL, reads={"big": BIG, "small": SMALL, "before": Read(SIL, days_back=1)}),
        named("gold", GOLD, reads={"silver": SIL, "yesterday": Read(BIG, days_back=1)}),
    ]


def test_a_step_ranks_by_the_work_that_still_depends_on_it() -> None:
    ranks = upward_ranks(_steps())
    assert ranks["gold/big"] == 1
    assert ranks["silver/big"] == 2
    assert ranks["bronze/big"] == ranks["audit/big_side"] == 52  # every output of a step shares its rank
    assert ranks["bronze/small"] == 7
    assert ranks["bronze/snap"] == 53  # the snapshot the big parser waits for goes before it
    # yesterday's partition is not waited for: it adds nothing to a rank (and a step reading its own past is no cycle)
    assert op_tags(ranks, "bronze/snap") == {PRIORITY_TAG: "53"} and op_tags(ranks, "gold/other") == {}


def test_the_daily_job_starts_the_long_chains_first() -> None:
    from pipelines.definitions import defs

    job = defs.resolve_job_def("daily_job")
    priority = {n.name: int(n.definition.tags.get(PRIORITY_TAG, 0)) for n in job.graph.node_dict.values()}
    parsers = ["bronze_telemetry", "bronze_access_events", "bronze_vehicle_passages", "bronze_property_services"]
    assert [priority[p] for p in parsers] == sorted((priority[p] for p in parsers), reverse=True)
    # the registry the telemetry parser reads, and the checks gating it, go before it; every gold step after it
    assert priority["bronze_device_registry"] > priority["bronze_telemetry"]
    assert priority["bronze__device_registry_pii_scan"] == priority["bronze_device_registry"]
    assert priority["bronze_access_doors_gx_checks"] == priority["bronze_access_doors"] > priority["bronze_access_events"]
    golds = [v for k, v in priority.items() if k.startswith("gold_") and not k.endswith(("_scan", "_checks"))]
    assert golds and max(golds) < priority["bronze_governance"] < priority["bronze_telemetry"]
