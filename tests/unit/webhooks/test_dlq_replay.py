"""A job the engine gave up on (dead-lettered after its record was committed) can be
replayed from the DLQ: it is delivered once when the destination is back, and a replay of a
job that was already delivered sends nothing."""

from __future__ import annotations

import asyncio

from contracts.actions import ActionStatus
from tests.support import HttpRecorder
from tests.unit.webhooks.conftest import Harness, make_job


async def test_replay_of_a_failed_job_delivers_it_once(harness: Harness, sink: HttpRecorder):
    job = make_job("a-replay", "slack_revops_alerts")
    sink.fail("/slack/revops", 400, times=1)  # a 4xx other than 408/429: permanent
    await harness.engine.enqueue(job)
    [failed] = await harness.wait_results(1)
    assert failed.status == ActionStatus.FAILED
    assert len(harness.dead) == 1

    await harness.engine.enqueue(job)  # a plain redelivery does not retry a final failure
    await asyncio.sleep(0.3)
    assert len(sink.requests("/slack/revops")) == 1

    await harness.engine.enqueue(job, replay=True)  # `revops dlq replay`
    results = await harness.wait_results(2)
    assert results[1].status == ActionStatus.SUCCESS
    delivered = sink.requests("/slack/revops")
    assert len(delivered) == 2  # the refused attempt, then the replayed delivery
    assert delivered[1].headers["idempotency-key"] == "a-replay"

    await harness.engine.enqueue(job, replay=True)  # replaying again: already delivered
    await asyncio.sleep(0.3)
    assert len(sink.requests("/slack/revops")) == 2
    assert len(harness.results) == 2
