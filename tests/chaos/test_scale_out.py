"""Three decision-agent replicas in one consumer group (topics have 6 partitions) share the
work, and killing one mid-run loses nothing: its partitions move to the survivors. The run
deletes its topics when it ends (runs on a long-lived broker do not pile them up)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from bench.harness import pipeline
from bench.scale_out import run_scale_out

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]


def test_three_replicas_share_the_load_and_survive_a_kill(kafka: str, tmp_path: Path) -> None:
    with pipeline(kafka, tmp_path, accounts=30) as p:
        run_topics = set(p.settings.topics.all_topics())
        assert run_topics <= asyncio.run(topics_on(kafka))
        result = asyncio.run(run_scale_out(p, triggers=120, rate=12.0, timeout_s=150.0))
    print(json.dumps(result.as_dict(), indent=2))
    assert run_topics.isdisjoint(asyncio.run(topics_on(kafka))), "the run's topics are left"
    assert len(result.consumed_before_kill) == 3
    assert all(count > 0 for count in result.consumed_before_kill.values()), result
    assert result.completed == result.triggers
    assert result.ok


async def topics_on(kafka: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()
