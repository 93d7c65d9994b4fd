"""The services domain: landing -> bronze (+ quarantine) -> silver -> gold."""
