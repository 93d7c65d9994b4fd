"""The governance domain: owners' votes and ballots, announcements, activities and participation."""

from assets.governance import assets
from assets.governance.datasets import DATASETS
from kernel.domain import Domain
from kernel.landing import LandingSource

domain = Domain(
    name="governance",
    datasets=DATASETS,
    steps=assets.STEPS,
    landing=(LandingSource("governance", 26.0, "E-voting platform and community-app exports"),),
)
