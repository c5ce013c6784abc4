"""Delivery guarantees against real loopback servers: idempotency, breaker isolation and
recovery, Retry-After, retries then DLQ, restart resume, max pending age."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY

from contracts.actions import ActionStatus
from tests.support import HttpRecorder
from tests.unit.webhooks.conftest import Harness, HarnessFactory, make_job


async def wait_until(predicate, wait_s: float = 5.0) -> None:
    deadline = time.monotonic() + wait_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_same_job_twice_is_sent_once(harness: Harness, sink: HttpRecorder) -> None:
    job = make_job("a-dup-1", "slack_revops_alerts")
    await harness.engine.enqueue(job)
    await harness.engine.enqueue(job)  # Kafka redelivery before delivery
    await harness.wait_results(1)
    await harness.engine.enqueue(job)  # and after delivery
    await asyncio.sleep(0.2)
    keys = [r.header("Idempotency-Key") for r in sink.requests("/slack/revops")]
    assert keys == ["a-dup-1"]
    assert len(harness.results) == 1
    [row] = harness.log.attempts("a-dup-1")
    assert (row["destination"], row["attempt"], row["status"], row["response_code"]) == (
        "slack_revops_alerts",
        1,
        "success",
        200,
    )
    assert row["latency_ms"] > 0


async def test_failing_destination_opens_breaker_without_delaying_others_then_recovers(
    harness_factory: HarnessFactory, sink: HttpRecorder
) -> None:
    h = await harness_factory({"max_attempts: 3": "max_attempts: 20"})
    sink.stall("/slack/revops", seconds=1.0, status=500)  # a slow failure first
    sink.fail("/slack/revops", status=503, times=4)  # then 4 fast ones: 5 failures
    before = (
        REGISTRY.get_sample_value(
            "revops_deliveries_total",
            {"channel": "slack", "destination": "slack_revops_alerts", "status": "success"},
        )
        or 0.0
    )
    revops = [make_job(f"a-rev-{i}", "slack_revops_alerts") for i in range(3)]
    cs = [make_job(f"a-cs-{i}", "slack_cs_alerts") for i in range(3)]
    for job in revops:
        await h.engine.enqueue(job)
    started = time.monotonic()
    for job in cs:
        await h.engine.enqueue(job)
    cs_requests = await sink.wait_for_async(3, "/slack/cs")
    # The healthy destination is served while the failing one is still stalled.
    assert max(r.received_at for r in cs_requests) - started < 0.5
    await sink.wait_for_async(5, "/slack/revops")
    await wait_until(lambda: h.engine.breaker_state("slack_revops_alerts") != "closed")
    results = await h.wait_results(6, wait_s=10)
    assert {r.status for r in results} == {ActionStatus.SUCCESS}
    keys = [r.header("Idempotency-Key") for r in sink.requests("/slack/revops")]
    # 5 failed tries of the head job, then each job exactly once, in order.
    assert keys == ["a-rev-0"] * 6 + ["a-rev-1", "a-rev-2"]
    assert h.engine.breaker_state("slack_revops_alerts") == "closed"
    assert h.result("a-rev-0").attempts == 6
    after = REGISTRY.get_sample_value(
        "revops_deliveries_total",
        {"channel": "slack", "destination": "slack_revops_alerts", "status": "success"},
    )
    assert after == before + 3


async def test_429_retry_after_is_honoured(harness: Harness, sink: HttpRecorder) -> None:
    sink.rate_limit("/slack/cs", retry_after=1)
    await harness.engine.enqueue(make_job("a-429", "slack_cs_alerts"))
    first, second = await sink.wait_for_async(2, "/slack/cs")
    waited = second.received_at - first.received_at
    assert 0.95 <= waited < 1.5, waited
    [result] = await harness.wait_results(1)
    assert (result.status, result.attempts) == (ActionStatus.SUCCESS, 2)
    retry, success = harness.log.attempts("a-429")
    assert (retry["status"], retry["response_code"]) == ("retry", 429)
    assert success["status"] == "success"


async def test_retries_exhausted_go_to_dead_letter(harness: Harness, sink: HttpRecorder) -> None:
    sink.fail("/hook", status=502, times=3)
    job = make_job("a-502", "webhook_generic", channel="webhook")
    await harness.engine.enqueue(job)
    [result] = await harness.wait_results(1)
    assert (result.status, result.attempts) == (ActionStatus.FAILED, 3)
    [(dead_job, code, message)] = harness.dead
    assert dead_job == job
    assert code == "retries_exhausted"
    assert message.startswith("3 attempts failed; last: destination_unavailable: HTTP 502")
    assert [a["attempt"] for a in harness.log.attempts("a-502")] == [1, 2, 3]
    assert len(sink.requests("/hook")) == 3


async def test_timeout_is_retried(harness_factory: HarnessFactory, sink: HttpRecorder) -> None:
    h = await harness_factory({"timeout_s: 2": "timeout_s: 0.3"})
    sink.stall("/slack/cs", seconds=1.0)
    await h.engine.enqueue(make_job("a-slow", "slack_cs_alerts"))
    [result] = await h.wait_results(1)
    assert (result.status, result.attempts) == (ActionStatus.SUCCESS, 2)
    assert harness_error(h, "a-slow") == "timeout: no answer within 0.3s"


def harness_error(h: Harness, action_id: str) -> str | None:
    return h.log.attempts(action_id)[0]["error"]


async def test_restart_resumes_pending_jobs(
    harness_factory: HarnessFactory, sink: HttpRecorder
) -> None:
    first = await harness_factory({"max_attempts: 3": "max_attempts: 50"})
    sink.fail("/slack/revops", status=503, times=1000)
    for i in range(3):
        await first.engine.enqueue(make_job(f"a-res-{i}", "slack_revops_alerts"))
    await wait_until(lambda: first.engine.breaker_state("slack_revops_alerts") == "open")
    await first.engine.stop(timeout_s=5)
    assert first.log.pending_count("slack_revops_alerts") == 3
    assert first.results == []

    sink.reset()  # the destination is back
    second = await harness_factory({"max_attempts: 3": "max_attempts: 50"})
    results = await second.wait_results(3)
    assert sorted(r.action_id for r in results) == ["a-res-0", "a-res-1", "a-res-2"]
    assert {r.status for r in results} == {ActionStatus.SUCCESS}
    keys = [r.header("Idempotency-Key") for r in sink.requests("/slack/revops")]
    assert keys == ["a-res-0", "a-res-1", "a-res-2"]


async def test_enqueue_before_start_is_delivered_after_start(
    harness_factory: HarnessFactory, sink: HttpRecorder
) -> None:
    h = await harness_factory(start=False)
    await h.engine.enqueue(make_job("a-early", "slack_cs_alerts"))
    assert sink.requests() == []
    await h.engine.start()
    [result] = await h.wait_results(1)
    assert result.status == ActionStatus.SUCCESS


async def test_breaker_open_past_max_pending_age_dead_letters(
    harness_factory: HarnessFactory, sink: HttpRecorder
) -> None:
    h = await harness_factory(
        {
            "max_attempts: 3": "max_attempts: 100",
            "concurrency: 2": "concurrency: 1\n  max_pending_age_s: 0.8",
        }
    )
    sink.fail("/slack/revops", status=500, times=1000)
    await h.engine.enqueue(make_job("a-old", "slack_revops_alerts"))
    [result] = await h.wait_results(1)
    assert result.status == ActionStatus.FAILED
    [(_job, code, message)] = h.dead
    assert code == "max_pending_age_exceeded"
    assert "last error: destination_unavailable: HTTP 500" in message


async def test_stop_lets_the_attempt_in_flight_finish(
    harness_factory: HarnessFactory, sink: HttpRecorder
) -> None:
    h = await harness_factory()
    sink.stall("/slack/cs", seconds=0.5)
    await h.engine.enqueue(make_job("a-inflight", "slack_cs_alerts"))
    await sink.wait_for_async(1, "/slack/cs")
    await h.engine.stop(timeout_s=5)
    [result] = h.results
    assert (result.action_id, result.status) == ("a-inflight", ActionStatus.SUCCESS)
    assert h.log.status("a-inflight") == "delivered"
