"""A producer that keeps failing is replaced: after a broker restart an aiokafka producer can
stay stuck on stale partition leaders for as long as the process lives (aio-libs/aiokafka
#1018), so the runtime replaces its Kafka clients after repeated produce failures and the
batch it could not produce is redelivered to the new consumer and flows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.errors import LeaderNotAvailableError

from services.common import metrics
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import REPLACE_CLIENTS_AFTER_FAILURES
from tests.integration.test_runtime import make_runtime, parse_echo
from tests.kafka_tools import collect, create_topics, produce, unique

pytestmark = pytest.mark.kafka


async def test_a_stuck_producer_is_replaced_and_the_batch_flows(kafka: str, tmp_path: Path) -> None:
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"])
    runtime = make_runtime(kafka, tmp_path, "stuck", retry_initial_delay_s=0.05)
    handled: list[str] = []

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        handled.append(item.body.id)
        return [Outgoing(out, item.body.id, item.body)]

    runtime.subscribe(src, parse_echo, handle)
    await runtime.start()
    stuck = runtime._kafka_producer()
    sends: list[str] = []

    async def fail(topic: str, *args: Any, **kwargs: Any) -> Any:
        sends.append(topic)
        raise LeaderNotAvailableError()

    stuck.send = fail
    replaced_before = metrics.KAFKA_CLIENTS_REPLACED.labels("stuck")._value.get()
    try:
        await produce(kafka, src, [{"n": i, "id": f"r{i}"} for i in range(3)])
        outs = await collect(kafka, out, 3, timeout_s=90)
    finally:
        await runtime.stop()
    assert sorted(orjson.loads(r.value)["id"] for r in outs) == ["r0", "r1", "r2"]
    # The old producer failed as often as the threshold asks before it was replaced ...
    assert len(sends) >= REPLACE_CLIENTS_AFTER_FAILURES
    assert metrics.KAFKA_CLIENTS_REPLACED.labels("stuck")._value.get() > replaced_before
    # ... and the records were handled again by the new consumer (none was marked done).
    assert {"r0", "r1", "r2"} <= set(handled) and len(handled) > 3
