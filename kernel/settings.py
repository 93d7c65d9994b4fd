"""Every runtime setting of Neuron in one typed place: the only module that reads (or writes) the environment.

All runtime state lives under one data root (``./data`` by default); each sub-root can be moved on its own.
Other modules receive a ``Settings`` (through the Dagster resource, or from the definitions loader) and
never look at ``os.environ`` themselves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

MODES = ("demo", "test", "production")
# variables that move one part of the data root; unset, each part follows NEURON_DATA_DIR
SUBROOT_VARIABLES = ("NEURON_LANDING_DIR", "NEURON_LAKE_DIR", "NEURON_LAKE_URI", "NEURON_WAREHOUSE_PATH",
                     "NEURON_OUTBOX_DIR", "NEURON_OUTBOX_URI", "NEURON_QUALITY_DIR")
EXECUTORS = ("multiprocess", "celery")
DEFAULT_RETENTION_DAYS = 30
# a consumer's endpoint, or with a district suffix one district's (NEURON_ZHILIAN_PUTUO_URL_JINGAN)
_ENDPOINT = re.compile(r"^NEURON_(?P<consumer>[A-Z0-9_]+?)_(?P<field>URL|ACCESS_KEY|SECRET_KEY)"
                       r"(?:_(?P<district>[A-Z][A-Z0-9_]*))?$")
_PUBLISHER = re.compile(r"^NEURON_PUBLISHER_(?P<consumer>[A-Z0-9_]+)$")


class SettingsError(RuntimeError):
    """A required setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Endpoint:
    """A consumer's HTTPS-push settings: ``NEURON_PUBLISHER_<C>``, ``NEURON_<C>_URL``, ``_ACCESS_KEY``, ``_SECRET_KEY``.

    In a deployment of districts each district pushes to its own receiver: ``NEURON_<C>_URL_<DISTRICT>`` (and the
    keys, ``NEURON_<C>_ACCESS_KEY_<DISTRICT>``, ``NEURON_<C>_SECRET_KEY_<DISTRICT>``) override the consumer's own
    for that district (``Settings.endpoint``)."""

    consumer: str
    publisher: str | None = None  # overrides exports/consumers.yaml when set
    url: str = ""
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    district: str = ""  # the district this endpoint is resolved for ("" = the consumer's own)

    def missing(self) -> list[str]:
        prefix, suffix = f"NEURON_{self.consumer.upper()}", f"_{self.district.upper()}" if self.district else ""
        return [f"{prefix}_{name}{suffix}" for name, value in
                (("URL", self.url), ("ACCESS_KEY", self.access_key), ("SECRET_KEY", self.secret_key)) if not value]


DEFAULT_DATA_DOCS_URL = "http://127.0.0.1:3100"


