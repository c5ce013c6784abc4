"""A lane claims several jobs at once and writes their final states together: it delivers the
set in order, each job once, publishes a result only once its final state is written, lets
a window write the finished jobs' states while a later one is still retried, and hands back
what it did not start when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from contracts.actions import ActionJob, ActionResult, ActionStatus
from services.webhook_processor import engine as engine_module
from services.webhook_processor.delivery_log import PENDING, DeliveryLog, Finish
from services.webhook_processor.engine import CLAIM_BATCH, DeliveryEngine, Intake
from tests.support import HttpRecorder, SmtpRecorder
from tests.unit.webhooks.conftest import CONFIG, make_config, make_job

PATH = "/slack/revops"


class Lane:
    """An engine with one lane per destination, recording its results, each with whether its
    job's final state was written before it was published, and its final-state writes."""

    def __init__(self, sink: HttpRecorder, smtp: SmtpRecorder, tmp_path: Path) -> None:
        config = CONFIG.replace("concurrency: 2", "concurrency: 1").replace(
            "max_attempts: 3", "max_attempts: 1000"
        )
        self.log = DeliveryLog(tmp_path / "deliveries.db")
        self.results: list[tuple[ActionResult, bool]] = []
        self.writes: list[list[str]] = []
        finish_many = self.log.finish_many

        def recorded(finishes: Sequence[Finish]) -> None:
            finish_many(finishes)
            self.writes.append([f.action_id for f in finishes])

        self.log.finish_many = recorded  # type: ignore[method-assign]

        self._config = make_config(sink, smtp.port, config)
        self.engine: DeliveryEngine | None = None

    async def start(self) -> DeliveryEngine:
        async def publish(results: Sequence[ActionResult]) -> None:
            self.results.extend((r, self.log.status(r.action_id) != PENDING) for r in results)

        async def dead_letter(job: ActionJob, code: str, message: str) -> None:
            raise AssertionError(f"nothing is dead-lettered here: {job.action_id} {code}")

        self.engine = DeliveryEngine(self._config, self.log, publish, dead_letter)
        await self.engine.start()
        return self.engine

    async def wait_results(self, count: int) -> list[ActionResult]:
        for _ in range(1000):
            if len(self.results) >= count:
                break
            await asyncio.sleep(0.01)
        assert len(self.results) == count, self.results
        return [r for r, _ in self.results]


@pytest.fixture
async def lane(sink: HttpRecorder, smtp: SmtpRecorder, tmp_path: Path) -> AsyncIterator[Lane]:
    made = Lane(sink, smtp, tmp_path)
    yield made
    if made.engine is not None:
        await made.engine.stop(timeout_s=5)
    made.log.close()


def _jobs(count: int, accounts: int) -> list[ActionJob]:
    """`count` jobs for the revops Slack channel, accounts interleaved as Kafka hands them."""
    return [
        make_job(f"j-{n:02d}", "slack_revops_alerts", account_id=f"acc-{n % accounts}")
        for n in range(count)
    ]


async def test_a_lane_delivers_its_claimed_sets_in_order_each_job_once(
    lane: Lane, sink: HttpRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A window longer than the test: the final states are written when a set is done.
    monkeypatch.setattr(engine_module, "FINISH_WINDOW_S", 600.0)
    jobs = _jobs(2 * CLAIM_BATCH + 5, accounts=3)
    sink.fail(PATH, status=503)  # the first job is retried once
    engine = await lane.start()
    assert await engine.enqueue_batch([Intake(job) for job in jobs]) == [None] * len(jobs)

    results = await lane.wait_results(len(jobs))
    ids = [job.action_id for job in jobs]
    assert sorted(r.action_id for r in results) == sorted(ids)
    assert {r.status for r in results} == {ActionStatus.SUCCESS}
    assert all(written for _, written in lane.results)  # no result ahead of its final state
    # Oldest first, each once (the first twice: its failed attempt), so in order per account;
    # a set's states written together, before the next claim (else it would be sent again).
    keys = [r.header("Idempotency-Key") for r in sink.requests(PATH)]
    assert keys == [ids[0], *ids]
    assert lane.writes == [
        ids[:CLAIM_BATCH],
        ids[CLAIM_BATCH : 2 * CLAIM_BATCH],
        ids[2 * CLAIM_BATCH :],
    ]
    assert lane.log.pending_count() == 0


async def test_a_job_still_retried_does_not_hold_back_the_sets_earlier_results(
    lane: Lane, sink: HttpRecorder
) -> None:
    first, second = _jobs(2, accounts=2)
    sink.stall(PATH, seconds=0.0)  # the first job goes through...
    sink.fail(PATH, status=503, times=100_000)  # ...the second one fails until reset
    engine = await lane.start()
    await engine.enqueue_batch([Intake(first), Intake(second)])

    [result] = await lane.wait_results(1)  # written by the window, not at the set's end
    assert (result.action_id, result.status) == (first.action_id, ActionStatus.SUCCESS)
    assert lane.log.status(first.action_id) == "delivered"
    assert lane.log.status(second.action_id) == PENDING

    sink.reset()
    results = await lane.wait_results(2)
    assert [r.action_id for r in results] == [first.action_id, second.action_id]
    assert lane.log.status(second.action_id) == "delivered"


async def test_stopping_hands_back_the_claimed_jobs_not_started(
    lane: Lane, sink: HttpRecorder
) -> None:
    jobs = _jobs(5, accounts=5)
    sink.stall(PATH, seconds=0.5)  # the first job is in flight when the engine stops
    engine = await lane.start()
    await engine.enqueue_batch([Intake(job) for job in jobs])
    await sink.wait_for_async(1, PATH)
    await engine.stop(timeout_s=5)

    assert [r.action_id for r in await lane.wait_results(1)] == [jobs[0].action_id]
    assert lane.log.status(jobs[0].action_id) == "delivered"
    held = lane.log._all("SELECT action_id, claimed_by FROM outbox WHERE status = ?", (PENDING,))
    assert sorted(tuple(row) for row in held) == [(job.action_id, None) for job in jobs[1:]]
