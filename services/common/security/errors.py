"""The one error every security check raises, with a machine-readable code.

The runtime sends a record that fails authentication to the DLQ (permanent: retrying cannot
make a forged message genuine); the ingress answers 401. `reason` is written for a human and
never contains a secret, a token or a signature.
"""

from __future__ import annotations

from enum import StrEnum


class AuthErrorCode(StrEnum):
    MISSING_TOKEN = "missing_token"
    MALFORMED_TOKEN = "malformed_token"
    UNKNOWN_KID = "unknown_kid"
    BAD_SIGNATURE = "bad_signature"
    ISSUER_NOT_ALLOWED = "issuer_not_allowed"
    WRONG_AUDIENCE = "wrong_audience"
    PAYLOAD_MISMATCH = "payload_mismatch"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    STALE_TOKEN = "stale_token"
    LIFETIME_TOO_LONG = "lifetime_too_long"
    BAD_PRODUCE_TIME = "bad_produce_time"
    REPLAYED = "replayed"
    # Ingress (HTTP) checks.
    MISSING_CREDENTIALS = "missing_credentials"
    BAD_REQUEST_SIGNATURE = "bad_request_signature"
    STALE_REQUEST = "stale_request"
    BAD_BEARER_TOKEN = "bad_bearer_token"


class AuthenticationError(Exception):
    """A message or request is not authentic; `code` for DLQ/metrics, `reason` for humans."""

    def __init__(self, code: AuthErrorCode | str, reason: str) -> None:
        self.code = AuthErrorCode(code)
        self.reason = reason
        super().__init__(f"{self.code.value}: {reason}")
