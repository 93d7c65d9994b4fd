"""The property-services domain: work orders with their status history, fee bills and payments (CSV exports)."""

from assets.services import assets
from assets.services.datasets import DATASETS
from kernel.domain import Domain
from kernel.landing import LandingSource

domain = Domain(
    name="services",
    datasets=DATASETS,
    steps=assets.STEPS,
    landing=(LandingSource("property_services", 26.0, "Property-management CSV exports (GB18030 or UTF-8)"),),
)
