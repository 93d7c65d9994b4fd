"""The collector's counters: what was received, acknowledged and rejected (by reason), per source and channel,
the bytes landed, and how long fsync takes (a Prometheus histogram). Thread-safe: the HTTP event loop, the MQTT
thread and the store's sync threads all count here. No label ever holds a record's content or a raw identifier.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from typing import Any

# seconds; fsync on a local SSD takes ~0.1-1 ms, a struggling disk tens of ms
FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = FSYNC_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the q-quantile (None before the first observation)."""
        if not self.n:
            return None
        rank, seen = q * self.n, 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank and c:
                return self.buckets[i] if i < len(self.buckets) else float("inf")
        return float("inf")


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.received: dict[tuple[str, str], int] = defaultdict(int)  # (source, channel)
        self.acknowledged: dict[tuple[str, str], int] = defaultdict(int)
        self.rejected: dict[tuple[str, str, str], int] = defaultdict(int)  # (source, channel, reason)
        self.bytes: dict[tuple[str, str], int] = defaultdict(int)  # landed bytes
        self.fsync = Histogram()
        self.fsync_errors = 0
        self.files_closed = 0
        self.files_recovered = 0
        self.torn_bytes_dropped = 0

    def count(self, table: str, key: tuple[str, ...], n: int = 1) -> None:
        with self._lock:
            getattr(self, table)[key] += n

    def received_one(self, source: str, channel: str) -> None:
        with self._lock:
            self.received[(source, channel)] += 1

    def acknowledged_one(self, source: str, channel: str, nbytes: int) -> None:
        with self._lock:
            self.acknowledged[(source, channel)] += 1
            self.bytes[(source, channel)] += nbytes

    def rejected_one(self, source: str, channel: str, reason: str) -> None:
        with self._lock:
            self.rejected[(source, channel, reason)] += 1

    def observe_fsync(self, seconds: float, ok: bool = True) -> None:
        with self._lock:
            self.fsync.observe(seconds)
            if not ok:
                self.fsync_errors += 1

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            def rows(table: dict, names: tuple[str, ...]) -> list[dict[str, Any]]:
                return [{**dict(zip(names, k, strict=True)), "n": v} for k, v in sorted(table.items())]
            return {
                "started": self.started,
                "received": rows(self.received, ("source", "channel")),
                "acknowledged": rows(self.acknowledged, ("source", "channel")),
                "rejected": rows(self.rejected, ("source", "channel", "reason")),
                "bytes": rows(self.bytes, ("source", "channel")),
                "fsync": {"count": self.fsync.n, "sum_s": round(self.fsync.total, 6),
                          "p50_s": self.fsync.quantile(0.5), "p99_s": self.fsync.quantile(0.99),
                          "errors": self.fsync_errors},
                "files_closed": self.files_closed,
                "files_recovered": self.files_recovered,
                "torn_bytes_dropped": self.torn_bytes_dropped,
            }

    def render(self, gauges: dict[str, float] | None = None) -> str:
        """Prometheus text exposition (version 0.0.4)."""
        out: list[str] = []

        def family(name: str, kind: str, help_: str) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")

        def labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
            return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, values, strict=True)) + "}"

        with self._lock:
            for name, table, help_ in (
                ("neuron_collector_received_total", self.received, "Pushes and messages received."),
                ("neuron_collector_acknowledged_total", self.acknowledged, "Acknowledged after fsync."),
                ("neuron_collector_landed_bytes_total", self.bytes, "Bytes landed (acknowledged)."),
            ):
                family(name, "counter", help_)
                for k, v in sorted(table.items()):
                    out.append(f"{name}{labels(('source', 'channel'), k)} {v}")
            family("neuron_collector_rejected_total", "counter", "Pushes rejected, by reason.")
            for k, v in sorted(self.rejected.items()):
                out.append(f"neuron_collector_rejected_total{labels(('source', 'channel', 'reason'), k)} {v}")
            family("neuron_collector_fsync_seconds", "histogram", "Duration of one (group) write+fsync.")
            seen = 0
            for bound, c in zip((*self.fsync.buckets, "+Inf"), self.fsync.counts, strict=True):
                seen += c
                out.append(f'neuron_collector_fsync_seconds_bucket{{le="{bound}"}} {seen}')
            out.append(f"neuron_collector_fsync_seconds_sum {self.fsync.total:.6f}")
            out.append(f"neuron_collector_fsync_seconds_count {self.fsync.n}")
            for name, value, help_ in (
                ("neuron_collector_fsync_errors_total", self.fsync_errors, "Failed writes or fsyncs (not acknowledged)."),
                ("neuron_collector_files_closed_total", self.files_closed, "Minute files closed and renamed."),
                ("neuron_collector_files_recovered_total", self.files_recovered, "Leftover .part files recovered."),
                ("neuron_collector_torn_bytes_dropped_total", self.torn_bytes_dropped,
                 "Bytes of torn (never acknowledged) last lines dropped at recovery."),
            ):
                family(name, "counter", help_)
                out.append(f"{name} {value}")
        for name, value in sorted((gauges or {}).items()):
            family(name, "gauge", name.replace("_", " "))
            out.append(f"{name} {value}")
        return "\n".join(out) + "\n"
