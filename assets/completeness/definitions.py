"""Completeness: what every source was expected to deliver per community and day against what arrived."""

from assets.completeness import assets
from assets.completeness.checks import inputs_complete_checks
from kernel.completeness import COMPLETENESS
from kernel.domain import Domain

domain = Domain(name="completeness", datasets=(COMPLETENESS,), steps=assets.STEPS, checks=(inputs_complete_checks,))
