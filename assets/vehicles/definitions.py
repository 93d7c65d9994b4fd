"""The vehicles domain: GA/T 1400 plate-recognition passages, parking-cloud sessions and payments."""

from assets.vehicles import assets
from assets.vehicles.datasets import DATASETS
from kernel.domain import Domain
from kernel.landing import LandingSource

domain = Domain(
    name="vehicles",
    datasets=DATASETS,
    steps=assets.STEPS,
    landing=(
        LandingSource("vehicle_passages", 2.0, "GA/T 1400 MotorVehicleListObject passages from the gates"),
        LandingSource("parking", 2.0, "Parking-cloud pushes, payments and resident registers"),
    ),
)
