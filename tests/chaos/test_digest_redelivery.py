"""Regression (found by the chaos run): a webhook processor killed after it queued a digest
job but before the job's "queued" result was acknowledged never re-announced it, so the
flow waited for that result forever. A redelivered job must publish the result again."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from contracts.actions import ActionJob, ActionResult, ActionStatus, DeliveryMode
from services.webhook_processor.config_file import parse_config
from services.webhook_processor.delivery_log import DeliveryLog
from services.webhook_processor.engine import DeliveryEngine
from tests.unit.webhooks.conftest import make_job

CONFIG = """
version: 1
destinations:
  email_revops:
    type: outbox_file
    simulate: {type: email_smtp, host: smtp.example.com, sender: a@example.com, to: [b@example.com]}
"""


class Crash(Exception):
    """Stands in for kill -9 between the digest insert and the result's acknowledgement."""


async def test_a_redelivered_digest_job_publishes_its_queued_result_again(tmp_path: Path) -> None:
    published: list[ActionResult] = []
    crash_next = True

    async def publish(results: Sequence[ActionResult]) -> None:
        nonlocal crash_next
        if crash_next:
            crash_next = False
            raise Crash
        published.extend(results)

    async def dead_letter(job: ActionJob, code: str, message: str) -> None:
        raise AssertionError("nothing is dead-lettered here")

    job = make_job(
        "act-digest-1", "email_revops", channel="email", delivery_mode=DeliveryMode.DAILY_DIGEST
    )
    engine = DeliveryEngine(
        parse_config(CONFIG, env={}),
        DeliveryLog(tmp_path / "deliveries.db"),
        publish,
        dead_letter,
        outbox_dir=tmp_path / "outbox",
    )
    with contextlib.suppress(Crash):  # the record is not committed: Kafka redelivers it
        await engine.enqueue(job)
    assert published == []

    await engine.enqueue(job)  # the redelivery

    assert [(r.action_id, r.status) for r in published] == [("act-digest-1", ActionStatus.QUEUED)]
    assert engine.log.is_digest_queued("act-digest-1")
