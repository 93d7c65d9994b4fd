"""How a people-count dataset is protected before it is published: the method a contract names, with its
parameters.

* ``suppression``: exact counts or nothing. Cells below ``k`` are withheld with enough companions that none
  can be recomputed (``quality.suppression``); for contracts that need exact-or-nothing.
* ``cell_key``: every count is published, perturbed by at most ``max_deviation`` (D) with variance
  ``variance`` (V); no positive count up to ``js`` is published; zeros stay zero (``quality.cellkey``). The
  default for fine flow tables (docs/privacy.md, "Disclosure control").

The contracts that publish one dataset must name the same method and parameters (``exports.contracts``); the
gold step applies it, so the lake and every export agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

METHODS: Final = ("suppression", "cell_key")
DEFAULT_K: Final = 5


@dataclass(frozen=True)
class Disclosure:
    method: Literal["suppression", "cell_key"] = "suppression"
    k: int = DEFAULT_K  # the smallest count that may be published exactly (suppression)
    max_deviation: int = 2  # D (cell_key)
    variance: float = 1.0  # V (cell_key)
    js: int = 0  # no positive count up to js is published (cell_key)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"disclosure method must be one of {', '.join(METHODS)}; got {self.method!r}")
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be a positive integer; got {self.k!r}")

    @property
    def is_cell_key(self) -> bool:
        return self.method == "cell_key"

    def describe(self) -> dict[str, object]:
        """The parameters as a manifest and the check metadata state them."""
        if self.is_cell_key:
            return {"method": "cell_key", "max_deviation": self.max_deviation, "variance": self.variance,
                    "js": self.js, "zeros_stay_zero": True, "additive": False}
        return {"method": "suppression", "k": self.k, "additive": True}
