"""Export contracts: one YAML per published dataset, validated when the code location loads.

A contract's columns must be ``stat_date`` plus exactly the columns and types of its gold source dataset,
so the published shape cannot drift from the declared one without a visible contract change. Every column has
a ``title_zh`` (the CSV header; unique within the contract) and the contract states its publication ``cycle``
(``{period: daily, covers: day}`` or ``{period: monthly, publish_day: N, covers: previous_month}``).

A ``{period: continuous, covers: event}`` contract is a feed (``public_security.incidents``): each record is pushed
as it happens (``exports.publishing.incident_push``), there is no daily batch, and its source is the feed that
produces the records, not a lake dataset. ``load_contracts()`` returns the batch contracts only (what the export,
publish, warehouse and check machinery is built from); ``load_contracts(include_continuous=True)`` adds the feeds.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml

from assets.registry import datasets as declared_datasets
from exports.publishing.contract_doc import ContractDocError, row_schema, title_problems
from kernel.dataset import Dataset
from kernel.disclosure import METHODS, Disclosure
from quality.cellkey import PTable, PTableError

CONTRACTS_DIR = Path(__file__).parent / "contracts"
REQUIRED = (
    "id",
    "version",
    "consumer",
    "dataset",
    "source",
    "title_zh",
    "title_en",
    "owner",
    "grain",
    "update_cycle",
    "cycle",
    "k_threshold",
    "key_columns",
    "catalogue",
    "columns",
)
CATALOGUE_REQUIRED = (
    "resource_code",
    "resource_name",
    "provider",
    "provider_code",
    "share_type",
    "share_method",
    "update_cycle",
)
COLUMN_REQUIRED = ("name", "type", "nullable", "title_zh", "description_zh", "description_en")
# period -> what the batch dated D covers (continuous: no batch; each record covers one event)
CYCLES = {"daily": "day", "monthly": "previous_month", "continuous": "event"}
CONTINUOUS = "continuous"


class ContractError(ValueError):
    """A contract file is incomplete or disagrees with the dataset it publishes."""


@dataclass(frozen=True)
class Contract:
    raw: dict
    path: Path

    @property
    def id(self) -> str:
        return self.raw["id"]

    @property
    def consumer(self) -> str:
        return self.raw["consumer"]

    @property
    def dataset(self) -> str:
        return self.raw["dataset"]

    @property
    def version(self) -> str:
        return str(self.raw["version"])

    @property
    def source(self) -> str:
        return self.raw["source"]

    @property
    def columns(self) -> list[dict]:
        return self.raw["columns"]

    @property
    def key_columns(self) -> list[str]:
        return list(self.raw["key_columns"])

    @property
    def k_threshold(self) -> int:
        return int(self.raw["k_threshold"])

    @property
    def counts_people(self) -> bool:
        return bool(self.raw.get("counts_people", False))

    @property
    def disclosure(self) -> Disclosure:
        """The method that protects the people counts (suppression with ``k_threshold`` when none is named)."""
        raw = self.raw.get("disclosure") or {}
        if raw.get("method", "suppression") == "cell_key":
            return Disclosure("cell_key", k=self.k_threshold, max_deviation=int(raw["max_deviation"]),
                              variance=float(raw["variance"]), js=int(raw.get("js", 0)))
        return Disclosure("suppression", k=self.k_threshold)

    @property
    def cycle(self) -> str:
        """``daily``, ``monthly`` or ``continuous``."""
        return self.raw["cycle"]["period"]

    @property
    def is_continuous(self) -> bool:
        """A feed pushed record by record: no daily batch, no export or publish asset."""
        return self.cycle == CONTINUOUS

    @property
    def publish_day(self) -> int | None:
        """Day of the month a monthly contract publishes on (None for a daily one)."""
        return int(self.raw["cycle"]["publish_day"]) if self.cycle == "monthly" else None

    def is_publication_day(self, day: str) -> bool:
        """Whether the batch dated ``day`` exists under this contract's cycle (never for a continuous feed)."""
        if self.is_continuous:
            return False
        return self.cycle == "daily" or date.fromisoformat(day).day == self.publish_day

    def next_publication_day(self, day: str) -> str:
        """The first publication day on or after ``day`` (a continuous feed has none: ``ContractError``)."""
        self._require_batches()
        d = date.fromisoformat(day)
        if self.is_publication_day(day):
            return day
        assert self.publish_day is not None
        if d.day < self.publish_day:
            return d.replace(day=self.publish_day).isoformat()
        return (d.replace(day=1) + timedelta(days=32)).replace(day=self.publish_day).isoformat()

    def covered_period(self, day: str) -> dict[str, str]:
        """The period the batch dated ``day`` (a publication day) reports on: the day itself, or the closed
        month before the publication day's month. A continuous feed has no batch: ``ContractError``."""
        self._require_batches()
        if self.cycle == "daily":
            return {"cycle": "daily", "start": day, "end": day}
        first = (date.fromisoformat(day).replace(day=1) - timedelta(days=1)).replace(day=1)
        last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        return {"cycle": "monthly", "start": first.isoformat(), "end": last.isoformat()}

    def _require_batches(self) -> None:
        if self.is_continuous:
            raise ContractError(f"{self.id} is a continuous feed: it has no daily batch and no publication day")

    @property
    def titles(self) -> dict[str, str]:
        """English column name -> ``title_zh`` (the CSV header cell)."""
        return {c["name"]: c["title_zh"] for c in self.columns}

    @property
    def count_columns(self) -> list[str]:
        """Columns that count people: published only as 0 or >= k, or withheld (null) on suppressed rows."""
        return list(self.raw.get("count_columns") or [])


