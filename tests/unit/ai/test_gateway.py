"""The gateway's own logic: prompt cache, per-flow and per-day token budgets, circuit
breaker, deadline, retries, cost, and fallback metrics."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from services.common.breaker import AsyncCircuitBreaker
from services.common.retry import RetryPolicy
from services.decision_agent.model.errors import (
    NOT_ENDPOINT_FAILURES,
    ModelRefused,
    ModelThrottled,
    ModelUnavailable,
)
from services.decision_agent.model.gateway import (
    FlowLedger,
    GatewayConfig,
    ModelFallback,
    ModelGateway,
    Prices,
)
from services.decision_agent.model.store import DailyTokenBudget, PromptCache, open_store
from tests.unit.ai.support import ScriptedPort, Verdict, verdict_request


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def make_gateway(
    tmp_path,
    port: ScriptedPort,
    *,
    day_limit: int = 1_000_000,
    attempts: int = 3,
    failure_threshold: int = 5,
    prices: Prices | None = None,
    sleeps: list[float] | None = None,
    day: str = "2026-11-01",
) -> ModelGateway:
    conn = open_store(tmp_path / "model.db")
    waits = sleeps if sleeps is not None else []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    return ModelGateway(
        port,
        breaker=AsyncCircuitBreaker(
            f"test:{tmp_path.name}",
            failure_threshold=failure_threshold,
            exclude=NOT_ENDPOINT_FAILURES,
        ),
        cache=PromptCache(conn, 3600),
        day_budget=DailyTokenBudget(conn, day_limit, day=lambda: day),
        config=GatewayConfig(
            timeout_s=5,
            policy=RetryPolicy(max_attempts=attempts, max_delay_s=10, jitter=0),
            prices=prices or Prices(),
        ),
        sleep=no_wait,
    )


def flow(tokens: int = 100_000, seconds: float = 60) -> FlowLedger:
    return FlowLedger.starting_now(tokens, seconds)


async def test_the_same_prompt_again_is_answered_by_the_cache_for_free(tmp_path) -> None:
    port = ScriptedPort()
    port.ok({"label": "good", "score": 7}, tokens_in=500, tokens_out=50)
    gateway = make_gateway(tmp_path, port, prices=Prices(3.0, 15.0))
    hits = metric("revops_model_cache_hits_total", prompt="verdict")
    first_flow, second_flow = flow(), flow()
    first = await gateway.ask(verdict_request(), first_flow)
    second = await gateway.ask(verdict_request(), second_flow)
    assert len(port.requests) == 1
    assert not first.from_cache and second.from_cache
    assert second.output == first.output
    assert (first_flow.tokens_in, first_flow.tokens_out) == (500, 50)
    assert first_flow.cost_usd == pytest.approx((500 * 3.0 + 50 * 15.0) / 1e6)
    assert (second_flow.tokens_in, second_flow.tokens_out, second_flow.cost_usd) == (0, 0, 0.0)
    assert metric("revops_model_cache_hits_total", prompt="verdict") == hits + 1


async def test_a_changed_prompt_is_not_a_cache_hit(tmp_path) -> None:
    port = ScriptedPort()
    port.ok({"label": "a", "score": 1})
    port.ok({"label": "b", "score": 2})
    gateway = make_gateway(tmp_path, port)
    await gateway.ask(verdict_request("Deal A"), flow())
    answer = await gateway.ask(verdict_request("Deal A, one more call"), flow())
    assert answer.output == Verdict(label="b", score=2) and len(port.requests) == 2


async def test_a_flow_budget_too_small_falls_back_without_calling(tmp_path) -> None:
    port = ScriptedPort()
    gateway = make_gateway(tmp_path, port)
    before = metric("revops_model_fallbacks_total", prompt="verdict", reason="budget_exhausted")
    with pytest.raises(ModelFallback) as caught:
        await gateway.ask(verdict_request(), flow(tokens=50))
    assert caught.value.reason == "budget_exhausted"
    assert port.requests == []
    after = metric("revops_model_fallbacks_total", prompt="verdict", reason="budget_exhausted")
    assert after == before + 1


async def test_the_day_budget_is_shared_by_flows_and_settled_to_real_usage(tmp_path) -> None:
    port = ScriptedPort()
    port.ok({"label": "a", "score": 1}, tokens_in=150, tokens_out=30)
    estimate = verdict_request("first").estimated_tokens()
    gateway = make_gateway(tmp_path, port, day_limit=estimate + 100)
    await gateway.ask(verdict_request("first"), flow())
    assert gateway.day_budget.used("2026-11-01") == 180  # the estimate was settled to usage
    with pytest.raises(ModelFallback) as caught:
        await gateway.ask(verdict_request("second"), flow())
    assert caught.value.reason == "budget_exhausted"
    assert len(port.requests) == 1
    # A new day has a new budget.
    gateway.day_budget._day = lambda: "2026-11-02"
    port.ok({"label": "b", "score": 2})
    answer = await gateway.ask(verdict_request("second"), flow())
    assert answer.output == Verdict(label="b", score=2)


async def test_failed_calls_release_their_reservation(tmp_path) -> None:
    port = ScriptedPort([ModelRefused("no")])
    gateway = make_gateway(tmp_path, port)
    ledger = flow()
    with pytest.raises(ModelFallback) as caught:
        await gateway.ask(verdict_request(), ledger)
    assert caught.value.reason == "refused"
    assert ledger.tokens_reserved == 0
    assert gateway.day_budget.used("2026-11-01") == 0


async def test_the_breaker_opens_and_then_no_call_is_attempted(tmp_path) -> None:
    port = ScriptedPort([ModelUnavailable("503")] * 3)
    gateway = make_gateway(tmp_path, port, attempts=1, failure_threshold=3)
    for n in range(3):
        with pytest.raises(ModelFallback) as caught:
            await gateway.ask(verdict_request(f"deal {n}"), flow())
        assert caught.value.reason == "unavailable"
    assert gateway.breaker.state == "open"
    with pytest.raises(ModelFallback) as caught:
        await gateway.ask(verdict_request("deal 4"), flow())
    assert caught.value.reason == "breaker_open"
    assert len(port.requests) == 3


async def test_refusals_do_not_open_the_breaker(tmp_path) -> None:
    port = ScriptedPort([ModelRefused("no")] * 6)
    gateway = make_gateway(tmp_path, port, attempts=1, failure_threshold=3)
    for n in range(6):
        with pytest.raises(ModelFallback):
            await gateway.ask(verdict_request(f"deal {n}"), flow())
    assert gateway.breaker.state == "closed"
    assert len(port.requests) == 6


async def test_retry_after_is_honoured_up_to_the_max_delay(tmp_path) -> None:
    port = ScriptedPort(
        [ModelThrottled("429", retry_after_s=4), ModelThrottled("429", retry_after_s=99)]
    )
    port.ok({"label": "a", "score": 1})
    sleeps: list[float] = []
    gateway = make_gateway(tmp_path, port, sleeps=sleeps)
    await gateway.ask(verdict_request(), flow())
    assert sleeps == [4.0, 10.0]


async def test_no_retry_when_the_flow_deadline_is_too_close(tmp_path) -> None:
    port = ScriptedPort([ModelThrottled("429", retry_after_s=8)])
    gateway = make_gateway(tmp_path, port)
    with pytest.raises(ModelFallback) as caught:
        await gateway.ask(verdict_request(), flow(seconds=5))
    assert caught.value.reason == "throttled"
    assert len(port.requests) == 1


async def test_a_spent_deadline_falls_back_before_calling(tmp_path) -> None:
    port = ScriptedPort()
    gateway = make_gateway(tmp_path, port)
    with pytest.raises(ModelFallback) as caught:
        await gateway.ask(verdict_request(), flow(seconds=0))
    assert caught.value.reason == "deadline"
    assert port.requests == []


async def test_an_adapter_bug_is_a_fallback_not_a_crash(tmp_path) -> None:
    port = ScriptedPort([RuntimeError("bug in an adapter")])
    gateway = make_gateway(tmp_path, port)
    with pytest.raises(ModelFallback) as caught:
        await gateway.ask(verdict_request(), flow())
    assert caught.value.reason == "error"


async def test_expired_cache_entries_are_purged(tmp_path) -> None:
    conn = open_store(tmp_path / "model.db")
    now = [1000.0]
    cache = PromptCache(conn, ttl_s=10, clock=lambda: now[0])
    cache.put("k", "verdict", "m", {"label": "a", "score": 1}, 1, 1)
    assert cache.get("k") == {"label": "a", "score": 1}
    now[0] += 11
    assert cache.get("k") is None
    assert cache.purge_expired() == 1
