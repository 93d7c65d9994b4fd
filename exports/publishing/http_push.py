"""Push a file-drop batch to a district receiver over HTTPS: init, chunked upload, commit, receipt.
Every attempt is freshly signed; 5xx/network errors are retried with backoff, 4xx never (except that
``409 batch_committed`` means another push of the same batch won the race: its receipt is fetched).
What is pushed carries the consumer's version chain (``versions.stamp_for_consumer``), not the outbox's."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.auth

from exports.publishing.batch import Batch, BatchIntegrityError, Receipt
from exports.publishing.signing import sign_request
from exports.publishing.versions import stamp_for_consumer, write_receipt

MiB = 1024 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
BATCH_COMMITTED = "batch_committed"

Timeout = float | tuple[float, float]


class PublishError(Exception):
    """Base class: the batch was not published (no receipt was written)."""


class PublishRejected(PublishError):
    """The receiver refused the request (4xx). Retrying the same request will not help."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        self.method, self.url, self.status, self.body = method, url, status, body
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        self.error: str | None = parsed.get("error") if isinstance(parsed, dict) else None
        self.reasons: list[str] = list(parsed.get("reasons") or []) if isinstance(parsed, dict) else []
        super().__init__(f"{method} {url} rejected with HTTP {status}: {body[:2000]}")


class PublishFailed(PublishError):
    """The receiver could not be reached or kept failing (5xx / timeouts) after every retry."""

    def __init__(self, method: str, url: str, attempts: int, last_error: str) -> None:
        self.method, self.url, self.attempts, self.last_error = method, url, attempts, last_error
        super().__init__(f"{method} {url} failed after {attempts} attempt(s): {last_error}")


class NeuronAuth(requests.auth.AuthBase):
    """``requests`` auth that signs each prepared request (for tools and tests; the publisher signs itself)."""

    def __init__(self, access_key: str, secret_key: str) -> None:
        self.access_key, self._secret_key = access_key, secret_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes):
            raise TypeError("NeuronAuth can only sign bytes or str bodies, not streams")
        request.headers.update(
            sign_request(
                request.method or "GET",
                request.path_url,
                body,
                access_key=self.access_key,
                secret_key=self._secret_key,
            )
        )
        return request


