"""The access-control domain: door registry and ISC door events (face, card, QR, password, ID card)."""

from assets.access import assets
from assets.access.datasets import DATASETS
from kernel.domain import Domain
from kernel.landing import LandingSource

domain = Domain(
    name="access",
    datasets=DATASETS,
    steps=assets.STEPS,
    landing=(
        LandingSource("access_events", 2.0, "ISC OnEventNotify door-event NDJSON"),
        LandingSource("sites", 26.0, "Site registries: doors.csv, tollgates.csv, car_parks.csv"),
    ),
)
