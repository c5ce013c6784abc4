"""Clients' side of the pipeline: publish raw triggers, watch `revops.flow-results`.

Used by `revops trigger --wait`, `revops run/demo`, the HTTP ingress and the tests, so there
is one way to do both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from contracts import AgentName, FlowOutput, RawTrigger
from services.common.envelope_security import EnvelopeSecurity
from services.common.errors import HandlerError
from services.common.kafka_security import aiokafka_options
from services.common.messages import decode_envelope, decode_payload
from services.common.records import Record
from services.common.settings import Settings

log = structlog.get_logger("flows")


async def publish_triggers(settings: Settings, triggers: Iterable[RawTrigger]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        linger_ms=5,
        **aiokafka_options(settings),
    )
    await producer.start()
    try:
        futures = []
        for trigger in triggers:
            key = (trigger.parameters.account_id or "fleet").encode()
            value = orjson.dumps(trigger.model_dump(mode="json", exclude_none=True))
            futures.append(await producer.send(settings.topics.triggers, value, key=key))
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


async def flow_results_consumer(
    settings: Settings,
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started, group-less consumer assigned every partition of revops.flow-results."""
    topic = settings.topics.flow_results
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        **aiokafka_options(settings),
    )
    await consumer.start()
    partitions = consumer.partitions_for_topic(topic)
    for _ in range(25):  # a topic created a moment ago may not be in the metadata yet
        if partitions:
            break
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await asyncio.sleep(0.2)
    partitions = partitions or {0}
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    return consumer, tps


class FlowOutputReader:
    """A `revops.flow-results` record as a FlowOutput, for readers outside the agents (the
    CLI, the ingress, watchers). With signing on, the record must carry the execution agent's
    token for the audience `flow_output`: a forged or altered flow output is refused, so no
    one is shown a result the pipeline did not produce. Raises `HandlerError` with the reason.
    """

    def __init__(self, settings: Settings) -> None:
        self._security = (
            EnvelopeSecurity.for_reader(AgentName.FLOW_OUTPUT.value, settings)
            if settings.signing_enabled
            else None
        )

    def read(self, record: ConsumerRecord[Any, Any]) -> FlowOutput:
        if self._security is not None:
            self._security.verify(
                Record(
                    record.topic,
                    record.partition,
                    record.offset,
                    record.key,
                    record.value,
                    tuple(record.headers or ()),
                    record.timestamp,
                )
            )
        return decode_payload(decode_envelope(record.value), FlowOutput)


class FlowWatcher:
    """Reads flow outputs published after `start()` (no consumer group: nothing committed).
    Records that fail verification or decoding are logged and skipped."""

    def __init__(self, settings: Settings, from_beginning: bool = False) -> None:
        self._settings = settings
        self._from_beginning = from_beginning
        self._consumer: AIOKafkaConsumer | None = None
        self._reader = FlowOutputReader(settings)
        self.rejected = 0

    async def start(self) -> None:
        consumer, tps = await flow_results_consumer(self._settings)
        if self._from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the lazy seek now, before any trigger is published
                await consumer.position(tp)
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self, timeout_ms: int = 200) -> list[FlowOutput]:
        """Flow outputs that arrived (waits at most `timeout_ms` when there are none)."""
        assert self._consumer is not None, "start() first"
        batch = await self._consumer.getmany(timeout_ms=timeout_ms)
        flows = []
        for records in batch.values():
            for record in records:
                try:
                    flows.append(self._reader.read(record))
                except HandlerError as exc:
                    self.rejected += 1
                    log.warning(
                        "flow_output_rejected",
                        code=exc.code,
                        reason=str(exc),
                        partition=record.partition,
                        offset=record.offset,
                    )
        return flows

    async def outputs(self, timeout_s: float | None = None) -> AsyncIterator[FlowOutput]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while deadline is None or time.monotonic() < deadline:
            for flow in await self.poll():
                yield flow

    async def wait_for(self, request_ids: Iterable[str], timeout_s: float) -> dict[str, FlowOutput]:
        """The first flow output of each request id (duplicates are ignored)."""
        wanted = set(request_ids)
        found: dict[str, FlowOutput] = {}
        async for flow in self.outputs(timeout_s):
            if flow.request_id in wanted and flow.request_id not in found:
                found[flow.request_id] = flow
                if len(found) == len(wanted):
                    break
        return found