@dataclass(frozen=True)
class Settings:
    mode: str
    data_dir: Path
    landing_dir: Path
    lake_dir: Path
    warehouse_path: Path
    outbox_dir: Path
    quality_dir: Path
    dagster_home: Path
    timezone: str
    partitions_start: str
    token_key: str = field(default="", repr=False)
    token_key_version: str = "1"
    perturbation_key: str = field(default="", repr=False)  # cell key method (kernel.record_keys)
    landing_retention_days_raw: str = str(DEFAULT_RETENTION_DAYS)
    code_version: str = ""
    publish_max_retries: int = 4
    publish_backoff_s: float = 0.5
    publish_timeout_s: float = 10.0  # per HTTP request to a consumer's receiver
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict, repr=False)
    # where `neuron ui` serves Data Docs (pipelines/docs_server.py); check metadata links to pages under it
    data_docs_url: str = DEFAULT_DATA_DOCS_URL
    # the vendor platforms (connectors/config.py); absent: landing files are read as delivered, nothing is pulled
    vendors_file: Path | None = None
    pull_window_min: int = 60
    pull_overlap_min: int = 15
    # DuckDB's memory limit in each step (NEURON_STEP_MEMORY_MB): two steps run at once on two cores, so the run's
    # tree needs up to about twice this plus ~0.7 GB (the run process and the executor's forkserver). A
    # 600-community day peaked at 3.6 GB PSS (4.2 GB RSS) under 1536, two parses at once (docs/benchmarks.md)
    step_memory_mb: int = 1536
    # steps a run executes at once on its host (NEURON_STEP_CONCURRENCY; the multiprocess executor's max_concurrent).
    # Dagster's default is the host's core count: on a 16-core Kubernetes node that is 16 steps of up to
    # step_memory_mb each inside one run pod. Size the pod's memory as this × step_memory_mb + ~1 GB
    step_concurrency: int = 2
    # bronze parses at once across the instance's runs (NEURON_INGEST_SLOTS): the limit `neuron` gives the
    # `neuron_ingest` pool (pipelines/pools.py) unless an operator set one (`dagster instance concurrency set`).
    # Two: 13 % off a 60-community day on 2 cores, nothing at 600, where one parse keeps both busy (docs/benchmarks.md)
    ingest_slots: int = 2
    # the lake on object storage (NEURON_LAKE_URI=s3://bucket[/prefix]; kernel.object_lake); empty: on local disk at
    # lake_dir. NEURON_S3_ENDPOINT_URL for MinIO, OSS, OBS or a test server; credentials the AWS_* variables
    lake_uri: str = ""
    # the outbox replicated to object storage (NEURON_OUTBOX_URI=s3://bucket[/prefix]; exports/outbox_store.py): every
    # committed batch version (manifest last, then `latest`) and receipt; the folder outbox_dir stays the working copy
    outbox_uri: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    # the most this host's read cache of the store's part files may hold (NEURON_LAKE_CACHE_MB; least recently used
    # parts are evicted, and fetched again when read). A district's lake grows ~1.4 GB a day (docs/scale.md)
    lake_cache_mb: int = 20480
    # how the daily job runs its steps (NEURON_EXECUTOR): "multiprocess" (one host, forked steps) or "celery"
    # (workers on other hosts, NEURON_CELERY_BROKER / NEURON_CELERY_BACKEND)
    executor: str = "multiprocess"
    celery_broker: str = ""
    celery_backend: str = field(default="", repr=False)
    # the districts this deployment serves (NEURON_DISTRICTS=putuo,jingan,...): set, the partitions are date ×
    # district and each district's data lives under a sub-root of its own (``for_district``); unset, one district
    # and daily partitions (kernel/partitions.py, docs/scale.md)
    districts: tuple[str, ...] = ()
    # the district these settings are resolved to ("" = the deployment's root, before a run names its district)
    district: str = ""

    def for_district(self, district: str | None) -> Settings:
        """These settings for one district's runs: landing, lake (folder or object prefix), warehouse, outbox,
        quality, leases and connector state each one level down, named by the district. The Dagster instance,
        the keys and the host's caches stay shared. ``None`` or "" gives these settings back."""
        if not district or district == self.district:
            return self
        if self.district:
            raise SettingsError(f"these settings are already district {self.district!r}'s")
        if district not in self.districts:
            known = ", ".join(self.districts) or "none: NEURON_DISTRICTS is unset"
            raise SettingsError(f"unknown district {district!r} (NEURON_DISTRICTS: {known})")
        vendors = Path(str(self.vendors_file).replace("{district}", district)) if self.vendors_file else None
        return replace(self, district=district, landing_dir=self.landing_dir / district,
                       lake_dir=self.lake_dir / district, lake_uri=f"{self.lake_uri}/{district}" if self.lake_uri else "",
                       outbox_uri=f"{self.outbox_uri}/{district}" if self.outbox_uri else "",
                       warehouse_path=self.warehouse_path.parent / district / self.warehouse_path.name,
                       outbox_dir=self.outbox_dir / district, quality_dir=self.quality_dir / district,
                       vendors_file=vendors)

    def for_named_district(self, district: str | None) -> Settings:
        """The settings of the district a command names (``--district``): required when the deployment has
        districts, refused when it has none."""
        if self.districts and not district:
            raise SettingsError(f"NEURON_DISTRICTS is set: name the district with --district "
                                f"({', '.join(self.districts)})")
        if district and not self.districts:
            raise SettingsError(f"--district {district}: this deployment has no districts (NEURON_DISTRICTS is unset)")
        return self.for_district(district)

    def each_district(self) -> list[Settings]:
        """Every district's settings (these alone when they are one district's, or there are no districts): what
        works across districts (the doctor, retention, freshness) loops over this."""
        if self.district or not self.districts:
            return [self]
        return [self.for_district(d) for d in self.districts]

    @property
    def connectors_dir(self) -> Path:
        """Pull cursors and collector state (``connectors/``; a district's under ``connectors/<district>``)."""
        return self.data_dir / "connectors" / self.district if self.district else self.data_dir / "connectors"

    @property
    def incidents_dir(self) -> Path:
        """The incident engine's state (``assets/incidents``; a district's under ``incidents/<district>``)."""
        return self.data_dir / "incidents" / self.district if self.district else self.data_dir / "incidents"

    @property
    def vendors_path(self) -> Path:
        return self.vendors_file or self.connectors_dir / "vendors.yaml"

    @property
    def is_demo_or_test(self) -> bool:
        return self.mode in ("demo", "test")

    @property
    def landing_retention_days(self) -> int:
        try:
            days = int(self.landing_retention_days_raw)
        except ValueError:
            days = 0
        if days < 1:
            raise SettingsError(f"NEURON_LANDING_RETENTION_DAYS must be a whole number of at least 1, "
                                f"got {self.landing_retention_days_raw!r}")
        return days

    def endpoint(self, consumer: str, district: str | None = None) -> Endpoint:
        """``consumer``'s push endpoint for ``district`` (these settings' district unless named): the district's own
        URL and keys where set, the consumer's otherwise."""
        own = self.endpoints.get(consumer, Endpoint(consumer))
        district = self.district if district is None else district
        if not district:
            return own
        over = self.endpoints.get(f"{consumer}@{district}", Endpoint(consumer))
        return replace(own, district=district, url=over.url or own.url, access_key=over.access_key or own.access_key,
                       secret_key=over.secret_key or own.secret_key)

    @property
    def parse_batch_bytes(self) -> int:
        """Compressed landing bytes a bronze parse reads per batch, sized from the step's memory: its largest
        statements hold a batch's parsed records in memory unspilled. 3072 MB -> 16 MB (a 60-community telemetry
        day: 3.4 GB peak RSS); 1536 MB -> 8 MB (2.0 GB; 16 MB batches ran out of memory under 1536 MB)."""
        return self.step_memory_mb * 2**20 // 192

    @property
    def lake_cache_dir(self) -> Path:
        """This host's copies of the object-storage lake's part files it has read or written (``ObjectLake.cached``)."""
        return self.data_dir / ".lake_cache"

    @property
    def duckdb_tmp(self) -> Path:
        return self.data_dir / ".duckdb_tmp"

    @property
    def leases_dir(self) -> Path:
        """Where the day leases live (``kernel.runs.claim_day``; a district's under ``.leases/<district>``)."""
        return self.data_dir / ".leases" / self.district if self.district else self.data_dir / ".leases"


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name)
    return (Path(raw) if raw else default).expanduser().absolute()


