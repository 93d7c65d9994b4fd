"""Publishing exported batches to consumers: the batch/receipt model, AK/SK signing, HTTP push, versions."""

from exports.publishing.batch import (
    Batch,
    BatchError,
    BatchFile,
    BatchIntegrityError,
    Publisher,
    Receipt,
    idempotency_key,
)
from exports.publishing.http_push import (
    HttpPushPublisher,
    NeuronAuth,
    PublishError,
    PublishFailed,
    PublishRejected,
)
from exports.publishing.signing import SignatureError, sign_request, verify_request
from exports.publishing.versions import VersionDecision, decide_version, receipts_dir_for, stamp_for_consumer

__all__ = [
    "Batch",
    "BatchError",
    "BatchFile",
    "BatchIntegrityError",
    "HttpPushPublisher",
    "NeuronAuth",
    "PublishError",
    "PublishFailed",
    "PublishRejected",
    "Publisher",
    "Receipt",
    "SignatureError",
    "VersionDecision",
    "decide_version",
    "idempotency_key",
    "receipts_dir_for",
    "sign_request",
    "stamp_for_consumer",
    "verify_request",
]
