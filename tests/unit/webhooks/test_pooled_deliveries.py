"""Deliveries reuse keep-alive connections (one pool per destination, one connection per
lane at most), and results that finish close together are published in one call; every
delivery still carries `Idempotency-Key: <action_id>` and happens once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from contracts.actions import ActionJob, ActionResult, ActionStatus
from services.webhook_processor.delivery_log import DELIVERED, DeliveryLog
from services.webhook_processor.engine import DeliveryEngine, Intake
from tests.support import HttpRecorder, SmtpRecorder
from tests.unit.webhooks.conftest import Harness, make_config, make_job

LANES = 2  # `concurrency` of every destination in the test config


async def until(condition: object, what: str, wait_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + wait_s
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"still waiting for {what}")
        await asyncio.sleep(0.01)


async def test_many_deliveries_reuse_a_few_connections(
    harness: Harness, sink: HttpRecorder
) -> None:
    jobs = [
        make_job(
            f"k-{n}", ("slack_cs_alerts", "slack_revops_alerts")[n % 2], account_id=f"a{n % 7}"
        )
        for n in range(60)
    ]
    assert await harness.engine.enqueue_batch([Intake(j) for j in jobs]) == [None] * 60
    await harness.wait_results(60, wait_s=30)

    requests = sink.requests()
    assert sorted(r.header("Idempotency-Key") or "" for r in requests) == sorted(
        j.action_id for j in jobs
    )
    # Two destinations on the same server, each with its own pool of LANES connections:
    # 60 deliveries over at most 4 TCP connections (one per delivery without keep-alive).
    assert 1 <= sink.connections <= 2 * LANES


async def test_e_mails_reuse_a_kept_smtp_connection(harness: Harness, smtp: SmtpRecorder) -> None:
    jobs = [
        make_job(f"m-{n}", "email_revops", channel="email", account_id=f"a{n}") for n in range(8)
    ]
    assert await harness.engine.enqueue_batch([Intake(j) for j in jobs]) == [None] * 8
    results = await harness.wait_results(8, wait_s=30)

    assert {r.status for r in results} == {ActionStatus.SUCCESS}
    messages = await asyncio.to_thread(smtp.wait_for, 8)
    assert len({m["Message-ID"] for m in messages}) == 8
    assert 1 <= len(smtp.connections) <= LANES  # 8 messages, one kept connection per lane


class HeldPublisher:
    """Holds the first publish call until released, so the results finishing meanwhile
    queue up behind it: they must leave together in the next call."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail_first = fail_first

    async def __call__(self, results: Sequence[ActionResult]) -> None:
        self.calls.append([r.action_id for r in results])
        if len(self.calls) == 1:
            await self.release.wait()
            if self.fail_first:
                raise ConnectionError("broker unreachable")

    @property
    def published(self) -> list[str]:
        return [a for call in self.calls[1 if self.fail_first else 0 :] for a in call]


@pytest.fixture
async def held(
    sink: HttpRecorder, smtp: SmtpRecorder, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[DeliveryEngine, HeldPublisher]]:
    publisher = HeldPublisher(fail_first=getattr(request, "param", False))

    async def dead_letter(job: ActionJob, code: str, message: str) -> None:
        raise AssertionError(f"nothing is dead-lettered here: {code} {message}")

    log = DeliveryLog(tmp_path / "deliveries.db")
    engine = DeliveryEngine(
        make_config(sink, smtp.port), log, publisher, dead_letter, outbox_dir=tmp_path / "out"
    )
    await engine.start()
    yield engine, publisher
    publisher.release.set()
    await engine.stop(timeout_s=5)
    log.close()


async def deliver_all_while_held(
    engine: DeliveryEngine, publisher: HeldPublisher, count: int
) -> list[str]:
    ids = [f"p-{n}" for n in range(count)]
    jobs = [make_job(i, "slack_cs_alerts", account_id=f"a{n % 5}") for n, i in enumerate(ids)]
    await engine.enqueue_batch([Intake(j) for j in jobs])
    # Delivered = its results were handed to the batcher (same synchronous step).
    await until(lambda: all(engine.log.status(i) == DELIVERED for i in ids), "every delivery")
    publisher.release.set()
    return ids


async def test_results_finished_close_together_leave_in_one_publish(
    held: tuple[DeliveryEngine, HeldPublisher], sink: HttpRecorder
) -> None:
    engine, publisher = held
    ids = await deliver_all_while_held(engine, publisher, 12)
    await until(lambda: engine.log.unpublished() == [], "results marked published")

    assert sorted(publisher.published) == sorted(ids)  # each result exactly once
    assert len(publisher.calls) <= 2  # the held call, then everything that queued behind it
    assert len(sink.requests()) == 12


@pytest.mark.parametrize("held", [True], indirect=True)
async def test_a_failed_result_publish_is_retried_without_delivering_again(
    held: tuple[DeliveryEngine, HeldPublisher], sink: HttpRecorder
) -> None:
    engine, publisher = held
    ids = await deliver_all_while_held(engine, publisher, 6)
    await until(lambda: engine.log.unpublished() == [], "results published after the retry")

    failed = set(publisher.calls[0])
    retried = [a for call in publisher.calls[1:] for a in call if a in failed]
    assert sorted(retried) == sorted(failed)  # the failed flush's results went out again
    assert sorted(set(publisher.published)) == sorted(ids)
    assert sorted(r.header("Idempotency-Key") or "" for r in sink.requests()) == sorted(ids)