def validate(raw: dict, path: Path, datasets: dict[str, Dataset] | None = None) -> Contract:
    """A contract checked against the declaration of the dataset it publishes (the registry's by default)."""
    datasets = declared_datasets() if datasets is None else datasets
    where = f"{path.name}"
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise ContractError(f"{where}: missing fields {missing}")
    cat_missing = [k for k in CATALOGUE_REQUIRED if k not in raw["catalogue"]]
    if cat_missing:
        raise ContractError(f"{where}: catalogue is missing {cat_missing}")
    for col in raw["columns"]:
        gaps = [k for k in COLUMN_REQUIRED if k not in col]
        if gaps:
            raise ContractError(f"{where}: column {col.get('name')} is missing {gaps}")
    if problems := title_problems(raw):
        raise ContractError(f"{where}: " + "; ".join(problems))
    if cycle_problem := _cycle_problem(raw["cycle"]):
        raise ContractError(f"{where}: {cycle_problem}")
    try:
        row_schema(raw)
    except ContractDocError as exc:
        raise ContractError(f"{where}: {exc}") from exc
    if raw["id"] != f"{raw['consumer']}.{raw['dataset']}":
        raise ContractError(f"{where}: id must be <consumer>.<dataset>, got {raw['id']}")
    if path.parent.name != raw["consumer"] or path.stem != raw["dataset"]:
        raise ContractError(f"{where}: file must live at contracts/{raw['consumer']}/{raw['dataset']}.yaml")
    if problems := _value_rule_problems(raw["columns"]):
        raise ContractError(f"{where}: " + "; ".join(problems))
    if raw["cycle"]["period"] == CONTINUOUS:
        return _validate_feed(raw, path)
    src = datasets.get(raw["source"])
    if src is None:
        raise ContractError(f"{where}: source {raw['source']} is not a declared dataset")
    expected = [("stat_date", "DATE")] + [(c.name, c.type) for c in src.columns]
    got = [(c["name"], c["type"]) for c in raw["columns"]]
    if got != expected:
        raise ContractError(f"{where}: columns {got} do not match stat_date + {raw['source']} {expected}")
    unknown_keys = [k for k in raw["key_columns"] if k not in dict(got)]
    if unknown_keys:
        raise ContractError(f"{where}: key columns {unknown_keys} are not columns")
    if "counts_people" not in raw:
        raise ContractError(f"{where}: counts_people must say whether the dataset counts people")
    if raw["counts_people"]:
        names = dict(got)
        if "suppressed" not in names:
            raise ContractError(f"{where}: counts people, so {raw['source']} must carry the suppression columns")
        counted = raw.get("count_columns") or []
        if not counted or [c for c in counted if c not in names]:
            raise ContractError(f"{where}: counts people, so count_columns must list its people counts "
                                f"(got {counted})")
        if sorted(counted) != sorted(src.counts):
            raise ContractError(f"{where}: count_columns {counted} differ from the people counts {list(src.counts)} "
                                f"declared for {raw['source']}")
        disclosure_problem = _disclosure_problem(raw.get("disclosure"))
        if disclosure_problem:
            raise ContractError(f"{where}: {disclosure_problem}")
    elif src.counts:
        raise ContractError(f"{where}: {raw['source']} declares people counts {list(src.counts)}, so the contract "
                            "must say counts_people: true")
    return Contract(raw, path)


def _validate_feed(raw: dict, path: Path) -> Contract:
    """A continuous contract: its source is the feed producing the records (not a lake dataset, so there is no
    declaration to match the columns against), its key names a record, and it carries no people counts (a feed
    publishes single events; counts are protected in the daily batches only)."""
    where = path.name
    names = [c["name"] for c in raw["columns"]]
    if len(set(names)) != len(names):
        raise ContractError(f"{where}: duplicate column names in {names}")
    if not raw["key_columns"] or [k for k in raw["key_columns"] if k not in names]:
        raise ContractError(f"{where}: key columns {raw['key_columns']} must be columns of the feed")
    if [c for c in raw["columns"] if c["name"] in raw["key_columns"] and c["nullable"]]:
        raise ContractError(f"{where}: key columns of a feed cannot be nullable")
    if "counts_people" not in raw or raw["counts_people"] or raw.get("count_columns") or raw.get("disclosure"):
        raise ContractError(f"{where}: a continuous feed publishes single events: counts_people must be false, "
                            "without count_columns or disclosure")
    return Contract(raw, path)


