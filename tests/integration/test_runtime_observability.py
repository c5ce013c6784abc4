"""What an operator sees of a running service, against a real broker: consumer lag read from
/metrics while a backlog exists, a log line and a request id for every dead letter, and the
Kafka `correlation_id` header equal to the envelope's."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
import structlog
from aiokafka.client import AIOKafkaClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from structlog.testing import capture_logs

from services.common import runtime as runtime_module
from services.common.dlq import HEADER_REQUEST_ID, build_error_envelope
from services.common.errors import PermanentError
from services.common.messages import decode_json, encode, make_envelope
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from tests.kafka_tools import collect, create_topics, produce, unique

pytestmark = pytest.mark.kafka


class Job(BaseModel):
    n: int
    request_id: str


def parse_job(record: Record) -> Parsed:
    raw = decode_json(record.value)
    if not isinstance(raw, dict) or "n" not in raw:
        raise PermanentError("a job needs a field n", code="INVALID_PAYLOAD")
    job = Job.model_validate(raw)
    return Parsed(
        idempotency_key=f"{job.request_id}:{job.n}",
        body=job,
        log_context={"request_id": job.request_id},
    )


def runtime_for(kafka: str, tmp_path, name: str, **overrides: Any) -> ServiceRuntime:
    settings = Settings(
        kafka_bootstrap_servers=kafka,
        state_dir=tmp_path / "state",
        signing_enabled=False,
        retry_initial_delay_s=0.1,
        **overrides,
    )
    return ServiceRuntime(name, settings, http_port=0)


async def lag_on(runtime: ServiceRuntime, topic: str) -> float | None:
    """Sum of revops_consumer_lag over the topic's partitions, as /metrics shows it."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{runtime.http_port}/metrics")).text
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "revops_consumer_lag"
        for sample in family.samples
        if sample.labels["service"] == runtime.name and sample.labels["topic"] == topic
    ]
    return sum(values) if values else None


