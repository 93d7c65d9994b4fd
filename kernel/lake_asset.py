"""One template for every lake asset: declared outputs and reads in, a Dagster asset with policy applied out.

A domain writes its step as a plain function of a ``Step`` (the partition day, a DuckDB with every read
opened as a view, the resource) and declares what it writes and reads::

    @lake_asset(GATE_FLOW_HOURLY, reads={"silver": ACCESS_SILVER, "doors": ACCESS_DOORS})
    def gold_gate_flow_hourly(step: Step) -> dict:
        ...

The factory derives key, group, kinds, deps (from the reads, so the two cannot disagree; a read of an
earlier day becomes a ``TimeWindowPartitionMapping``), ``dagster/column_schema`` from the declaration, and
adds row count (read back from the written partition), elapsed time and, for gold, a preview. A declared
output the step did not write fails the step: an absent partition is never an empty one.
"""

# No ``from __future__ import annotations``: Dagster inspects the context and resource annotations.
import inspect
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from kernel.accounting import account, accounting_check_spec
from kernel.dataset import Dataset
from kernel.disclosure import DEFAULT_K, Disclosure
from kernel.io import create_view, scan_sql, write_dataset, write_frame
from kernel.lake import remove_paths
from kernel.metadata import asset_key, column_schema, preview
from kernel.partitions import DATE, DISTRICT, day_of
from kernel.priorities import op_tags
from kernel.resource import NeuronResource
from kernel.runs import claim_day
from kernel.settings import Settings
from kernel.sqlfile import render

KINDS = frozenset({"duckdb", "parquet"})


@dataclass(frozen=True)
class Read:
    """An upstream partition a step opens as a view; ``days_back=1`` reads the previous day's partition."""

    dataset: Dataset
    days_back: int = 0


@dataclass(frozen=True)
class Area:
    """What the root hands every area's builder: the partitions and the policy that applies across the graph."""

    partitions: dg.PartitionsDefinition  # daily, or date × district (kernel.partitions)
    k_thresholds: Mapping[str, int] = field(default_factory=dict)  # dataset key -> strictest contract k
    # dataset key -> the disclosure method its contracts name (suppression with the strictest k if none)
    disclosures: Mapping[str, Disclosure] = field(default_factory=dict)
    # the pool of the heavy ingest steps (the parsers: steps that write a quarantine), None for no pool
    ingest_pool: str | None = None
    # dataset key -> the upward rank of the step writing it (kernel.priorities): which ready step starts first
    ranks: Mapping[str, int] = field(default_factory=dict)

    def k(self, ds: Dataset) -> int:
        return self.k_thresholds.get(ds.key, DEFAULT_K)

    @property
    def timezone(self) -> str:
        """The time zone of the partitions' days."""
        p = self.partitions
        return (p.time_window_dimension.partitions_def if isinstance(p, dg.MultiPartitionsDefinition) else p).timezone

    def disclosure(self, ds: Dataset) -> Disclosure:
        return self.disclosures.get(ds.key) or Disclosure("suppression", k=self.k(ds))


def _days_back(days: int, partitions: dg.PartitionsDefinition | None) -> dg.PartitionMapping:
    """An input read ``days`` before the partition's day: a time-window mapping, or with districts (date ×
    district) that mapping on the date and the same district."""
    window = dg.TimeWindowPartitionMapping(start_offset=-days, end_offset=-days)
    if not isinstance(partitions, dg.MultiPartitionsDefinition):
        return window
    return dg.MultiPartitionMapping({
        DATE: dg.DimensionPartitionMapping(DATE, window),
        DISTRICT: dg.DimensionPartitionMapping(DISTRICT, dg.IdentityPartitionMapping())})


