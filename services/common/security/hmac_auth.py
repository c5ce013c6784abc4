"""Request authentication for the HTTP ingress: HMAC-SHA256 signatures and bearer tokens.

A client signs `"<timestamp>." + body` with a shared secret and sends
`X-RevOps-Timestamp: <unix seconds>` and `X-RevOps-Signature: sha256=<hex>`. The timestamp is
inside the MAC, so an old request cannot be re-dated; a request older (or newer) than the
window is refused; comparison is constant-time. Several secrets may be valid at once, so the
shared secret rotates without downtime. Inside the window a captured request could be sent
again: pass a `ReplayCache` to refuse a signature seen twice (the trigger's request_id makes
a repeated trigger idempotent anyway).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from services.common.security.errors import AuthenticationError
from services.common.security.errors import AuthErrorCode as Code
from services.common.security.replay_cache import ReplayCache, Sighting

TIMESTAMP_HEADER = "X-RevOps-Timestamp"
SIGNATURE_HEADER = "X-RevOps-Signature"
SIGNATURE_PREFIX = "sha256="
DEFAULT_WINDOW_S = 300
_MAX_TIMESTAMP_DIGITS = 12


def _mac(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_request(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `X-RevOps-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    return SIGNATURE_PREFIX + _mac(secret, timestamp, body)


def verify_request(
    secret: bytes | Sequence[bytes],
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
    window_s: float = DEFAULT_WINDOW_S,
    replay_cache: ReplayCache | None = None,
) -> None:
    """Raise `AuthenticationError` unless the request is signed by one of the secrets."""
    secrets = [secret] if isinstance(secret, bytes) else list(secret)
    if not timestamp_header or not signature_header:
        raise AuthenticationError(
            Code.MISSING_CREDENTIALS, f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required"
        )
    ts_text = timestamp_header.strip()
    if not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > _MAX_TIMESTAMP_DIGITS:
        raise AuthenticationError(Code.STALE_REQUEST, f"{TIMESTAMP_HEADER} is not unix seconds")
    timestamp = int(ts_text)
    if abs(now - timestamp) > window_s:
        raise AuthenticationError(
            Code.STALE_REQUEST,
            f"request timestamp is {abs(now - timestamp):.0f} s away from now "
            f"(window {window_s:.0f} s)",
        )
    given = signature_header.strip()
    if not given.startswith(SIGNATURE_PREFIX):
        raise AuthenticationError(
            Code.BAD_REQUEST_SIGNATURE, f"{SIGNATURE_HEADER} must start with {SIGNATURE_PREFIX}"
        )
    given_bytes = given[len(SIGNATURE_PREFIX) :].encode("utf-8", errors="replace")
    # Check every secret (no early exit), so timing does not tell which one matched.
    matched = False
    for candidate in secrets:
        expected = _mac(candidate, timestamp, body).encode()
        matched |= hmac.compare_digest(expected, given_bytes)
    if not matched:
        raise AuthenticationError(
            Code.BAD_REQUEST_SIGNATURE, "signature does not match the timestamp and body"
        )
    if replay_cache is not None:
        sighting = Sighting(
            issuer="http", jti=given, payload_hash=hashlib.sha256(body).hexdigest(), position=None
        )
        if not replay_cache.check_and_record(sighting, keep_until=now + 2 * window_s, now=now):
            raise AuthenticationError(Code.REPLAYED, "this signed request was already accepted")


def verify_bearer(authorization_header: str | None, valid_tokens: Iterable[str]) -> None:
    """Raise `AuthenticationError` unless the header is `Bearer <one of valid_tokens>`."""
    if not authorization_header:
        raise AuthenticationError(Code.MISSING_CREDENTIALS, "Authorization header is required")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(Code.BAD_BEARER_TOKEN, "Authorization must be 'Bearer <token>'")
    # Compare digests: equal length always, so neither content nor length leaks via timing.
    given = hashlib.sha256(token.strip().encode()).digest()
    matched = False
    for valid in valid_tokens:
        matched |= hmac.compare_digest(hashlib.sha256(valid.encode()).digest(), given)
    if not matched:
        raise AuthenticationError(Code.BAD_BEARER_TOKEN, "bearer token is not valid")
