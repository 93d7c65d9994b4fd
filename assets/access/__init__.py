"""The access domain: landing -> bronze (+ quarantine) -> silver -> gold."""
