"""Every attack of the security review on the signed envelope, and the honest paths."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from services.common.security.envelope_signing import (
    EnvelopeSigner,
    EnvelopeVerifier,
    payload_hash,
    record_position,
)
from services.common.security.errors import AuthenticationError, AuthErrorCode
from services.common.security.keys import KeyRing, generate_key_files
from services.common.security.replay_cache import InMemoryReplayCache
from tests.unit.security.conftest import NOW, TOPIC

VALUE = b'{"metadata": {"message_id": "m-1"}, "payload": {"account_id": "acc-1"}}'
POS = record_position(TOPIC, 3, 42)


def _code(exc: pytest.ExceptionInfo[AuthenticationError]) -> AuthErrorCode:
    return exc.value.code


def test_honest_message_is_accepted(signer: EnvelopeSigner, verifier: EnvelopeVerifier) -> None:
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    claims = verifier.verify(token, VALUE, TOPIC, produced_at=NOW, position=POS)
    assert (claims.issuer, claims.audience, claims.jti) == ("data_agent", "decision_agent", "m-1")
    assert claims.expires_at - claims.issued_at == 300


def test_token_as_kafka_header_bytes_is_accepted(signer, verifier) -> None:
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW).encode()
    assert verifier.verify(token, VALUE, TOPIC, NOW, POS).jti == "m-1"


def test_consumer_far_behind_accepts_honest_message(signer, keys_dir: Path) -> None:
    """Expiry is judged at produce time: a consumer reading a day-old backlog accepts it."""
    produced = NOW - 86_400
    token = signer.sign(VALUE, "decision_agent", "m-1", now=produced)
    late = EnvelopeVerifier(
        "decision_agent",
        KeyRing.from_directory(keys_dir),
        {TOPIC: {"data_agent"}},
        replay_cache=InMemoryReplayCache(),
        clock=lambda: NOW,
    )
    assert late.verify(token, VALUE, TOPIC, produced_at=produced + 0.5, position=POS)


@pytest.mark.parametrize("token", [None, "", b""])
def test_missing_token(verifier, token) -> None:
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, NOW, POS)
    assert _code(exc) is AuthErrorCode.MISSING_TOKEN


def test_forged_signature_with_another_key(keys_dir: Path, verifier, tmp_path: Path) -> None:
    """An attacker's own key, claiming to be data_agent with data_agent's kid."""
    trusted_kid = KeyRing.from_directory(keys_dir).kids("data_agent")[0]
    generate_key_files(tmp_path, "data_agent", trusted_kid)
    forger = EnvelopeSigner("data_agent", KeyRing.from_directory(tmp_path, "data_agent"))
    token = forger.sign(VALUE, "decision_agent", "m-1", now=NOW)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, NOW, POS)
    assert _code(exc) is AuthErrorCode.BAD_SIGNATURE


def test_service_cannot_sign_as_another_service(keys_dir: Path, verifier) -> None:
    """decision_agent's real key, but iss=data_agent: the key does not vouch for that issuer."""
    ring = KeyRing.from_directory(keys_dir, "decision_agent")
    kid, key = ring.signing_key()
    claims = {"iss": "data_agent", "aud": "decision_agent", "iat": int(NOW), "exp": int(NOW) + 60}
    claims |= {"jti": "m-1", "ph": payload_hash(VALUE)}
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, NOW, POS)
    assert _code(exc) in {AuthErrorCode.BAD_SIGNATURE, AuthErrorCode.UNKNOWN_KID}


def test_unsigned_or_symmetric_algorithms_are_refused(verifier) -> None:
    claims = {"iss": "data_agent", "aud": "decision_agent", "iat": int(NOW), "exp": int(NOW) + 60}
    for token in (
        jwt.encode(claims, "", algorithm="none"),
        jwt.encode(claims, "k" * 32, algorithm="HS256", headers={"kid": "x"}),
    ):
        with pytest.raises(AuthenticationError) as exc:
            verifier.verify(token, VALUE, TOPIC, NOW, POS)
        assert _code(exc) is AuthErrorCode.MALFORMED_TOKEN


def test_wrong_audience(signer, verifier) -> None:
    token = signer.sign(VALUE, "webhook_processor", "m-1", now=NOW)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, NOW, POS)
    assert _code(exc) is AuthErrorCode.WRONG_AUDIENCE


def test_altered_payload(signer, verifier) -> None:
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    altered = VALUE.replace(b"acc-1", b"acc-2")
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, altered, TOPIC, NOW, POS)
    assert _code(exc) is AuthErrorCode.PAYLOAD_MISMATCH


def test_expired_relative_to_produce_time(signer, verifier) -> None:
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW - 1000)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, produced_at=NOW, position=POS)
    assert _code(exc) is AuthErrorCode.EXPIRED


def test_expiry_tolerates_bounded_skew(signer, verifier) -> None:
    """exp + 20 s is inside the 30 s skew (mint-age check relaxed for this case)."""
    verifier._max_mint_age_s = 1000
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW - 320)
    assert verifier.verify(token, VALUE, TOPIC, produced_at=NOW, position=POS)


