"""Dagster assets of the access domain."""

import dagster as dg

ACCESS_ASSETS: list[dg.AssetsDefinition] = []
