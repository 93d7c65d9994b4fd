"""Dagster assets of the services domain."""

import dagster as dg

SERVICES_ASSETS: list[dg.AssetsDefinition] = []
