"""Which publisher delivers a consumer's batches, from ``exports/consumers.yaml`` and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from exports.publishing import HttpPushPublisher, receipts_dir_for

CONSUMERS_FILE = Path(__file__).parent / "consumers.yaml"
PUBLISHERS = ("filedrop", "https_push")


class PublisherConfigError(ValueError):
    """A consumer's publisher is unknown or its endpoint/keys are missing; names the variable."""


@dataclass(frozen=True)
class ConsumerConfig:
    consumer: str
    publisher: str
    url_env: str
    access_key_env: str
    secret_key_env: str


def load_consumers(path: Path = CONSUMERS_FILE, env: dict[str, str] | None = None) -> dict[str, ConsumerConfig]:
    env = dict(os.environ if env is None else env)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))["consumers"]
    out = {}
    for name, c in raw.items():
        publisher = env.get(f"NEURON_PUBLISHER_{name.upper()}", c.get("publisher", "filedrop"))
        if publisher not in PUBLISHERS:
            raise PublisherConfigError(f"{name}: publisher must be one of {PUBLISHERS}, got {publisher!r}")
        push = c.get("https_push", {})
        out[name] = ConsumerConfig(name, publisher, push.get("url_env", ""), push.get("access_key_env", ""),
                                   push.get("secret_key_env", ""))
    return out


def http_publisher_for(consumer: str, outbox: Path, env: dict[str, str] | None = None) -> HttpPushPublisher | None:
    """The HTTPS publisher for ``consumer``, or None when it is served by the file drop alone."""
    env = dict(os.environ if env is None else env)
    cfg = load_consumers(env=env).get(consumer)
    if cfg is None or cfg.publisher != "https_push":
        return None
    missing = [v for v in (cfg.url_env, cfg.access_key_env, cfg.secret_key_env) if not env.get(v)]
    if missing:
        raise PublisherConfigError(f"{consumer} publishes over https_push but {', '.join(missing)} is not set")
    return HttpPushPublisher(env[cfg.url_env], env[cfg.access_key_env], env[cfg.secret_key_env],
                             receipts_dir_for(outbox, consumer),
                             max_retries=int(env.get("NEURON_PUBLISH_MAX_RETRIES", "4")),
                             backoff_base=float(env.get("NEURON_PUBLISH_BACKOFF_S", "0.5")))