def _number(env: Mapping[str, str], name: str, default: str, kind: type) -> int | float:
    raw = env.get(name, default) or default
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _endpoints(env: Mapping[str, str], districts: tuple[str, ...]) -> dict[str, Endpoint]:
    """Consumers' endpoints by consumer, and districts' own by ``consumer@district``."""
    found: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if m := _PUBLISHER.match(name):
            consumer = m["consumer"].lower()
            found.setdefault(consumer, {"consumer": consumer})["publisher"] = value.strip()
        elif m := _ENDPOINT.match(name):
            key = consumer = m["consumer"].lower()
            if m["district"]:
                district = m["district"].lower()
                if district not in districts:
                    known = ", ".join(districts) or "none: NEURON_DISTRICTS is unset"
                    raise SettingsError(f"{name} names no district of this deployment (NEURON_DISTRICTS: {known})")
                key = f"{consumer}@{district}"
            found.setdefault(key, {"consumer": consumer})[m["field"].lower()] = value
    return {key: Endpoint(**fields) for key, fields in found.items()}


def load_settings(env: Mapping[str, str] | None = None, *, data_dir: str | Path | None = None) -> Settings:
    """Resolve settings from the environment (``os.environ`` unless given).

    ``data_dir`` moves the whole data root and ignores the sub-root variables (tests, ad-hoc runs).
    """
    env = dict(os.environ if env is None else env)
    if data_dir:
        env["NEURON_DATA_DIR"] = str(data_dir)
        for var in SUBROOT_VARIABLES:
            env.pop(var, None)
    mode = env.get("NEURON_MODE", "production").strip().lower()
    if mode not in MODES:
        raise SettingsError(f"NEURON_MODE must be one of {', '.join(MODES)}; got {mode!r}")
    root = _path(env, "NEURON_DATA_DIR", Path.cwd() / "data")
    return Settings(
        mode=mode,
        data_dir=root,
        landing_dir=_path(env, "NEURON_LANDING_DIR", root / "landing"),
        lake_dir=_path(env, "NEURON_LAKE_DIR", root / "lake"),
        warehouse_path=_path(env, "NEURON_WAREHOUSE_PATH", root / "warehouse" / "neuron.duckdb"),
        outbox_dir=_path(env, "NEURON_OUTBOX_DIR", root / "outbox"),
        quality_dir=_path(env, "NEURON_QUALITY_DIR", root / "quality"),
        dagster_home=_path(env, "DAGSTER_HOME", root / "dagster_home"),
        timezone=env.get("NEURON_TIMEZONE", "Asia/Shanghai"),
        partitions_start=env.get("NEURON_PARTITIONS_START", "2026-01-01"),
        token_key=env.get("NEURON_TOKEN_KEY", "").strip(),
        token_key_version=(env.get("NEURON_TOKEN_KEY_VERSION", "1") or "1").strip(),
        perturbation_key=env.get("NEURON_PERTURBATION_KEY", "").strip(),
        landing_retention_days_raw=env.get("NEURON_LANDING_RETENTION_DAYS", str(DEFAULT_RETENTION_DAYS)),
        code_version=env.get("NEURON_CODE_VERSION", ""),
        publish_max_retries=int(_number(env, "NEURON_PUBLISH_MAX_RETRIES", "4", int)),
        publish_backoff_s=float(_number(env, "NEURON_PUBLISH_BACKOFF_S", "0.5", float)),
        publish_timeout_s=float(_number(env, "NEURON_PUBLISH_TIMEOUT_S", "10", float)),
        endpoints=_endpoints(env, _districts(env)),
        data_docs_url=_data_docs_url(env),
        vendors_file=_path(env, "NEURON_VENDORS_FILE", Path()) if env.get("NEURON_VENDORS_FILE") else None,
        pull_window_min=_window(env, "NEURON_PULL_WINDOW_MIN", "60"),
        pull_overlap_min=_window(env, "NEURON_PULL_OVERLAP_MIN", "15"),
        step_memory_mb=_step_memory(env),
        step_concurrency=_step_concurrency(env),
        ingest_slots=_ingest_slots(env),
        lake_uri=_s3_uri(env, "NEURON_LAKE_URI", "NEURON_LAKE_DIR"),
        outbox_uri=_s3_uri(env, "NEURON_OUTBOX_URI", "the outbox folder alone"),
        s3_endpoint_url=env.get("NEURON_S3_ENDPOINT_URL", "").strip(),
        s3_region=env.get("NEURON_S3_REGION", "").strip(),
        lake_cache_mb=_lake_cache(env),
        executor=_executor(env),
        celery_broker=env.get("NEURON_CELERY_BROKER", "").strip(),
        celery_backend=env.get("NEURON_CELERY_BACKEND", "").strip(),
        districts=_districts(env),
    )


