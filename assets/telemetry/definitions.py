"""The telemetry domain: IoT platform feeds (CTWing, IoTDA, ThingsBoard) and the device registry."""

from assets.telemetry import assets
from assets.telemetry.datasets import DATASETS
from kernel.domain import Domain
from kernel.landing import LandingSource

domain = Domain(
    name="telemetry",
    datasets=DATASETS,
    steps=assets.STEPS,
    landing=(
        LandingSource("telemetry", 2.0, "IoT-platform telemetry NDJSON (CTWing, IoTDA, ThingsBoard)"),
        LandingSource("device_registry", 26.0, "Device registry snapshots (devices.csv)"),
    ),
)
