"""AK/SK signing: the string-to-sign, freshness window, constant-time checks and replay protection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exports.publishing.signing import (
    HEADER_CONTENT_SHA256,
    HEADER_DATE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    NonceCache,
    ReplayError,
    SignatureError,
    canonical_target,
    sign_request,
    string_to_sign,
    verify_request,
)

SECRETS = {"ak1": "sk1-secret"}
NOW = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
BODY = b'{"hello": "\xe6\x99\xba\xe8\x81\x94\xe6\x99\xae\xe9\x99\x80"}'


def _signed(method: str = "POST", url: str = "https://rx.example/v1/batches", body: bytes = BODY, **kw):
    return sign_request(method, url, body, access_key="ak1", secret_key=SECRETS["ak1"], now=NOW, **kw)


def test_signed_request_verifies_and_returns_the_access_key() -> None:
    headers = _signed()
    assert verify_request("POST", "/v1/batches", headers, BODY, SECRETS, now=NOW) == "ak1"


def test_string_to_sign_is_the_documented_six_lines() -> None:
    text = string_to_sign(
        "post", "/v1/batches?b=2&a=1", "ab" * 32, "Sun, 22 Nov 2026 01:00:00 GMT", "n" * 16, "ak1"
    )
    assert text.split("\n") == [
        "POST",
        "/v1/batches?a=1&b=2",
        "ab" * 32,
        "Sun, 22 Nov 2026 01:00:00 GMT",
        "n" * 16,
        "ak1",
    ]


def test_date_header_is_rfc7231_gmt() -> None:
    assert _signed()[HEADER_DATE] == "Sun, 22 Nov 2026 01:00:00 GMT"


def test_query_order_and_encoding_do_not_change_the_signature() -> None:
    assert canonical_target("/v1/batches?partition=2026-11-21&consumer=zhilian_putuo") == canonical_target(
        "/v1/batches?consumer=zhilian_putuo&partition=2026%2D11%2D21"
    )
    headers = _signed("GET", "https://rx.example/v1/batches?dataset=x&consumer=y", b"")
    assert verify_request("GET", "/v1/batches?consumer=y&dataset=x", headers, b"", SECRETS, now=NOW) == "ak1"


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("PUT", "/v1/batches", BODY),  # method changed
        ("POST", "/v1/batches/other", BODY),  # path changed
        ("POST", "/v1/batches?x=1", BODY),  # query added
    ],
)
def test_any_change_to_the_signed_request_fails(method: str, target: str, body: bytes) -> None:
    with pytest.raises(SignatureError) as exc:
        verify_request(method, target, _signed(), body, SECRETS, now=NOW)
    assert exc.value.code == "bad_signature" and exc.value.status == 401


def test_tampered_body_is_caught_by_the_content_hash() -> None:
    with pytest.raises(SignatureError) as exc:
        verify_request("POST", "/v1/batches", _signed(), BODY + b" ", SECRETS, now=NOW)
    assert exc.value.code == "content_sha256_mismatch"


def test_tampered_signature_and_wrong_secret_fail() -> None:
    headers = _signed()
    headers[HEADER_SIGNATURE] = headers[HEADER_SIGNATURE][:-4] + "AAA="
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_request("POST", "/v1/batches", headers, BODY, SECRETS, now=NOW)
    forged = sign_request("POST", "/v1/batches", BODY, access_key="ak1", secret_key="guess", now=NOW)
    with pytest.raises(SignatureError):
        verify_request("POST", "/v1/batches", forged, BODY, SECRETS, now=NOW)


def test_unknown_key_and_missing_headers_are_401() -> None:
    other = sign_request("POST", "/v1/batches", BODY, access_key="nobody", secret_key="x", now=NOW)
    with pytest.raises(SignatureError) as exc:
        verify_request("POST", "/v1/batches", other, BODY, SECRETS, now=NOW)
    assert exc.value.code == "unknown_key"
    headers = _signed()
    del headers[HEADER_NONCE]
    with pytest.raises(SignatureError) as exc:
        verify_request("POST", "/v1/batches", headers, BODY, SECRETS, now=NOW)
    assert exc.value.code == "missing_signature"


def test_duplicate_signature_headers_are_rejected() -> None:
    pairs = [*_signed().items(), (HEADER_CONTENT_SHA256.lower(), "0" * 64)]
    with pytest.raises(SignatureError, match="more than once"):
        verify_request("POST", "/v1/batches", pairs, BODY, SECRETS, now=NOW)


@pytest.mark.parametrize("offset", [timedelta(seconds=301), timedelta(seconds=-301), timedelta(hours=8)])
def test_dates_outside_the_skew_window_are_stale(offset: timedelta) -> None:
    with pytest.raises(SignatureError) as exc:
        verify_request("POST", "/v1/batches", _signed(), BODY, SECRETS, now=NOW + offset)
    assert exc.value.code == "stale_date"


def test_dates_inside_the_skew_window_pass() -> None:
    for offset in (timedelta(seconds=299), timedelta(seconds=-299)):
        assert verify_request("POST", "/v1/batches", _signed(), BODY, SECRETS, now=NOW + offset) == "ak1"


def test_replayed_nonce_is_rejected_with_409_but_fresh_nonces_pass() -> None:
    nonces = NonceCache()
    headers = _signed()
    verify_request("POST", "/v1/batches", headers, BODY, SECRETS, now=NOW, nonces=nonces)
    with pytest.raises(ReplayError) as exc:
        verify_request("POST", "/v1/batches", headers, BODY, SECRETS, now=NOW, nonces=nonces)
    assert exc.value.status == 409 and exc.value.code == "replayed_nonce"
    verify_request("POST", "/v1/batches", _signed(), BODY, SECRETS, now=NOW, nonces=nonces)


def test_forged_requests_do_not_burn_nonces() -> None:
    nonces = NonceCache()
    good = _signed(nonce="a" * 32)
    forged = {**good, HEADER_SIGNATURE: "AAAA"}
    with pytest.raises(SignatureError):
        verify_request("POST", "/v1/batches", forged, BODY, SECRETS, now=NOW, nonces=nonces)
    assert verify_request("POST", "/v1/batches", good, BODY, SECRETS, now=NOW, nonces=nonces) == "ak1"


def test_every_signature_uses_a_new_nonce() -> None:
    assert len({_signed()[HEADER_NONCE] for _ in range(50)}) == 50


def test_documented_test_vector() -> None:
    """The worked example in docs/publishing.md (cross-checked with ``openssl dgst -sha256 -hmac``)."""
    headers = sign_request(
        "POST",
        "/v1/batches",
        b'{"contract_id":"zhilian_putuo.device_health_daily"}',
        access_key="AKEXAMPLE",
        secret_key="SKEXAMPLE",
        now=datetime(2026, 11, 22, 1, 0, tzinfo=UTC),
        nonce="3f2a9c1e7b6d4a50",
    )
    assert (
        headers[HEADER_CONTENT_SHA256] == "13cb4af2cd4f481b36f9c90c5aa5d4163b46200446da13579e67c4364f784cb2"
    )
    assert headers[HEADER_SIGNATURE] == "aPnxnMYVF0cjou4RgFXajhBC1X7w0EPUMUYR5BieA+4="
