"""Governance steps: e-voting and community-app exports -> bronze (+ quarantine) -> silver -> gold.

Thin glue over ``parse.py`` (bronze) and ``transform.py`` (silver, gold): one step per layer, so the five
governance sources of a day are parsed, accounted for and published together.
"""

from assets.governance import datasets as g
from assets.governance.parse import BRONZE, QUARANTINE, ingest
from assets.governance.transform import (
    SILVER,
    build_month_final,
    build_monthly,
    build_silver,
    build_vote_outcomes,
)
from assets.telemetry.datasets import DEVICE_REGISTRY
from kernel.accounting import write_ingest
from kernel.dataset import accounting_dataset
from kernel.lake_asset import Read, Step, lake_asset

ACCOUNTING = {s: accounting_dataset(f"governance_{s}") for s in g.SOURCES}


@lake_asset(*BRONZE.values(), *QUARANTINE.values(), g.INGEST_GOVERNANCE, reads={"registry": DEVICE_REGISTRY},
            landing=["governance"], cost=2)
def bronze_governance(step: Step) -> dict:
    """Parse the day's e-voting and community-app exports; every record ends accepted, quarantined or duplicate."""
    stats = ingest(step.con, step.lake, step.landing_dir, step.day, step.tz, step.neuron.tokenizer("governance"))  # no canaries
    write_ingest(step.con, step.lake, g.INGEST_GOVERNANCE, step.day, stats.values())
    return {ds: meta for source, st in stats.items()
            for ds, meta in ((BRONZE[source], st.bronze_metadata()), (QUARANTINE[source], st.quarantine_metadata()))}


@lake_asset(*SILVER.values(), reads={**{f"bronze_{s}": BRONZE[s] for s in g.SOURCES},
                                     **{f"quarantine_{s}": QUARANTINE[s] for s in g.SOURCES},
                                     "ingest": g.INGEST_GOVERNANCE},
            accounting=list(SILVER.values()))
def silver_governance(step: Step) -> dict:
    """Cleaned governance records of the day, with one row-accounting check per source."""
    out = {}
    for source, c in build_silver(step.con, step.lake, step.day, step.tz).items():
        step.account(ACCOUNTING[source], accepted=c.accepted, quarantined=c.quarantined,
                     duplicates_cross_file=c.bronze - c.accepted, source=source, silver=SILVER[source])
        out[SILVER[source]] = {"duplicates_dropped": c.bronze - c.accepted}
    return out


@lake_asset(g.VOTE_OUTCOMES, reads={"votes": g.VOTES_SILVER, "ballots": g.BALLOTS_SILVER})
def gold_vote_outcomes(step: Step) -> dict:
    build_vote_outcomes(step.con, step.lake, step.day, step.tz)
    return {"passed": int(step.scalar(f"SELECT count(*) FILTER (WHERE passed) FROM {step.read(g.VOTE_OUTCOMES)}"))}


@lake_asset(g.GOVERNANCE_MONTHLY, reads={"outcomes": g.VOTE_OUTCOMES, **{s: SILVER[s] for s in g.SOURCES},
                                         "registry": DEVICE_REGISTRY})
def gold_governance_monthly(step: Step) -> dict:
    """Month to date (internal): reads the month's earlier partitions as well as the day's."""
    return build_monthly(step.con, step.lake, step.day, DEVICE_REGISTRY, step.k()).metadata()


@lake_asset(g.GOVERNANCE_MONTH_FINAL, reads={"month_final": Read(g.GOVERNANCE_MONTHLY, days_back=1)})
def gold_governance_month_final(step: Step) -> dict:
    """What 智联普陀 receives: complete months only, once (empty on days other than the 1st)."""
    res = build_month_final(step.con, step.lake, step.day)
    if res.withheld:
        step.context.log.warning("previous month's final governance_monthly partition is missing: nothing published")
    return {"month_published": res.month or "none", "withheld_incomplete_month": res.withheld}


STEPS = (bronze_governance, silver_governance, gold_vote_outcomes, gold_governance_monthly,
         gold_governance_month_final)
