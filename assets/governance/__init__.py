"""The governance domain: landing -> bronze (+ quarantine) -> silver -> gold."""
