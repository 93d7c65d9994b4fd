"""Dagster assets of the vehicles domain."""

import dagster as dg

VEHICLES_ASSETS: list[dg.AssetsDefinition] = []
