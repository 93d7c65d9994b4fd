"""Which publisher delivers a consumer's batches: ``exports/consumers.yaml``, overridden by settings.

``NEURON_PUBLISHER_<CONSUMER>`` switches a consumer to ``https_push``; its endpoint and AK/SK come from
``NEURON_<CONSUMER>_URL``, ``_ACCESS_KEY`` and ``_SECRET_KEY`` (all resolved in ``kernel.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from exports.publishing import HttpPushPublisher, receipts_dir_for
from kernel.settings import Settings

CONSUMERS_FILE = Path(__file__).parent / "consumers.yaml"
PUBLISHERS = ("filedrop", "https_push")


class PublisherConfigError(ValueError):
    """A consumer's publisher is unknown or its endpoint/keys are missing; names the variable."""


@dataclass(frozen=True)
class ConsumerConfig:
    consumer: str
    title: str
    publisher: str


def load_consumers(settings: Settings, path: Path = CONSUMERS_FILE) -> dict[str, ConsumerConfig]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))["consumers"]
    out = {}
    for name, c in raw.items():
        publisher = settings.endpoint(name).publisher or c.get("publisher", "filedrop")
        if publisher not in PUBLISHERS:
            raise PublisherConfigError(f"{name}: publisher must be one of {PUBLISHERS}, got {publisher!r} "
                                       f"(NEURON_PUBLISHER_{name.upper()} or exports/consumers.yaml)")
        out[name] = ConsumerConfig(name, c.get("title", name), publisher)
    return out


def http_publisher_for(consumer: str, settings: Settings) -> HttpPushPublisher | None:
    """The HTTPS publisher for ``consumer``, or None when it is served by the file drop alone."""
    cfg = load_consumers(settings).get(consumer)
    if cfg is None or cfg.publisher != "https_push":
        return None
    if settings.districts:
        # every district would push its day's batch to the one endpoint under the same (dataset, day), and the
        # receiver would take the second district's as a conflicting version of the first's
        raise PublisherConfigError(
            f"{consumer} is served by https_push, but with NEURON_DISTRICTS every district would push its day under "
            f"the same dataset and day: the push protocol does not carry the district yet (docs/scale.md). Serve "
            f"{consumer} by the file drop (NEURON_PUBLISHER_{consumer.upper()}=filedrop) meanwhile")
    endpoint = settings.endpoint(consumer)
    if missing := endpoint.missing():
        raise PublisherConfigError(f"{consumer} publishes over https_push but {', '.join(missing)} is not set")
    if not settings.publish_timeout_s > 0:  # also NaN; 0 would mean "no timeout" to some HTTP stacks
        raise PublisherConfigError(f"NEURON_PUBLISH_TIMEOUT_S must be > 0 seconds, got {settings.publish_timeout_s}")
    # The timeout bounds connecting (TLS handshake included) and every wait for data, on every request of a push.
    return HttpPushPublisher(endpoint.url, endpoint.access_key, endpoint.secret_key,
                             receipts_dir_for(settings.outbox_dir, consumer),
                             max_retries=settings.publish_max_retries, backoff_base=settings.publish_backoff_s,
                             timeout=settings.publish_timeout_s)