def code_references(fn: Callable, sql_dir: Path) -> dict[str, dg.CodeReferencesMetadataValue]:
    """``dagster/code_references``: the step function and the SQL files of its folder it renders (UI: "Open in
    editor"). Local file references: a deployment that links to its git host maps them with
    ``dg.link_code_references_to_git`` in the root."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # code references are beta in 1.13; opted in on purpose
        return _code_references(fn, sql_dir)


def _code_references(fn: Callable, sql_dir: Path) -> dict[str, dg.CodeReferencesMetadataValue]:
    refs: list[dg.LocalFileCodeReference] = []
    try:
        lines, first = inspect.getsourcelines(fn)
        refs.append(dg.LocalFileCodeReference(file_path=inspect.getsourcefile(fn) or "", line_number=first,
                                              label=f"{fn.__name__} ({len(lines)} lines)"))
    except (OSError, TypeError):
        return {}
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = ""
    for sql in sorted(sql_dir.glob("*.sql")):
        if f'"{sql.name}"' in source:
            refs.append(dg.LocalFileCodeReference(file_path=str(sql), line_number=1, label=sql.name))
    return {"dagster/code_references": dg.CodeReferencesMetadataValue(code_references=refs)}


def day_profile(con: duckdb.DuckDBPyConnection, ds: Dataset, files: list[str], tz: str) -> dict[str, object]:
    """What a day's partition covers, for every lake asset: communities, and the local time range of its first
    timestamp column (counts and times only, never a value from a record's identity)."""
    cols = {c.name: c.type for c in ds.columns}
    ts = next((n for n, t in cols.items() if t.startswith("TIMESTAMP")), None)
    items = [*(["count(DISTINCT community_id) AS communities"] if "community_id" in cols else []),
             *([f'strftime(min(timezone(\'{tz}\', "{ts}")), \'%Y-%m-%d %H:%M\') AS first_local',
                f'strftime(max(timezone(\'{tz}\', "{ts}")), \'%Y-%m-%d %H:%M\') AS last_local']
               if ts and cols[ts] == "TIMESTAMPTZ" else []),
             *([f'strftime(min("{ts}"), \'%Y-%m-%d %H:%M\') AS first_local',
                f'strftime(max("{ts}"), \'%Y-%m-%d %H:%M\') AS last_local'] if ts and cols[ts] == "TIMESTAMP" else [])]
    if not items or not files:
        return {}
    listed = ", ".join(f"'{f}'" for f in files)
    rel = con.sql(f"SELECT {', '.join(items)} FROM read_parquet([{listed}])")
    values = dict(zip(rel.columns, rel.fetchall()[0], strict=True))
    out: dict[str, object] = {}
    if "communities" in values:
        out["communities"] = int(values["communities"])
    if values.get("first_local"):
        out[f"{ts}_range_local"] = f"{values['first_local']} .. {values['last_local']} ({tz})"
    return out


def previous_day(day: str, days_back: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=days_back)).isoformat()


