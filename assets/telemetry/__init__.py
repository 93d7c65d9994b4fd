"""Telemetry domain: carrier IoT platform feeds and the device registry."""
