"""Signed envelopes: a short-lived EdDSA JWT in the `revops-auth` header of every record.

The producer signs `iss` (itself), `aud` (the consuming service), `iat`/`exp`, `jti` (the
message id) and `ph` (SHA-256 of the exact record value). The consumer checks, in order:
a token is present and well formed; its (issuer, kid) is a trusted key; the signature; the
issuer may produce to this topic; the audience is this consumer; the payload hash; the
times; and that the jti was not already accepted at another record position.

Times are judged against the record's produce time (the Kafka record timestamp), not the
consumer's clock, so a consumer that is hours behind still accepts honest messages. Because
a producer can choose its record timestamp, the produce time itself must not be in the
future, and the token must have been minted just before the record was produced
(`max_mint_age_s`): a token captured long ago cannot be attached to a new record. Topics with
`message.timestamp.type=LogAppendTime` make the produce time the broker's, which closes the
remaining gap (backdating a replayed record).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from jwt.types import Options

from services.common.security.errors import AuthenticationError
from services.common.security.errors import AuthErrorCode as Code
from services.common.security.keys import KeyRing
from services.common.security.replay_cache import ReplayCache, Sighting

AUTH_HEADER = "revops-auth"
ALGORITHM = "EdDSA"
DEFAULT_TTL_S = 300.0
# Far more than any honest token needs (a few hundred bytes); bounds parsing work.
MAX_TOKEN_LENGTH = 4096
# header.payload.signature, each base64url without padding (RFC 7515 compact serialization).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_REQUIRED_CLAIMS = ["iss", "aud", "iat", "exp", "jti", "ph"]
_DECODE_OPTIONS: Options = {
    # Time, audience and issuer are checked below, against the produce time and the topic.
    "verify_signature": True,
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": _REQUIRED_CLAIMS,
}


def payload_hash(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def record_position(topic: str, partition: int, offset: int) -> str:
    """The `position` argument of `EnvelopeVerifier.verify` for a Kafka record."""
    return f"{topic}/{partition}/{offset}"


@dataclass(frozen=True)
class VerifiedClaims:
    issuer: str
    audience: str
    kid: str
    jti: str
    issued_at: float
    expires_at: float
    payload_hash: str


class EnvelopeSigner:
    """Signs every record a service produces with that service's newest key."""

    def __init__(
        self,
        issuer: str,
        keyring: KeyRing,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if keyring.service is not None and keyring.service != issuer:
            raise ValueError(f"keyring holds the keys of {keyring.service!r}, not {issuer!r}")
        self.issuer = issuer
        self._keyring = keyring
        self._ttl_s = ttl_s
        self._clock = clock

    def sign(self, value: bytes, audience: str, message_id: str, now: float | None = None) -> str:
        kid, key = self._keyring.signing_key()
        issued_at = self._clock() if now is None else now
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": int(issued_at),
            "exp": int(issued_at + self._ttl_s),
            "jti": message_id,
            "ph": payload_hash(value),
        }
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})


