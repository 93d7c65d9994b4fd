"""Small-cell suppression for published aggregate tables (the non-DP fallback of privacy.md section 4).

Primary suppression hides counts in (0, k); complementary suppression stops them being recovered from totals.

Conventions
-----------
* A **margin row** is a row whose value in one or more (string) dim columns is the literal ``TOTAL``
  (``"__total__"``); its values must equal the sum of the interior rows it covers. Null dim values are an
  ordinary category ("unknown"), never a total. Non-string dims cannot be totalled in-table.
* The table must be **complete**: every interior cell present, zeros included (the registry key set).
* ``margins`` declares sums published elsewhere in the same release, e.g. ``[["community", "date"]]`` for
  daily totals of an hourly table (``[]`` = grand total). They are treated as known exactly, never
  suppressible; thresholding them is the caller's job.
* Zero cells are safe and never primary-suppressed. They are also never used as protection: the audit
  assumes an attacker knows every zero exactly (conservative), so a cell whose only companions in a
  published total are zeros counts as disclosed.
* Suppression is per row (all ``value_cols`` nulled together); the primary test is per column, and
  protection is checked per column for every suppressed non-zero value.

Algorithm: primary cells; then the classic rule over every published group -- margin rows, declared
margins, and the *implied* totals that two overlapping margin sets both add up to (e.g. a community's
daily total from its hourly rows and from its direction rows). A group with exactly one hidden non-zero
cell gets a partner: the smallest non-zero published cell that lifts the hidden sum to >= k, else the
largest, interior rows before margin rows; a known total must also hide >= k in all, so the range a reader
can infer for a small cell reaches k. That runs to a fixed point and is then checked by an exact
linear-algebra audit (is the cell's value in the row space of the published equations?), which adds a
partner near any still-determined cell and repeats. Cells determined even if every suppressible non-zero
row were hidden -- only declared margins can do that, e.g. a daily total equal to its only non-zero hour --
are *unprotectable*: SuppressionError by default.
Cost: one SVD per connected group of hidden cells per audit round; about 2 s for a 4,000-row table.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from typing import Final, Literal

import numpy as np
import polars as pl

TOTAL: Final = "__total__"
_ROW: Final = "__suppression_row"


class SuppressionError(ValueError):
    """Some cell cannot be protected inside this table; ``cells`` lists dims and value column of each."""

    def __init__(self, message: str, cells: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.cells = cells


class UnprotectedCellWarning(UserWarning):
    """Emitted instead of SuppressionError when ``on_unprotectable="warn"``."""


class _Table:
    """Rows, declared aggregates and implied ('virtual') aggregates as items, plus the sums linking them.

    Virtual aggregates are the common coarsenings of the published groupings, e.g. a community's daily
    total when the table has community x hour and community x direction margin rows but no community row:
    both sets of rows add up to it, so hiding one row of either set needs a partner in that set.
    """

    def __init__(self, df: pl.DataFrame, dims: list[str], value_cols: list[str], margins: list[list[str]]):
        self.n = df.height
        self.m = len(value_cols)
        all_dims = self.all_dims = tuple(range(len(dims)))
        string_dims = {j for j, d in enumerate(dims) if df.schema[d] == pl.String}
        keys = self.full_key = df.select(dims).rows()
        values = df.select(value_cols).to_numpy().astype(np.float64).reshape(self.n, self.m)

        self.fixed: list[tuple[int, ...]] = []
        self.key: list[tuple[object, ...]] = []
        self.known: list[bool] = []  # declared: published elsewhere, exactly
        self.index: dict[tuple[tuple[int, ...], tuple[object, ...]], int] = {}
        for full in keys:
            fixed = tuple(j for j in all_dims if not (j in string_dims and full[j] == TOTAL))
            if self._add(fixed, tuple(full[j] for j in fixed)) != len(self.fixed) - 1:
                raise ValueError(f"duplicate cell {dict(zip(dims, full, strict=True))}")
        self.interior = [i for i in range(self.n) if self.fixed[i] == all_dims]

        groupings = {self.fixed[i] for i in range(self.n)} - {all_dims}
        declared = {tuple(sorted(dims.index(d) for d in g)) for g in margins}
        groupings |= declared
        while True:  # close under intersection: every common coarsening is an implied total
            closure = groupings | {tuple(sorted(set(f) & set(g))) for f in groupings for g in groupings}
            if closure == groupings:
                break
            groupings = closure
        projections: dict[tuple[int, ...], dict[tuple[object, ...], list[int]]] = {}
        for fixed in sorted(groupings, key=lambda f: (len(f), f)):
            groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
            for r in self.interior:
                groups[tuple(keys[r][j] for j in fixed)].append(r)
            projections[fixed] = groups
            for key in groups:
                item = self._add(fixed, key)
                if fixed in declared:
                    self.known[item] = True
        self.items = len(self.fixed)
        self.is_row = np.arange(self.items) < self.n

        self.covers: list[list[int]] = [
            [i]
            if i < self.n and self.fixed[i] == all_dims
            else projections[self.fixed[i]].get(self.key[i], [])
            for i in range(self.items)
        ]
        self.values = np.zeros((self.items, self.m))
        self.values[: self.n] = values
        for item in range(self.items):
            if self.covers[item] == [item]:
                continue
            total = values[self.covers[item]].sum(axis=0) if self.covers[item] else np.zeros(self.m)
            if item < self.n and not np.allclose(values[item], total):
                raise ValueError(
                    f"margin row {dict(zip(dims, keys[item], strict=True))} does not equal the sum of its "
                    "interior cells; the table must be complete (zeros included) and consistent"
                )
            self.values[item] = total

        # total = sum(members) for every aggregate and every finer grouping (interior cells included).
        by_fixed: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for item in range(self.items):
            by_fixed[self.fixed[item]].append(item)
        self.relations: list[tuple[int, list[int]]] = []
        for coarse in sorted(by_fixed, key=lambda f: (len(f), f)):
            if coarse == all_dims:
                continue
            for fine in sorted(by_fixed, key=lambda f: (len(f), f)):
                if not set(coarse) < set(fine):
                    continue
                pos = [fine.index(j) for j in coarse]
                children: dict[tuple[object, ...], list[int]] = defaultdict(list)
                for item in by_fixed[fine]:
                    children[tuple(self.key[item][p] for p in pos)].append(item)
                for total in by_fixed[coarse]:
                    members = children.get(self.key[total], [])
                    if members:
                        self.relations.append((total, members))
        self.relations_of: list[list[int]] = [[] for _ in range(self.items)]
        for rel, (total, members) in enumerate(self.relations):
            for it in (total, *members):
                self.relations_of[it].append(rel)

    def _add(self, fixed: tuple[int, ...], key: tuple[object, ...]) -> int:
        item = self.index.get((fixed, key))
        if item is None:
            item = self.index[(fixed, key)] = len(self.fixed)
            self.fixed.append(fixed)
            self.key.append(key)
            self.known.append(False)
        return item


def _determined(
    unknown: Sequence[int], constraints: Sequence[Sequence[int]], targets: dict[int, Sequence[int]]
) -> set[int]:
    """Targets (sums of interior cells) fixed by the equations ``sum(constraint cells) = known``.

    Only ``unknown`` cells are variables; everything else is treated as known. A target is determined
    iff its indicator vector lies in the row space of the constraint matrix (SVD per connected component).
    """
    col = {r: j for j, r in enumerate(unknown)}
    parent = list(range(len(unknown)))

    def find(j: int) -> int:
        while parent[j] != j:
            parent[j] = parent[parent[j]]
            j = parent[j]
        return j

    rows = []
    for cons in constraints:
        cols = sorted({col[r] for r in cons if r in col})
        if cols:
            rows.append(cols)
            root = find(cols[0])
            for j in cols[1:]:
                parent[find(j)] = root
    comp_rows: dict[int, list[list[int]]] = defaultdict(list)
    for cols in rows:
        comp_rows[find(cols[0])].append(cols)
    comp_cols: dict[int, list[int]] = defaultdict(list)
    for j in range(len(unknown)):
        comp_cols[find(j)].append(j)

    bases: dict[int, tuple[dict[int, int], np.ndarray]] = {}
    for root, crows in comp_rows.items():
        local = {j: t for t, j in enumerate(comp_cols[root])}
        a = np.zeros((len(crows), len(local)))
        for r, cols in enumerate(crows):
            a[r, [local[j] for j in cols]] = 1.0
        _, s, vt = np.linalg.svd(a, full_matrices=False)
        bases[root] = (local, vt[s > s.max() * max(a.shape) * np.finfo(np.float64).eps])

    out = set()
    for item, cells in targets.items():
        by_comp: dict[int, list[int]] = defaultdict(list)
        for r in cells:
            if r in col:
                by_comp[find(col[r])].append(col[r])
        for root, cols in by_comp.items():
            if root not in bases:
                break
            local, q = bases[root]
            vec = np.zeros(len(local))
            vec[[local[j] for j in cols]] = 1.0
            if np.linalg.norm(vec - q.T @ (q @ vec)) > 1e-8 * math.sqrt(len(cols)):
                break
        else:
            out.add(item)
    return out


class _Suppressor:
    def __init__(self, table: _Table, k: int, forced: Sequence[str | None] = ()):
        self.t = t = table
        self.k = k
        self.nonzero = t.values > 0
        self.primary_v = (t.values > 0) & (t.values < k) & t.is_row[:, None]
        self.suppressed = self.primary_v.any(axis=1)
        self.reason: list[str | None] = ["primary" if self.suppressed[i] else None for i in range(t.n)]
        for i, label in enumerate(forced):  # hidden by an earlier version, or changed by fewer than k since
            if label and not self.suppressed[i]:
                self.suppressed[i] = True
                self.reason[i] = label
        self.intrinsic = [self._audit(v, maximal=True) for v in range(t.m)]

    def hidden(self, i: int, v: int) -> bool:
        """A suppressed row whose column-v value is unknown to a reader (zeros count as known)."""
        return i < self.t.n and self.suppressed[i] and not self.t.known[i] and bool(self.nonzero[i, v])

    def candidate(self, i: int, v: int) -> bool:
        return (
            i < self.t.n
            and not self.suppressed[i]
            and not self.t.known[i]
            and bool(self.nonzero[i, v])
            and i not in self.intrinsic[v]
        )

    def _audit(self, v: int, maximal: bool = False) -> set[int]:
        """Hidden non-zero rows whose column-v value is determined by what is published.

        With ``maximal`` every suppressible non-zero row counts as hidden: what is determined then is
        disclosed by the declared margins alone and cannot be fixed inside this table.
        """
        t = self.t
        if maximal:
            hidden = {i for i in range(t.n) if not t.known[i] and self.nonzero[i, v]}
        else:
            hidden = {i for i in range(t.n) if self.hidden(i, v)}
        unknown_cells = [r for r in t.interior if r in hidden]
        published = [
            t.covers[i]
            for i in range(t.items)
            if (t.known[i] or (i < t.n and i not in hidden)) and t.covers[i] != [i]
        ]
        return _determined(unknown_cells, published, {i: t.covers[i] for i in sorted(hidden)})

    def _is_interior(self, i: int) -> bool:
        return i < self.t.n and self.t.fixed[i] == self.t.all_dims

    def _pick(self, pool: list[int], v: int, need: float) -> int | None:
        cands = [i for i in dict.fromkeys(pool) if self.candidate(i, v)]
        if not cands:
            return None
        vals = self.t.values[:, v]

        def rank(i: int) -> tuple[bool, bool, float, int]:
            enough = vals[i] >= need
            return (not self._is_interior(i), not enough, vals[i] if enough else -vals[i], i)

        return min(cands, key=rank)

    def _hide(self, i: int) -> None:
        self.suppressed[i] = True
        self.reason[i] = self.reason[i] or "complementary"

    def _unknown_items(self, v: int) -> np.ndarray:
        """Hidden rows plus virtual totals not derivable from published sums (derived to a fixed point)."""
        t = self.t
        unknown = np.array([self.hidden(i, v) for i in range(t.n)] + [False] * (t.items - t.n))
        virtual = [i for i in range(t.n, t.items) if not t.known[i] and self.nonzero[i, v]]
        unknown[virtual] = True
        changed = True
        while changed:
            changed = False
            for total, members in t.relations:
                open_items = [i for i in (total, *members) if unknown[i]]
                if len(open_items) == 1 and open_items[0] >= t.n:
                    unknown[open_items[0]] = False
                    changed = True
        return unknown

    def heuristic(self) -> bool:
        """Classic rule plus 'a known total must hide at least k', to a fixed point."""
        t, k = self.t, self.k
        any_change, changed = False, True
        while changed:
            changed = False
            for v in range(t.m):
                vals = t.values[:, v]
                unknown = self._unknown_items(v)
                for total, members in t.relations:
                    items = [total, *members]
                    open_items = [i for i in items if unknown[i]]
                    if not open_items or any(i >= t.n for i in open_items):
                        continue  # an underivable virtual total already shields this group
                    hidden_sum = float(vals[open_items].sum())
                    if len(open_items) == 1:
                        if open_items[0] in self.intrinsic[v]:
                            continue
                        need = max(1.0, k - hidden_sum)
                    elif (
                        total not in open_items
                        and hidden_sum < k <= vals[total]
                        and any(self.primary_v[i, v] for i in open_items)
                    ):
                        need = k - hidden_sum
                    else:
                        continue
                    partner = self._pick(items, v, need)
                    if partner is not None:
                        self._hide(partner)
                        unknown[partner] = True
                        changed = any_change = True
        return any_change

    def _nearby(self, c: int, v: int) -> list[int]:
        """Partner pool for a cell the audit found determined: its groups, then groups reachable through
        hidden rows and virtual totals, nearest first."""
        t = self.t
        seen_items, rels = {c}, list(t.relations_of[c])
        seen_rels = set(rels)
        while rels:
            pool = [i for rel in rels for i in (t.relations[rel][0], *t.relations[rel][1])]
            if any(self.candidate(i, v) for i in pool):
                return pool
            nxt = []
            for i in pool:
                if i not in seen_items and (self.hidden(i, v) or (i >= t.n and not t.known[i])):
                    seen_items.add(i)
                    nxt.extend(r for r in t.relations_of[i] if r not in seen_rels)
                    seen_rels.update(t.relations_of[i])
            rels = nxt
        return []

    def audit_and_fix(self) -> tuple[bool, dict[int, set[int]]]:
        """Audit every column; give the first determined hidden value a partner, then re-run the rule."""
        t, k = self.t, self.k
        determined = {v: self._audit(v) for v in range(t.m)}
        for v in range(t.m):
            for c in sorted(determined[v] - self.intrinsic[v]):
                partner = self._pick(self._nearby(c, v), v, max(1.0, k - t.values[c, v]))
                if partner is not None:
                    self._hide(partner)
                    return True, determined
        return False, determined


def suppress(
    df: pl.DataFrame,
    dims: list[str],
    value_cols: list[str],
    k: int = 5,
    margins: list[list[str]] | None = None,
    *,
    on_unprotectable: Literal["raise", "warn"] = "raise",
    forced: Sequence[str | None] | None = None,
) -> pl.DataFrame:
    """Null out small cells and enough companions that none can be derived from published totals.

    Returns ``df`` in its original row order with suppressed ``value_cols`` set to null and two columns
    added: ``suppressed`` (bool) and ``suppression`` ('primary' | 'complementary' | 'correction' | null).
    ``forced`` (one reason or None per row of ``df``) hides rows whatever their values, with that reason: a row
    an earlier version of the same table hid keeps its earlier reason, one whose counts changed by fewer than k
    since it was published gets 'correction' (``assets.disclosure`` decides); they are protected like any
    hidden cell.
    Raises SuppressionError if a cell is disclosed by the declared ``margins`` themselves (see module doc);
    with ``on_unprotectable="warn"`` such cells stay suppressed and an UnprotectedCellWarning is issued.
    """
    margins = [list(g) for g in (margins or [])]
    _validate(df, dims, value_cols, k, margins)
    if forced is not None and len(forced) != df.height:
        raise ValueError(f"forced has {len(forced)} flags for {df.height} rows")
    ordered = df.with_row_index(_ROW).sort(dims, nulls_last=True, maintain_order=True)
    table = _Table(ordered, dims, value_cols, margins)
    order = ordered[_ROW].to_list()
    state = _Suppressor(table, k, [forced[r] for r in order] if forced is not None else ())
    if table.interior:
        while True:
            changed = state.heuristic()
            fixed, determined = state.audit_and_fix()
            if not (changed or fixed):
                break
    else:
        determined = {v: set() for v in range(table.m)}

    bad: list[dict[str, object]] = []
    for v, col in enumerate(value_cols):
        leaked = set(determined[v]) | {i for i in range(table.n) if table.known[i] and state.primary_v[i, v]}
        for i in sorted(leaked):
            bad.append({**dict(zip(dims, table.full_key[i], strict=True)), "column": col})
    if bad:
        msg = (
            f"{len(bad)} suppressed value(s) can still be derived exactly from the declared margins "
            f"(or are themselves declared totals below k={k}); publish those margins suppressed or not at "
            f"all. First: {bad[0]}"
        )
        if on_unprotectable == "raise":
            raise SuppressionError(msg, bad)
        warnings.warn(msg, UnprotectedCellWarning, stacklevel=2)

    hidden = pl.Series("suppressed", state.suppressed[: table.n])
    out = ordered.with_columns(
        hidden,
        pl.Series("suppression", state.reason, dtype=pl.String),
    ).with_columns(
        [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in value_cols]
    )
    return out.sort(_ROW).drop(_ROW)


def _validate(
    df: pl.DataFrame, dims: list[str], value_cols: list[str], k: int, margins: list[list[str]]
) -> None:
    if not dims or not value_cols:
        raise ValueError("dims and value_cols must not be empty")
    missing = [c for c in [*dims, *value_cols] if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in frame: {missing}")
    if {"suppressed", "suppression", _ROW} & set(df.columns):
        raise ValueError("frame already has suppression columns")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    for grouping in margins:
        unknown = [d for d in grouping if d not in dims]
        if unknown or len(set(grouping)) >= len(dims):
            raise ValueError(f"margin grouping {grouping} must be a proper subset of dims {dims}")
    for c in value_cols:
        col = df[c]
        if not col.dtype.is_numeric():
            raise TypeError(f"value column {c!r} must be numeric counts")
        if col.null_count() or (col < 0).any() or (col.dtype.is_float() and not col.is_finite().all()):
            raise ValueError(f"value column {c!r} must hold finite, non-negative counts without nulls")
