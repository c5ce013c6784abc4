"""The async circuit breaker: opens after N failures, half-opens after the timeout, closes
after M successes; while open it refuses calls without attempting them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from services.common import metrics
from services.common.breaker import AsyncCircuitBreaker, CircuitOpenError


class Destination:
    def __init__(self) -> None:
        self.healthy = False
        self.calls = 0

    async def send(self) -> str:
        self.calls += 1
        await asyncio.sleep(0)
        if not self.healthy:
            raise ConnectionError("down")
        return "ok"


def let_the_open_timeout_pass(breaker: AsyncCircuitBreaker) -> None:
    """Move the moment the breaker opened back past its reset timeout: the test decides when
    the timeout has passed, not the machine's speed (a long timeout never runs out between two
    lines of the test on a busy box)."""
    storage = breaker._breaker._state_storage
    opened_at = storage.opened_at
    assert opened_at is not None, "the breaker is not open"
    storage.opened_at = opened_at - timedelta(seconds=breaker._breaker.reset_timeout + 1)


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(
        "revops_circuit_breaker_state", {"service": metrics.service_name(), "breaker": name}
    )


async def test_breaker_opens_half_opens_and_closes():
    dest = Destination()
    breaker = AsyncCircuitBreaker(
        "slack-test", failure_threshold=5, success_threshold=3, timeout_s=60
    )
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await breaker.call(dest.send)
    assert breaker.state == "open"
    assert gauge("slack-test") == 2

    with pytest.raises(CircuitOpenError):
        await breaker.call(dest.send)
    assert dest.calls == 5  # refused without an attempt

    let_the_open_timeout_pass(breaker)
    dest.healthy = True
    assert await breaker.call(dest.send) == "ok"
    assert breaker.state == "half_open"
    assert gauge("slack-test") == 1
    await breaker.call(dest.send)
    await breaker.call(dest.send)
    assert breaker.state == "closed"
    assert gauge("slack-test") == 0


async def test_failure_while_half_open_reopens():
    dest = Destination()
    breaker = AsyncCircuitBreaker(
        "crm-test", failure_threshold=2, success_threshold=3, timeout_s=60
    )
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call(dest.send)
    let_the_open_timeout_pass(breaker)
    with pytest.raises(ConnectionError):
        await breaker.call(dest.send)  # the probe fails
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        await breaker.call(dest.send)


async def test_successes_below_threshold_keep_it_closed():
    dest = Destination()
    breaker = AsyncCircuitBreaker(
        "email-test", failure_threshold=3, success_threshold=1, timeout_s=60
    )
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call(dest.send)
    dest.healthy = True
    await breaker.call(dest.send)  # a success resets the failure count
    dest.healthy = False
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call(dest.send)
    assert breaker.state == "closed"
