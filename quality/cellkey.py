"""The cell key method: consistent, bounded perturbation of published counts (privacy.md section 6).

How it works (ABS: Thompson, Broadfoot & Elazar 2013; Destatis ``ptable``; Giessing & Tent 2019):

* Every record counted carries a **record key**, a keyed hash of its identity (``kernel.record_keys``), uniform
  on [0, 2^32). A cell's **cell key** is the sum of its records' keys modulo 2^32, read as a fraction in [0, 1).
  The same records always give the same cell key, in any table, version or run.
* A **perturbation table** maps (true count i, cell key) to a perturbation d, |d| <= D, so the published value
  is i + d >= 0. Row i is a distribution over d; the cell key picks d by inverse CDF. Zeros stay zero.
* Each row is the maximum-entropy distribution on its support with mean 0 (unbiased) and variance V, as
  ``ptable::create_cnt_ptable(D, V, js)`` builds it: support ``{d : |d| <= D, i + d >= 0, i + d not in
  [1, js]}``. Rows for i >= D + js + 1 are all the same (no boundary is in reach), so the table stops there.
  Where the boundary makes V unreachable (i = 1 with D = 2 reaches only {0..3}), the row keeps mean 0 and
  takes the variance nearest V that the support allows.

Why it is safe against the attacks suppression failed (issue 14): a reader who knows D, V, js and every
published table learns an interval of width >= 2 for any non-zero cell, never the count; a correction that
adds a record changes that cell's key and so redraws its perturbation, so v2 - v1 is not the number of added
records; the same record set published in two tables (one community's day in two datasets) gets the same
perturbation, so averaging two releases gains nothing. Perturbed tables are not additive: a total is a
cell of its own (its records' keys), and the manifest says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np

KEY_SPACE: Final = 1 << 32  # record and cell keys are integers in [0, 2^32)


class PTableError(ValueError):
    """Parameters for which no perturbation table exists."""


def _maxent_row(support: np.ndarray, variance: float) -> np.ndarray:
    """Maximum-entropy probabilities on integer offsets ``support`` (0 among them) with mean 0 and variance
    ``variance``, or the reachable variance nearest it.

    The solution has the form p(d) ~ exp(a d + b d^2); (a, b) minimise the convex dual
    ``log Z(a, b) - b V`` (Newton with backtracking). A support with one point is the identity.
    """
    d = support.astype(np.float64)
    if d.size == 1:
        return np.ones(1)
    if d.size == 2:  # two points: the mean fixes the distribution
        lo, hi = d
        return np.array([hi / (hi - lo), -lo / (hi - lo)])
    # reachable variances with mean 0: the bounds come from the two-point distributions on the extremes
    # (max) and on the points nearest 0 (min); stay strictly inside so the exponential family reaches it
    v_max = -d.min() * d.max()
    neg, pos = d[d < 0].max(initial=-np.inf), d[d > 0].min(initial=np.inf)
    v_min = 0.0 if 0 in d else -neg * pos
    target = float(np.clip(variance, v_min + 1e-6 * (v_max - v_min), v_max - 1e-6 * (v_max - v_min)))
    feats = np.stack([d, d * d - target])  # moments to match: E[d] = 0, E[d^2] - V = 0

    def dual(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        z = theta @ feats
        shift = z.max()
        w = np.exp(z - shift)
        total = w.sum()
        p = w / total
        mean = feats @ p
        cov = (feats * p) @ feats.T - np.outer(mean, mean)
        return float(np.log(total) + shift), mean, cov

    theta = np.zeros(2)
    for _ in range(200):
        value, grad, hess = dual(theta)
        if np.abs(grad).max() < 1e-12:
            break
        step = np.linalg.solve(hess + 1e-12 * np.eye(2), grad)
        t = 1.0
        while t > 1e-10 and dual(theta - t * step)[0] > value - 1e-4 * t * grad @ step:
            t /= 2
        theta = theta - t * step
    z = theta @ feats
    p = np.exp(z - z.max())
    return p / p.sum()


@dataclass(frozen=True)
class PTable:
    """A count perturbation table: maximum deviation ``D``, variance ``V``, and ``js``: no positive value
    up to ``js`` is ever published (0 = every non-negative value may be)."""

    D: int = 2
    V: float = 1.0
    js: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.D, int) or self.D < 1:
            raise PTableError(f"maximum deviation D must be a positive integer, got {self.D!r}")
        if not isinstance(self.js, int) or self.js < 0:
            raise PTableError(f"js must be a non-negative integer, got {self.js!r}")
        if not 0 < float(self.V) <= self.D * self.D:
            raise PTableError(f"variance V must be in (0, D^2] = (0, {self.D * self.D}], got {self.V!r}")
        if self.js >= self.D:
            raise PTableError(f"js={self.js} must be below D={self.D}: a count of 1 must be able to leave [1, js]")

    @property
    def last_row(self) -> int:
        """From this true count on, every row is the same (shifted)."""
        return self.D + self.js + 1

    @cached_property
    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """``offsets`` (-D..D) and ``cdf``: shape (last_row + 1, 2D + 1) cumulative probabilities per true
        count; an offset that is not in a row's support has zero probability."""
        offsets = np.arange(-self.D, self.D + 1)
        probs = np.zeros((self.last_row + 1, offsets.size))
        probs[0, self.D] = 1.0  # zeros stay zero
        for i in range(1, self.last_row + 1):
            values = i + offsets
            allowed = (values >= 0) & ~((values >= 1) & (values <= self.js))
            probs[i, allowed] = _maxent_row(offsets[allowed], float(self.V))
        cdf = np.cumsum(probs, axis=1)
        cdf[:, -1] = 1.0
        return offsets, cdf

    def probabilities(self) -> np.ndarray:
        """Row i = the distribution of the perturbation of a true count i (for docs and tests)."""
        _, cdf = self.table
        return np.diff(cdf, axis=1, prepend=0.0)

    def perturbation(self, counts: np.ndarray, cell_keys: np.ndarray) -> np.ndarray:
        """Perturbation of each true count given its cell key: the sum of its records' keys (BIGINT; reduced
        modulo 2^32 here, so the sum of up to 2^31 records fits)."""
        counts = np.asarray(counts, dtype=np.int64)
        if (counts < 0).any():
            raise ValueError("counts must be non-negative")
        offsets, cdf = self.table
        u = (np.asarray(cell_keys, dtype=np.int64) % KEY_SPACE).astype(np.float64) / KEY_SPACE
        rows = cdf[np.minimum(counts, self.last_row)]
        idx = (rows <= u[:, None]).sum(axis=1)
        return offsets[np.minimum(idx, offsets.size - 1)]

    def perturb(self, counts: np.ndarray, cell_keys: np.ndarray) -> np.ndarray:
        counts = np.asarray(counts, dtype=np.int64)
        return counts + self.perturbation(counts, cell_keys)

    def describe(self) -> dict[str, object]:
        """What a manifest and the contract state: the parameters and the realised moments per row."""
        probs = self.probabilities()
        offsets, _ = self.table
        return {
            "method": "cell_key",
            "max_deviation": self.D,
            "variance": float(self.V),
            "js": self.js,
            "zeros_stay_zero": True,
            "additive": False,
            "row_variance": {str(i): round(float(probs[i] @ offsets**2 - (probs[i] @ offsets) ** 2), 4)
                             for i in range(1, self.last_row + 1)},
        }
