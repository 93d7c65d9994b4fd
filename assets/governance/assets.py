"""Dagster assets of the governance domain."""

import dagster as dg

GOVERNANCE_ASSETS: list[dg.AssetsDefinition] = []
