"""Completeness: what every source was expected to deliver per community and day against what arrived."""

from assets.intake import assets
from assets.intake.checks import inputs_complete_checks
from assets.intake.datasets import DATASETS
from kernel.domain import Domain

domain = Domain(name="intake", datasets=DATASETS, steps=assets.STEPS, checks=(inputs_complete_checks,))