_DISTRICT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _districts(env: Mapping[str, str]) -> tuple[str, ...]:
    """``NEURON_DISTRICTS``: comma-separated district names (lower-case ASCII, used in paths and partition keys)."""
    names = tuple(n.strip() for n in env.get("NEURON_DISTRICTS", "").split(",") if n.strip())
    bad = [n for n in names if not _DISTRICT.match(n)]
    if bad:
        raise SettingsError(f"NEURON_DISTRICTS: {bad[0]!r} is not a district name (lower-case letters, digits, _; "
                            f"starting with a letter, at most 32)")
    if len(set(names)) != len(names):
        raise SettingsError(f"NEURON_DISTRICTS names a district twice: {','.join(names)}")
    return names


def _s3_uri(env: Mapping[str, str], name: str, otherwise: str) -> str:
    uri = env.get(name, "").strip().rstrip("/")
    if uri and (not uri.startswith("s3://") or not uri[len("s3://"):].strip("/")):
        raise SettingsError(f"{name} must be s3://<bucket>[/<prefix>] (or unset for {otherwise}), got {uri!r}")
    return uri


def _executor(env: Mapping[str, str]) -> str:
    name = (env.get("NEURON_EXECUTOR", "multiprocess") or "multiprocess").strip().lower()
    if name not in EXECUTORS:
        raise SettingsError(f"NEURON_EXECUTOR must be one of {', '.join(EXECUTORS)}; got {name!r}")
    if name == "celery" and not env.get("NEURON_CELERY_BROKER", "").strip():
        raise SettingsError("NEURON_EXECUTOR=celery needs NEURON_CELERY_BROKER (e.g. redis://host:6379/0)")
    return name


