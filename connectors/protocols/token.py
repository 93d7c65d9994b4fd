"""Push endpoints of platforms that do not sign their pushes (CTWing and IoTDA HTTP subscriptions, ISC event
callbacks): the subscription URL carries a per-subscription secret (``.../push/<protocol>/<token>``), set when
the subscription is created, compared in constant time. Documented in docs/connectors.md."""

from __future__ import annotations

import hmac
from collections.abc import Mapping


def verify(token: str, tokens: Mapping[str, str]) -> str | None:
    """The name the token was issued to, or None."""
    for name, expected in tokens.items():
        if hmac.compare_digest(token.encode(), expected.encode()):
            return name
    return None
