"""The shared service runtime against a real broker: DLQ, retries, idempotency, metrics."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from pydantic import BaseModel

from services.common.errors import PermanentError
from services.common.messages import decode_json
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from tests.kafka_tools import collect, create_topics, produce, unique

pytestmark = pytest.mark.kafka


class Echo(BaseModel):
    n: int
    id: str


def make_runtime(kafka: str, tmp_path, name: str, **overrides) -> ServiceRuntime:
    options = {"retry_initial_delay_s": 0.2, **overrides}
    # These tests use throw-away topics outside the signing policy; signing has its own tests.
    settings = Settings(
        kafka_bootstrap_servers=kafka,
        state_dir=tmp_path / "state",
        signing_enabled=False,
        **options,
    )
    return ServiceRuntime(name, settings, http_port=0)


def parse_echo(record: Record) -> Parsed:
    raw = decode_json(record.value)
    if not isinstance(raw, dict) or "n" not in raw:
        raise PermanentError("an echo needs a field n", code="INVALID_ECHO")
    body = Echo.model_validate(raw)
    return Parsed(idempotency_key=body.id, body=body, log_context={"request_id": body.id})


async def test_poison_goes_to_dlq_and_next_message_flows(kafka, tmp_path):
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"])
    runtime = make_runtime(kafka, tmp_path, "echo")

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        return [Outgoing(out, item.body.id, item.body)]

    runtime.subscribe(src, parse_echo, handle)
    await runtime.start()
    try:
        await produce(kafka, src, [b"\xff not json", {"x": 1}, {"n": 1, "id": "a"}])
        outs = await collect(kafka, out, 1)
        dlq = await collect(kafka, f"{src}.dlq", 2)
    finally:
        await runtime.stop()
    assert [orjson.loads(r.value)["id"] for r in outs] == ["a"]
    errors = [orjson.loads(r.value) for r in dlq]
    assert [e["error"]["code"] for e in errors] == ["INVALID_JSON", "INVALID_ECHO"]
    first = errors[0]
    assert first["dead_letter"]["original_topic"] == src
    assert first["dead_letter"]["original_offset"] == 0
    assert first["dead_letter"]["attempts"] == 1
    assert first["original"]["encoding"] == "base64"
    assert first["error"]["severity"] == "permanent"
    assert first["error"]["retry_strategy"]["max_attempts"] == 3


async def test_failing_twice_then_succeeding_is_retried_with_growing_delays(kafka, tmp_path):
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"])
    runtime = make_runtime(kafka, tmp_path, "flaky")
    attempts: list[float] = []

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ConnectionError("warehouse timed out")
        return [Outgoing(out, item.body.id, item.body)]

    runtime.subscribe(src, parse_echo, handle)
    await runtime.start()
    try:
        await produce(kafka, src, [{"n": 1, "id": "r1"}])
        outs = await collect(kafka, out, 1)
    finally:
        await runtime.stop()
    assert len(outs) == 1
    assert len(attempts) == 3
    first_gap, second_gap = attempts[1] - attempts[0], attempts[2] - attempts[1]
    # policy: 0.2 s then 0.4 s, +/- 10 % jitter
    assert 0.17 <= first_gap < 0.35
    assert 0.35 <= second_gap < 0.6
    assert second_gap > first_gap


async def test_exhausted_retries_dead_letter_with_attempt_count(kafka, tmp_path):
    src = unique("t.src")
    await create_topics(kafka, [src, f"{src}.dlq"])
    runtime = make_runtime(kafka, tmp_path, "broken", retry_initial_delay_s=0.05)

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        raise TimeoutError("destination hangs")

    runtime.subscribe(src, parse_echo, handle)
    await runtime.start()
    try:
        await produce(kafka, src, [{"n": 1, "id": "r1"}])
        dlq = await collect(kafka, f"{src}.dlq", 1)
    finally:
        await runtime.stop()
    error = orjson.loads(dlq[0].value)
    assert error["dead_letter"]["attempts"] == 3
    assert error["error"]["code"] == "PROCESSING_FAILED"
    assert error["error"]["recovery_action"] == "replay"
    assert orjson.loads(error["original"]["value"]) == {"n": 1, "id": "r1"}


async def test_same_idempotency_key_is_processed_once_even_across_restarts(kafka, tmp_path):
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"])
    calls: list[str] = []

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        calls.append(item.body.id)
        return [Outgoing(out, item.body.id, item.body)]

    runtime = make_runtime(kafka, tmp_path, "dedupe")
    runtime.subscribe(src, parse_echo, handle)
    await runtime.start()
    try:
        await produce(kafka, src, [{"n": i, "id": "same"} for i in range(3)])
        await collect(kafka, out, 1, settle_s=1.0)
    finally:
        await runtime.stop()
    # A second process of the same service, same state: the key is remembered on disk.
    runtime2 = make_runtime(kafka, tmp_path, "dedupe")
    runtime2.subscribe(src, parse_echo, handle)
    await runtime2.start()
    try:
        await produce(kafka, src, [{"n": 9, "id": "same"}, {"n": 1, "id": "other"}])
        outs = await collect(kafka, out, 2, settle_s=1.0)
    finally:
        await runtime2.stop()
    assert calls == ["same", "other"]
    assert sorted(orjson.loads(r.value)["id"] for r in outs) == ["other", "same"]


async def test_metrics_and_health_endpoints(kafka, tmp_path):
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"])
    runtime = make_runtime(kafka, tmp_path, "observed")

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        return [Outgoing(out, item.body.id, item.body)]

    runtime.subscribe(src, parse_echo, handle)
    await runtime.start()
    try:
        await produce(kafka, src, [{"n": 1, "id": "m1"}, b"junk"])
        await collect(kafka, out, 1)
        await collect(kafka, f"{src}.dlq", 1)
        base = f"http://127.0.0.1:{runtime.http_port}"
        async with httpx.AsyncClient() as client:
            health = await client.get(f"{base}/healthz")
            ready = await client.get(f"{base}/readyz")
            text = (await client.get(f"{base}/metrics")).text
    finally:
        await runtime.stop()
    assert health.status_code == 200
    assert ready.status_code == 200
    assert f'revops_messages_consumed_total{{service="observed",topic="{src}"}} 2.0' in text
    assert f'revops_messages_produced_total{{service="observed",topic="{out}"}} 1.0' in text
    dead = f'code="INVALID_JSON",service="observed",topic="{src}"'
    assert f"revops_messages_dead_lettered_total{{{dead}}} 1.0" in text
    assert f'revops_message_processing_seconds_count{{service="observed",topic="{src}"}}' in text
    # Both records were consumed as batches: one or two of them, never more records than 2.
    batches = f'revops_batch_records_count{{service="observed",topic="{src}"}}'
    records = f'revops_batch_records_sum{{service="observed",topic="{src}"}} 2.0'
    assert batches in text and records in text, text


async def test_a_records_outputs_go_out_before_the_rest_of_its_batch_is_handled(kafka, tmp_path):
    """Outputs are produced as each record is handled (acks awaited at the end of the
    batch): the next stage does not wait for the whole batch."""
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"])
    # Both records are in the topic before the consumer starts: one batch.
    await produce(kafka, src, [{"n": 1, "id": "first"}, {"n": 2, "id": "second"}])
    runtime = make_runtime(kafka, tmp_path, "streaming")
    batches: list[list[str]] = []
    first_visible_while_second_ran: list[bool] = []

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        if item.body.id == "second":
            early = await collect(kafka, out, 1, timeout_s=10.0)
            first_visible_while_second_ran.append(
                [orjson.loads(r.value)["id"] for r in early] == ["first"]
            )
        return [Outgoing(out, item.body.id, item.body)]

    original = runtime._process_batch

    async def spy(sub, raw):
        batches.append([orjson.loads(r.value)["id"] for r in raw])
        await original(sub, raw)

    runtime._process_batch = spy  # type: ignore[method-assign]
    runtime.subscribe(src, parse_echo, handle)
    await runtime.start()
    try:
        outs = await collect(kafka, out, 2)
    finally:
        await runtime.stop()
    assert batches[0] == ["first", "second"], "the test needs both records in one batch"
    assert first_visible_while_second_ran == [True]
    assert [orjson.loads(r.value)["id"] for r in outs] == ["first", "second"]
