"""The dataset declaration: one per lake dataset, feeding the writer, suppression, suites, contracts and dictionary.

Each domain declares its datasets in ``assets/<domain>/datasets.py`` with these primitives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kernel.expectations import Expect, Spec

# Exact figures of protected gold tables, readable by the data team only (Dataset.internal)
INTERNAL_LAYER = "internal"

# How a column relates to personal data; only "token" columns may hold identifier-derived values.
PII_NONE = "none"
PII_TOKEN = "token"  # keyed HMAC token (pseudonymous; still personal data under PIPL art. 73)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True
    pii: str = PII_NONE


@dataclass(frozen=True)
class Dataset:
    layer: str
    name: str
    grain: str
    description: str
    columns: tuple[Column, ...]
    domain: str
    partitioned: bool = True
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    # great-expectations suite, run as Dagster asset checks (ERROR blocks publication downstream)
    suite: tuple[Spec, ...] = ()
    # how a partition is sorted when written
    order_by: str | None = None
    # the grain: columns that identify a row (the dimensions of a suppressed grid)
    keys: tuple[str, ...] = ()
    # people counts: published only as 0 or >= k, nulled together on suppressed rows (k from the contracts)
    counts: tuple[str, ...] = ()
    # rates, averages, medians computed from those people: nulled with them
    derived: tuple[str, ...] = ()
    # totals published elsewhere that suppression must protect (groupings of ``keys``)
    margins: tuple[tuple[str, ...], ...] = ()
    # (part, whole) pairs of counts: a perturbed part is clamped to its whole (visitors never exceed passes)
    subsets: tuple[tuple[str, str], ...] = ()
    # False for datasets written as a side product of another asset (row accounting), not assets themselves
    asset: bool = True
    # landing source -> the measure columns that come from it: the table carries kernel.completeness's columns
    # and those measures are NULL (never zero) on the rows of a community whose source is missing
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.sources:
            return
        names = self.column_names
        if unknown := sorted({c for cols in self.sources.values() for c in cols} - set(names)):
            raise ValueError(f"{self.layer}/{self.name}: sources name undeclared columns {unknown}")
        if "community_id" not in names:
            raise ValueError(f"{self.layer}/{self.name}: completeness is per community; declare community_id")
        # declaring sources adds the completeness columns, and a measure of a missing source is NULL
        measures = {c for cols in self.sources.values() for c in cols}
        columns = tuple(Column(c.name, c.type, c.description, True, c.pii) if c.name in measures else c
                        for c in self.columns if c.name not in COMPLETENESS_NAMES)
        object.__setattr__(self, "columns", columns + COMPLETENESS_COLUMNS)
        object.__setattr__(self, "suite", tuple(_unless_missing(spec, measures) for spec in self.suite))

    @property
    def key(self) -> str:
        return f"{self.layer}/{self.name}"

    def internal(self) -> Dataset:
        """``internal/<name>``: the exact figures of a protected gold table, for the data team only (the lake's
        ``internal`` folder is owner-only; the warehouse puts it in a separate file), never exported."""
        return Dataset(
            INTERNAL_LAYER, self.name, self.grain,
            f"Exact figures of gold/{self.name} before disclosure control (data team only, never published). "
            + self.description, self.columns, self.domain, self.partitioned, dict(self.tags), keys=self.keys,
            order_by=self.order_by, asset=False, sources=dict(self.sources))

    @property
    def group(self) -> str:
        """Dagster group: domain and layer (quarantine and audit datasets sit with the bronze step)."""
        return f"{self.domain}_{self.layer if self.layer in ('silver', 'gold') else 'bronze'}"

    @property
    def suppressed(self) -> bool:
        return bool(self.counts)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def select_list(self) -> str:
        """``CAST(col AS type) AS col, ...``: the declared projection, used when writing a partition."""
        return ", ".join(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in self.columns)

    def empty_sql(self, extra: str = "") -> str:
        """A typed zero-row relation with the declared columns (``extra``: more ``expr AS name`` items)."""
        cols = ", ".join(f'CAST(NULL AS {c.type}) AS "{c.name}"' for c in self.columns)
        return f"SELECT {cols}{', ' + extra if extra else ''} WHERE false"


def C(name: str, type_: str, description: str, nullable: bool = True, pii: str = PII_NONE) -> Column:
    return Column(name, type_, description, nullable, pii)



# Where a bronze or quarantine row came from.
LINEAGE = (
    C("source_file", "VARCHAR", "Landing file the record came from (relative to the landing root)", False),
    C("source_line", "BIGINT", "1-based line number in the landing file", False),
)

# Every gold table that counts people carries these two columns, filled by quality.suppression.suppress.
SUPPRESSION_COLUMNS = (
    C("suppressed", "BOOLEAN", "True when the row's counts are withheld (fewer than k contributors, or "
      "withheld so that such a cell cannot be recomputed from totals); always false under the cell key method, "
      "which perturbs every count instead", False),
    C("suppression", "VARCHAR", "primary | complementary | correction | null: why the row's counts are withheld "
      "(correction: an earlier version hid the row, or its counts changed by fewer than k since)"),
)


# Every gold table declaring ``sources`` carries these two columns (kernel.completeness fills them).
COMPLETENESS_COLUMNS = (
    C("completeness", "VARCHAR", "complete | partial | missing: the worst status of this row's sources for its "
      "community on the day (audit/completeness); measures from a missing source are NULL, never zero", False),
    C("incomplete_sources", "VARCHAR", "source:status for each source of this row that is not complete "
      "(e.g. telemetry:missing), comma separated; NULL when complete"),
)
COMPLETENESS_NAMES = tuple(c.name for c in COMPLETENESS_COLUMNS)


def _unless_missing(spec: Spec, measures: set[str]) -> Spec:
    """A not-null rule on a measure of a declared source holds on the rows whose source delivered: a missing
    source's measures are NULL by design (kernel.completeness). Same check name, so history carries on."""
    if spec.kind != "not_null" or spec.column not in measures:
        return spec
    col = spec.column.replace('"', '""')
    return Expect.sql(spec.name, f'SELECT * FROM {{batch}} WHERE "{col}" IS NULL AND completeness <> \'missing\'',
                      severity=spec.severity,
                      description=f"{spec.description} (except where its source is missing: NULL, never zero)")