class Step:
    """One run of a lake asset for one partition."""

    def __init__(self, context: dg.AssetExecutionContext, neuron: NeuronResource, area: Area,
                 decl: "LakeAsset") -> None:
        self.context = context
        self.neuron = neuron
        self.area = area
        self.decl = decl
        self.day: str = day_of(context.partition_key)
        self.settings: Settings = neuron.settings
        self.lake = neuron.lake
        self.tz = self.settings.timezone
        claim_day(context.instance, context.run_id, self.day, self.settings.leases_dir, self.settings.district)
        self.con: duckdb.DuckDBPyConnection = neuron.duckdb()
        self.checks: list[dg.AssetCheckResult] = []
        self.rows: dict[str, int] = {
            name: create_view(self.con, name, self.lake, r.dataset, previous_day(self.day, r.days_back))
            for name, r in decl.reads.items()}

    @property
    def output(self) -> Dataset:
        return self.decl.outputs[0]

    @property
    def landing_dir(self) -> Path:
        return self.settings.landing_dir

    def k(self, ds: Dataset | None = None) -> int:
        return self.area.k(ds or self.output)

    def disclosure(self, ds: Dataset | None = None) -> Disclosure:
        return self.area.disclosure(ds or self.output)

    def sql(self, name: str, **params: object) -> str:
        """The text of ``<name>`` in the domain's SQL folder with ``@param@`` placeholders filled."""
        return render(self.decl.sql_dir / name, **params)

    def scalar(self, sql: str) -> Any:
        return self.con.execute(sql).fetchall()[0][0]

    def files(self, ds: Dataset) -> list[str]:
        return self.lake.files(ds.layer, ds.name, self.day)

    def read(self, ds: Dataset) -> str:
        """A relation over this day's written partition of ``ds`` (for metadata computed after a write)."""
        return f"({scan_sql(self.lake, ds, self.day)})"

    def write(self, sql: str, ds: Dataset | None = None, order_by: str | None = None) -> int:
        ds = ds or self.output
        return write_dataset(self.con, self.lake, ds, self.day, sql, order_by=order_by or ds.order_by)

    def write_frame(self, frame: object, ds: Dataset | None = None, order_by: str | None = None) -> int:
        ds = ds or self.output
        return write_frame(self.con, self.lake, ds, self.day, frame, order_by=order_by or ds.order_by)

    @contextmanager
    def staged(self, sql: str) -> Iterator[str]:
        """Materialise ``sql`` once to a spill file and yield a relation over it (read by several queries)."""
        tmp = self.settings.duckdb_tmp / f"{self.decl.name}_{self.day}_{time.monotonic_ns()}.parquet"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        remove_paths(tmp.parent.glob(f"{self.decl.name}_{self.day}_*.parquet"))  # a killed run of this step's
        try:
            self.con.execute(f"COPY ({sql}) TO '{tmp}' (FORMAT parquet)")
            yield f"read_parquet('{tmp}')"
        finally:
            tmp.unlink(missing_ok=True)

    def account(self, ds: Dataset, *, accepted: int, duplicates_cross_file: int, quarantined: int | None = None,
                silver: Dataset | None = None, check_name: str = "", **kw: Any) -> dg.AssetCheckResult:
        """Row accounting of one source (``kernel.accounting.account``), recorded as this step's check."""
        silver = silver or self.output
        check = account(self.con, self.lake, ds, self.day, accepted=accepted,
                        quarantined=self.rows["quarantine"] if quarantined is None else quarantined,
                        duplicates_cross_file=duplicates_cross_file, asset_key=asset_key(silver),
                        check_name=check_name or self.decl.check_name(silver), **kw)
        self.checks.append(check)
        return check


StepFn = Callable[[Step], "Mapping[Any, Any] | None"]


