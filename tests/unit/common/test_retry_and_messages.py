from __future__ import annotations

import random

import pytest

from contracts import RawTrigger
from services.common.errors import PermanentError
from services.common.messages import decode_envelope, encode, make_envelope
from services.common.retry import RetryPolicy


def test_backoff_follows_the_seed_formula_with_bounded_jitter():
    policy = RetryPolicy(max_attempts=5, initial_delay_s=1, max_delay_s=60, jitter=0.1)
    rng = random.Random(1)
    for attempt, base in [(0, 1), (1, 2), (2, 4), (3, 8), (6, 60), (10, 60)]:
        samples = [policy.delay(attempt, rng) for _ in range(200)]
        assert min(samples) >= base * 0.9 - 1e-9
        assert max(samples) <= base * 1.1 + 1e-9
        assert max(samples) - min(samples) > 0  # jitter really spreads retries


def _trigger_envelope(version: int = 1) -> bytes:
    trigger = RawTrigger.model_validate(
        {
            "trigger_type": "manual",
            "parameters": {"account_id": "A1", "analysis_type": "consumption"},
        }
    )
    env = make_envelope(
        trigger,
        request_id="r1",
        flow_id="f1",
        correlation_id="c1",
        source="data_agent",
        target="decision_agent",
        stage="dataset",
    )
    env.metadata.version = version
    return encode(env)


def test_envelope_ids_are_deterministic():
    first, second = decode_envelope(_trigger_envelope()), decode_envelope(_trigger_envelope())
    assert first.metadata.message_id == second.metadata.message_id
    assert first.metadata.idempotency_key == second.metadata.idempotency_key == "r1:dataset"
    assert first.payload == second.payload


def test_unknown_contract_version_is_rejected_not_guessed():
    with pytest.raises(PermanentError) as err:
        decode_envelope(_trigger_envelope(version=2))
    assert err.value.code == "UNSUPPORTED_VERSION"
    assert "2" in err.value.message


def test_wrong_target_is_rejected():
    with pytest.raises(PermanentError) as err:
        decode_envelope(_trigger_envelope(), expected_target="execution_agent")
    assert err.value.code == "WRONG_TARGET"


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"metadata": {}}', b"null"])
def test_bad_envelopes_are_permanent_errors(raw):
    with pytest.raises(PermanentError):
        decode_envelope(raw)
