"""A domain in one object: its datasets, its lake steps and the landing sources it reads.

Each ``assets/<domain>/definitions.py`` exposes ``domain = Domain(...)``; the root discovers them, merges
their ``Definitions`` and applies policy across the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from kernel.dataset import Dataset
from kernel.lake_asset import Area, LakeAsset
from kernel.landing import LandingSource


class DomainError(ValueError):
    """A domain's declarations disagree with its steps."""


@dataclass(frozen=True)
class Domain:
    name: str
    datasets: tuple[Dataset, ...]
    steps: tuple[LakeAsset, ...]
    landing: tuple[LandingSource, ...] = ()
    # builders of asset checks that need the root's Area (partitions): called once per definitions() call
    checks: tuple[Callable[[Area], list[dg.AssetChecksDefinition]], ...] = ()

    def __post_init__(self) -> None:
        written = [ds.key for step in self.steps for ds in step.outputs]
        twice = sorted({k for k in written if written.count(k) > 1})
        if twice:
            raise DomainError(f"{self.name}: {twice} written by more than one step")
        declared = {ds.key for ds in self.datasets}
        if stray := sorted(set(written) - declared):
            raise DomainError(f"{self.name}: steps write {stray}, which the domain does not declare")
        if unwritten := sorted(ds.key for ds in self.datasets if ds.asset and ds.key not in written):
            raise DomainError(f"{self.name}: {unwritten} are declared as assets but no step writes them")
        if foreign := sorted(ds.key for ds in self.datasets if ds.domain != self.name
                             and not ds.key.startswith("audit/row_accounting_")):
            raise DomainError(f"{self.name}: {foreign} are declared with another domain")

    def definitions(self, area: Area, landing_specs: bool = True) -> dg.Definitions:
        """This domain's assets and freshness checks, built for ``area``; its landing sources as external specs
        unless the root builds them (``landing_specs=False``: the root's pull step materialises them)."""
        return dg.Definitions(
            assets=[*(s.spec() for s in self.landing if landing_specs), *(step.build(area) for step in self.steps)],
            asset_checks=[*(s.freshness_check() for s in self.landing),
                          *(c for build in self.checks for c in build(area))],
        )
