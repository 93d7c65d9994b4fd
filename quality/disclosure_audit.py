"""What a reader can infer from perturbed tables: the interval each true count must lie in.

The reader knows the perturbation table (D, V and js are published in every manifest), every published cell,
and the exact structure linking tables: a community's daily total is the sum of its gate-hour cells (when all
its doors are gates), visitors never exceed passes. The reader does not know the cell keys. So each published
value ``p`` confines the true count to its **preimage** (the counts the table can turn into ``p``), and the
linear relations narrow those intervals further. A true count is **disclosed** when its interval holds one
value between 1 and k - 1.

``bounds`` runs interval propagation over sum relations (``total = sum(members)`` or ``total >= sum(members)``)
and order relations (``part <= whole``) to a fixed point. For one sum relation over boxes this is exactly the
linear programme's answer (min x_j = max(l_j, L - sum of the others' upper bounds), and so on); with nested
relations it is an outer bound, so tests check it against scipy's LP on samples. Truth is not needed: an
interval of width zero names the count it discloses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quality.cellkey import PTable


def preimage_bounds(published: np.ndarray, table: PTable) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest true count the table can publish as each value (the preimages are intervals)."""
    published = np.asarray(published, dtype=np.int64)
    probs = table.probabilities()
    offsets = table.table[0]
    last = table.last_row
    lo = np.full(published.shape, np.iinfo(np.int64).max)
    hi = np.full(published.shape, -1, dtype=np.int64)
    # rows below last_row are special; rows from last_row on reach exactly [i - D, i + D] (shifted)
    for i in range(last):
        reach = i + offsets[probs[i] > 1e-12]
        hit = np.isin(published, reach)
        lo = np.where(hit, np.minimum(lo, i), lo)
        hi = np.where(hit, np.maximum(hi, i), hi)
    interior = published + table.D >= last  # some i >= last_row reaches p: i in [max(p-D, last), p+D]
    lo = np.where(interior, np.minimum(lo, np.maximum(published - table.D, last)), lo)
    hi = np.where(interior, np.maximum(hi, published + table.D), hi)
    if (hi < 0).any():
        raise ValueError("a published value no true count can produce under this table")
    return lo, hi


@dataclass(frozen=True)
class SumRelation:
    total: int  # index of the total's variable
    members: Sequence[int]
    exact: bool = True  # False: total >= sum(members)


def bounds(lo: np.ndarray, hi: np.ndarray, sums: Sequence[SumRelation] = (),
           orders: Sequence[tuple[int, int]] = (), rounds: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Propagate ``sums`` and ``orders`` ((part, whole): part <= whole) over integer boxes to a fixed point."""
    lo, hi = lo.astype(np.int64).copy(), hi.astype(np.int64).copy()
    for _ in range(rounds):
        before = (lo.copy(), hi.copy())
        for rel in sums:
            m = np.asarray(rel.members, dtype=np.int64)
            s_lo, s_hi = lo[m].sum(), hi[m].sum()
            lo[rel.total] = max(lo[rel.total], s_lo)
            if rel.exact:
                hi[rel.total] = min(hi[rel.total], s_hi)
                lo[m] = np.maximum(lo[m], lo[rel.total] - (s_hi - hi[m]))
            hi[m] = np.minimum(hi[m], hi[rel.total] - (s_lo - lo[m]))
        for part, whole in orders:
            hi[part] = min(hi[part], hi[whole])
            lo[whole] = max(lo[whole], lo[part])
        if (lo > hi).any():
            raise ValueError("the relations contradict the published values: the model of the tables is wrong")
        if np.array_equal(before[0], lo) and np.array_equal(before[1], hi):
            break
    return lo, hi


def disclosed(lo: np.ndarray, hi: np.ndarray, k: int) -> np.ndarray:
    """Indices whose interval pins a count between 1 and k - 1."""
    return np.flatnonzero((lo == hi) & (lo >= 1) & (lo < k))
