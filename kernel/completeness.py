"""Completeness is data: what each source was expected to deliver per community and day against what arrived.

``audit/completeness`` (written by the intake domain, ``assets/intake``) holds one row per source, community and day with
a status: ``complete``, ``partial`` (the feed arrived but covers part of the day), ``missing`` (nothing usable
arrived from a community that should have delivered) or ``not_expected`` (nothing registered that delivers).

Every gold dataset that declares ``sources`` (``Dataset.sources``: source -> the measure columns that come
from it) gets two columns when it is written (``apply_sql``, called by ``kernel.io.write_dataset``):

* ``completeness``: the worst status over the row's sources for its community (``complete`` when none is short);
* ``incomplete_sources``: ``source:status`` for each source that is not complete, comma separated, else NULL.

The measures that come from a ``missing`` source are NULL on that community's rows, never zero: a grid built
from the registry (every gate x 24 hours) would otherwise publish a silent community as a day of zeros. The
nulling runs after disclosure control (the protected values of other cells do not depend on it) and does
not reveal anything about people: the true count of a silent community is zero records received.
"""

from __future__ import annotations

from kernel.dataset import COMPLETENESS_COLUMNS, COMPLETENESS_NAMES, Dataset

STATUSES = ("complete", "partial", "missing", "not_expected")
__all__ = ["COMPLETENESS_COLUMNS", "COMPLETENESS_NAMES", "apply_sql"]
VIEW = "completeness"  # the view name a gold step reads audit/completeness under

_RANK = "CASE {s} WHEN 'missing' THEN 3 WHEN 'partial' THEN 2 ELSE 1 END"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def apply_sql(ds: Dataset, sql: str, view: str = VIEW) -> str:
    """``sql`` (the dataset's rows without the completeness columns) with them added and missing measures nulled.

    ``view`` is a relation over the day's ``audit/completeness`` partition (the step reads it under that name).
    """
    if not ds.sources:
        return sql
    sources = list(ds.sources)
    status = {s: f"coalesce(c_{i}.status, 'complete')" for i, s in enumerate(sources)}
    joins = " ".join(
        f"LEFT JOIN (SELECT community_id, status FROM {view} WHERE source = '{s}') c_{i} "
        f"ON c_{i}.community_id = g.community_id" for i, s in enumerate(sources))
    replace = []
    for col in dict.fromkeys(c for cols in ds.sources.values() for c in cols):
        owners = [s for s in sources if col in ds.sources[s]]
        missing = " OR ".join(f"{status[s]} = 'missing'" for s in owners)
        replace.append(f"CASE WHEN {missing} THEN NULL ELSE g.{_q(col)} END AS {_q(col)}")
    worst = " , ".join(_RANK.format(s=status[s]) for s in sources)
    worst_expr = f"greatest({worst})" if len(sources) > 1 else _RANK.format(s=status[sources[0]])
    short = ", ".join(f"CASE WHEN {status[s]} IN ('missing', 'partial') THEN '{s}:' || {status[s]} END"
                      for s in sources)
    star = f"g.* REPLACE ({', '.join(replace)})" if replace else "g.*"
    return (f"SELECT {star}, "
            f"CASE {worst_expr} WHEN 3 THEN 'missing' WHEN 2 THEN 'partial' ELSE 'complete' END AS completeness, "
            f"nullif(concat_ws(',', {short}), '') AS incomplete_sources "
            f"FROM ({sql}) g {joins}")
