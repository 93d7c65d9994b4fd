"""Which publisher serves a consumer, and the push settings it is built with."""

from __future__ import annotations

from pathlib import Path

import pytest

from exports.publishers import PublisherConfigError, http_publisher_for
from kernel.settings import load_settings

from . import ACCESS_KEY, CONSUMER, SECRET_KEY


def _settings(tmp_path: Path, **extra: str):
    env = {
        "NEURON_MODE": "test",
        f"NEURON_PUBLISHER_{CONSUMER.upper()}": "https_push",
        f"NEURON_{CONSUMER.upper()}_URL": "https://rx.example.gov.cn",
        f"NEURON_{CONSUMER.upper()}_ACCESS_KEY": ACCESS_KEY,
        f"NEURON_{CONSUMER.upper()}_SECRET_KEY": SECRET_KEY,
        **extra,
    }
    return load_settings(env, data_dir=tmp_path)


def test_push_settings_reach_the_publisher(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        NEURON_PUBLISH_TIMEOUT_S="2.5",
        NEURON_PUBLISH_MAX_RETRIES="1",
        NEURON_PUBLISH_BACKOFF_S="0.1",
    )
    publisher = http_publisher_for(CONSUMER, settings)
    assert publisher is not None
    assert publisher.timeout == (2.5, 2.5)  # connect and read
    assert (publisher.max_retries, publisher.backoff_base) == (1, 0.1)
    assert publisher.receipts_dir == settings.outbox_dir / CONSUMER / "_receipts"


def test_filedrop_consumers_get_no_http_publisher(tmp_path: Path) -> None:
    settings = load_settings({"NEURON_MODE": "test"}, data_dir=tmp_path)
    assert http_publisher_for(CONSUMER, settings) is None


@pytest.mark.parametrize("value", ["0", "-3", "nan"])
def test_a_timeout_that_is_not_positive_names_the_variable(tmp_path: Path, value: str) -> None:
    with pytest.raises(PublisherConfigError, match="NEURON_PUBLISH_TIMEOUT_S"):
        http_publisher_for(CONSUMER, _settings(tmp_path, NEURON_PUBLISH_TIMEOUT_S=value))
