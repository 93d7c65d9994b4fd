"""Every domain, found by folder: ``assets/<domain>/definitions.py`` exposing ``domain``.

Adding a domain is adding a folder; nothing here or in the root names a domain.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path

from kernel.dataset import Dataset
from kernel.domain import Domain

_HERE = Path(__file__).parent


@functools.cache
def domains() -> tuple[Domain, ...]:
    """The domains under ``assets/``, in name order."""
    found = []
    for info in sorted(pkgutil.iter_modules([str(_HERE)]), key=lambda i: i.name):
        if info.ispkg and (_HERE / info.name / "definitions.py").exists():
            module = importlib.import_module(f"assets.{info.name}.definitions")
            domain = getattr(module, "domain", None)
            if not isinstance(domain, Domain):
                raise TypeError(f"assets/{info.name}/definitions.py must define `domain = Domain(...)`")
            found.append(domain)
    return tuple(found)


@functools.cache
def datasets() -> dict[str, Dataset]:
    """Every declared lake dataset by key (``layer/name``); a key declared twice is an error."""
    out: dict[str, Dataset] = {}
    for domain in domains():
        for ds in domain.datasets:
            if ds.key in out:
                raise ValueError(f"{ds.key} is declared twice (domains {out[ds.key].domain} and {domain.name})")
            out[ds.key] = ds
            if ds.layer == "gold" and ds.counts:  # a protected table: its exact twin for the data team
                twin = ds.internal()
                out[twin.key] = twin
    return out
