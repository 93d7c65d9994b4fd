"""HTTP Digest authentication, server side (RFC 7616 with MD5 and ``qop=auth``, as GA/T 1400.4 §7 requires for
``/VIID/System/Register``). Clients use ``requests.auth.HTTPDigestAuth``.

A server issues a challenge (``challenge()`` -> ``WWW-Authenticate`` value) and checks the answer
(``verify()``). Nonces are HMACs of their issue time, so any process holding the same server secret can check
them (no shared state), and they expire after ``nonce_ttl_s``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping

_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


class DigestError(Exception):
    pass


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def parse(header: str) -> dict[str, str]:
    if not header.lower().startswith("digest "):
        raise DigestError("not a Digest authorization")
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _PARAM.finditer(header[7:])}


class DigestAuthority:
    """One realm's users (``{username: password}``) and the secret its nonces are made with."""

    def __init__(self, realm: str, users: Mapping[str, str], secret: bytes | None = None,
                 nonce_ttl_s: float = 300.0) -> None:
        self.realm = realm
        self.users = dict(users)
        self.secret = secret or secrets.token_bytes(32)
        self.nonce_ttl_s = nonce_ttl_s

    def _nonce(self, issued: int) -> str:
        mac = hmac.new(self.secret, str(issued).encode(), hashlib.sha256).hexdigest()[:32]
        return f"{issued:x}.{mac}"

    def challenge(self) -> str:
        nonce = self._nonce(int(time.time()))
        return f'Digest realm="{self.realm}", qop="auth", algorithm=MD5, nonce="{nonce}", opaque="{_md5(self.realm)}"'

    def verify(self, method: str, header: str) -> str:
        """The user name of a valid answer to one of our challenges; raises ``DigestError`` otherwise."""
        p = parse(header)
        user, nonce = p.get("username", ""), p.get("nonce", "")
        if user not in self.users:
            raise DigestError("unknown user")
        if p.get("realm") != self.realm:
            raise DigestError("wrong realm")
        issued_hex, _, _ = nonce.partition(".")
        try:
            issued = int(issued_hex, 16)
        except ValueError:
            raise DigestError("not our nonce") from None
        if not hmac.compare_digest(nonce, self._nonce(issued)):
            raise DigestError("not our nonce")
        if time.time() - issued > self.nonce_ttl_s:
            raise DigestError("stale nonce")
        ha1 = _md5(f"{user}:{self.realm}:{self.users[user]}")
        ha2 = _md5(f"{method.upper()}:{p.get('uri', '')}")
        if p.get("qop"):
            expected = _md5(f"{ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:{p.get('qop')}:{ha2}")
        else:
            expected = _md5(f"{ha1}:{nonce}:{ha2}")
        if not hmac.compare_digest(expected, p.get("response", "")):
            raise DigestError("wrong response")
        return user
