"""How each landing source reaches Neuron from a real platform (docs/connectors.md).

``push``: the platform pushes to the collector (``neuron collect``); ``pull``: Neuron queries the platform's
history by window (for a pushed source this is the reconciliation: only what no push delivered is landed);
``files``: the platform exports files to a share that Neuron downloads.
"""

from __future__ import annotations

CHANNELS: dict[str, tuple[str, ...]] = {
    "telemetry": ("push", "pull"),  # CTWing/IoTDA HTTP push, ThingsBoard over MQTT; CTWing history
    "access_events": ("push", "pull"),  # ISC OnEventNotify callbacks; artemis door-event history
    "vehicle_passages": ("push", "pull"),  # GA/T 1400 notifications; /VIID/MotorVehicles
    "parking": ("push", "pull", "files"),  # signed pushes; record query; the resident-vehicle register
    "device_registry": ("files",),
    "sites": ("files",),
    "property_services": ("files",),
    "governance": ("files",),
}


def channels(source: str) -> tuple[str, ...]:
    return CHANNELS.get(source, ())
