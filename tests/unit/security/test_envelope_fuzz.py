"""Hypothesis: whatever arrives in the header and the value, the verifier either accepts a
genuine record or raises AuthenticationError, nothing else, and never accepts a forgery."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.security.envelope_signing import EnvelopeSigner, EnvelopeVerifier
from services.common.security.errors import AuthenticationError
from services.common.security.keys import KeyRing
from services.common.security.replay_cache import InMemoryReplayCache
from tests.unit.security.conftest import NOW, TOPIC

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
claim_dicts = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.sampled_from(["data_agent", "dlq_replay", ""]) | json_values,
        "aud": st.sampled_from(["decision_agent"]) | json_values,
        "iat": st.just(int(NOW)) | json_values,
        "exp": st.just(int(NOW) + 300) | json_values,
        "jti": json_values,
        "ph": json_values,
    },
)
header_dicts = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["EdDSA", "none", "HS256", "RS256"]) | json_values,
        "kid": json_values,
        "typ": json_values,
    },
)
jwt_shaped = st.builds(
    lambda h, c, sig: ".".join(
        [_b64(json.dumps(h).encode()), _b64(json.dumps(c).encode()), _b64(sig)]
    ),
    header_dicts,
    claim_dicts,
    st.binary(max_size=80),
)
tokens = st.none() | st.text(max_size=300) | st.binary(max_size=300) | jwt_shaped
produce_times = st.floats(allow_nan=True, allow_infinity=True) | st.just(NOW)


@pytest.fixture(scope="module")
def ring(keys_dir: Path) -> KeyRing:
    return KeyRing.from_directory(keys_dir)


def _verifier(ring: KeyRing) -> EnvelopeVerifier:
    return EnvelopeVerifier(
        "decision_agent",
        ring,
        {TOPIC: {"data_agent", "dlq_replay"}},
        replay_cache=InMemoryReplayCache(),
        clock=lambda: NOW,
    )


@FUZZ
@given(token=tokens, value=st.binary(max_size=200), produced_at=produce_times)
def test_random_tokens_never_crash_and_never_pass(ring, token, value, produced_at) -> None:
    with pytest.raises(AuthenticationError):
        _verifier(ring).verify(token, value, TOPIC, produced_at, "p/0/0")


@FUZZ
@given(data=st.data())
def test_mutated_genuine_records_are_refused(ring, signer: EnvelopeSigner, data) -> None:
    value = data.draw(st.binary(min_size=1, max_size=200), label="value")
    token = signer.sign(value, "decision_agent", "m-1", now=NOW)
    mutate_token = data.draw(st.booleans(), label="mutate token")
    if mutate_token:
        i = data.draw(st.integers(0, len(token) - 1), label="index")
        char = data.draw(st.characters(codec="ascii").filter(lambda c: c != token[i]), label="c")
        bad_token, bad_value = token[:i] + char + token[i + 1 :], value
    else:
        i = data.draw(st.integers(0, len(value) - 1), label="index")
        byte = data.draw(st.integers(0, 255).filter(lambda b: b != value[i]), label="byte")
        bad_token, bad_value = token, value[:i] + bytes([byte]) + value[i + 1 :]
    # pyjwt rejects non-canonical base64url, so even an edit of a segment's unused low bits
    # is refused: every changed byte of token or value must fail.
    with pytest.raises(AuthenticationError):
        _verifier(ring).verify(bad_token, bad_value, TOPIC, NOW, "p/0/0")
