"""Canary residents: synthetic people planted in every simulated day so that a leak is caught by exact match.

Their names, phones, ID numbers, plates and person numbers must never appear past the landing zone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def id_check_char(body17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a resident ID number."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(body17, _ID_WEIGHTS, strict=True)) % 11]


@dataclass(frozen=True)
class Canary:
    name: str
    phone: str
    id_card: str
    plate: str
    person_number: str
    card_number: str


def canary_residents(seed: int, n: int = 3) -> list[Canary]:
    """Deterministic canary residents (same seed, same people every day, so leaks are traceable)."""
    rng = np.random.default_rng([seed, 4242])
    out = []
    for i in range(n):
        name = _SURNAMES[rng.integers(len(_SURNAMES))] + "".join(_GIVEN[j] for j in rng.integers(0, len(_GIVEN), 2))
        phone = f"1{rng.choice([3, 5, 7, 8, 9])}{rng.integers(0, 10**9):09d}"
        body = f"310107{1950 + rng.integers(0, 50)}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}{rng.integers(0, 1000):03d}"
        plate = "沪" + _PLATE_LETTERS[rng.integers(len(_PLATE_LETTERS))] + f"{rng.integers(0, 10**5):05d}"
        out.append(Canary(name=name, phone=phone, id_card=body + id_check_char(body), plate=plate,
                          person_number=f"CANARY{seed % 1000:03d}{i:03d}", card_number=f"{rng.integers(10**9, 10**10)}"))
    return out


def write_canaries(landing: Path, day: str, canaries: list[Canary]) -> Path:
    """``<landing>/_canaries/<day>.json`` in the scanner's format: ``{"canaries": [{kind, value}, ...]}``."""
    items = [{"kind": kind, "value": value} for c in canaries for kind, value in asdict(c).items()]
    path = landing / "_canaries" / f"{day}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"canaries": items}, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
