"""The vendor platforms' faults, switchable while the simulator runs (docs/connectors.md, "Faults").

One ``Faults`` object is shared by the server (pull faults, read on every request) and the push sender (push
faults). Every fault is deterministic: which request is rate-limited, which records arrive late, which page
drifts follow from counters and record hashes, never from a random draw. ``Faults.parse`` reads the CLI form
``"rate_limit=5,page_drift,late_share=0.1"``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any


class FaultSpecError(ValueError):
    pass


@dataclass
class Faults:
    # --- pull side (the server) -----------------------------------------------------------------------------
    down: bool = False  # the listening socket is closed: clients see "connection refused"
    slow_s: float = 0.0  # every vendor request sleeps this long before it is answered
    rate_limit: int = 0  # every n-th vendor request answers 429 with Retry-After (0: off)
    retry_after_s: int = 1  # the Retry-After of a 429
    error_burst: int = 0  # the next n vendor requests answer 503 (counts down)
    page_drift: bool = False  # once per window: after page 1, a record of page 2 moves to page 1
    duplicate_pages: bool = False  # page n+1 starts with the last record of page n
    late_share: float = 0.0  # share of the records received in the last 10 min of an hour that arrive late
    clock_skew_s: float = 0.0  # the platform's clock (signature checks, Date header) is off by this much
    # --- push side (the sender) -----------------------------------------------------------------------------
    push_cooldown_minute: int | None = None  # minute of the local day (0..1439) whose pushes are never sent
    burst: int = 0  # n pushes (from the busiest minute) are sent at once
    # observers of a change (the server switches its listener on ``down``); not a fault
    _observers: list[Callable[[str, Any], None]] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name.startswith("_") or "_observers" not in self.__dict__:
            return
        for observer in list(self._observers):
            observer(name, value)

    def observe(self, callback: Callable[[str, Any], None]) -> None:
        self._observers.append(callback)

    def unobserve(self, callback: Callable[[str, Any], None]) -> None:
        if callback in self._observers:
            self._observers.remove(callback)

    def validate(self) -> Faults:
        if self.slow_s < 0 or self.rate_limit < 0 or self.error_burst < 0 or self.burst < 0 or self.retry_after_s < 0:
            raise FaultSpecError("slow_s, rate_limit, retry_after_s, error_burst and burst must be >= 0")
        if not 0.0 <= self.late_share <= 1.0:
            raise FaultSpecError(f"late_share must be within [0, 1], not {self.late_share}")
        if self.push_cooldown_minute is not None and not 0 <= self.push_cooldown_minute < 1440:
            raise FaultSpecError(f"push_cooldown_minute must be a minute of the day (0..1439 or HH:MM), "
                                 f"not {self.push_cooldown_minute}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _NAMES}

    def update(self, changes: dict[str, Any]) -> Faults:
        """Apply ``{name: value}`` (values as JSON or CLI text give them); raises ``FaultSpecError``."""
        parsed = {name: _coerce(name, value) for name, value in changes.items()}
        Faults(**{**self.to_dict(), **parsed})  # validates before anything changes
        for name, value in parsed.items():
            setattr(self, name, value)
        return self

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        """``"down,slow_s=2,rate_limit=5,push_cooldown_minute=08:30"``: a bare name switches a flag on."""
        faults = cls()
        if not spec:
            return faults
        changes: dict[str, Any] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            name, sep, value = part.partition("=")
            changes[name.strip()] = value.strip() if sep else True
        return faults.update(changes)


_NAMES = {f.name: f for f in fields(Faults) if not f.name.startswith("_")}


def _coerce(name: str, value: Any) -> Any:
    if name not in _NAMES:
        raise FaultSpecError(f"unknown fault {name!r} (known: {', '.join(sorted(_NAMES))})")
    kind = _NAMES[name].type
    try:
        if name == "push_cooldown_minute":
            if value is None or value == "" or value is False:
                return None
            text = str(value)
            if ":" in text:
                hh, mm = text.split(":", 1)
                return int(hh) * 60 + int(mm)
            return int(text)
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
    except (TypeError, ValueError):
        raise FaultSpecError(f"fault {name}: {value!r} is not a {kind}") from None
    return value


class FaultCounter:
    """Counts of requests per route and status, and of every fault applied (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, dict[int, int]] = {}
        self.faults: dict[str, int] = {}

    def request(self, route: str, status: int) -> None:
        with self._lock:
            per = self.requests.setdefault(route, {})
            per[status] = per.get(status, 0) + 1

    def fault(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.faults[name] = self.faults.get(name, 0) + n

    def count(self, route: str, status: int | None = None) -> int:
        with self._lock:
            per = self.requests.get(route, {})
            return sum(per.values()) if status is None else per.get(status, 0)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": {r: {str(s): n for s, n in sorted(p.items())} for r, p in sorted(self.requests.items())},
                    "faults": dict(sorted(self.faults.items()))}
