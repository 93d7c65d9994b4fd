"""A small declarative vocabulary of data-quality expectations, declared once next to each dataset's schema.

Pure data: nothing here imports great-expectations; ``quality.gx_runner`` translates specs to GX objects.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

Severity = Literal["ERROR", "WARN"]
Kind = Literal["not_null", "between", "in_set", "unique", "row_count_between", "regex", "sql"]

SEVERITIES: tuple[Severity, ...] = ("ERROR", "WARN")
# Kinds GX evaluates row by row, so a tolerated unexpected fraction (``mostly``) applies.
KINDS_WITH_MOSTLY: frozenset[str] = frozenset({"not_null", "between", "in_set", "unique"})


@dataclass(frozen=True)
class Spec:
    """One expectation: what to check, its Dagster check name and whether failing blocks publication.

    ``severity="ERROR"`` blocks downstream assets; ``"WARN"`` only informs. ``mostly`` is the fraction
    of non-null rows that must pass (1.0 = all); ``None`` for kinds where GX has no such threshold.
    """

    kind: Kind
    name: str
    severity: Severity
    description: str
    columns: tuple[str, ...] = ()
    mostly: float | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @property
    def column(self) -> str:
        if len(self.columns) != 1:
            raise ValueError(f"expectation {self.name!r} has {len(self.columns)} columns, not one")
        return self.columns[0]

    @property
    def blocking(self) -> bool:
        return self.severity == "ERROR"


def snake_name(text: str) -> str:
    """A Dagster-safe snake_case check name: lowercase letters, digits and underscores."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    if not name:
        raise ValueError(f"cannot derive a check name from {text!r}")
    return name