def _step_memory(env: Mapping[str, str]) -> int:
    mb = int(_number(env, "NEURON_STEP_MEMORY_MB", "1536", int))
    if mb < 256:
        raise SettingsError(f"NEURON_STEP_MEMORY_MB must be at least 256 (megabytes), got {mb}")
    return mb


def _lake_cache(env: Mapping[str, str]) -> int:
    mb = int(_number(env, "NEURON_LAKE_CACHE_MB", "20480", int))
    if mb < 64:
        raise SettingsError(f"NEURON_LAKE_CACHE_MB must be at least 64 (megabytes of read cache), got {mb}")
    return mb


def _step_concurrency(env: Mapping[str, str]) -> int:
    n = int(_number(env, "NEURON_STEP_CONCURRENCY", "2", int))
    if not 1 <= n <= 64:
        raise SettingsError(f"NEURON_STEP_CONCURRENCY must be between 1 and 64 (steps at once), got {n}")
    return n


def _ingest_slots(env: Mapping[str, str]) -> int:
    n = int(_number(env, "NEURON_INGEST_SLOTS", "2", int))
    if not 1 <= n <= 64:
        raise SettingsError(f"NEURON_INGEST_SLOTS must be between 1 and 64 (bronze parses at once), got {n}")
    return n


def _window(env: Mapping[str, str], name: str, default: str) -> int:
    minutes = int(_number(env, name, default, int))
    if minutes < 0 or minutes > 1440 or (name.endswith("WINDOW_MIN") and (minutes == 0 or 1440 % minutes)):
        raise SettingsError(f"{name} must be minutes dividing the day (window) or 0-1440 (overlap), got {minutes}")
    return minutes


def _data_docs_url(env: Mapping[str, str]) -> str:
    url = (env.get("NEURON_DATA_DOCS_URL", "") or DEFAULT_DATA_DOCS_URL).strip().rstrip("/")
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SettingsError(f"NEURON_DATA_DOCS_URL must be an http(s) URL such as {DEFAULT_DATA_DOCS_URL}; got {url!r}")
    return url


def export_environment(values: Mapping[str, str], *, only_if_unset: bool = False) -> None:
    """Set variables for this process and the runs it starts (the CLI's demo receiver, DAGSTER_HOME)."""
    for name, value in values.items():
        if only_if_unset:
            os.environ.setdefault(name, value)
        else:
            os.environ[name] = value


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment with ``overrides``, for a child process (benchmarks run phases apart)."""
    return {**os.environ, **overrides}


def quiet_third_parties() -> None:
    """Third-party defaults Neuron relies on: no usage analytics from great-expectations."""
    export_environment({"GX_ANALYTICS_ENABLED": "false"}, only_if_unset=True)