class EnvelopeVerifier:
    """Verifies the token of every record a service consumes; raises `AuthenticationError`."""

    def __init__(
        self,
        audience: str,
        keyring: KeyRing,
        allowed_issuers: Mapping[str, Set[str]],
        max_clock_skew_s: float = 30.0,
        *,
        replay_cache: ReplayCache,
        max_mint_age_s: float = 60.0,
        max_lifetime_s: float = 900.0,
        replay_retention_s: float = 7 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.audience = audience
        self._keyring = keyring
        self._allowed_issuers = allowed_issuers
        self._skew = max_clock_skew_s
        self._replay_cache = replay_cache
        self._max_mint_age_s = max_mint_age_s
        self._max_lifetime_s = max_lifetime_s
        # Remember accepted jtis about as long as Kafka keeps records (default 7 days).
        self._replay_retention_s = replay_retention_s
        self._clock = clock

    def verify(
        self,
        token: str | bytes | None,
        value: bytes,
        topic: str,
        produced_at: float,
        position: str | None = None,
        now: float | None = None,
    ) -> VerifiedClaims:
        """Check `token` for the record (`value`, `topic`, produce time in epoch seconds).

        `position` (see `record_position`) lets a redelivery of the same record pass the
        replay check; without it every second sighting of a jti is a replay.
        """
        now = self._clock() if now is None else now
        token = _token_text(token)
        self._check_produce_time(produced_at, now)
        kid, unverified_issuer = _unverified_kid_and_issuer(token)
        key = self._keyring.public_key(unverified_issuer, kid)
        if key is None:
            raise AuthenticationError(
                Code.UNKNOWN_KID, f"no trusted key {kid!r} for issuer {unverified_issuer!r}"
            )
        claims = _decode(token, key)
        issuer = claims["iss"]
        if issuer != unverified_issuer:  # cannot happen for one token; kept as a tripwire
            raise AuthenticationError(Code.MALFORMED_TOKEN, "issuer changed while decoding")
        if issuer not in self._allowed_issuers.get(topic, ()):
            raise AuthenticationError(
                Code.ISSUER_NOT_ALLOWED, f"issuer {issuer!r} may not produce to topic {topic!r}"
            )
        if claims["aud"] != self.audience:
            raise AuthenticationError(
                Code.WRONG_AUDIENCE,
                f"message addressed to {claims['aud']!r}, this consumer is {self.audience!r}",
            )
        digest = payload_hash(value)
        ph = claims["ph"]
        if not isinstance(ph, str) or not hmac.compare_digest(ph.encode(), digest.encode()):
            raise AuthenticationError(
                Code.PAYLOAD_MISMATCH, "record value differs from the value that was signed"
            )
        issued_at, expires_at = self._check_times(claims, produced_at)
        jti = claims["jti"]
        sighting = Sighting(issuer=issuer, jti=jti, payload_hash=digest, position=position)
        if not self._replay_cache.check_and_record(
            sighting, keep_until=now + self._replay_retention_s, now=now
        ):
            raise AuthenticationError(
                Code.REPLAYED, f"message id {jti!r} from {issuer!r} was already accepted"
            )
        return VerifiedClaims(
            issuer=issuer,
            audience=self.audience,
            kid=kid,
            jti=jti,
            issued_at=issued_at,
            expires_at=expires_at,
            payload_hash=digest,
        )

    def _check_produce_time(self, produced_at: float, now: float) -> None:
        if not _is_number(produced_at) or produced_at <= 0:
            raise AuthenticationError(Code.BAD_PRODUCE_TIME, "record has no usable timestamp")
        if produced_at > now + self._skew:
            raise AuthenticationError(
                Code.BAD_PRODUCE_TIME,
                f"record timestamp is {produced_at - now:.0f} s in the future",
            )

    def _check_times(self, claims: Mapping[str, Any], produced_at: float) -> tuple[float, float]:
        issued_at, expires_at = claims["iat"], claims["exp"]
        if not (_is_number(issued_at) and _is_number(expires_at)):
            raise AuthenticationError(Code.MALFORMED_TOKEN, "iat and exp must be numbers")
        if expires_at - issued_at > self._max_lifetime_s:
            raise AuthenticationError(
                Code.LIFETIME_TOO_LONG,
                f"token lifetime {expires_at - issued_at:.0f} s exceeds the limit",
            )
        if issued_at > produced_at + self._skew:
            raise AuthenticationError(
                Code.NOT_YET_VALID,
                f"token issued {issued_at - produced_at:.0f} s after the record was produced",
            )
        if produced_at > expires_at + self._skew:
            raise AuthenticationError(
                Code.EXPIRED,
                f"token expired {produced_at - expires_at:.0f} s before the record was produced",
            )
        if produced_at - issued_at > self._max_mint_age_s + self._skew:
            raise AuthenticationError(
                Code.STALE_TOKEN,
                f"token minted {produced_at - issued_at:.0f} s before the record was produced",
            )
        return float(issued_at), float(expires_at)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _token_text(token: str | bytes | None) -> str:
    if token is None or len(token) == 0:
        raise AuthenticationError(Code.MISSING_TOKEN, f"no {AUTH_HEADER} header on the record")
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthenticationError(Code.MALFORMED_TOKEN, "token is too long")
    if isinstance(token, bytes):
        try:
            return token.decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationError(Code.MALFORMED_TOKEN, "token is not ASCII") from None
    return token


def _unverified_kid_and_issuer(token: str) -> tuple[str, str]:
    """Only to pick the key: nothing read here is trusted until the signature is checked.

    Read with base64 + JSON rather than a second PyJWT decode: PyJWT checks every character
    of every segment in Python, which made the two decodes most of a verification. The one
    PyJWT decode that follows (`_decode`) still validates the whole token strictly.
    """
    if not _COMPACT_JWS.fullmatch(token):
        raise AuthenticationError(Code.MALFORMED_TOKEN, "token is not a well-formed JWT")
    header_segment, payload_segment, _ = token.split(".")
    try:
        header = orjson.loads(_b64url(header_segment))
        claims = orjson.loads(_b64url(payload_segment))
    except (binascii.Error, ValueError):
        raise AuthenticationError(Code.MALFORMED_TOKEN, "token is not a well-formed JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthenticationError(Code.MALFORMED_TOKEN, "token is not a well-formed JWT")
    if header.get("alg") != ALGORITHM:
        raise AuthenticationError(Code.MALFORMED_TOKEN, f"algorithm must be {ALGORITHM}")
    kid, issuer = header.get("kid"), claims.get("iss")
    if not isinstance(kid, str) or not isinstance(issuer, str):
        raise AuthenticationError(Code.MALFORMED_TOKEN, "token lacks a kid or an issuer")
    return kid, issuer


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _decode(token: str, key: Any) -> dict[str, Any]:
    return decode_complete(token, key, _DECODE_OPTIONS)["payload"]


def decode_complete(token: str, key: Any, options: Options) -> dict[str, Any]:
    """PyJWT's `decode_complete` (header, payload, signature) with EdDSA only, its errors
    as `AuthenticationError`, and `iss`, `aud`, `jti` checked to be non-empty strings."""
    try:
        decoded: dict[str, Any] = jwt.decode_complete(
            token, key, algorithms=[ALGORITHM], options=options
        )
    except jwt.InvalidSignatureError:
        raise AuthenticationError(
            Code.BAD_SIGNATURE, "signature does not match the issuer's key"
        ) from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise AuthenticationError(Code.MALFORMED_TOKEN, "token claims are malformed") from None
    claims = decoded["payload"]
    for name in ("iss", "aud", "jti"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise AuthenticationError(Code.MALFORMED_TOKEN, f"claim {name} must be a string")
    return decoded
