from __future__ import annotations

import pytest

from services.common.security.errors import AuthenticationError, AuthErrorCode
from services.common.security.hmac_auth import sign_request, verify_bearer, verify_request
from services.common.security.replay_cache import InMemoryReplayCache

SECRET = b"ingress-shared-secret-123"
BODY = b'{"trigger_type": "deal_review", "parameters": {"account_id": "acc-1"}}'
NOW = 1_750_000_000


def _fails(code: AuthErrorCode, *args, **kw) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as exc:
        verify_request(*args, **kw)
    assert exc.value.code is code
    assert SECRET.decode() not in str(exc.value)
    return exc.value


def test_valid_request_accepted() -> None:
    signature = sign_request(SECRET, NOW, BODY)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    verify_request(SECRET, str(NOW), signature, BODY, now=NOW + 299)


def test_replayed_old_timestamp_refused() -> None:
    signature = sign_request(SECRET, NOW, BODY)
    _fails(AuthErrorCode.STALE_REQUEST, SECRET, str(NOW), signature, BODY, now=NOW + 301)
    _fails(AuthErrorCode.STALE_REQUEST, SECRET, str(NOW), signature, BODY, now=NOW - 301)


def test_redated_request_refused() -> None:
    """Moving the timestamp forward breaks the MAC: the timestamp is signed."""
    signature = sign_request(SECRET, NOW, BODY)
    _fails(
        AuthErrorCode.BAD_REQUEST_SIGNATURE, SECRET, str(NOW + 600), signature, BODY, now=NOW + 600
    )


def test_bad_signature_and_other_secret_refused() -> None:
    _fails(AuthErrorCode.BAD_REQUEST_SIGNATURE, SECRET, str(NOW), "sha256=" + "0" * 64, BODY, NOW)
    forged = sign_request(b"attacker-secret", NOW, BODY)
    _fails(AuthErrorCode.BAD_REQUEST_SIGNATURE, SECRET, str(NOW), forged, BODY, NOW)
    bare = sign_request(SECRET, NOW, BODY).removeprefix("sha256=")
    _fails(AuthErrorCode.BAD_REQUEST_SIGNATURE, SECRET, str(NOW), bare, BODY, NOW)


def test_tampered_body_refused() -> None:
    signature = sign_request(SECRET, NOW, BODY)
    tampered = BODY.replace(b"acc-1", b"acc-2")
    _fails(AuthErrorCode.BAD_REQUEST_SIGNATURE, SECRET, str(NOW), signature, tampered, NOW)


@pytest.mark.parametrize("ts", [None, "", "abc", "-5", "1e9", "١٢٣", "9" * 40])
def test_missing_or_garbage_timestamp(ts) -> None:
    signature = sign_request(SECRET, NOW, BODY)
    with pytest.raises(AuthenticationError) as exc:
        verify_request(SECRET, ts, signature, BODY, NOW)
    assert exc.value.code in {AuthErrorCode.MISSING_CREDENTIALS, AuthErrorCode.STALE_REQUEST}


def test_rotation_accepts_any_current_secret() -> None:
    new = b"new-shared-secret-456"
    verify_request([new, SECRET], str(NOW), sign_request(SECRET, NOW, BODY), BODY, NOW)
    verify_request([new, SECRET], str(NOW), sign_request(new, NOW, BODY), BODY, NOW)


def test_replay_inside_window_refused_with_cache() -> None:
    cache = InMemoryReplayCache()
    signature = sign_request(SECRET, NOW, BODY)
    verify_request(SECRET, str(NOW), signature, BODY, NOW, replay_cache=cache)
    _fails(AuthErrorCode.REPLAYED, SECRET, str(NOW), signature, BODY, NOW + 5, replay_cache=cache)


def test_bearer_token() -> None:
    verify_bearer("Bearer tok-abc-123", ["other", "tok-abc-123"])
    for header, code in [
        (None, AuthErrorCode.MISSING_CREDENTIALS),
        ("Basic dXNlcjpwYXNz", AuthErrorCode.BAD_BEARER_TOKEN),
        ("Bearer ", AuthErrorCode.BAD_BEARER_TOKEN),
        ("Bearer tok-abc-12", AuthErrorCode.BAD_BEARER_TOKEN),
        ("Bearer tok-abc-1234", AuthErrorCode.BAD_BEARER_TOKEN),
    ]:
        with pytest.raises(AuthenticationError) as exc:
            verify_bearer(header, ["tok-abc-123"])
        assert exc.value.code is code
        assert "tok-abc-123" not in str(exc.value)
