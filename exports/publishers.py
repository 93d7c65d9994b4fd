"""Which publisher delivers a consumer's batches: ``exports/consumers.yaml``, overridden by settings.

``NEURON_PUBLISHER_<CONSUMER>`` switches a consumer to ``https_push``; its endpoint and AK/SK come from
``NEURON_<CONSUMER>_URL``, ``_ACCESS_KEY`` and ``_SECRET_KEY`` (all resolved in ``kernel.settings``).

With districts (``NEURON_DISTRICTS``) each district pushes to a receiver of its own: ``NEURON_<CONSUMER>_URL_<DISTRICT>``
and its keys (``_ACCESS_KEY_<DISTRICT>``, ``_SECRET_KEY_<DISTRICT>``, else the consumer's). The push protocol names a
batch by consumer, dataset and day, so two districts pushing to one receiver would collide: refused.
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
    endpoint = settings.endpoint(consumer)
    if settings.districts:
        _check_district_endpoints(consumer, settings)
    if missing := endpoint.missing():
        raise PublisherConfigError(f"{consumer} publishes over https_push but {', '.join(missing)} is not set")
    if not settings.publish_timeout_s > 0:  # also NaN; 0 would mean "no timeout" to some HTTP stacks
        raise PublisherConfigError(f"NEURON_PUBLISH_TIMEOUT_S must be > 0 seconds, got {settings.publish_timeout_s}")
    # The timeout bounds connecting (TLS handshake included) and every wait for data, on every request of a push.
    return HttpPushPublisher(endpoint.url, endpoint.access_key, endpoint.secret_key,
                             receipts_dir_for(settings.outbox_dir, consumer),
                             max_retries=settings.publish_max_retries, backoff_base=settings.publish_backoff_s,
                             timeout=settings.publish_timeout_s)


def _check_district_endpoints(consumer: str, settings: Settings) -> None:
    """A district deployment pushes one district's batches, each district to a receiver of its own."""
    if not settings.district:
        raise PublisherConfigError(f"{consumer}: a deployment of districts pushes one district's batches; these "
                                   f"settings name no district (Settings.for_district)")
    def receiver(district: str) -> str:
        return settings.endpoint(consumer, district).url.strip().rstrip("/").lower()

    mine = receiver(settings.district)
    shared = [d for d in settings.districts if mine and receiver(d) == mine]
    if len(shared) > 1:
        # the protocol names a batch by consumer, dataset and day: the receiver would take the second district's
        # day as a conflicting version of the first's
        raise PublisherConfigError(
            f"{consumer}: districts {', '.join(shared)} would push to the same receiver, which names a batch by "
            f"consumer, dataset and day only: give each district its own, NEURON_{consumer.upper()}_URL_<DISTRICT> "
            f"(docs/scale.md)")