@dataclass(frozen=True)
class LakeAsset:
    """A declared lake step, built into a Dagster asset by ``build`` once the root supplies an ``Area``."""

    fn: StepFn
    outputs: tuple[Dataset, ...]
    reads: Mapping[str, Read]
    landing: tuple[str, ...]
    accounting: tuple[tuple[Dataset, str], ...]  # (silver dataset, source suffix of the check name)
    sql_dir: Path
    description: str | None
    cost: int = 1  # relative work, for the run's step order (kernel.priorities)

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def parses(self) -> bool:
        """A parser of landing files: it writes a quarantine (the heavy, memory-hungry steps)."""
        return any(ds.layer == "quarantine" for ds in self.outputs)

    def check_name(self, silver: Dataset) -> str:
        return next(spec.name for spec in self.check_specs() if spec.asset_key == asset_key(silver))

    def check_specs(self) -> list[dg.AssetCheckSpec]:
        return [accounting_check_spec(asset_key(ds), source) for ds, source in self.accounting]

    def deps(self, partitions: dg.PartitionsDefinition | None = None) -> list[dg.AssetDep]:
        out = [dg.AssetDep(dg.AssetKey(["landing", s])) for s in self.landing]
        for r in self.reads.values():
            if not r.dataset.asset or r.dataset in self.outputs:
                continue
            mapping = _days_back(r.days_back, partitions) if r.days_back else None
            out.append(dg.AssetDep(asset_key(r.dataset), partition_mapping=mapping))
        unique: dict[dg.AssetKey, dg.AssetDep] = {}
        for dep in out:
            unique.setdefault(dep.asset_key, dep)
        return list(unique.values())

    def build(self, area: Area) -> dg.AssetsDefinition:
        deps = self.deps(area.partitions)
        specs = [dg.AssetSpec(asset_key(ds), deps=deps, group_name=ds.group, kinds=set(KINDS),
                              description=(self.description if i == 0 and self.description else ds.description),
                              metadata={"dagster/column_schema": column_schema(ds), "grain": ds.grain,
                                        **code_references(self.fn, self.sql_dir)})
                 for i, ds in enumerate(self.outputs)]
        decl = self

        @dg.multi_asset(name=self.name, specs=specs, check_specs=self.check_specs(), partitions_def=area.partitions,
                        pool=area.ingest_pool if self.parses else None, description=self.fn.__doc__,
                        op_tags=op_tags(area.ranks, self.outputs[0].key))
        def _step(context: dg.AssetExecutionContext, neuron: NeuronResource):
            t0 = time.monotonic()
            step = Step(context, neuron, area, decl)
            returned = decl.fn(step) or {}
            per_output = ({k.key: v for k, v in returned.items()}
                          if returned and all(isinstance(k, Dataset) for k in returned)
                          else {decl.outputs[0].key: returned})
            elapsed = round(time.monotonic() - t0, 3)
            for ds in decl.outputs:
                rows = step.lake.partition_rows(ds.layer, ds.name, step.day)
                if rows is None:
                    raise dg.Failure(f"{decl.name} did not write {ds.key} for {step.day}")
                metadata = {"dagster/row_count": rows, "elapsed_s": elapsed,
                            **(day_profile(step.con, ds, step.files(ds), step.tz) if rows else {}),
                            **per_output.get(ds.key, {})}
                if ds.layer == "gold":
                    metadata["preview"] = preview(step.con, step.files(ds))
                yield dg.MaterializeResult(asset_key=asset_key(ds), metadata=metadata)
            yield from step.checks

        return _step


def lake_asset(*outputs: Dataset, reads: Mapping[str, Dataset | Read] | None = None,
               landing: Sequence[str] = (), accounting: Sequence[Dataset | tuple[Dataset, str]] = (),
               sql_dir: Path | None = None, description: str | None = None, cost: int = 1
               ) -> Callable[[StepFn], LakeAsset]:
    """Declare a lake step writing ``outputs`` (the first is its main output) from ``reads`` and ``landing``.

    ``accounting`` lists the silver outputs that carry a blocking ``row_accounting`` check (a tuple adds a
    source suffix to the check name). ``sql_dir`` defaults to the folder of the module defining the step.
    ``cost``: the step's work relative to a small step's 1 (parsers, heavy silver steps: seconds per 60
    communities), which orders the run's ready steps (``kernel.priorities``).
    """
    if not outputs:
        raise ValueError("a lake asset writes at least one dataset")

    def wrap(fn: StepFn) -> LakeAsset:
        module_file = getattr(sys.modules.get(fn.__module__), "__file__", None)  # None for `python -c` code
        module_dir = Path(module_file).parent if module_file else Path.cwd()
        return LakeAsset(
            fn=fn, outputs=tuple(outputs),
            reads={n: r if isinstance(r, Read) else Read(r) for n, r in (reads or {}).items()},
            landing=tuple(landing),
            accounting=tuple(a if isinstance(a, tuple) else (a, "") for a in accounting),
            sql_dir=sql_dir or module_dir, description=description, cost=cost)

    return wrap