class HttpPushPublisher:
    """Push batches to one receiver (one consumer); ``receipts_dir`` is ``<outbox>/<consumer>/_receipts``."""

    name = "http_push"

    def __init__(
        self,
        base_url: str,
        access_key: str,
        secret_key: str,
        receipts_dir: Path | str,
        chunk_bytes: int = 4 * MiB,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        timeout: Timeout = 10,
        *,
        verify: bool | str = True,
        allow_http: bool = False,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if parts.scheme == "http" and not allow_http and parts.hostname not in _LOOPBACK_HOSTS:
            raise ValueError("plain http is only allowed to loopback hosts unless allow_http=True")
        timeouts = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        bad_timeout = len(timeouts) != 2 or not all(t > 0 for t in timeouts)  # `not > 0` also catches NaN
        if chunk_bytes < 1 or max_retries < 0 or backoff_base < 0 or bad_timeout:
            raise ValueError(
                "chunk_bytes >= 1, max_retries >= 0, backoff_base >= 0 and timeout > 0 (seconds, or a "
                "(connect, read) pair of them) required"
            )
        self.base_url = base_url.rstrip("/")
        self.access_key = access_key
        self._secret_key = secret_key
        self.receipts_dir = Path(receipts_dir)
        self.chunk_bytes = chunk_bytes
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        # (connect, read) for every request: connecting (TLS handshake included) and each wait for data.
        self.timeout: tuple[float, float] = (float(timeouts[0]), float(timeouts[1]))
        self.verify = verify
        self._session = session or requests.Session()
        self._sleep = sleep

    def __repr__(self) -> str:  # keeps the secret out of logs
        return f"HttpPushPublisher(base_url={self.base_url!r}, access_key={self.access_key!r})"

    def publish(self, batch: Batch) -> Receipt:
        """Deliver ``batch`` and return the receiver's receipt (also written under ``receipts_dir``).

        ``batch`` is the outbox batch; it is pushed restamped with this consumer's version chain: v1 if the
        consumer never acknowledged a version of the partition, else a correction of the last acknowledged
        version (see ``versions.stamp_for_consumer``). The receipt carries the pushed (consumer) version.
        Content the consumer already acknowledged is re-sent under its acknowledged version, and the receiver
        answers with the original receipt.
        """
        pushed = stamp_for_consumer(self.receipts_dir, batch)
        receipt = self._checked_receipt(pushed, self._push(pushed))
        write_receipt(self.receipts_dir, receipt)
        return receipt

    def _init(self, batch: Batch) -> dict[str, Any]:
        init = self._json(
            "POST",
            "/v1/batches",
            {"contract_id": batch.contract_id, "manifest": batch.manifest},
            headers={IDEMPOTENCY_HEADER: batch.idempotency_key},
        )
        if not isinstance(init, dict):
            raise PublishFailed("POST", self._url("/v1/batches"), 1, f"init answered {init!r}, not an object")
        return init

    @staticmethod
    def _committed(init: dict[str, Any]) -> dict[str, Any] | None:
        receipt = init.get("receipt")
        return receipt if init.get("status") == "committed" and isinstance(receipt, dict) else None

    def _push(self, batch: Batch) -> Any:
        """init -> chunks -> commit; returns the receipt data (not yet checked against the batch)."""
        init = self._init(batch)
        if (receipt_data := self._committed(init)) is not None:
            return receipt_data
        batch_id = str(init.get("batch_id", ""))
        if not batch_id:
            raise PublishFailed(
                "POST", self._url("/v1/batches"), 1, f"init answered without batch_id: {init}"
            )
        # The receiver advertises its per-chunk limit; never send more than that.
        advertised = init.get("max_chunk_bytes")
        chunk_bytes = (
            min(self.chunk_bytes, advertised)
            if isinstance(advertised, int) and advertised > 0
            else self.chunk_bytes
        )
        try:
            chunk_counts = [
                {"path": f.path, "chunks": self._upload_file(batch, batch_id, f.path, f.sha256, chunk_bytes)}
                for f in batch.files
            ]
            return self._json(
                "POST", f"/v1/batches/{quote(batch_id, safe='')}/commit", {"files": chunk_counts}
            )
        except PublishRejected as exc:
            if exc.status != 409 or exc.error != BATCH_COMMITTED:
                raise
            # Another push of this very batch (same Idempotency-Key) committed the session first, e.g. two
            # runs of the same day. That is success: ask for the receipt under the key, never upload again.
            return self._receipt_of_committed(batch, exc)

    def _receipt_of_committed(self, batch: Batch, cause: PublishRejected) -> dict[str, Any]:
        init = self._init(batch)
        if (receipt_data := self._committed(init)) is None:
            raise PublishFailed(
                "POST",
                self._url("/v1/batches"),
                1,
                f"{cause.method} {cause.url} answered {BATCH_COMMITTED}, but the receiver has no receipt for "
                f"Idempotency-Key {batch.idempotency_key} (init answered {init})",
            ) from cause
        return receipt_data

    def _upload_file(
        self, batch: Batch, batch_id: str, name: str, expected_sha256: str, chunk_bytes: int
    ) -> int:
        """PUT the file in ``chunk_bytes`` pieces (an empty file is one empty chunk); returns the chunk count."""
        digest = hashlib.sha256()
        index = 0
        base = f"/v1/batches/{quote(batch_id, safe='')}/files/{quote(name, safe='')}/chunks"
        with batch.file_path(name).open("rb") as fh:
            while True:
                chunk = fh.read(chunk_bytes)
                if not chunk and index > 0:
                    break
                digest.update(chunk)
                self._request(
                    "PUT", f"{base}/{index}", chunk, headers={"Content-Type": "application/octet-stream"}
                )
                index += 1
                if len(chunk) < chunk_bytes:
                    break
        if digest.hexdigest() != expected_sha256:
            raise BatchIntegrityError(f"{batch.root / name} changed while it was being uploaded")
        return index

    def _checked_receipt(self, batch: Batch, data: Any) -> Receipt:
        try:
            receipt = Receipt.from_dict(data)
        except (TypeError, ValueError, KeyError) as exc:
            raise PublishFailed(
                "POST", self.base_url, 1, f"receiver returned an invalid receipt: {exc}"
            ) from exc
        expected = (batch.consumer, batch.dataset, batch.partition, batch.version, batch.idempotency_key)
        actual = (
            receipt.consumer,
            receipt.dataset,
            receipt.partition,
            receipt.version,
            receipt.idempotency_key,
        )
        if actual != expected or receipt.detail.get("content_sha256") != batch.content_sha256:
            raise PublishFailed("POST", self.base_url, 1, f"receipt does not match the batch: {receipt}")
        return receipt

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _json(self, method: str, path: str, payload: Any, *, headers: dict[str, str] | None = None) -> Any:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        response = self._request(
            method, path, body, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            return response.json()
        except ValueError as exc:
            raise PublishFailed(
                method, self._url(path), 1, f"non-JSON {response.status_code} answer"
            ) from exc

    def _request(self, method: str, path: str, body: bytes, *, headers: dict[str, str]) -> requests.Response:
        url = self._url(path)
        last_error = ""
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                self._sleep(self.backoff_base * 2 ** (attempt - 1))
            # A fresh date and nonce per attempt: a retried request must not look like a replay.
            signed = sign_request(method, url, body, access_key=self.access_key, secret_key=self._secret_key)
            try:
                response = self._session.request(
                    method,
                    url,
                    data=body,
                    headers={**headers, **signed},
                    timeout=self.timeout,
                    verify=self.verify,
                    allow_redirects=False,
                )
            except requests.exceptions.SSLError as exc:
                raise PublishFailed(method, url, attempt + 1, f"TLS error: {exc}") from exc
            except _RETRYABLE as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500:
                last_error = f"HTTP {response.status_code}: {response.text[:500]}"
                continue
            if response.status_code >= 300:
                raise PublishRejected(method, url, response.status_code, response.text)
            return response
        raise PublishFailed(method, url, attempts, last_error)