def _value_rule_problems(columns: list[dict]) -> list[str]:
    """The optional per-column value rules (used by the feed's receiver): ``values``, a non-empty list of the
    allowed strings, and ``pattern``, a regular expression every non-null value matches."""
    problems = []
    for col in columns:
        values = col.get("values")
        if values is not None and (not isinstance(values, list) or not values
                                   or not all(isinstance(v, str) for v in values)):
            problems.append(f"column {col['name']}: values must be a non-empty list of strings")
        if (pattern := col.get("pattern")) is not None:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                problems.append(f"column {col['name']}: pattern {pattern!r} is not a regular expression ({exc})")
    return problems


def _cycle_problem(raw: object) -> str | None:
    """What is wrong with a contract's ``cycle`` block (None: a period with a valid publication rule)."""
    if not isinstance(raw, dict) or raw.get("period") not in CYCLES:
        return f"cycle.period must be one of {', '.join(CYCLES)} (got {raw!r})"
    if raw.get("covers") != CYCLES[raw["period"]]:
        return f"a {raw['period']} batch covers {CYCLES[raw['period']]}: cycle.covers must say so (got {raw.get('covers')!r})"
    day = raw.get("publish_day")
    if raw["period"] == "monthly":
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 28:
            return f"a monthly cycle needs publish_day between 1 and 28, a day every month has (got {day!r})"
    elif day is not None:
        what = "a daily cycle publishes every day" if raw["period"] == "daily" else "a continuous feed has no batch"
        return f"{what}: publish_day is for monthly cycles"
    return None


def _disclosure_problem(raw: object) -> str | None:
    """What is wrong with a contract's ``disclosure`` block (None: it names a method with valid parameters)."""
    if not isinstance(raw, dict) or raw.get("method") not in METHODS:
        return f"counts people, so disclosure.method must be one of {', '.join(METHODS)} (got {raw!r})"
    if raw["method"] == "cell_key":
        missing = [k for k in ("max_deviation", "variance") if k not in raw]
        if missing:
            return f"disclosure: cell_key needs {missing}"
        try:
            PTable(int(raw["max_deviation"]), float(raw["variance"]), int(raw.get("js", 0)))
        except (PTableError, TypeError, ValueError) as exc:
            return f"disclosure: {exc}"
    return None


def load_contracts(
    root: Path = CONTRACTS_DIR, datasets: dict[str, Dataset] | None = None, *, include_continuous: bool = False
) -> list[Contract]:
    """Every contract under ``root``, each validated (a broken feed contract fails here too). Returns the batch
    contracts (daily, monthly), from which the export, publish, warehouse and check machinery is built, and with
    ``include_continuous`` the continuous feeds as well."""
    contracts = [
        validate(yaml.safe_load(p.read_text(encoding="utf-8")), p, datasets) for p in sorted(root.glob("*/*.yaml"))
    ]
    ids = [c.id for c in contracts]
    if len(ids) != len(set(ids)):
        raise ContractError(f"duplicate contract ids: {ids}")
    return contracts if include_continuous else batch_contracts(contracts)


def batch_contracts(contracts: Iterable[Contract]) -> list[Contract]:
    """The contracts published as daily batches (daily and monthly cycles): continuous feeds left out."""
    return [c for c in contracts if not c.is_continuous]


def k_thresholds(contracts: list[Contract]) -> dict[str, int]:
    """Per published dataset key, the strictest (largest) k among the contracts that publish it."""
    out: dict[str, int] = {}
    for c in contracts:
        out[c.source] = max(out.get(c.source, 0), c.k_threshold)
    return out


def disclosures(contracts: list[Contract]) -> dict[str, Disclosure]:
    """Per published people-count dataset, the disclosure method of its contracts (they must agree: one gold
    table is protected once). Suppression takes the strictest k."""
    out: dict[str, Disclosure] = {}
    for c in contracts:
        if not c.counts_people:
            continue
        mine, seen = c.disclosure, out.get(c.source)
        if seen is None:
            out[c.source] = mine
        elif seen.is_cell_key or mine.is_cell_key:
            if seen != mine:
                raise ContractError(f"{c.path.name}: {c.source} is published by several contracts that name "
                                    f"different disclosure methods or parameters ({seen} vs {mine})")
        elif mine.k > seen.k:
            out[c.source] = mine
    return out
