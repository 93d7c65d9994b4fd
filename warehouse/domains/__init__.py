"""Dataset declarations per source domain (telemetry lives in ``warehouse/schemas.py``)."""