def test_token_minted_long_before_produce_time(signer, verifier) -> None:
    """Still unexpired (ttl 300 s) but minted 200 s before the record: a recycled token."""
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW - 200)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, produced_at=NOW, position=POS)
    assert _code(exc) is AuthErrorCode.STALE_TOKEN


def test_token_minted_after_produce_time(signer, verifier) -> None:
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, produced_at=NOW - 120, position=POS)
    assert _code(exc) is AuthErrorCode.NOT_YET_VALID


def test_overlong_token_lifetime(keys_dir: Path, verifier) -> None:
    signer = EnvelopeSigner(
        "data_agent", KeyRing.from_directory(keys_dir, "data_agent"), ttl_s=86_400
    )
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, NOW, POS)
    assert _code(exc) is AuthErrorCode.LIFETIME_TOO_LONG


@pytest.mark.parametrize("produced_at", [NOW + 3600, 0.0, -1.0, float("nan"), float("inf")])
def test_unusable_produce_time(signer, verifier, produced_at: float) -> None:
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, produced_at=produced_at, position=POS)
    assert _code(exc) is AuthErrorCode.BAD_PRODUCE_TIME


def test_unknown_kid(keys_dir: Path, verifier, tmp_path: Path) -> None:
    generate_key_files(tmp_path, "data_agent", "zzz-not-published")
    rogue = EnvelopeSigner("data_agent", KeyRing.from_directory(tmp_path, "data_agent"))
    token = rogue.sign(VALUE, "decision_agent", "m-1", now=NOW)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, NOW, POS)
    assert _code(exc) is AuthErrorCode.UNKNOWN_KID


def test_issuer_not_allowed_for_topic(keys_dir: Path, verifier) -> None:
    """A genuine webhook_processor message cannot be injected into revops.datasets."""
    ring = KeyRing.from_directory(keys_dir, "webhook_processor")
    other = EnvelopeSigner("webhook_processor", ring)
    token = other.sign(VALUE, "decision_agent", "m-1", now=NOW)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, NOW, POS)
    assert _code(exc) is AuthErrorCode.ISSUER_NOT_ALLOWED
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, "revops.unknown-topic", NOW, POS)
    assert _code(exc) is AuthErrorCode.ISSUER_NOT_ALLOWED


def test_dlq_replay_identity_is_allowed(keys_dir: Path, verifier) -> None:
    replayer = EnvelopeSigner("dlq_replay", KeyRing.from_directory(keys_dir, "dlq_replay"))
    token = replayer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    assert verifier.verify(token, VALUE, TOPIC, NOW, POS).issuer == "dlq_replay"


def test_reused_jti_at_another_position_is_a_replay(signer, verifier) -> None:
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    verifier.verify(token, VALUE, TOPIC, NOW, POS)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, NOW + 1, record_position(TOPIC, 3, 99))
    assert _code(exc) is AuthErrorCode.REPLAYED


def test_redelivery_at_same_position_is_benign(signer, verifier) -> None:
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    first = verifier.verify(token, VALUE, TOPIC, NOW, POS)
    again = verifier.verify(token, VALUE, TOPIC, NOW, POS)
    assert first == again


def test_without_position_a_second_sighting_is_a_replay(signer, verifier) -> None:
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    verifier.verify(token, VALUE, TOPIC, NOW)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, NOW)
    assert _code(exc) is AuthErrorCode.REPLAYED


def test_rejected_message_does_not_poison_the_replay_cache(signer, verifier) -> None:
    """A forged copy arriving first must not make the genuine message look replayed."""
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    with pytest.raises(AuthenticationError):
        verifier.verify(token, b"tampered", TOPIC, NOW, record_position(TOPIC, 0, 1))
    assert verifier.verify(token, VALUE, TOPIC, NOW, POS).jti == "m-1"


def test_error_reason_never_contains_the_token(signer, verifier) -> None:
    token = signer.sign(VALUE, "webhook_processor", "m-1", now=NOW)
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(token, VALUE, TOPIC, NOW, POS)
    assert token not in str(exc.value)
    assert token.split(".")[2] not in str(exc.value)


def test_tokens_with_junk_in_any_segment_are_malformed(signer, verifier) -> None:
    """The key is picked from an unverified read of the header and claims; junk anywhere
    must still end as MALFORMED_TOKEN (never another exception, never accepted)."""
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    header, payload, signature = token.split(".")
    for bad in (
        f"{header}.{payload}",
        f"{header}=.{payload}.{signature}",
        f"{header}.{payload}!.{signature}",
        f"{header}.{payload}.{signature}*",
        f"{header}.e30.{signature}",  # "{}": no issuer
        f"W10.{payload}.{signature}",  # "[]" as the header
        f"{header}.{payload[:-1]}.{signature}",  # a truncated (len % 4 == 1) segment
    ):
        with pytest.raises(AuthenticationError) as exc:
            verifier.verify(bad, VALUE, TOPIC, NOW, POS)
        assert _code(exc) in {AuthErrorCode.MALFORMED_TOKEN, AuthErrorCode.BAD_SIGNATURE}, bad
