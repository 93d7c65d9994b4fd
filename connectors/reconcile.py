"""What was pushed against what the platform holds, per source, day and scope.

Push alone loses data (CTWing drops a receiver's pushes for a minute after too many failures, formats.md §1.6),
so a pushed source is reconciled by pulling the platform's history for the day: the pull lands only the records
no push delivered (``pull_day(..., already_landed=pushed keys)``). This module counts, from the landing files
themselves (not from what the pull believes it wrote):

* ``pushed``: distinct records in the collector's ``push-*`` files;
* ``reconciled``: distinct records in the ``pull-*`` files that no push delivered;
* ``platform_total``: distinct records the platform's history returned for the day (from the pull's provenance);
* ``pushed_not_in_history``: pushed records the history does not hold (malformed lines, test pushes).

The check is ``pushed - pushed_not_in_history + reconciled == platform_total``: every record the platform holds
is in the landing zone, whichever way it came.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from connectors.keys import file_keys
from connectors.landing import WIRE, write_atomic

PUSH_PREFIX = "push-"
PULL_PREFIX = "pull-"


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def landed_keys(landing: Path, source: str, day: str, scope: str, prefix: str) -> set[str]:
    folder = landing / source / day / scope
    keys: set[str] = set()
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name.startswith(prefix) and not path.name.startswith("."):
                keys.update(file_keys(source, _read(path), path.name))
    return keys


@dataclass
class Reconciliation:
    source: str
    day: str
    scope: str
    pushed: int
    reconciled: int
    platform_total: int
    pushed_not_in_history: int

    @property
    def balanced(self) -> bool:
        return self.pushed - self.pushed_not_in_history + self.reconciled == self.platform_total


def history_keys_path(landing: Path, source: str, day: str, scope: str) -> Path:
    return landing / WIRE / source / day / scope / "_history_keys.json"


def save_history_keys(landing: Path, source: str, day: str, scope: str, keys: set[str]) -> None:
    """The platform's distinct records of the day (keys only: sha256 of records, nothing readable)."""
    write_atomic(history_keys_path(landing, source, day, scope), json.dumps(sorted(keys)).encode())


def reconcile(landing: Path, source: str, day: str, scope: str) -> Reconciliation:
    try:
        history = set(json.loads(history_keys_path(landing, source, day, scope).read_text()))
    except FileNotFoundError:
        history = set()
    pushed = landed_keys(landing, source, day, scope, PUSH_PREFIX)
    pulled = landed_keys(landing, source, day, scope, PULL_PREFIX)
    return Reconciliation(source, day, scope, pushed=len(pushed), reconciled=len(pulled - pushed),
                          platform_total=len(history), pushed_not_in_history=len(pushed - history))


def as_dict(r: Reconciliation) -> dict:
    return {**asdict(r), "balanced": r.balanced}


def day_reconciliations(landing: Path, day: str) -> list[Reconciliation]:
    """Every scope the pull reconciled on ``day`` (those with the platform's history keys), by source and scope."""
    out = []
    for path in sorted((landing / WIRE).glob(f"*/{day}/*/_history_keys.json")):
        source, scope = path.parent.parent.parent.name, path.parent.name
        out.append(reconcile(landing, source, day, scope))
    return out
