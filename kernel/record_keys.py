"""Record keys for the cell key method: a keyed hash of a record's identity, the same in every table and run.

``neuron_record_key(identity)`` is a DuckDB macro on every step connection: the first 32 bits of
SHA-256(secret || identity), a UBIGINT in [0, 2^32). The secret is derived from ``NEURON_PERTURBATION_KEY``
(HMAC-SHA256 with a fixed label) and set as a session variable bound as a parameter, so it never appears in
SQL text, query logs or metadata. Gold SQL sums the keys of the records a cell counts
(``sum(neuron_record_key(event_id))``, ``sum(DISTINCT neuron_record_key(person_token || day))`` for
distinct people) and ``quality.cellkey`` turns the sum into the cell's perturbation.

The perturbation key is separate from the token key on purpose: tokens may be rotated (a new key version), but a
new perturbation key redraws every perturbation, and two releases of the same period under two keys can be
averaged. Rotate it only for periods not yet published.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

import duckdb

from kernel.settings import Settings, SettingsError
from kernel.tokens import is_demo_material, key_material

KEY_ENV: Final = "NEURON_PERTURBATION_KEY"
# Public on purpose, like the demo token key: demo/test releases must reproduce on every laptop.
DEMO_KEY: Final = "neuron-demo-perturbation-key-INSECURE-PUBLIC-never-use-in-production"
MIN_KEY_CHARS: Final = 16
VARIABLE: Final = "neuron_record_key_secret"
_LABEL: Final = b"neuron-cellkey/record/v1"


class PerturbationKeyError(SettingsError):
    """The perturbation key is missing, too short or the public demo key outside demo/test mode."""


def secret(settings: Settings) -> bytes:
    """The record-key secret for these settings; demo/test mode falls back to the public demo key."""
    raw = settings.perturbation_key
    if not raw:
        if not settings.is_demo_or_test:
            raise PerturbationKeyError(
                f"{KEY_ENV} is not set; NEURON_MODE={settings.mode} needs a secret perturbation key of at least "
                f"{MIN_KEY_CHARS} characters (or 32+ hex digits). Only demo/test mode may use the demo key.")
        raw = DEMO_KEY
    elif is_demo_material(raw, DEMO_KEY) and not settings.is_demo_or_test:
        raise PerturbationKeyError(f"{KEY_ENV} is the public demo key; NEURON_MODE={settings.mode} needs a secret key")
    material = key_material(raw)
    if len(material) < MIN_KEY_CHARS:
        raise PerturbationKeyError(f"{KEY_ENV} is too short; use at least {MIN_KEY_CHARS} characters")
    return hmac.new(material, _LABEL, hashlib.sha256).digest()


def install_record_key(con: duckdb.DuckDBPyConnection, settings: Settings) -> duckdb.DuckDBPyConnection:
    """Set the session secret (as a bound parameter) and create ``neuron_record_key`` on ``con``."""
    con.execute(f"SET VARIABLE {VARIABLE} = ?", [secret(settings).hex()])
    con.execute(
        "CREATE OR REPLACE MACRO neuron_record_key(identity) AS "
        f"('0x' || sha256(getvariable('{VARIABLE}') || CAST(identity AS VARCHAR))[1:8])::UBIGINT")
    return con


def record_key(identity: str, key: bytes) -> int:
    """The macro's value in Python (tests and audits): first 32 bits of SHA-256(hex(secret) || identity)."""
    return int(hashlib.sha256((key.hex() + identity).encode("utf-8")).hexdigest()[:8], 16)


__all__ = ["DEMO_KEY", "KEY_ENV", "PerturbationKeyError", "install_record_key", "record_key", "secret"]