def small_cells_suppressed(counts: tuple[str, ...], k: int) -> Spec:
    """The suite rule every suppressed gold table shares: no unsuppressed people count between 1 and k-1."""
    small = " OR ".join(f'"{c}" BETWEEN 1 AND {k - 1}' for c in counts)
    return Expect.sql("small_cells_suppressed", f"SELECT * FROM {{batch}} WHERE NOT suppressed AND ({small})",
                      description=f"no published count of {', '.join(counts)} is between 1 and {k - 1} (k={k})")


def accounting_dataset(source: str) -> Dataset:
    """``audit/row_accounting_<source>``: one row per partition proving landed = accepted + quarantined + dups.

    One dataset per source so that each domain writes its own partition; the warehouse unions them all in
    the view ``audit.row_accounting``. Accepted records are those in silver plus those a parser routed to
    another dataset instead (access events of other abilities go to ``bronze/access_other_events``).
    """
    return Dataset(
        "audit", f"row_accounting_{source}", "one row per source per partition",
        f"Row conservation for {source}: landed = accepted + quarantined + duplicates.",
        (
            C("source", "VARCHAR", "Source", False),
            C("files", "BIGINT", "Landing files read", False),
            C("lines", "BIGINT", "Non-blank landing lines (or CSV rows) read", False),
            C("landed", "BIGINT", "Records landed", False),
            C("accepted", "BIGINT", "Records in silver, or routed to a bronze dataset of their own "
              "(access: access_other_events)", False),
            C("quarantined", "BIGINT", "Records in quarantine", False),
            C("duplicates_in_file", "BIGINT", "Duplicates dropped within a file (bronze)", False),
            C("duplicates_cross_file", "BIGINT", "Duplicates dropped across files (silver)", False),
            C("balanced", "BOOLEAN", "landed = accepted + quarantined + duplicates", False),
            C("computed_at", "TIMESTAMPTZ", "When the accounting was computed", False),
        ),
        domain=source, asset=False,
    )


def ingest_dataset(name: str, domain: str, description: str, extra: tuple[Column, ...] = ()) -> Dataset:
    """``audit/<name>``: what a bronze parser read, one row per source and partition.

    The core columns are shared by every parser (the inputs of row accounting); ``extra`` adds a domain's
    own counters (face artefacts seen, files quarantined whole...), before ``computed_at``.
    """
    return Dataset(
        "audit", name, "one row per source per partition", description,
        (
            C("source", "VARCHAR", "Source", False),
            C("files", "BIGINT", "Landing files read", False),
            C("lines", "BIGINT", "Non-blank lines (JSON) or data rows (CSV) read", False),
            C("landed", "BIGINT", "Records landed", False),
            C("bronze_rows", "BIGINT", "Rows written to bronze", False),
            C("quarantined", "BIGINT", "Rows written to quarantine", False),
            C("duplicates_in_file", "BIGINT", "Exact re-sends dropped within a file", False),
            *extra,
            C("computed_at", "TIMESTAMPTZ", "When the parse finished", False),
        ),
        domain=domain,
    )
