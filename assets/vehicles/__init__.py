"""The vehicles domain: landing -> bronze (+ quarantine) -> silver -> gold."""