def _make(
    kind: Kind,
    default_name: str,
    default_description: str,
    *,
    name: str | None,
    severity: str,
    description: str | None,
    columns: Iterable[str] = (),
    mostly: float | None = None,
    **params: Any,
) -> Spec:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}; got {severity!r}")
    if mostly is not None and not 0.0 <= mostly <= 1.0:
        raise ValueError(f"mostly must be within [0, 1]; got {mostly!r}")
    if mostly is not None and mostly < 1.0:
        default_description += f" (in at least {mostly:.2%} of non-null rows)"
    return Spec(
        kind=kind,
        name=snake_name(name or default_name),
        severity=severity,  # type: ignore[arg-type]  # checked against SEVERITIES above
        description=description or default_description,
        columns=tuple(columns),
        mostly=mostly,
        params=MappingProxyType(dict(params)),
    )


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class Expect:
    """Factories for ``Spec``; each derives a stable check name from kind and column unless given."""

    @staticmethod
    def not_null(
        column: str,
        *,
        mostly: float = 1.0,
        severity: Severity = "ERROR",
        name: str | None = None,
        description: str | None = None,
    ) -> Spec:
        return _make(
            "not_null",
            f"{column}_not_null",
            f"`{column}` is never null",
            name=name,
            severity=severity,
            description=description,
            columns=[column],
            mostly=mostly,
        )

    @staticmethod
    def between(
        column: str,
        min_value: float | int | str | None = None,
        max_value: float | int | str | None = None,
        *,
        strict_min: bool = False,
        strict_max: bool = False,
        mostly: float = 1.0,
        severity: Severity = "ERROR",
        name: str | None = None,
        description: str | None = None,
    ) -> Spec:
        """Non-null values of ``column`` within the bounds (inclusive unless ``strict_*``); nulls are ignored."""
        if min_value is None and max_value is None:
            raise ValueError(f"between({column!r}) needs min_value, max_value or both")
        # Words, not "<=": descriptions are rendered as HTML in Data Docs.
        lo = f"{'greater than' if strict_min else 'at least'} {_fmt(min_value)}"
        hi = f"{'less than' if strict_max else 'at most'} {_fmt(max_value)}"
        if min_value is not None and max_value is not None and not (strict_min or strict_max):
            bounds = f"between {_fmt(min_value)} and {_fmt(max_value)}"
        else:
            bounds = " and ".join(b for b, v in ((lo, min_value), (hi, max_value)) if v is not None)
        return _make(
            "between",
            f"{column}_between",
            f"`{column}` is {bounds}",
            name=name,
            severity=severity,
            description=description,
            columns=[column],
            mostly=mostly,
            min_value=min_value,
            max_value=max_value,
            strict_min=strict_min,
            strict_max=strict_max,
        )

    @staticmethod
    def in_set(
        column: str,
        values: Iterable[Any],
        *,
        mostly: float = 1.0,
        severity: Severity = "ERROR",
        name: str | None = None,
        description: str | None = None,
    ) -> Spec:
        """Non-null values of ``column`` belong to ``values``; nulls are ignored (pair with not_null)."""
        value_set = tuple(values)
        if not value_set:
            raise ValueError(f"in_set({column!r}) needs at least one allowed value")
        shown = ", ".join(_fmt(v) for v in value_set[:8]) + (", …" if len(value_set) > 8 else "")
        return _make(
            "in_set",
            f"{column}_in_set",
            f"`{column}` is one of {shown}",
            name=name,
            severity=severity,
            description=description,
            columns=[column],
            mostly=mostly,
            value_set=value_set,
        )

    @staticmethod
    def unique(
        *columns: str,
        mostly: float = 1.0,
        severity: Severity = "ERROR",
        name: str | None = None,
        description: str | None = None,
    ) -> Spec:
        """One column unique among non-null values, or several columns unique as a compound key."""
        if not columns:
            raise ValueError("unique() needs at least one column")
        shown = ", ".join(f"`{c}`" for c in columns)
        return _make(
            "unique",
            "_".join(columns) + "_unique",
            f"{shown} {'is' if len(columns) == 1 else 'are together'} unique",
            name=name,
            severity=severity,
            description=description,
            columns=columns,
            mostly=mostly,
        )

    @staticmethod
    def row_count_between(
        min_value: int | None = None,
        max_value: int | None = None,
        *,
        severity: Severity = "ERROR",
        name: str | None = None,
        description: str | None = None,
    ) -> Spec:
        if min_value is None and max_value is None:
            raise ValueError("row_count_between needs min_value, max_value or both")
        if min_value is not None and max_value is not None:
            bounds = f"between {min_value} and {max_value}"
        else:
            bounds = f"at least {min_value}" if max_value is None else f"at most {max_value}"
        return _make(
            "row_count_between",
            "row_count_between",
            f"row count is {bounds}",
            name=name,
            severity=severity,
            description=description,
            min_value=min_value,
            max_value=max_value,
        )

    @staticmethod
    def regex(
        column: str,
        pattern: str,
        *,
        severity: Severity = "ERROR",
        name: str | None = None,
        description: str | None = None,
    ) -> Spec:
        """Non-null values of ``column`` contain a match of ``pattern`` (RE2 search; anchor with ^…$).

        Evaluated as SQL (DuckDB ``regexp_matches``) because GX's regex expectations do not support DuckDB;
        GX has no ``mostly`` threshold for SQL expectations, so any mismatch fails the check.
        """
        return _make(
            "regex",
            f"{column}_matches_regex",
            f"`{column}` matches /{pattern}/",
            name=name,
            severity=severity,
            description=description,
            columns=[column],
            pattern=pattern,
        )

    @staticmethod
    def sql(
        name: str,
        unexpected_rows_query: str,
        *,
        severity: Severity = "ERROR",
        description: str | None = None,
    ) -> Spec:
        """Fails when ``unexpected_rows_query`` returns rows; write ``{batch}`` for the validated data.

        Write plain SQL: ``{batch}`` is the only GX placeholder and the runner escapes every other brace
        for GX, so do not double braces yourself. ``@tz@`` stands for the partition time zone (filled in by
        ``localised`` when the checks are built). Select only the columns worth sampling.
        """
        if "{batch}" not in unexpected_rows_query:
            raise ValueError(f"sql({name!r}): the query must read from {{batch}}")
        one_line = " ".join(unexpected_rows_query.split())
        return _make(
            "sql",
            name,
            f"no rows returned by: {one_line[:120]}",
            name=name,
            severity=severity,
            description=description,
            query=unexpected_rows_query,
        )


def localised(spec: Spec, timezone: str) -> Spec:
    """``spec`` with ``@tz@`` in a SQL expectation replaced by the configured partition time zone."""
    query = spec.params.get("query")
    if spec.kind != "sql" or not query or "@tz@" not in query:
        return spec
    return replace(spec, params=MappingProxyType({**spec.params, "query": query.replace("@tz@", timezone)}))


def validate_specs(specs: Sequence[Spec]) -> None:
    """Raise ``ValueError`` if check names collide (they become Dagster check names)."""
    counts = Counter(spec.name for spec in specs)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate expectation names {duplicates}; pass name= to disambiguate")
