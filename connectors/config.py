"""Where the vendor platforms are and the credentials Neuron holds for them (``vendors.yaml``).

One file per deployment, read from ``NEURON_VENDORS_FILE`` (default ``$NEURON_DATA_DIR/connectors/vendors.yaml``),
mode 0600: it holds secrets. The vendor-platform simulator writes one for the platforms it serves.

```yaml
base_url: http://127.0.0.1:8700          # the platforms' host (one per estate in real life: per-community urls)
ctwing: {application: ..., secret: ...}  # the district's CTWing/AEP tenant
export_token: ...                        # bearer token of the file-export shares
push_tokens: {ctwing: ..., iotda: ..., isc: ...}   # secrets in the collector's push URLs
mqtt: {host: 127.0.0.1, port: 1883, topic_prefix: neuron/thingsboard}
communities:
  - {community_id: "310107001001", base_url: null, isc_app_key: ..., isc_app_secret: ...,
     viid_device_id: "3101070000120...", viid_password: ..., parking_app_id: ..., parking_app_secret: ...}
```
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml


class VendorConfigError(ValueError):
    pass


@dataclass(frozen=True)
class CommunityPlatforms:
    """One estate's platforms: ISC (access), a VIID platform (vehicle passages), a parking cloud."""

    community_id: str
    isc_app_key: str
    isc_app_secret: str
    viid_device_id: str
    viid_password: str
    parking_app_id: str
    parking_app_secret: str
    base_url: str | None = None  # None: the deployment's base_url

    def url(self, default: str) -> str:
        return (self.base_url or default).rstrip("/") + f"/{self.community_id}"


def _pull_limits(raw: Any) -> dict[str, dict[str, float]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise VendorConfigError("pull: must map a source to {rate_per_s, page_size}")
    out: dict[str, dict[str, float]] = {}
    for source, limits in raw.items():
        if not isinstance(limits, dict) or set(limits) - {"rate_per_s", "page_size"}:
            raise VendorConfigError(f"pull.{source}: only rate_per_s and page_size can be set")
        rate, size = limits.get("rate_per_s"), limits.get("page_size")
        if rate is not None and not (isinstance(rate, int | float) and 0 < rate <= 10_000):
            raise VendorConfigError(f"pull.{source}.rate_per_s must be a number in (0, 10000], not {rate!r}")
        if size is not None and not (isinstance(size, int) and 1 <= size <= 10_000):
            raise VendorConfigError(f"pull.{source}.page_size must be a whole number in 1..10000, not {size!r}")
        out[str(source)] = {k: v for k, v in limits.items() if v is not None}
    return out


@dataclass(frozen=True)
class VendorConfig:
    base_url: str
    ctwing_application: str
    ctwing_secret: str
    export_token: str
    push_tokens: dict[str, str]
    communities: tuple[CommunityPlatforms, ...]
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_topic_prefix: str = "neuron/thingsboard"
    extra: dict[str, Any] = field(default_factory=dict)
    # per pulled source, the limits agreed with its platform: {"telemetry": {"rate_per_s": 10, "page_size": 500}}
    pull_limits: dict[str, dict[str, float]] = field(default_factory=dict)

    def community(self, community_id: str) -> CommunityPlatforms:
        for c in self.communities:
            if c.community_id == community_id:
                return c
        raise VendorConfigError(f"community {community_id} has no platforms in the vendor config")

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "ctwing": {"application": self.ctwing_application, "secret": self.ctwing_secret},
            "export_token": self.export_token,
            "push_tokens": dict(self.push_tokens),
            "mqtt": {"host": self.mqtt_host, "port": self.mqtt_port, "topic_prefix": self.mqtt_topic_prefix},
            "communities": [asdict(c) for c in self.communities],
            **({"pull": {k: dict(v) for k, v in self.pull_limits.items()}} if self.pull_limits else {}),
        }

    def limits(self, source: str) -> tuple[float | None, int | None]:
        """``(rate_per_s, page_size)`` agreed for pulling ``source`` (None: the protocol's default)."""
        got = self.pull_limits.get(source) or {}
        rate, size = got.get("rate_per_s"), got.get("page_size")
        return (float(rate) if rate is not None else None, int(size) if size is not None else None)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> VendorConfig:
        try:
            mqtt = raw.get("mqtt") or {}
            return cls(
                base_url=str(raw["base_url"]).rstrip("/"),
                ctwing_application=str(raw["ctwing"]["application"]),
                ctwing_secret=str(raw["ctwing"]["secret"]),
                export_token=str(raw["export_token"]),
                push_tokens={str(k): str(v) for k, v in (raw.get("push_tokens") or {}).items()},
                communities=tuple(CommunityPlatforms(**{k: (str(v) if v is not None else None) for k, v in c.items()})
                                  for c in raw.get("communities") or ()),
                mqtt_host=str(mqtt.get("host", "127.0.0.1")),
                mqtt_port=int(mqtt.get("port", 1883)),
                mqtt_topic_prefix=str(mqtt.get("topic_prefix", "neuron/thingsboard")),
                pull_limits=_pull_limits(raw.get("pull")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VendorConfigError(f"vendor config is incomplete or malformed: {exc!r}") from None

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(self.to_dict(), handle, allow_unicode=True, sort_keys=False)
        os.chmod(path, 0o600)
        return path

    @classmethod
    def load(cls, path: Path) -> VendorConfig:
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise VendorConfigError(f"no vendor config at {path} (NEURON_VENDORS_FILE)") from None
        except yaml.YAMLError as exc:
            raise VendorConfigError(f"{path} is not YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise VendorConfigError(f"{path} must hold a mapping")
        return cls.from_dict(raw)