async def until(condition, timeout_s: float = 60.0) -> None:
    """Polls `condition` (an async callable) until it is true; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


async def test_consumer_lag_is_on_metrics_while_a_backlog_exists_and_drains(
    kafka, tmp_path, monkeypatch
):
    # The monitor asks for its own topics' metadata, never for the whole cluster's (which
    # grows with every topic on a shared cluster).
    async def whole_cluster(self: Any) -> None:
        raise AssertionError("the lag monitor asked for every topic's metadata")

    monkeypatch.setattr(AIOKafkaClient, "fetch_all_metadata", whole_cluster)
    src = unique("t.lag")
    await create_topics(kafka, [src, f"{src}.dlq"], partitions=2)
    runtime = runtime_for(kafka, tmp_path, "lagging", lag_interval_s=0.3)
    release = asyncio.Event()

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        await release.wait()  # stuck: nothing is committed while the backlog grows
        return []

    runtime.subscribe(src, parse_job, handle)
    await runtime.start()
    try:
        await produce(kafka, src, [{"n": i, "request_id": "r"} for i in range(20)], key=b"a")
        await produce(kafka, src, [{"n": i, "request_id": "s"} for i in range(10)], key=b"b")

        async def lag_is(expected: float) -> bool:
            return await lag_on(runtime, src) == expected

        # 30 records after the group's committed offsets (none yet) on both partitions.
        await until(lambda: lag_is(30.0))
        release.set()
        await until(lambda: lag_is(0.0))
    finally:
        release.set()
        await runtime.stop()


async def test_every_dead_letter_is_logged_and_names_its_request(kafka, tmp_path, monkeypatch):
    src = unique("t.dead")
    await create_topics(kafka, [src, f"{src}.dlq"], partitions=1)
    runtime = runtime_for(kafka, tmp_path, "rejecting")

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        raise PermanentError("no such account", code="UNKNOWN_SUBJECT")

    runtime.subscribe(src, parse_job, handle)
    with capture_logs() as logs:
        # A fresh logger: the module's may be cached with the configuration of an earlier
        # test (structlog caches on first use), which capture_logs cannot intercept.
        monkeypatch.setattr(runtime_module, "log", structlog.get_logger("runtime"))
        await runtime.start()
        try:
            await produce(
                kafka,
                src,
                [
                    b"\xff not json",  # refused at parsing, names no request
                    {"request_id": "req-bad-field", "x": 1},  # refused at parsing, named
                    {"n": 1, "request_id": "req-unknown"},  # refused by the handler
                ],
            )
            dead = await collect(kafka, f"{src}.dlq", 3)
        finally:
            await runtime.stop()
    lines = [e for e in logs if e["event"] == "dead_lettered"]
    assert [(e["code"], e["offset"], e["request_id"]) for e in lines] == [
        ("INVALID_JSON", 0, None),
        ("INVALID_PAYLOAD", 1, "req-bad-field"),
        ("UNKNOWN_SUBJECT", 2, "req-unknown"),
    ]
    assert all(e["topic"] == src and e["partition"] == 0 for e in lines)
    headers = [dict(r.headers) for r in dead]
    assert [h.get(HEADER_REQUEST_ID) for h in headers] == [None, b"req-bad-field", b"req-unknown"]


async def test_the_kafka_correlation_id_header_is_the_envelopes(kafka, tmp_path):
    src, out = unique("t.corr-in"), unique("t.corr-out")
    await create_topics(kafka, [src, out, f"{src}.dlq"], partitions=1)
    runtime = runtime_for(kafka, tmp_path, "correlating")

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        envelope = make_envelope(
            item.body,
            request_id=item.body.request_id,
            flow_id="flow-1",
            correlation_id=f"corr-{item.body.request_id}",
            source="correlating",
            target="next",
            stage="job",
        )
        return [Outgoing(out, None, envelope)]

    runtime.subscribe(src, parse_job, handle)
    await runtime.start()
    try:
        await produce(kafka, src, [{"n": 1, "request_id": "r-1"}, b"{}"])
        (output,) = await collect(kafka, out, 1)
        (dead,) = await collect(kafka, f"{src}.dlq", 1)
    finally:
        await runtime.stop()
    body = orjson.loads(output.value)
    assert dict(output.headers)["correlation_id"] == body["metadata"]["correlation_id"].encode()
    assert body["metadata"]["correlation_id"] == "corr-r-1"
    assert "correlation_id" in dict(dead.headers)  # a dead letter without envelope has one too


async def test_a_dead_letter_a_component_publishes_itself_is_counted_and_logged(
    kafka, tmp_path, monkeypatch
):
    """The webhook processor dead-letters a delivery after its record was committed, through
    runtime.publish: counted and logged like the runtime's own dead letters."""
    src = unique("t.deliveries")
    await create_topics(kafka, [f"{src}.dlq"], partitions=1)
    runtime = runtime_for(kafka, tmp_path, "delivering")
    job = make_envelope(
        Job(n=1, request_id="req-delivery"),
        request_id="req-delivery",
        flow_id="flow-1",
        correlation_id="req-delivery",
        source="execution_agent",
        target="delivering",
        stage="action:a1",
    )
    record = Record(src, -1, -1, b"acct", encode(job))
    error = build_error_envelope(
        record,
        PermanentError("slack answered 404", code="http_404"),
        attempts=3,
        service="delivering",
        consumer_group=runtime.group_id,
        policy=runtime.policy,
        envelope=job,
    )
    counted = {"service": "delivering", "topic": src, "code": "http_404"}
    before = REGISTRY.get_sample_value("revops_messages_dead_lettered_total", counted) or 0.0
    await runtime.start()
    with capture_logs() as logs:
        monkeypatch.setattr(runtime_module, "log", structlog.get_logger("runtime"))
        try:
            await runtime.publish([Outgoing(f"{src}.dlq", "acct", error)])
        finally:
            await runtime.stop()
    after = REGISTRY.get_sample_value("revops_messages_dead_lettered_total", counted)
    assert after == before + 1
    (line,) = [e for e in logs if e["event"] == "dead_lettered"]
    assert (line["code"], line["topic"], line["request_id"]) == ("http_404", src, "req-delivery")
    assert len(await collect(kafka, f"{src}.dlq", 1)) == 1
