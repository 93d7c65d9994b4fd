"""One HTTP client for every vendor: timeouts, retries with backoff that honour ``Retry-After``, a per-vendor
rate limit, and the platform's clock (from its ``Date`` header) for signatures when ours is off.

Retried: connection errors, timeouts, 429, 5xx. Not retried: other 4xx (a protocol error is ours to fix); an
authentication failure the protocol marks as a clock problem is retried once with the platform's clock
(``Clock.correct``). Every attempt is recorded for provenance.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests


class PullError(RuntimeError):
    """The platform could not be read (after retries); the message says which request and why."""


@dataclass
class Attempt:
    url: str
    status: int | None
    error: str | None
    elapsed_s: float
    at_ms: int


class RateLimiter:
    """A token bucket: at most ``rate`` requests per second (bursts of ``burst``), shared by threads."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        self.rate, self.burst = rate, max(1, burst)
        self._tokens = float(self.burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
            self._tokens -= 1
        if wait:
            time.sleep(wait)
        return wait


class Clock:
    """Milliseconds as the platform counts them: ours plus the offset learnt from its ``Date`` header."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    def correct(self, response: requests.Response) -> bool:
        """Adopt the platform's clock from ``response``; False when it sent no usable ``Date``."""
        date = response.headers.get("Date")
        if not date:
            return False
        try:
            theirs = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return False
        self.offset_ms = int(theirs * 1000 - time.time() * 1000)
        return True


@dataclass
class Retry:
    attempts: int = 6
    backoff_s: float = 0.2
    max_backoff_s: float = 10.0
    max_retry_after_s: float = 60.0
    timeout_s: float = 10.0


@dataclass
class HttpClient:
    """Requests with retries for one vendor platform."""

    retry: Retry = field(default_factory=Retry)
    limiter: RateLimiter | None = None
    session: requests.Session = field(default_factory=requests.Session)
    attempts: list[Attempt] = field(default_factory=list)
    sleep: Callable[[float], None] = time.sleep

    def request(self, method: str, url: str, *, prepare: Callable[[], dict[str, Any]],
                clock_error: Callable[[requests.Response], bool] | None = None,
                clock: Clock | None = None) -> requests.Response:
        """Send ``method url`` with the keyword arguments ``prepare()`` returns (called per attempt, so each
        attempt is signed afresh); returns the first response that is not retried."""
        clock_fixed = False
        last = "no attempt"
        for attempt in range(1, self.retry.attempts + 1):
            if self.limiter:
                self.limiter.acquire()
            started = time.monotonic()
            try:
                response = self.session.request(method, url, timeout=self.retry.timeout_s, **prepare())
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}"
                self._record(url, None, last, started)
                self._back_off(attempt, None)
                continue
            self._record(url, response.status_code, None, started)
            if clock_error and clock and not clock_fixed and clock_error(response) and clock.correct(response):
                clock_fixed = True  # re-sign with the platform's clock, once, without using up a retry
                response = self.session.request(method, url, timeout=self.retry.timeout_s, **prepare())
                self._record(url, response.status_code, "clock corrected", started)
            if response.status_code == 429 or response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                self._back_off(attempt, response)
                continue
            return response
        raise PullError(f"{method} {url.split('?')[0]} failed after {self.retry.attempts} attempts: {last}")

    def _record(self, url: str, status: int | None, error: str | None, started: float) -> None:
        self.attempts.append(Attempt(url.split("?")[0], status, error, round(time.monotonic() - started, 4),
                                     int(time.time() * 1000)))

    def _back_off(self, attempt: int, response: requests.Response | None) -> None:
        if attempt >= self.retry.attempts:
            return
        wait = min(self.retry.max_backoff_s, self.retry.backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random())
        if response is not None and response.headers.get("Retry-After"):
            wait = max(wait, _retry_after(response.headers["Retry-After"], self.retry.max_retry_after_s))
        self.sleep(wait)


def _retry_after(value: str, cap: float) -> float:
    try:
        return min(cap, max(0.0, float(value)))
    except ValueError:
        try:
            return min(cap, max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time()))
        except (TypeError, ValueError):
            return 0.0
